package steplog

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

const uid = "0b6b5a1e-7c1e-4f5e-9d1a-3c2b1a0f9e8d"

func newStore(t *testing.T, limit int64) *Store {
	t.Helper()
	s, err := New(t.TempDir(), limit)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func readAll(t *testing.T, s *Store, step string, o ReadOptions) string {
	t.Helper()
	var b bytes.Buffer
	if err := s.Copy(context.Background(), &b, uid, step, o); err != nil {
		t.Fatalf("Copy %s: %v", step, err)
	}
	return b.String()
}

var all = ReadOptions{TailLines: -1}

func TestLargeOutputReadsBackExactly(t *testing.T) {
	s := newStore(t, DefaultLimit)
	w, err := s.Begin(uid, "big")
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 5<<20)
	_, _ = rand.Read(want)
	for p := want; len(p) > 0; {
		n := min(len(p), 3000)
		_, _ = w.Write(p[:n])
		p = p[n:]
	}
	// Readable while live and after the end.
	if got := readAll(t, s, "big", all); got != string(want) {
		t.Fatalf("live read: %d bytes, want %d identical", len(got), len(want))
	}
	_ = w.Close()
	if got := readAll(t, s, "big", all); got != string(want) {
		t.Fatalf("finished read: %d bytes, want %d identical", len(got), len(want))
	}
}

func TestRingKeepsTheNewestBytes(t *testing.T) {
	s := newStore(t, 10)
	w, _ := s.Begin(uid, "s")
	_, _ = w.Write([]byte("0123456"))
	_, _ = w.Write([]byte("789abcdef"))
	if got := readAll(t, s, "s", all); got != "6789abcdef" {
		t.Errorf("after wrap: %q", got)
	}
	_, _ = w.Write([]byte("ghijklmnopqrstuvwxyz")) // longer than the ring
	_ = w.Close()
	if got := readAll(t, s, "s", all); got != "qrstuvwxyz" {
		t.Errorf("after a write longer than the limit: %q", got)
	}
	// A fresh store (agent restart) reads the finished log from disk.
	s2, _ := New(s.dir, 10)
	if got := readAll(t, s2, "s", all); got != "qrstuvwxyz" {
		t.Errorf("after restart: %q", got)
	}
}

func TestTailLines(t *testing.T) {
	s := newStore(t, 1<<20)
	w, _ := s.Begin(uid, "s")
	_, _ = w.Write([]byte("one\ntwo\nthree\n"))
	for n, want := range map[int64]string{0: "", 1: "three\n", 2: "two\nthree\n", 9: "one\ntwo\nthree\n"} {
		if got := readAll(t, s, "s", ReadOptions{TailLines: n}); got != want {
			t.Errorf("tail %d = %q, want %q", n, got, want)
		}
	}
	_, _ = w.Write([]byte("partial"))
	if got := readAll(t, s, "s", ReadOptions{TailLines: 1}); got != "partial" {
		t.Errorf("tail 1 with an unterminated last line = %q", got)
	}
}

func TestTimestamps(t *testing.T) {
	s := newStore(t, 1<<20)
	w, _ := s.Begin(uid, "s")
	_, _ = w.Write([]byte("a\nb"))
	time.Sleep(5 * time.Millisecond) // two writes at distinguishable times
	_, _ = w.Write([]byte("c\nd\n"))
	_ = w.Close()
	got := readAll(t, s, "s", ReadOptions{TailLines: -1, Timestamps: true})
	re := regexp.MustCompile(`^(\S+) a\n(\S+) bc\n(\S+) d\n$`)
	m := re.FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("timestamped output %q", got)
	}
	var ts []time.Time
	for _, v := range m[1:] {
		tm, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, tm)
	}
	if !ts[0].Equal(ts[1]) || !ts[2].After(ts[1]) {
		t.Errorf("timestamps %v: lines a and bc start in the first write, d in the second", ts)
	}
}

