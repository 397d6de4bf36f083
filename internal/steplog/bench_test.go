package steplog

import "testing"

// BenchmarkWrite is the cost the log adds to a step's output, in the
// driver's 32 KiB pipe reads.
func BenchmarkWrite(b *testing.B) {
	s, err := New(b.TempDir(), DefaultLimit)
	if err != nil {
		b.Fatal(err)
	}
	w, err := s.Begin(uid, "bench")
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = w.Close() }()
	chunk := make([]byte, 32<<10)
	b.SetBytes(int64(len(chunk)))
	for b.Loop() {
		_, _ = w.Write(chunk)
	}
}
