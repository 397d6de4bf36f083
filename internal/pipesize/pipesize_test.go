//go:build linux

package pipesize

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func pipeSize(t *testing.T, f *os.File) int {
	t.Helper()
	n, err := unix.FcntlInt(f.Fd(), unix.F_GETPIPE_SZ, 0)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestGrowEnlargesPipesOnly(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Close(); _ = w.Close() }()
	Grow(w, 1<<20)
	if got := pipeSize(t, r); got != 1<<20 {
		t.Fatalf("pipe size %d after Grow(1 MiB)", got)
	}
	// Never shrinks.
	Grow(r, 64<<10)
	if got := pipeSize(t, r); got != 1<<20 {
		t.Fatalf("pipe size %d after Grow(64 KiB)", got)
	}
	// A regular file, or something that is no file, is left alone.
	f, err := os.CreateTemp(t.TempDir(), "f")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	Grow(f, 1<<20)
	Grow(struct{}{}, 1<<20)
}
