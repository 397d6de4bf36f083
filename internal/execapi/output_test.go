//go:build linux

package execapi

import (
	"bytes"
	"crypto/rand"
	"io"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	. "github.com/onsi/gomega"
	"golang.org/x/sys/unix"
)

// outputPair is a v5 session (server side) and the raw client connection
// reading its messages.
type outputPair struct {
	sess   *v5Session
	client *websocket.Conn
}

func newOutputPair(t *testing.T) *outputPair {
	t.Helper()
	sess, conn, _ := sessionPair(t, &sessionRequest{stdout: true}, nil)
	return &outputPair{sess: sess, client: conn}
}

// next reads one message: its channel and payload.
func (p *outputPair) next(t *testing.T) (byte, []byte) {
	t.Helper()
	_ = p.client.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, msg, err := p.client.ReadMessage()
	if err != nil || len(msg) == 0 {
		t.Fatalf("reading a message: %v (%d bytes)", err, len(msg))
	}
	return msg[0], msg[1:]
}

// pump runs what os/exec runs for a command's stdout: io.Copy from the
// pipe's read end to the channel's writer.
func (p *outputPair) pump(r *os.File) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(p.sess.writer(chanStdout, true), r)
		done <- err
	}()
	return done
}

// A little output (a keystroke's echo) leaves at once as its own message,
// while the pipe stays open: nothing waits for more.
func TestOutputSmallWritesLeaveAtOnce(t *testing.T) {
	g := NewWithT(t)
	p := newOutputPair(t)
	r, w, err := os.Pipe()
	g.Expect(err).NotTo(HaveOccurred())
	done := p.pump(r)
	for _, echo := range []string{"l", "s", "\r\n"} {
		_, _ = w.Write([]byte(echo))
		ch, data := p.next(t)
		g.Expect(ch).To(Equal(byte(chanStdout)))
		g.Expect(string(data)).To(Equal(echo))
	}
	_ = w.Close()
	g.Eventually(done).Should(Receive(BeNil()))
}

// Output that arrives faster than the client reads piles up in the
// (enlarged) pipe and leaves in messages much larger than one pipe read of
// os/exec (32 KiB), in order and intact.
func TestOutputBulkIsBatched(t *testing.T) {
	g := NewWithT(t)
	p := newOutputPair(t)
	r, w, err := os.Pipe()
	g.Expect(err).NotTo(HaveOccurred())
	done := p.pump(r)
	want := make([]byte, 24<<20)
	_, _ = rand.Read(want)
	written := make(chan struct{})
	go func() {
		defer close(written)
		_, _ = w.Write(want)
		_ = w.Close()
	}()
	// The client reads nothing until the writer is blocked on a full pipe
	// behind a full connection: the next reads find the pipe full.
	g.Eventually(func() int {
		n, _ := unix.IoctlGetInt(int(r.Fd()), unix.TIOCINQ)
		return n
	}).WithTimeout(30 * time.Second).Should(BeNumerically(">=", outputBatch/2))
	var got bytes.Buffer
	largest := 0
	for got.Len() < len(want) {
		ch, data := p.next(t)
		g.Expect(ch).To(Equal(byte(chanStdout)))
		largest = max(largest, len(data))
		got.Write(data)
	}
	g.Expect(bytes.Equal(got.Bytes(), want)).To(BeTrue(), "the stream arrived changed")
	g.Expect(largest).To(BeNumerically(">", outputChunk), "no message was larger than one read of os/exec")
	g.Expect(largest).To(BeNumerically("<=", outputBatch))
	g.Eventually(written).Should(BeClosed())
	g.Eventually(done).Should(Receive(BeNil()))
}

// The pipe os/exec gives a command's stdout is enlarged to outputBatch
// once its output is copied to a session.
func TestOutputGrowsTheCommandsPipe(t *testing.T) {
	g := NewWithT(t)
	p := newOutputPair(t)
	cmd := exec.Command("sh", "-c", `echo ready; read x`)
	cmd.Stdout = p.sess.writer(chanStdout, true)
	stdin, err := cmd.StdinPipe()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(cmd.Start()).To(Succeed())
	defer func() { _ = stdin.Close(); _ = cmd.Wait() }()
	_, data := p.next(t)
	g.Expect(string(data)).To(Equal("ready\n"))
	// The child's stdout is the write end of the pipe.
	fd, err := os.Open("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/fd/1")
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = fd.Close() }()
	size, err := unix.FcntlInt(fd.Fd(), unix.F_GETPIPE_SZ, 0)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(size).To(Equal(outputBatch))
}

// A client that is gone ends the copy with an error, so the command's
// writes fail (EPIPE) instead of blocking.
func TestOutputEndsWhenTheClientIsGone(t *testing.T) {
	g := NewWithT(t)
	p := newOutputPair(t)
	r, w, err := os.Pipe()
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = w.Close() }()
	done := p.pump(r)
	_ = p.sess.conn.Close()
	go func() { _, _ = w.Write(make([]byte, 1<<20)) }()
	g.Eventually(done).WithTimeout(10 * time.Second).Should(Receive(HaveOccurred()))
}
