package smolvm

import (
	"bytes"
	"math/rand"
	"strings"
	"testing"
)

func TestTailBufferMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, limit := range []int{1, 7, 64, 1000} {
		b := newTailBuffer(limit)
		var all bytes.Buffer
		for i := 0; i < 300; i++ {
			n := rng.Intn(3 * limit)
			p := make([]byte, n)
			for j := range p {
				p[j] = byte('a' + rng.Intn(26)) // ASCII: no UTF-8 trimming
			}
			if w, err := b.Write(p); w != n || err != nil {
				t.Fatalf("Write = %d, %v", w, err)
			}
			all.Write(p)
			want := all.Bytes()
			if len(want) > limit {
				want = want[len(want)-limit:]
			}
			if got := b.Tail(); got != string(want) {
				t.Fatalf("limit %d step %d: tail %q, want %q", limit, i, got, want)
			}
			if b.Total() != int64(all.Len()) || b.Truncated() != (all.Len() > limit) {
				t.Fatalf("total %d truncated %v after %d bytes", b.Total(), b.Truncated(), all.Len())
			}
			head := all.Bytes()
			if len(head) > headLen {
				head = head[:headLen]
			}
			if b.Head() != string(head) {
				t.Fatalf("head mismatch")
			}
		}
	}
}

func TestTailBufferTrimsPartialRune(t *testing.T) {
	b := newTailBuffer(5)
	_, _ = b.Write([]byte("xx世界")) // 2 + 3 + 3 bytes; the kept 5 start inside 世
	if got := b.Tail(); got != "界" {
		t.Fatalf("got %q", got)
	}
	if !strings.HasPrefix(newTailBufferWith("ok").Tail(), "ok") {
		t.Fatal("untruncated tail changed")
	}
}

func newTailBufferWith(s string) *tailBuffer {
	b := newTailBuffer(0)
	_, _ = b.Write([]byte(s))
	return b
}

func TestTailStartsAtALine(t *testing.T) {
	for _, c := range []struct {
		limit int
		in    string
		want  string
	}{
		{12, "first line\nsecond\nthird\n", "third\n"}, // cut mid-line: starts after the first break kept
		{6, "aaaaaaaaaaa\n", "aaaaa\n"},                // the only break is the last byte: keep the partial line
		{100, "short\nlines\n", "short\nlines\n"},      // nothing dropped: untouched
		{7, "xxxxxxxx\nyy", "yy"},                      // a break in range, a last line without one
		{8, "€€€€€\nab", "ab"},                         // UTF-8 trimmed, then the line
	} {
		b := newTailBuffer(c.limit)
		_, _ = b.Write([]byte(c.in))
		if got := b.Tail(); got != c.want {
			t.Errorf("limit %d, %q: tail %q, want %q", c.limit, c.in, got, c.want)
		}
	}
}
