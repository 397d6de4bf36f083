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
	const frames, frameSize = 8, maxMessage - 1
	queueFull := make(chan struct{}, 1)
	sessions := make(chan *v5Session, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, err := acceptV5(w, r, &sessionRequest{stdin: true, stdout: true}, time.Minute)
		if err != nil {
			return
		}
		sess.stdin.full = func() { signal(queueFull) }
		sess.run(ctx, cancel)
		sessions <- sess
	}))
	defer srv.Close()

	d := websocket.Dialer{Subprotocols: []string{remotecommand.StreamProtocolV5Name}}
	conn, _, err := d.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = conn.Close() }()
	sess := <-sessions

	payload := make([]byte, frameSize)
	_, _ = rand.Read(payload)
	frame := append([]byte{chanStdin}, payload...)
	before := heapInUse()

	sent := make(chan error, 1)
	go func() {
		for i := 0; i < frames; i++ {
			if err := conn.WriteMessage(websocket.BinaryMessage, frame); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	// The guest reads nothing: the queue fills and the read loop waits.
	g.Eventually(queueFull).WithTimeout(30 * time.Second).Should(Receive())
	g.Expect(sess.stdin.buffered()).To(BeNumerically("<=", stdinBufferLimit))
	grown := heapInUse() - before
	t.Logf("heap grew by %.1f MiB with %d MiB of stdin waiting to be sent and %d KiB buffered",
		float64(grown)/(1<<20), frames*frameSize>>20, sess.stdin.buffered()>>10)
	g.Expect(grown).To(BeNumerically("<", 16<<20), "heap growth in bytes")

	// Now the guest reads: everything arrives, in order.
	var got bytes.Buffer
	n, err := io.CopyN(&got, sess.stdin, int64(frames*frameSize))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(n).To(Equal(int64(frames * frameSize)))
	g.Eventually(sent).Should(Receive(BeNil()))
	for i := 0; i < frames; i++ {
		g.Expect(bytes.Equal(got.Bytes()[i*frameSize:(i+1)*frameSize], payload)).To(BeTrue(), "frame %d", i)
	}
}

// heapInUse is the live heap after a full collection.
func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
