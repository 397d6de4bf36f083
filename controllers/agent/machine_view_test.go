package agent

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

// fakeNode is a node's smolvm as `machine ls` reports it, with a clock the
// test moves and a count of listings.
type fakeNode struct {
	mu       sync.Mutex
	machines map[string]smolvm.Machine
	clock    time.Time
	lists    atomic.Int64
	// gate, when set, holds every listing until closed; entered receives
	// one value per listing as it starts.
	gate    chan struct{}
	entered chan struct{}
	fail    error
}

func (n *fakeNode) now() time.Time {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.clock
}

func (n *fakeNode) advance(d time.Duration) {
	n.mu.Lock()
	n.clock = n.clock.Add(d)
	n.mu.Unlock()
}

func (n *fakeNode) set(name, state string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if state == "" {
		delete(n.machines, name)
		return
	}
	n.machines[name] = smolvm.Machine{Name: name, State: state}
}

func (n *fakeNode) list(ctx context.Context) ([]smolvm.Machine, error) {
	n.lists.Add(1)
	n.entered <- struct{}{}
	if n.gate != nil {
		select {
		case <-n.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.fail != nil {
		return nil, n.fail
	}
	var out []smolvm.Machine
	for _, m := range n.machines {
		out = append(out, m)
	}
	return out, nil
}

func newFakeView(t *testing.T) (*machineView, *fakeNode) {
	t.Helper()
	n := &fakeNode{machines: map[string]smolvm.Machine{}, clock: time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC),
		entered: make(chan struct{}, 100)}
	v := newMachineView(n.list, 10*time.Second)
	v.now = n.now
	return v, n
}

func stateOf(t *testing.T, v *machineView, name string) string {
	t.Helper()
	m, err := v.lookup(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	if m == nil {
		return "absent"
	}
	return m.State
}

func TestMachineViewOneListingAnswersEveryMachineWhileFresh(t *testing.T) {
	v, n := newFakeView(t)
	n.set("a", smolvm.StateRunning)
	n.set("b", smolvm.StateStopped)
	if got := stateOf(t, v, "a") + " " + stateOf(t, v, "b") + " " + stateOf(t, v, "c"); got != "running stopped absent" {
		t.Fatalf("states %q", got)
	}
	if got := n.lists.Load(); got != 1 {
		t.Fatalf("%d listings for three lookups, want 1", got)
	}
	n.set("a", smolvm.StateStopped)
	n.advance(11 * time.Second)
	if got := stateOf(t, v, "a"); got != smolvm.StateStopped {
		t.Fatalf("after maxAge: %q, want the new listing's stopped", got)
	}
	if got := n.lists.Load(); got != 2 {
		t.Fatalf("%d listings, want 2", got)
	}
}

func TestMachineViewConcurrentLookupsShareOneListing(t *testing.T) {
	v, n := newFakeView(t)
	n.set("a", smolvm.StateRunning)
	n.gate = make(chan struct{})
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() { _, _ = v.lookup(context.Background(), "a") })
	}
	<-n.entered
	close(n.gate)
	wg.Wait()
	if got := n.lists.Load(); got != 1 {
		t.Fatalf("%d listings for 20 concurrent lookups, want 1", got)
	}
}

func TestMachineViewOwnChangesWinOverAnOlderListing(t *testing.T) {
	v, n := newFakeView(t)
	if got := stateOf(t, v, "a"); got != "absent" {
		t.Fatalf("before create: %q", got)
	}
	// This agent creates and starts the machine after the listing: the
	// still-fresh listing must not hide that.
	n.advance(time.Second)
	v.saw("a", &smolvm.Machine{Name: "a", State: smolvm.StateRunning})
	if got := stateOf(t, v, "a"); got != smolvm.StateRunning {
		t.Fatalf("after start: %q, want running (own sighting)", got)
	}
	if got := n.lists.Load(); got != 1 {
		t.Fatalf("%d listings, want 1: a fresh own sighting needs no question", got)
	}
	// A guest call that works keeps the sighting fresh.
	n.advance(9 * time.Second)
	v.alive("a")
	n.advance(9 * time.Second)
	if m, ok := v.known("a"); !ok || m.State != smolvm.StateRunning {
		t.Fatalf("known after alive: %v %v", m, ok)
	}
	// Too old: smolvm is asked again, and what it says wins.
	n.advance(11 * time.Second)
	if got := stateOf(t, v, "a"); got != "absent" {
		t.Fatalf("after maxAge: %q, want the listing's answer", got)
	}
}

