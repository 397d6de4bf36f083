package execapi

import (
	"io"
	"sync"

	"github.com/bot-bottle/bottle-controller/internal/pipesize"
)

// Output (guest stdout and stderr to the client). The driver hands a
// channel's writer to os/exec, whose copy goroutine calls ReadFrom with the
// read end of smolvm's stdout pipe (or the host pty). Each read takes what
// the pipe holds and goes out as one message at once, with no timer: while
// the client keeps up, a keystroke's echo leaves as soon as it is read;
// while the client lags, the guest's output piles up in the pipe (enlarged
// to outputBatch) and the next read takes all of it as one message. The
// pipe is the batch buffer, and the bytes are read straight into the
// message: no copy between the pipe and the WebSocket.
const (
	// outputChunk is the size of a read while the guest's output arrives
	// slower than it is sent, and the buffer an idle session holds.
	outputChunk = 32 << 10
	// outputBatch bounds one message: reads grow to it after a read filled
	// outputChunk (the pipe holds more), and the pipe is enlarged to it.
	outputBatch = 1 << 20
)

// batchBuffers are the outputBatch buffers of sessions streaming in bulk;
// a session returns its buffer as soon as its output slows down.
var batchBuffers = sync.Pool{New: func() any {
	b := make([]byte, 1+outputBatch)
	return &b
}}

// ReadFrom sends what r yields, one message per read, until EOF or a
// failed send (the client is gone: the copy stops and the guest gets
// EPIPE, as it would writing to a closed terminal).
func (w channelWriter) ReadFrom(r io.Reader) (int64, error) {
	pipesize.Grow(r, outputBatch)
	// buf[0] is the channel byte: the message is sent from the read buffer.
	small := make([]byte, 1+outputChunk)
	var big *[]byte
	defer func() {
		if big != nil {
			batchBuffers.Put(big)
		}
	}()
	var total int64
	for {
		buf := small
		if big != nil {
			buf = *big
		}
		n, err := r.Read(buf[1:])
		if n > 0 {
			total += int64(n)
			buf[0] = w.channel
			if serr := w.s.sendMessage(buf[:1+n]); serr != nil {
				return total, serr
			}
			switch {
			case big == nil && n == outputChunk:
				big = batchBuffers.Get().(*[]byte)
			case big != nil && n < outputChunk:
				batchBuffers.Put(big)
				big = nil
			}
		}
		switch {
		case err == io.EOF:
			return total, nil
		case err != nil:
			return total, err
		}
	}
}
