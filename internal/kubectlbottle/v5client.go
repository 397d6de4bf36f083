package kubectlbottle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/remotecommand"
	"k8s.io/client-go/rest"
	clientremotecommand "k8s.io/client-go/tools/remotecommand"
	clientgows "k8s.io/client-go/transport/websocket"
	"k8s.io/client-go/util/exec"

	"github.com/bot-bottle/bottle-controller/internal/channelws"
)

// The client side of v5.channel.k8s.io, the protocol of kubectl exec, as
// internal/execapi serves it. client-go's WebSocket executor speaks it too,
// but hands every 32 KiB of output from its read loop to a copying
// goroutine through an io.Pipe and writes it in 32 KiB pieces; on a 2-core
// machine those handoffs and writes cost the plugin more CPU than the TLS
// it decrypts. Here the read loop writes each message straight to its
// destination, in writes of up to outputBuffer bytes. The connection is
// client-go's (websocket.RoundTripperFor): TLS, proxies and every kind of
// kubeconfig credential work exactly as for kubectl exec.
const (
	// outputBuffer bounds one write to stdout or stderr: a message is
	// written as soon as it is complete, or in pieces this large.
	outputBuffer = 1 << 20
	// stdinChunk is the most stdin bytes one message carries.
	stdinChunk = 256 << 10
	// maxErrorMessage bounds the status read from the error channel.
	maxErrorMessage = 64 << 10
	// pingPeriod and pongWait (below) are client-go's: a server or proxy
	// that vanishes without closing the connection ends the session after
	// pongWait without any message.
	pingPeriod = 5 * time.Second
	writeWait  = 60 * time.Second
)

// pongWait is a variable for the tests' sake.
var pongWait = 12*pingPeriod + time.Second

// streamV5 runs the session s on the WebSocket at url.
func streamV5(ctx context.Context, cfg *rest.Config, url string, s *Session) error {
	rt, holder, err := clientgows.RoundTripperFor(cfg)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	conn, err := clientgows.Negotiate(rt, holder, req, remotecommand.StreamProtocolV5Name)
	if err != nil {
		return unwrapUpgrade(err)
	}
	c := &v5Conn{conn: conn, done: make(chan struct{})}
	defer c.close()
	// The context ends the session: closing the connection ends the read
	// loop.
	stop := context.AfterFunc(ctx, c.close)
	defer stop()
	err = c.run(s)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// v5Conn is one session's connection. The read loop runs on the caller's
// goroutine; stdin, resizes and pings are written from their own.
type v5Conn struct {
	conn    *websocket.Conn
	writeMu sync.Mutex
	// done is closed when the read loop ends.
	done      chan struct{}
	closeOnce sync.Once
}

func (c *v5Conn) close() { c.closeOnce.Do(func() { _ = c.conn.Close() }) }

// run reads until the server closes the session, and returns the command's
// outcome from the error channel.
func (c *v5Conn) run(s *Session) error {
	defer close(c.done)
	_ = c.conn.SetReadDeadline(time.Now().Add(pongWait))
	c.conn.SetPongHandler(func(string) error { return c.conn.SetReadDeadline(time.Now().Add(pongWait)) })
	go c.heartbeat()
	if s.Stdin != nil {
		go c.copyStdin(s.Stdin)
	}
	if s.TTY && s.SizeQueue != nil {
		go c.sendResizes(s.SizeQueue)
	}
	// Time spent blocked on a slow reader of our stdout (a pager the user
	// paused) is not the server's silence.
	stdout := deadlineWriter{w: writerOrDiscard(s.Stdout), conn: c.conn}
	stderr := deadlineWriter{w: writerOrDiscard(s.Stderr), conn: c.conn}
	buf := make([]byte, outputBuffer)
	var status []byte
	var channel [1]byte
	for {
		typ, r, err := c.conn.NextReader()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) && ce.Code == websocket.CloseNormalClosure {
				return decodeStatus(status)
			}
			return fmt.Errorf("the exec session broke off: %w", err)
		}
		_ = c.conn.SetReadDeadline(time.Now().Add(pongWait))
		if typ != websocket.BinaryMessage {
			return fmt.Errorf("the exec session broke off: unexpected message type %d", typ)
		}
		if _, err := io.ReadFull(r, channel[:]); err != nil {
			continue // an empty message
		}
		switch channel[0] {
		case remotecommand.StreamStdOut:
			err = copyMessage(stdout, r, buf)
		case remotecommand.StreamStdErr:
			err = copyMessage(stderr, r, buf)
		case remotecommand.StreamErr:
			var more []byte
			more, err = io.ReadAll(io.LimitReader(r, maxErrorMessage-int64(len(status))))
			status = append(status, more...)
		}
		if err != nil {
			return err
		}
	}
}