func TestFollowEndsWithTheStep(t *testing.T) {
	s := newStore(t, 1<<20)
	w, _ := s.Begin(uid, "s")
	_, _ = w.Write([]byte("first\n"))
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		errc <- s.Copy(context.Background(), pw, uid, "s", ReadOptions{TailLines: -1, Follow: true})
		_ = pw.Close()
	}()
	buf := make([]byte, 64)
	n, _ := io.ReadAtLeast(pr, buf, len("first\n"))
	if string(buf[:n]) != "first\n" {
		t.Fatalf("follow got %q first", buf[:n])
	}
	_, _ = w.Write([]byte("second\n"))
	n, _ = io.ReadAtLeast(pr, buf, len("second\n"))
	if string(buf[:n]) != "second\n" {
		t.Fatalf("follow got %q next", buf[:n])
	}
	_ = w.Close()
	rest, _ := io.ReadAll(pr)
	if len(rest) != 0 {
		t.Errorf("after the end: %q", rest)
	}
	if err := <-errc; err != nil {
		t.Errorf("follow returned %v", err)
	}
}

func TestFollowStopsWithContext(t *testing.T) {
	s := newStore(t, 1<<20)
	w, _ := s.Begin(uid, "s")
	defer func() { _ = w.Close() }()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Copy(ctx, io.Discard, uid, "s", ReadOptions{TailLines: -1, Follow: true}) }()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}

func TestConcurrentWriterAndReaders(t *testing.T) {
	s := newStore(t, 4096)
	w, _ := s.Begin(uid, "s")
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var b bytes.Buffer
			if err := s.Copy(context.Background(), &b, uid, "s", ReadOptions{TailLines: -1, Follow: true}); err != nil {
				t.Error(err)
			}
			// Every line a reader sees is whole or was cut only where
			// the ring dropped bytes under it: never mixed.
			for _, line := range strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n") {
				if strings.Trim(line, string(line[len(line)-1])) != "" {
					t.Errorf("mixed line %q", line)
					return
				}
			}
		}()
	}
	for i := range 2000 {
		_, _ = w.Write([]byte(strings.Repeat(string(rune('a'+i%26)), 50) + "\n"))
	}
	_ = w.Close()
	wg.Wait()
}

func TestRemoveAndMissing(t *testing.T) {
	s := newStore(t, 1<<20)
	w, _ := s.Begin(uid, "s")
	_, _ = w.Write([]byte("x"))
	_ = w.Close()
	if step, ok := s.Latest(uid); !ok || step != "s" {
		t.Errorf("Latest = %q %v", step, ok)
	}
	if err := s.Remove(uid); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.dir, uid)); !os.IsNotExist(err) {
		t.Errorf("the Bottle's directory is still there: %v", err)
	}
	if err := s.Copy(context.Background(), io.Discard, uid, "s", all); !errors.Is(err, ErrNotFound) {
		t.Errorf("after Remove: %v, want ErrNotFound", err)
	}
	if _, err := s.Begin("../x", "s"); err == nil {
		t.Error("Begin accepted a UID that is a path")
	}
}

// TestPruneDropsStepsNoLongerInTheSpec: a renamed step's log goes (it
// could not be read any more); the kept steps' and a running one's stay.
func TestPruneDropsStepsNoLongerInTheSpec(t *testing.T) {
	s := newStore(t, 1<<20)
	for _, step := range []string{"out-1", "out-2", "keep"} {
		w, err := s.Begin(uid, step)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write([]byte(step + "\n"))
		_ = w.Close()
	}
	running, err := s.Begin(uid, "running")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = running.Close() }()
	if err := s.Prune(uid, []string{"keep", "out-3"}); err != nil {
		t.Fatal(err)
	}
	for step, want := range map[string]bool{"out-1": false, "out-2": false, "keep": true, "running": true} {
		if got := s.Has(uid, step); got != want {
			t.Errorf("after Prune, Has(%s) = %v, want %v", step, got, want)
		}
	}
	files, _ := os.ReadDir(filepath.Join(s.dir, uid))
	if len(files) != 3 { // keep.log, keep.meta, running.log
		t.Errorf("files left: %d, want 3", len(files))
	}
}
