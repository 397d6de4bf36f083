package execapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/remotecommand"

	"github.com/bot-bottle/bottle-controller/internal/channelws"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

// The v5.channel.k8s.io protocol: every binary message starts with a channel
// byte; 255 followed by a channel half-closes it. The server is written on
// gorilla/websocket rather than k8s.io/streaming's wsstream because wsstream
// (x/net/websocket) can neither send pings nor see pongs, and idle sessions
// behind load balancers need both (KubeVirt issue 6493).
const (
	chanStdin  = remotecommand.StreamStdIn
	chanStdout = remotecommand.StreamStdOut
	chanStderr = remotecommand.StreamStdErr
	chanError  = remotecommand.StreamErr
	chanResize = remotecommand.StreamResize
	chanClose  = 255
)

const (
	// firstSizeWait is how long a TTY session waits for the client's first
	// resize before starting at 80x24: clients send it right away, and a
	// TUI started at the wrong size draws badly until the next resize.
	firstSizeWait = time.Second
	// closeWait bounds the wait for the client's close frame after ours.
	closeWait = 2 * time.Second
	// missedPings is how many keepalive periods of silence end a session.
	missedPings = 3
	// maxMessage bounds one WebSocket message. Stdin messages are streamed
	// (stdin.go), so it does not bound memory; other channels are small.
	maxMessage = 4 << 20
	// maxControlMessage bounds what is read of a resize or close message.
	maxControlMessage = 4 << 10
)

var upgrader = websocket.Upgrader{
	HandshakeTimeout: 10 * time.Second,
	ReadBufferSize:   32 << 10,
	WriteBufferSize:  32 << 10,
	Subprotocols:     []string{remotecommand.StreamProtocolV5Name},
}

// checkUpgrade answers why a request cannot become a v5 session, before any
// work is done for it.
func checkUpgrade(r *http.Request) error {
	if !websocket.IsWebSocketUpgrade(r) {
		return badRequest("this endpoint streams over WebSocket only (subprotocol %s); use `kubectl bottle` or client-go's remotecommand.NewWebSocketExecutor",
			remotecommand.StreamProtocolV5Name)
	}
	for _, p := range websocket.Subprotocols(r) {
		if p == remotecommand.StreamProtocolV5Name {
			return nil
		}
	}
	return badRequest("the client offered no supported subprotocol; this server speaks %s", remotecommand.StreamProtocolV5Name)
}

// v5Session is one accepted connection.
type v5Session struct {
	conn      *websocket.Conn
	keepAlive time.Duration
	writeMu   sync.Mutex

	stdin  *stdinQueue // nil when the client sends no stdin
	resize chan smolvm.TermSize
	// readDone is closed when the read loop ends (client gone or closed).
	readDone chan struct{}

	pongs func() // test hook, called on every pong
}

func acceptV5(w http.ResponseWriter, r *http.Request, sr *sessionRequest, keepAlive time.Duration) (*v5Session, error) {
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return nil, err // the upgrader already answered
	}
	conn.SetReadLimit(maxMessage)
	s := &v5Session{conn: conn, keepAlive: keepAlive, readDone: make(chan struct{})}
	if sr.stdin {
		s.stdin = newStdinQueue(stdinBufferLimit)
	}
	if sr.tty {
		s.resize = make(chan smolvm.TermSize, 8)
	}
	return s, nil
}

func (s *v5Session) idleDeadline() time.Time {
	return time.Now().Add(missedPings * s.keepAlive)
}

// run starts the read loop and the keepalive; both end with ctx or the
// connection.
func (s *v5Session) run(ctx context.Context, cancel context.CancelFunc) {
	_ = s.conn.SetReadDeadline(s.idleDeadline())
	s.conn.SetPongHandler(func(string) error {
		if s.pongs != nil {
			s.pongs()
		}
		return s.conn.SetReadDeadline(s.idleDeadline())
	})
	go func() {
		defer close(s.readDone)
		// The client going away must stop the guest command.
		defer cancel()
		s.readLoop(ctx)
	}()
	go s.keepalive(ctx)
}

