// Package channelws writes messages of Kubernetes' channel WebSocket
// protocols (v4/v5.channel.k8s.io, those of kubectl exec): a channel byte,
// then the data. Both ends of a Bottle exec session send them: the agent
// (internal/execapi) and kubectl bottle (internal/kubectlbottle).
package channelws

import "github.com/gorilla/websocket"

// Write sends p on channel as one binary message. p goes through the
// connection's write buffer: nothing allocates a message to prepend the
// channel byte. The caller serializes writes, as gorilla/websocket
// requires.
func Write(conn *websocket.Conn, channel byte, p []byte) error {
	w, err := conn.NextWriter(websocket.BinaryMessage)
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte{channel}); err != nil {
		_ = w.Close()
		return err
	}
	if _, err := w.Write(p); err != nil {
		_ = w.Close()
		return err
	}
	return w.Close()
}
