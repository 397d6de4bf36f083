package kubectlbottle

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"k8s.io/apimachinery/pkg/util/remotecommand"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/exec"
)

// The error channel decodes as client-go's executor decodes it, so exit
// codes and refusals read the same as with kubectl exec.
func TestDecodeStatus(t *testing.T) {
	for _, tc := range []struct {
		name, message string
		code          int    // a CodeExitError with this code
		err           string // else an error containing this, "" for nil
	}{
		{"no status", ``, 0, ""},
		{"success", `{"status":"Success"}`, 0, ""},
		{"exit code", `{"status":"Failure","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"7"}]}}`, 7, ""},
		{"refusal", `{"status":"Failure","reason":"InternalError","message":"bottle \"b\" has no machine yet"}`, 0, `bottle "b" has no machine yet`},
		{"exit code out of range", `{"status":"Failure","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"300"}]}}`, 0, "invalid exit code value"},
		{"no exit code cause", `{"status":"Failure","reason":"NonZeroExitCode","details":{}}`, 0, "no ExitCode cause given"},
		{"no details", `{"status":"Failure","reason":"NonZeroExitCode"}`, 0, "details must be set"},
		{"unknown status", `{"status":"Maybe"}`, 0, "unknown error"},
		{"not JSON", `oops`, 0, "error stream protocol error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := decodeStatus([]byte(tc.message))
			var ce exec.CodeExitError
			switch {
			case tc.code != 0:
				if !errors.As(err, &ce) || ce.Code != tc.code {
					t.Fatalf("got %v, want exit code %d", err, tc.code)
				}
			case tc.err == "":
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
			case err == nil || !strings.Contains(err.Error(), tc.err) || errors.As(err, &ce):
				t.Fatalf("got %v, want an error with %q", err, tc.err)
			}
		})
	}
}

// blockingWriter is a stdout whose reader stalls (a paused pager) once.
type blockingWriter struct {
	stall   time.Duration
	stalled chan struct{}
	got     strings.Builder
}

func (b *blockingWriter) Write(p []byte) (int, error) {
	b.got.Write(p)
	if b.stalled != nil {
		time.Sleep(b.stall)
		close(b.stalled)
		b.stalled = nil
	}
	return len(p), nil
}

// A session whose stdout stalls for longer than the read deadline goes on
// when the stall ends: the time spent writing is not the server's silence.
func TestStalledStdoutIsNotSilence(t *testing.T) {
	defer func(d time.Duration) { pongWait = d }(pongWait)
	pongWait = 300 * time.Millisecond
	out := &blockingWriter{stall: 3 * pongWait, stalled: make(chan struct{})}
	stalled := out.stalled
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		up := websocket.Upgrader{Subprotocols: []string{remotecommand.StreamProtocolV5Name}}
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer func() { _ = conn.Close() }()
		_ = conn.WriteMessage(websocket.BinaryMessage, []byte("\x01hello"))
		<-stalled
		_ = conn.WriteMessage(websocket.BinaryMessage, []byte("\x01 again"))
		_ = conn.WriteMessage(websocket.BinaryMessage, []byte("\x03"+`{"status":"Success"}`))
		_ = conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
		_, _, _ = conn.ReadMessage() // the client's close
	}))
	defer srv.Close()
	err := streamV5(context.Background(), &rest.Config{Host: srv.URL}, srv.URL+"/exec", &Session{Stdout: out})
	if err != nil || out.got.String() != "hello again" {
		t.Fatalf("err %v, stdout %q", err, out.got.String())
	}
}