// readLoop ends when the connection fails or closes. Messages are read as
// streams: a stdin message is copied into the bounded stdin queue chunk by
// chunk, so a client flooding a guest that does not read holds no more than
// stdinBufferLimit bytes of the agent's memory.
func (s *v5Session) readLoop(ctx context.Context) {
	defer func() {
		if s.stdin != nil {
			s.stdin.closeWrite()
		}
	}()
	var channel [1]byte
	for {
		typ, r, err := s.conn.NextReader()
		if err != nil {
			return
		}
		// Waiting on a full stdin queue below must not count as silence.
		_ = s.conn.SetReadDeadline(s.idleDeadline())
		if typ != websocket.BinaryMessage {
			continue // the next NextReader discards the rest
		}
		if _, err := io.ReadFull(r, channel[:]); err != nil {
			continue // empty message
		}
		switch channel[0] {
		case chanStdin:
			if s.stdin != nil {
				if err := s.stdin.fill(ctx, &deadlineReader{r: r, s: s}); err != nil {
					return
				}
			}
		case chanResize:
			data, err := io.ReadAll(io.LimitReader(r, maxControlMessage))
			var sz struct{ Width, Height uint16 }
			if err != nil || s.resize == nil || json.Unmarshal(data, &sz) != nil || sz.Width == 0 || sz.Height == 0 {
				continue
			}
			s.pushResize(smolvm.TermSize{Width: sz.Width, Height: sz.Height})
		case chanClose:
			data, err := io.ReadAll(io.LimitReader(r, maxControlMessage))
			if err == nil && len(data) == 1 && data[0] == chanStdin && s.stdin != nil {
				s.stdin.closeWrite()
			}
		}
		_ = s.conn.SetReadDeadline(s.idleDeadline())
	}
}

// deadlineReader pushes the idle deadline forward before each read of a
// stdin message: the time spent waiting for the guest to take the previous
// chunk is not client silence.
type deadlineReader struct {
	r io.Reader
	s *v5Session
}

func (d *deadlineReader) Read(p []byte) (int, error) {
	_ = d.s.conn.SetReadDeadline(d.s.idleDeadline())
	return d.r.Read(p)
}

// pushResize never blocks the read loop: when the guest side lags, only the
// latest size matters, so the oldest pending one is dropped.
func (s *v5Session) pushResize(sz smolvm.TermSize) {
	for {
		select {
		case s.resize <- sz:
			return
		default:
		}
		select {
		case <-s.resize:
		default:
		}
	}
}

// keepalive pings every period so that proxies and load balancers on the
// way (kube-apiserver, gateway) see traffic on idle sessions, and so a dead
// client is noticed (no pong within missedPings periods ends the read loop).
func (s *v5Session) keepalive(ctx context.Context) {
	t := time.NewTicker(s.keepAlive)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.readDone:
			return
		case <-t.C:
			if err := s.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(s.keepAlive)); err != nil {
				return
			}
		}
	}
}

// firstSize returns the client's initial terminal size, waiting briefly.
func (s *v5Session) firstSize(ctx context.Context) smolvm.TermSize {
	if s.resize == nil {
		return smolvm.TermSize{}
	}
	t := time.NewTimer(firstSizeWait)
	defer t.Stop()
	select {
	case sz := <-s.resize:
		return sz
	case <-t.C:
	case <-ctx.Done():
	}
	return smolvm.TermSize{}
}

// writer returns the channel's writer, or io.Discard when the client did not
// open it.
func (s *v5Session) writer(channel byte, open bool) io.Writer {
	if !open {
		return io.Discard
	}
	return channelWriter{s: s, channel: channel}
}

type channelWriter struct {
	s       *v5Session
	channel byte
}

func (w channelWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return len(p), w.s.send(w.channel, p)
}

// sendMessage sends msg (channel byte first) as one message, copying only
// its first WriteBufferSize bytes.
func (s *v5Session) sendMessage(msg []byte) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	return s.conn.WriteMessage(websocket.BinaryMessage, msg)
}

func (s *v5Session) send(channel byte, p []byte) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	return channelws.Write(s.conn, channel, p)
}

// finish reports the outcome on the error channel, closes the WebSocket
// cleanly and waits (briefly) for the client to close too: closing the
// socket with unread client data would reset it and could lose the status.
func (s *v5Session) finish(st metav1.Status) {
	if body, err := json.Marshal(&st); err == nil {
		_ = s.send(chanError, body)
	}
	_ = s.conn.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(closeWait))
	select {
	case <-s.readDone:
	case <-time.After(closeWait):
	}
	_ = s.conn.Close()
}

// abort closes the connection without a status (the client is gone).
func (s *v5Session) abort() { _ = s.conn.Close() }

// exitStatus is the error-channel message for a finished command, in the
// form client-go's v4/v5 decoder turns into exec.CodeExitError.
func exitStatus(code int, err error) metav1.Status {
	switch {
	case err != nil:
		return metav1.Status{Status: metav1.StatusFailure, Reason: metav1.StatusReasonInternalError,
			Code: http.StatusInternalServerError, Message: err.Error()}
	case code == 0:
		return metav1.Status{Status: metav1.StatusSuccess}
	case code < 0 || code > 255:
		return metav1.Status{Status: metav1.StatusFailure, Reason: metav1.StatusReasonInternalError,
			Code: http.StatusInternalServerError, Message: "command was killed before it exited"}
	}
	return metav1.Status{
		Status:  metav1.StatusFailure,
		Reason:  remotecommand.NonZeroExitCodeReason,
		Message: "command terminated with non-zero exit code: " + strconv.Itoa(code),
		Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{
			Type:    remotecommand.ExitCodeCauseType,
			Message: strconv.Itoa(code),
		}}},
	}
}
