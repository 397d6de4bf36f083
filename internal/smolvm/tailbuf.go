package smolvm

import (
	"sync"
	"unicode/utf8"
)

// DefaultOutputLimit is how many bytes of each stream Exec keeps.
const DefaultOutputLimit = 64 << 10

// headLen is how much of the start of a stream tailBuffer keeps besides the
// tail: classification needs stderr's first line even after gigabytes.
const headLen = 4 << 10

// tailBuffer is an io.Writer that keeps the first headLen and the last limit
// bytes written and counts the total, so a guest printing gigabytes costs
// O(limit) memory.
type tailBuffer struct {
	mu    sync.Mutex
	limit int
	head  []byte
	ring  []byte // len(ring) == limit once full
	next  int    // write position in ring when full
	total int64
}

func newTailBuffer(limit int) *tailBuffer {
	if limit <= 0 {
		limit = DefaultOutputLimit
	}
	return &tailBuffer{limit: limit}
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(p)
	b.total += int64(n)
	if room := headLen - len(b.head); room > 0 {
		b.head = append(b.head, p[:min(room, len(p))]...)
	}
	if len(p) >= b.limit {
		// Only the last limit bytes of p can survive.
		if cap(b.ring) < b.limit {
			b.ring = make([]byte, b.limit)
		}
		b.ring = b.ring[:b.limit]
		copy(b.ring, p[len(p)-b.limit:])
		b.next = 0
		return n, nil
	}
	if len(b.ring) < b.limit {
		room := b.limit - len(b.ring)
		if len(p) <= room {
			b.ring = append(b.ring, p...)
			return n, nil
		}
		b.ring = append(b.ring, p[:room]...)
		p = p[room:]
		b.next = 0
	}
	for len(p) > 0 {
		c := copy(b.ring[b.next:], p)
		p = p[c:]
		b.next = (b.next + c) % b.limit
	}
	return n, nil
}

// Tail returns the kept bytes in order. When bytes were dropped, a partial
// UTF-8 sequence at the cut is dropped too so the result is not garbled, and
// so is a partial first line when a line break follows it.
func (b *tailBuffer) Tail() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []byte
	if len(b.ring) < b.limit || b.next == 0 {
		out = append([]byte(nil), b.ring...)
	} else {
		out = make([]byte, 0, b.limit)
		out = append(out, b.ring[b.next:]...)
		out = append(out, b.ring[:b.next]...)
	}
	if b.total > int64(len(out)) {
		for i := 0; i < utf8.UTFMax && len(out) > 0 && !utf8.RuneStart(out[0]); i++ {
			out = out[1:]
		}
		return startAtLine(string(out))
	}
	return string(out)
}

// Head returns up to the first headLen bytes ever written.
func (b *tailBuffer) Head() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.head)
}

func (b *tailBuffer) Total() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.total
}

// Truncated reports whether bytes were dropped.
func (b *tailBuffer) Truncated() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.total > int64(len(b.ring))
}
