package steplog

import (
	"os"
	"sort"
	"sync"
	"time"
)

// maxMarks bounds the timestamp index of one step: past it, marks of bytes
// already dropped go first, then every other mark (coarser timestamps,
// never unbounded memory).
const maxMarks = 1 << 16

// markEvery: writes closer together than this share one timestamp.
const markEvery = time.Millisecond

// mark says that the byte at absolute offset Off arrived at At (Unix ns).
type mark struct {
	Off int64 `json:"o"`
	At  int64 `json:"t"`
}

// stepLog is one step's output in a ring file: the byte at absolute offset
// p (counted from the step's first byte) is at file offset p % limit, and
// only offsets >= total-limit are still there.
type stepLog struct {
	f     *os.File
	limit int64

	mu      sync.Mutex
	total   int64
	marks   []mark
	done    bool
	err     error
	refs    int
	changed chan struct{} // closed on every write and at the end
}

func newStepLog(f *os.File, limit int64) *stepLog {
	return &stepLog{f: f, limit: limit, refs: 1, changed: make(chan struct{})}
}

func (l *stepLog) write(p []byte, now time.Time) {
	if len(p) == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return
	}
	start := l.total
	if n := int64(len(p)); n > l.limit {
		start += n - l.limit
		p = p[n-l.limit:]
	}
	l.addMark(l.total, now)
	// The lock is held while writing: readers re-check total after reading
	// to detect bytes overwritten under them.
	for off, rest := start, p; len(rest) > 0; {
		at := off % l.limit
		n := min(int64(len(rest)), l.limit-at)
		if _, err := l.f.WriteAt(rest[:n], at); err != nil && l.err == nil {
			l.err = err
		}
		off += n
		rest = rest[n:]
	}
	l.total = start + int64(len(p))
	l.notify()
}

func (l *stepLog) addMark(off int64, now time.Time) {
	t := now.UnixNano()
	if n := len(l.marks); n > 0 && t-l.marks[n-1].At < int64(markEvery) {
		return
	}
	l.marks = append(l.marks, mark{Off: off, At: t})
	if len(l.marks) <= maxMarks {
		return
	}
	// Drop marks of bytes the ring no longer holds (keeping the last of
	// them, which dates the oldest byte still there).
	lo := off - l.limit
	i := sort.Search(len(l.marks), func(i int) bool { return l.marks[i].Off > lo })
	if i > 1 {
		l.marks = append(l.marks[:0], l.marks[i-1:]...)
	}
	if len(l.marks) > maxMarks {
		kept := l.marks[:0]
		for j := range l.marks {
			if j%2 == 0 || j == len(l.marks)-1 {
				kept = append(kept, l.marks[j])
			}
		}
		l.marks = kept
	}
}

// timeAt is when the byte at absolute offset off arrived.
func (l *stepLog) timeAt(off int64) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := sort.Search(len(l.marks), func(i int) bool { return l.marks[i].Off > off })
	if i == 0 {
		if len(l.marks) == 0 {
			return time.Time{}
		}
		i = 1
	}
	return time.Unix(0, l.marks[i-1].At).UTC()
}

func (l *stepLog) notify() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// finish marks the end of the step for followers.
func (l *stepLog) finish(string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done {
		l.done = true
		l.notify()
	}
}

// state is a consistent snapshot for readers.
func (l *stepLog) state() (total int64, done bool, changed <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total, l.done, l.changed
}

// oldest is the first absolute offset still held.
func (l *stepLog) oldest(total int64) int64 { return max(0, total-l.limit) }

// readAt reads absolute offsets [off, off+len(p)), which must lie within
// [oldest, total) of a snapshot. ok is false when the writer overwrote
// them meanwhile (the caller skips ahead).
func (l *stepLog) readAt(p []byte, off int64) (ok bool, err error) {
	for done := 0; done < len(p); {
		at := (off + int64(done)) % l.limit
		n := min(int64(len(p)-done), l.limit-at)
		if _, err := l.f.ReadAt(p[done:done+int(n)], at); err != nil {
			return false, err
		}
		done += int(n)
	}
	total, _, _ := l.state()
	return off >= l.oldest(total), nil
}
