package smolvm

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// The driver keeps its connections to one machine below smolvm's 8, and an
// interactive session never takes the last slot.
func TestConnLimiter(t *testing.T) {
	var l connLimiter
	ctx := context.Background()
	var releases []func()
	for range 3 {
		r, err := l.acquire(ctx, "m", 4, true)
		if err != nil {
			t.Fatal(err)
		}
		releases = append(releases, r)
	}
	full, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := l.acquire(ctx, "m", 4, true); !errors.Is(err, errNoSlot) {
		t.Fatalf("a fourth session took the slot kept for steps and copies, or waited: %v", err)
	}
	step, err := l.acquire(full, "m", 4, false)
	if err != nil {
		t.Fatalf("a step could not take the kept slot: %v", err)
	}
	if _, err := l.acquire(full, "m", 4, false); err == nil {
		t.Fatal("a fifth connection beyond the limit")
	}
	if _, err := l.acquire(full, "other", 4, false); err != nil {
		t.Fatalf("another machine is limited by this one: %v", err)
	}

	// A waiter gets the slot a release frees.
	got := make(chan error, 1)
	wctx, wcancel := context.WithTimeout(ctx, time.Minute)
	defer wcancel()
	go func() {
		r, err := l.acquire(wctx, "m", 4, false)
		if err == nil {
			r()
		}
		got <- err
	}()
	step()
	step() // releasing twice frees one slot only
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if n := l.inUseBy("m"); n != 3 {
		t.Fatalf("%d in use, want 3", n)
	}
	for _, r := range releases {
		r()
	}
	if n := l.inUseBy("m"); n != 0 {
		t.Fatalf("%d in use after every release", n)
	}
}

// Exec waits for a slot and reports a context that ends first as its
// error, without running smolvm.
func TestExecWaitsForAConnection(t *testing.T) {
	c := New("/nonexistent/smolvm")
	c.MaxConnsPerMachine = 1
	hold, err := c.conns.acquire(context.Background(), "m1", 1, false)
	if err != nil {
		t.Fatal(err)
	}
	defer hold()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = c.Exec(ctx, ExecRequest{Machine: "m1", Argv: []string{"true"}})
	if ClassOf(err) != ClassCanceled {
		t.Fatalf("got %v, want a cancellation", err)
	}
}

// A session that finds no slot fails at once, saying why.
func TestSessionDoesNotWaitForAConnection(t *testing.T) {
	c := New("/nonexistent/smolvm")
	c.MaxConnsPerMachine = 2
	hold, err := c.conns.acquire(context.Background(), "m1", 2, false)
	if err != nil {
		t.Fatal(err)
	}
	defer hold()
	_, err = c.ExecInteractive(context.Background(), ExecRequest{Machine: "m1", Argv: []string{"sh"}}, Streams{})
	if ClassOf(err) != ClassBusy || !strings.Contains(err.Error(), "try again when one ends") {
		t.Fatalf("got %v, want a busy machine", err)
	}
}
