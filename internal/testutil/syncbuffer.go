// Package testutil holds small helpers shared by the tests.
package testutil

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// SyncBuffer is a bytes.Buffer safe for one writer goroutine (a log sink, a
// stream) and a test reading it meanwhile.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// WaitFor polls the buffer (fed by another goroutine) until it holds s, and
// fails the test after timeout: it waits for output, not for time.
func (b *SyncBuffer) WaitFor(t testing.TB, s string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(b.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("never saw %q in %q", s, b.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