func TestMachineViewAFailureAsksAgainWithAListingStartedAfterIt(t *testing.T) {
	v, n := newFakeView(t)
	n.set("a", smolvm.StateRunning)
	if got := stateOf(t, v, "a"); got != smolvm.StateRunning {
		t.Fatalf("%q", got)
	}
	n.advance(time.Millisecond)
	v.unsettled("a")
	if _, ok := v.known("a"); ok {
		t.Fatal("an unsettled machine is still known from the older listing")
	}
	if !v.touched("a") {
		t.Fatal("touched is false after a failure")
	}
	n.set("a", smolvm.StateFailed)
	n.advance(time.Millisecond)
	if got := stateOf(t, v, "a"); got != smolvm.StateFailed {
		t.Fatalf("after the failure: %q", got)
	}
	if got := n.lists.Load(); got != 2 {
		t.Fatalf("%d listings, want 2", got)
	}
	// Other machines read the new listing too.
	if v.touched("a") {
		t.Fatal("the new listing did not supersede the sighting")
	}
}

func TestMachineViewDoesNotJoinAListingOlderThanItsOwnChange(t *testing.T) {
	v, n := newFakeView(t)
	n.gate = make(chan struct{})
	first := make(chan error, 1)
	go func() { _, err := v.lookup(context.Background(), "b"); first <- err }()
	<-n.entered
	// While that listing runs, this agent's call on "a" fails: its answer
	// must come from a listing started later, not from the one in flight.
	n.advance(time.Millisecond)
	v.unsettled("a")
	n.advance(time.Millisecond)
	second := make(chan error, 1)
	go func() { _, err := v.lookup(context.Background(), "a"); second <- err }()
	<-n.entered // a second listing: the first one started before the failure
	close(n.gate)
	if err := errors.Join(<-first, <-second); err != nil {
		t.Fatal(err)
	}
}

func TestMachineViewListingErrorsReachEveryWaiter(t *testing.T) {
	v, n := newFakeView(t)
	n.fail = errors.New("database is locked")
	if _, err := v.lookup(context.Background(), "a"); err == nil || err.Error() != "database is locked" {
		t.Fatalf("lookup error %v", err)
	}
	n.fail = nil
	n.set("a", smolvm.StateRunning)
	if got := stateOf(t, v, "a"); got != smolvm.StateRunning {
		t.Fatalf("after the error: %q", got)
	}
}

// The view's listing serves every machine from its snapshot while that
// began after what the caller asks, and lists again otherwise.
func TestMachineViewListing(t *testing.T) {
	v, n := newFakeView(t)
	n.set("a", smolvm.StateRunning)
	n.set("b", smolvm.StateStopped)
	start := n.now()
	ms, at, err := v.listing(context.Background(), start.Add(-time.Second))
	if err != nil || len(ms) != 2 || !at.Equal(start) || n.lists.Load() != 1 {
		t.Fatalf("first listing = %v, %v, %v (%d listings); want both machines from one listing begun now", ms, at, err, n.lists.Load())
	}
	ms[0].Name = "changed"
	n.advance(2 * time.Second)
	ms, _, _ = v.listing(context.Background(), n.now().Add(-5*time.Second))
	if n.lists.Load() != 1 || len(ms) != 2 || (ms[0].Name != "a" && ms[0].Name != "b") {
		t.Fatalf("a snapshot 2 s old, 5 s allowed: %v after %d listings; want it served, unchanged by the caller", ms, n.lists.Load())
	}
	n.advance(4 * time.Second)
	if _, at, _ = v.listing(context.Background(), n.now().Add(-5*time.Second)); n.lists.Load() != 2 || !at.Equal(n.now()) {
		t.Fatalf("a snapshot 6 s old, 5 s allowed: %d listings, at %v; want a new one", n.lists.Load(), at)
	}
	n.set("c", smolvm.StateRunning)
	n.advance(time.Millisecond)
	if ms, _, _ = v.listing(context.Background(), n.now()); n.lists.Load() != 3 || len(ms) != 3 {
		t.Fatalf("a listing begun now: %d listings, %d machines; want a new one with c", n.lists.Load(), len(ms))
	}
}
