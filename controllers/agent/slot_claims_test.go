package agent

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

func slotPool(free ...string) goldenPool {
	return goldenPool{name: "g", golden: &smolvm.Machine{Name: "g", State: smolvm.StateFrozen}, free: free}
}

// Bottles deciding at once from the same list never pick the same slot.
func TestClaimsNeverPickASlotTwice(t *testing.T) {
	var c claims
	listed := time.Now()
	p := slotPool("g-s0", "g-s1")
	a, b := c.decide(p, listed, nil), c.decide(p, listed, nil)
	if a.kind != claimSlot || b.kind != claimSlot || a.slot == b.slot {
		t.Fatalf("decide twice = %+v, %+v; want two different slots", a, b)
	}
	if d := c.decide(p, listed, nil); d.kind != claimFork {
		t.Fatalf("third decide with both slots being released = %+v, want an on-demand fork", d)
	}
}

// A slot handed out stays skipped until a list begun after its release no
// longer shows it free; a failed release gives it back.
func TestClaimsRememberHandedOutSlotsUntilAListCatchesUp(t *testing.T) {
	var c claims
	before := time.Now()
	p := slotPool("g-s0")
	if d := c.decide(p, before, nil); d.slot != "g-s0" {
		t.Fatalf("decide = %+v, want g-s0", d)
	}
	released := before.Add(time.Millisecond)
	c.done("g-s0", true, released)

	// A list begun before the release still shows the slot free.
	if d := c.decide(p, before, nil); d.kind == claimSlot {
		t.Fatalf("decide from a list older than the release = %+v, want no slot", d)
	}
	// A list begun after it that still shows it free (impossible for
	// smolvm, but the record is kept): still skipped.
	if d := c.decide(p, released.Add(time.Millisecond), nil); d.kind == claimSlot {
		t.Fatalf("decide = %+v, want no slot", d)
	}
	// A later list without it: forgotten.
	c.decide(slotPool(), released.Add(time.Millisecond), nil)
	if _, ok := c.handedOut["g-s0"]; ok {
		t.Fatal("a handed-out slot is still remembered after a newer list stopped showing it")
	}

	// A failed release: the slot may be picked again.
	p = slotPool("g-s1")
	if d := c.decide(p, time.Now(), nil); d.slot != "g-s1" {
		t.Fatalf("decide = %+v, want g-s1", d)
	}
	c.done("g-s1", false, time.Now())
	if d := c.decide(p, time.Now(), nil); d.slot != "g-s1" {
		t.Fatalf("decide after a failed release = %+v, want g-s1 again", d)
	}
}

// Callers that need a list while one runs share it.
func TestSharedListRunsOneLsForConcurrentCallers(t *testing.T) {
	var s sharedList
	var calls atomic.Int32
	release := make(chan struct{})
	ls := func(context.Context) ([]smolvm.Machine, error) { //nolint:unparam // the shape sharedList.list takes
		calls.Add(1)
		<-release
		return []smolvm.Machine{{Name: "g"}}, nil
	}
	joined := func() int {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.call == nil {
			return -1
		}
		return s.call.joined
	}
	var wg sync.WaitGroup
	got := make(chan int, 8)
	call := func() {
		ms, _, err := s.list(t.Context(), ls)
		if err != nil {
			t.Error(err)
		}
		got <- len(ms)
	}
	wg.Go(call)
	for calls.Load() == 0 {
		time.Sleep(time.Millisecond) // the first caller is inside ls
	}
	for range 7 {
		wg.Go(call)
	}
	for joined() < 7 {
		time.Sleep(time.Millisecond) // the others wait on its list
	}
	close(release)
	wg.Wait()
	close(got)
	for n := range got {
		if n != 1 {
			t.Fatalf("a caller got %d machines, want 1", n)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("ls ran %d times for 8 callers at once, want 1", n)
	}
	// After it ends, the next caller starts a list of its own.
	if _, _, err := s.list(t.Context(), ls); err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("ls ran %d times, want 2: a caller after the shared list ended did not start a new one", n)
	}
}

// The latest list serves claims for slotListMaxAge, until forgotten.
func TestSharedListRecent(t *testing.T) {
	var s sharedList
	if _, _, ok := s.recent(time.Hour); ok {
		t.Fatal("recent before any list")
	}
	ls := func(context.Context) ([]smolvm.Machine, error) { return []smolvm.Machine{{Name: "g"}}, nil }
	_, started, err := s.list(t.Context(), ls)
	if err != nil {
		t.Fatal(err)
	}
	ms, at, ok := s.recent(time.Hour)
	if !ok || len(ms) != 1 || !at.Equal(started) {
		t.Fatalf("recent = %v, %v, %v; want the list begun at %v", ms, at, ok, started)
	}
	if _, _, ok := s.recent(0); ok {
		t.Fatal("recent(0) served a list")
	}
	s.forget()
	if _, _, ok := s.recent(time.Hour); ok {
		t.Fatal("recent after forget")
	}
	failing := func(context.Context) ([]smolvm.Machine, error) { return nil, context.DeadlineExceeded }
	if _, _, err := s.list(t.Context(), failing); err == nil {
		t.Fatal("a failed list reported no error")
	}
	if _, _, ok := s.recent(time.Hour); ok {
		t.Fatal("a failed list is served as recent")
	}
}
