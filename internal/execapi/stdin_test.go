package execapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/util/remotecommand"
)

func TestStdinQueueKeepsOrderAndBound(t *testing.T) {
	g := NewWithT(t)
	q := newStdinQueue(100)
	want := make([]byte, 1000)
	_, _ = rand.Read(want)
	var peak atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < len(want); i += 30 {
			end := min(i+30, len(want))
			if !q.push(context.Background(), append([]byte(nil), want[i:end]...)) {
				return
			}
			if n := int64(q.buffered()); n > peak.Load() {
				peak.Store(n)
			}
		}
		q.closeWrite()
	}()
	got, err := io.ReadAll(iotestOneByte{q})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got).To(Equal(want))
	g.Eventually(done).Should(BeClosed())
	g.Expect(peak.Load()).To(BeNumerically("<=", 100))
}

func TestStdinQueuePushEndsWithContext(t *testing.T) {
	q := newStdinQueue(10)
	ctx, cancel := context.WithCancel(context.Background())
	if !q.push(ctx, make([]byte, 10)) {
		t.Fatal("first push refused")
	}
	res := make(chan bool, 1)
	go func() { res <- q.push(ctx, make([]byte, 1)) }()
	cancel()
	if <-res {
		t.Fatal("push into a full queue succeeded after its context ended")
	}
}

// iotestOneByte reads one byte at a time, the worst case for the queue.
type iotestOneByte struct{ r io.Reader }

func (o iotestOneByte) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return o.r.Read(p[:1])
}

// TestStdinFloodHeapGrowth: a client sends 4 MiB stdin frames to a guest
// that does not read. The session must hold at most stdinBufferLimit of
// them, so the heap grows by far less than 16 MiB (it grew by 259 MiB with
// the old queue of 64 whole frames); the bytes reach the guest intact once
// it reads.
func TestStdinFloodHeapGrowth(t *testing.T) {
	g := NewWithT(t)
	const frames = 8
	f := startFlood(t, frames)
	grown := f.heapGrowth(t)
	t.Logf("heap grew by %.1f MiB with %d MiB of stdin sent or waiting and %d KiB buffered",
		float64(grown)/(1<<20), frames*floodFrameSize>>20, f.sess.stdin.buffered()>>10)
	g.Expect(grown).To(BeNumerically("<", 16<<20), "heap growth in bytes")

	// Now the guest reads: everything arrives, in order.
	var got bytes.Buffer
	n, err := io.CopyN(&got, f.sess.stdin, int64(frames*floodFrameSize))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(n).To(Equal(int64(frames * floodFrameSize)))
	g.Eventually(f.sent).Should(Receive(BeNil()))
	for i := 0; i < frames; i++ {
		g.Expect(bytes.Equal(got.Bytes()[i*floodFrameSize:(i+1)*floodFrameSize], f.payload)).To(BeTrue(), "frame %d", i)
	}
}

// BenchmarkStdinFloodHeap reports the heap growth of one session flooded
// with 4 MiB stdin frames (the target: under 16 MiB).
func BenchmarkStdinFloodHeap(b *testing.B) {
	var worst int64
	for i := 0; i < b.N; i++ {
		f := startFlood(b, 16)
		worst = max(worst, f.heapGrowth(b))
		f.close()
	}
	b.ReportMetric(float64(worst)/(1<<20), "heap-MiB")
}

const floodFrameSize = maxMessage - 1

type flood struct {
	sess      *v5Session
	payload   []byte
	sent      chan error
	queueFull chan struct{}
	before    int64
	close     func()
}

// startFlood opens a v5 session over a real WebSocket and sends frames of
// 4 MiB of stdin from a client whose guest never reads.
func startFlood(tb testing.TB, frames int) *flood {
	tb.Helper()
	f := &flood{sent: make(chan error, 1), queueFull: make(chan struct{}, 1)}
	var conn *websocket.Conn
	f.sess, conn, f.close = sessionPair(tb, &sessionRequest{stdin: true, stdout: true}, func(sess *v5Session) {
		sess.stdin.full = func() { signal(f.queueFull) }
	})
	f.payload = make([]byte, floodFrameSize)
	_, _ = rand.Read(f.payload)
	frame := append([]byte{chanStdin}, f.payload...)
	f.before = heapInUse()
	go func() {
		for i := 0; i < frames; i++ {
			if err := conn.WriteMessage(websocket.BinaryMessage, frame); err != nil {
				f.sent <- err
				return
			}
		}
		f.sent <- nil
	}()
	return f
}

// heapGrowth waits until the stdin queue is full (the guest reads nothing,
// so the read loop waits) and measures the live heap against the start.
func (f *flood) heapGrowth(tb testing.TB) int64 {
	tb.Helper()
	select {
	case <-f.queueFull:
	case <-time.After(time.Minute):
		tb.Fatal("the stdin queue never filled")
	}
	if n := f.sess.stdin.buffered(); n > stdinBufferLimit {
		tb.Fatalf("%d bytes buffered, more than the %d limit", n, stdinBufferLimit)
	}
	return heapInUse() - f.before
}

// heapInUse is the live heap after a full collection.
func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// sessionPair accepts one v5 session over a real WebSocket (prepare runs
// before its read loop starts) and returns it with the client's end. close
// ends both; it also runs at cleanup.
func sessionPair(tb testing.TB, sr *sessionRequest, prepare func(*v5Session)) (*v5Session, *websocket.Conn, func()) {
	tb.Helper()
	sessions := make(chan *v5Session, 1)
	ctx, cancel := context.WithCancel(context.Background())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, err := acceptV5(w, r, sr, time.Minute)
		if err != nil {
			return
		}
		if prepare != nil {
			prepare(sess)
		}
		sess.run(ctx, cancel)
		sessions <- sess
	}))
	d := websocket.Dialer{Subprotocols: []string{remotecommand.StreamProtocolV5Name}}
	conn, _, err := d.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		cancel()
		srv.Close()
		tb.Fatal(err)
	}
	closeAll := func() { cancel(); _ = conn.Close(); srv.Close() }
	tb.Cleanup(closeAll)
	return <-sessions, conn, closeAll
}