// copyMessage writes the rest of a message to w, in as few writes as buf
// allows. A failed write (stdout closed) is the session's end, as it is
// for kubectl exec.
func copyMessage(w io.Writer, r io.Reader, buf []byte) error {
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		switch {
		case err == nil:
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return nil
		default:
			return fmt.Errorf("the exec session broke off: %w", err)
		}
	}
}

// deadlineWriter pushes the connection's read deadline forward after each
// write.
type deadlineWriter struct {
	w    io.Writer
	conn *websocket.Conn
}

func (d deadlineWriter) Write(p []byte) (int, error) {
	n, err := d.w.Write(p)
	_ = d.conn.SetReadDeadline(time.Now().Add(pongWait))
	return n, err
}

func writerOrDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// decodeStatus turns the error channel's metav1.Status into the command's
// outcome, exactly as client-go's executor does: nil for success (or no
// status), exec.CodeExitError for a non-zero exit code, else the message.
func decodeStatus(message []byte) error {
	if len(message) == 0 {
		return nil
	}
	var st metav1.Status
	if err := json.Unmarshal(message, &st); err != nil {
		return fmt.Errorf("error stream protocol error: %v in %q", err, string(message))
	}
	switch st.Status {
	case metav1.StatusSuccess:
		return nil
	case metav1.StatusFailure:
	default:
		return errors.New("error stream protocol error: unknown error")
	}
	if st.Reason != remotecommand.NonZeroExitCodeReason {
		return errors.New(st.Message)
	}
	if st.Details == nil {
		return errors.New("error stream protocol error: details must be set")
	}
	for _, c := range st.Details.Causes {
		if c.Type != remotecommand.ExitCodeCauseType {
			continue
		}
		rc, err := strconv.ParseUint(c.Message, 10, 8)
		if err != nil {
			return fmt.Errorf("error stream protocol error: invalid exit code value %q", c.Message)
		}
		return exec.CodeExitError{Err: fmt.Errorf("command terminated with exit code %d", rc), Code: int(rc)}
	}
	return fmt.Errorf("error stream protocol error: no %s cause given", remotecommand.ExitCodeCauseType)
}

// send writes one message: the channel byte, then p.
func (c *v5Conn) send(channel byte, p []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(writeWait))
	return channelws.Write(c.conn, channel, p)
}

// copyStdin sends stdin as it is read, then half-closes the channel so the
// command sees EOF. It may outlive the session blocked on a read of a
// terminal, like kubectl exec's: the process is about to exit.
func (c *v5Conn) copyStdin(in io.Reader) {
	buf := make([]byte, stdinChunk)
	for {
		n, err := in.Read(buf)
		if n > 0 {
			if c.send(remotecommand.StreamStdIn, buf[:n]) != nil {
				return
			}
		}
		if err != nil {
			break
		}
	}
	_ = c.send(remotecommand.StreamClose, []byte{remotecommand.StreamStdIn})
}

func (c *v5Conn) sendResizes(q clientremotecommand.TerminalSizeQueue) {
	for {
		size := q.Next()
		if size == nil {
			return
		}
		data, err := json.Marshal(size)
		if err != nil || c.send(remotecommand.StreamResize, data) != nil {
			return
		}
	}
}

// heartbeat pings until the session ends; the pongs keep the read
// deadline ahead.
func (c *v5Conn) heartbeat() {
	t := time.NewTicker(pingPeriod)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
			if err := c.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait)); errors.Is(err, websocket.ErrCloseSent) {
				return
			}
		}
	}
}
