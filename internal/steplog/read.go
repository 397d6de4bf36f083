package steplog

import (
	"bytes"
	"context"
	"io"
	"time"
)

// ReadOptions select what Copy writes, as `kubectl logs` does.
type ReadOptions struct {
	// Follow keeps writing while the step runs and returns when it ends.
	Follow bool
	// TailLines, when >= 0, starts that many lines before the end.
	TailLines int64
	// Timestamps prefixes every line with the time (RFC 3339, UTC, ns) its
	// first byte reached the agent.
	Timestamps bool
	// Flush is called after each chunk written (e.g. http.Flusher.Flush).
	Flush func()
}

// readChunk is how much Copy reads at a time.
const readChunk = 64 << 10

// Copy writes a step's log to w. Without Follow it writes what is there now;
// with Follow it also waits for more until the step ends or ctx is done.
// Bytes the ring dropped while a slow reader lagged are skipped.
func (s *Store) Copy(ctx context.Context, w io.Writer, uid, step string, o ReadOptions) error {
	l, release, err := s.open(uid, step)
	if err != nil {
		return err
	}
	defer release()

	total, _, _ := l.state()
	pos := l.oldest(total)
	if o.TailLines >= 0 {
		if pos, err = l.tailStart(pos, total, o.TailLines); err != nil {
			return err
		}
	}
	lineStart := pos == 0
	if !lineStart && pos > l.oldest(total) {
		lineStart = true // tailStart returns line starts
	}
	buf := make([]byte, readChunk)
	for {
		total, done, changed := l.state()
		if lo := l.oldest(total); pos < lo {
			pos, lineStart = lo, false
		}
		if pos < total {
			n := min(int64(len(buf)), total-pos)
			ok, err := l.readAt(buf[:n], pos)
			if err != nil {
				return err
			}
			if !ok {
				continue // overwritten while read: skip to what is left
			}
			if o.Timestamps {
				lineStart, err = writeStamped(w, l, buf[:n], pos, lineStart)
			} else {
				_, err = w.Write(buf[:n])
			}
			if err != nil {
				return err
			}
			if o.Flush != nil {
				o.Flush()
			}
			pos += n
			continue
		}
		if done || !o.Follow {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// writeStamped writes p (at absolute offset pos) with a timestamp before
// every line start.
func writeStamped(w io.Writer, l *stepLog, p []byte, pos int64, lineStart bool) (bool, error) {
	var out bytes.Buffer
	for i := 0; i < len(p); {
		if lineStart {
			out.WriteString(l.timeAt(pos + int64(i)).Format(time.RFC3339Nano))
			out.WriteByte(' ')
		}
		j := bytes.IndexByte(p[i:], '\n')
		if j < 0 {
			out.Write(p[i:])
			lineStart = false
			break
		}
		out.Write(p[i : i+j+1])
		i += j + 1
		lineStart = true
	}
	_, err := w.Write(out.Bytes())
	return lineStart, err
}

// tailStart is the absolute offset of the start of the last n lines in
// [lo, total). A final line without a newline counts as a line.
func (l *stepLog) tailStart(lo, total, n int64) (int64, error) {
	if n == 0 {
		return total, nil
	}
	buf := make([]byte, readChunk)
	end := total
	seen := int64(0)
	first := true
	for end > lo {
		start := max(lo, end-int64(len(buf)))
		chunk := buf[:end-start]
		ok, err := l.readAt(chunk, start)
		if err != nil {
			return 0, err
		}
		if !ok {
			return l.oldest(total), nil
		}
		for i := len(chunk) - 1; i >= 0; i-- {
			if chunk[i] != '\n' {
				continue
			}
			if first && start+int64(i) == total-1 {
				continue // the newline ending the last line
			}
			seen++
			if seen == n {
				return start + int64(i) + 1, nil
			}
		}
		first = false
		end = start
	}
	return lo, nil
}
