package execapi

import (
	"context"
	"io"
	"sync"
)

const (
	// stdinBufferLimit bounds the stdin bytes one session holds ahead of
	// the guest. A guest that never reads its stdin makes the client wait
	// (TCP back-pressure), it cannot make the agent buffer more.
	stdinBufferLimit = 1 << 20
	// stdinChunk is how much of a stdin frame is read at a time: frames of
	// up to maxMessage are streamed into the queue, never held whole.
	stdinChunk = 32 << 10
)

// stdinQueue hands stdin from the read loop (its single writer) to the
// guest's stdin (its single reader), holding at most limit bytes.
type stdinQueue struct {
	limit int

	mu     sync.Mutex
	chunks [][]byte
	queued int
	eof    bool

	// wake tells the reader that data or EOF arrived; space tells the
	// writer that the reader took some. Each holds at most one token, so a
	// signal sent before the other side waits is never lost.
	wake, space chan struct{}

	// full is a test hook, called when a push has to wait for space.
	full func()
}

func newStdinQueue(limit int) *stdinQueue {
	return &stdinQueue{limit: limit, wake: make(chan struct{}, 1), space: make(chan struct{}, 1)}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// push queues b (at most stdinChunk bytes, owned by the queue from now on),
// waiting while the queue is full. It returns false when ctx ends first.
func (q *stdinQueue) push(ctx context.Context, b []byte) bool {
	for {
		q.mu.Lock()
		if q.queued == 0 || q.queued+len(b) <= q.limit {
			q.chunks = append(q.chunks, b)
			q.queued += len(b)
			q.mu.Unlock()
			signal(q.wake)
			return true
		}
		q.mu.Unlock()
		if q.full != nil {
			q.full()
		}
		select {
		case <-q.space:
		case <-ctx.Done():
			return false
		}
	}
}

// fill streams r into the queue in chunks of at most stdinChunk bytes.
func (q *stdinQueue) fill(ctx context.Context, r io.Reader) error {
	for {
		buf := make([]byte, stdinChunk)
		n, err := io.ReadFull(r, buf)
		if n > 0 && !q.push(ctx, buf[:n:n]) {
			return ctx.Err()
		}
		switch err {
		case nil:
		case io.EOF, io.ErrUnexpectedEOF:
			return nil
		default:
			return err
		}
	}
}

// closeWrite marks the end of stdin; queued bytes are still read.
func (q *stdinQueue) closeWrite() {
	q.mu.Lock()
	q.eof = true
	q.mu.Unlock()
	signal(q.wake)
}

// buffered is how many bytes wait for the guest.
func (q *stdinQueue) buffered() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.queued
}

func (q *stdinQueue) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		q.mu.Lock()
		if len(q.chunks) > 0 {
			c := q.chunks[0]
			n := copy(p, c)
			if n == len(c) {
				q.chunks[0] = nil
				q.chunks = q.chunks[1:]
			} else {
				q.chunks[0] = c[n:]
			}
			q.queued -= n
			q.mu.Unlock()
			signal(q.space)
			return n, nil
		}
		eof := q.eof
		q.mu.Unlock()
		if eof {
			return 0, io.EOF
		}
		<-q.wake
	}
}
