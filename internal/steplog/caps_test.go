package steplog

import (
	"os"
	"strings"
	"testing"
	"time"
)

const otherUID = "1c7c6b2f-8d2f-4a6f-8e2b-4d3c2b1a0f9e"

// write begins step's log for u, writes n bytes and closes it, dated at.
func write(t *testing.T, s *Store, u, step string, n int, at time.Time) {
	t.Helper()
	w, err := s.Begin(u, step)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = w.Write([]byte(strings.Repeat("x", n)))
	_ = w.Close()
	data, _ := s.paths(u, step)
	if err := os.Chtimes(data, at, at); err != nil {
		t.Fatal(err)
	}
}

func TestNodeLimitRemovesTheOldestFinishedLogs(t *testing.T) {
	s := newStore(t, 100)
	s.SetNodeLimit(250)
	t0 := time.Now().Add(-time.Hour)
	write(t, s, uid, "old", 100, t0)
	write(t, s, otherUID, "newer", 100, t0.Add(time.Minute))
	// A third log needs room for a full 100 bytes: 300 > 250, so the
	// oldest finished one goes, whichever Bottle it is of.
	w, err := s.Begin(uid, "third")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Close() }()
	if s.Has(uid, "old") {
		t.Error("the oldest finished log was kept past the node limit")
	}
	if !s.Has(otherUID, "newer") || !s.Has(uid, "third") {
		t.Error("a newer log, or the one being begun, was removed")
	}
}

func TestNodeLimitNeverRemovesALogBeingWritten(t *testing.T) {
	s := newStore(t, 100)
	s.SetNodeLimit(150)
	w, err := s.Begin(uid, "running")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Close() }()
	_, _ = w.Write([]byte(strings.Repeat("x", 100)))
	w2, err := s.Begin(otherUID, "next")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w2.Close() }()
	if !s.Has(uid, "running") {
		t.Error("a log being written was removed to make room")
	}
}

func TestSweepRemovesTheLogsOfUnknownUIDs(t *testing.T) {
	s := newStore(t, 100)
	write(t, s, uid, "kept", 10, time.Now())
	write(t, s, otherUID, "orphan", 10, time.Now())
	const liveUID = "2d8d7c3a-9e3a-4b7a-9f3c-5e4d3c2b1a0f"
	w, err := s.Begin(liveUID, "running")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Close() }()
	n, err := s.Sweep(func(u string) bool { return u == uid })
	if err != nil || n != 1 {
		t.Fatalf("Sweep removed %d UIDs (%v), want 1", n, err)
	}
	if !s.Has(uid, "kept") || s.Has(otherUID, "orphan") || !s.Has(liveUID, "running") {
		t.Errorf("after Sweep: kept=%v orphan=%v running=%v; want true false true",
			s.Has(uid, "kept"), s.Has(otherUID, "orphan"), s.Has(liveUID, "running"))
	}
}
