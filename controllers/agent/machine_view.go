package agent

import (
	"context"
	"sync"
	"time"

	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

// machineView is what this agent knows of its node's smolvm machines, so
// that a pass rarely has to ask smolvm itself:
//
//   - a snapshot: one `machine ls` answers every Bottle's pass for maxAge
//     (the resync asks once per node, then enqueues every Bottle);
//   - sightings: what this agent's own calls established about one machine
//     (it created, started, stopped or deleted it, or a guest call in it
//     worked). A sighting newer than the snapshot wins, so a pass that
//     changed a machine never reads a snapshot taken before the change.
//
// A failed call leaves an "unknown" sighting: the next answer for that
// machine must come from smolvm, from a listing started after the failure.
type machineView struct {
	list   func(ctx context.Context) ([]smolvm.Machine, error)
	maxAge time.Duration
	now    func() time.Time

	mu     sync.Mutex
	snap   snapshot
	flight *listing
	seen   map[string]sighting
}

// snapshot is one `machine ls`. at is when the listing started: nothing it
// reports is older than that.
type snapshot struct {
	at       time.Time
	machines map[string]smolvm.Machine
}

type sighting struct {
	at time.Time
	// m is the machine as this agent left it; nil when it is gone.
	m       *smolvm.Machine
	unknown bool
}

// listing is one `machine ls` in flight, shared by every pass that needs
// an answer while it runs (single flight).
type listing struct {
	started time.Time
	done    chan struct{}
	err     error
}

func newMachineView(list func(ctx context.Context) ([]smolvm.Machine, error), maxAge time.Duration) *machineView {
	return &machineView{list: list, maxAge: maxAge, now: time.Now, seen: map[string]sighting{}}
}

// lookup returns the named machine (nil when it does not exist) from what
// the view knows, listing the node's machines once more when that is too
// old or unsettled.
func (v *machineView) lookup(ctx context.Context, name string) (*smolvm.Machine, error) {
	v.mu.Lock()
	m, ok := v.answer(name, true)
	after := v.seen[name].at
	v.mu.Unlock()
	if ok {
		return m, nil
	}
	if err := v.refresh(ctx, after); err != nil {
		return nil, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	// The snapshot now started after every change this agent made to the
	// machine before asking: it is the answer, however old it gets.
	m, _ = v.answer(name, false)
	return m, nil
}

// known returns the view's current answer for name without asking smolvm;
// ok is false when it has none (too old, or unsettled by a failure).
func (v *machineView) known(name string) (m *smolvm.Machine, ok bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.answer(name, true)
}

// answer is the newer of the sighting and the snapshot (the sighting on a
// tie: it is this agent's own change), if recent enough when fresh is set.
// Callers hold mu.
func (v *machineView) answer(name string, fresh bool) (*smolvm.Machine, bool) {
	now := v.now()
	if s, ok := v.seen[name]; ok && !s.at.Before(v.snap.at) {
		if s.unknown || (fresh && now.Sub(s.at) > v.maxAge) {
			return nil, false
		}
		return cloneMachine(s.m), true
	}
	if v.snap.at.IsZero() || (fresh && now.Sub(v.snap.at) > v.maxAge) {
		return nil, false
	}
	if m, ok := v.snap.machines[name]; ok {
		return cloneMachine(&m), true
	}
	return nil, true
}

// touched says whether this agent recorded anything about name (even an
// unsettled state) since its last snapshot.
func (v *machineView) touched(name string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	s, ok := v.seen[name]
	return ok && !s.at.Before(v.snap.at)
}

// refresh lists the machines, joining a listing in flight when it started
// after `after` (so it reflects every change made before then).
func (v *machineView) refresh(ctx context.Context, after time.Time) error {
	v.mu.Lock()
	if v.snap.at.After(after) && v.now().Sub(v.snap.at) <= v.maxAge {
		// A listing that answers ended while this caller was on its way
		// here (it found no answer, and then the listing it would have
		// joined finished): no second listing.
		v.mu.Unlock()
		return nil
	}
	f := v.flight
	if f != nil && f.started.After(after) {
		v.mu.Unlock()
		select {
		case <-f.done:
			return f.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f = &listing{started: v.now(), done: make(chan struct{})}
	v.flight = f
	v.mu.Unlock()

	// The first caller lists; the others wait for its answer.
	ms, err := v.list(ctx)
	v.mu.Lock()
	if err == nil && f.started.After(v.snap.at) {
		v.snap = snapshot{at: f.started, machines: make(map[string]smolvm.Machine, len(ms))}
		for _, m := range ms {
			v.snap.machines[m.Name] = m
		}
		// Sightings the snapshot supersedes are dropped, so the map does
		// not grow with machines long gone.
		for name, s := range v.seen {
			if s.at.Before(f.started) {
				delete(v.seen, name)
			}
		}
	}
	if v.flight == f {
		v.flight = nil
	}
	f.err = err
	v.mu.Unlock()
	close(f.done)
	return err
}

// listing returns every machine of the node from the snapshot when its
// listing began after `after`, else from a listing begun after it (joining
// one in flight), and when that listing began.
func (v *machineView) listing(ctx context.Context, after time.Time) ([]smolvm.Machine, time.Time, error) {
	v.mu.Lock()
	stale := !v.snap.at.After(after)
	v.mu.Unlock()
	if stale {
		if err := v.refresh(ctx, after); err != nil {
			return nil, time.Time{}, err
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	ms := make([]smolvm.Machine, 0, len(v.snap.machines))
	for _, m := range v.snap.machines {
		ms = append(ms, *cloneMachine(&m))
	}
	return ms, v.snap.at, nil
}

// saw records the machine as this agent's own call left it (nil: gone).
func (v *machineView) saw(name string, m *smolvm.Machine) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.seen[name] = sighting{at: v.now(), m: cloneMachine(m)}
}

// alive records that a guest call in the machine just worked: it is
// running, as last seen.
func (v *machineView) alive(name string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	m, ok := v.answer(name, false)
	if ok && m != nil && m.State == smolvm.StateRunning {
		v.seen[name] = sighting{at: v.now(), m: m}
	}
}

// unsettled records that a call on the machine failed: its state is
// unknown until smolvm is asked again.
func (v *machineView) unsettled(name string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.seen[name] = sighting{at: v.now(), unknown: true}
}

func cloneMachine(m *smolvm.Machine) *smolvm.Machine {
	if m == nil {
		return nil
	}
	c := *m
	if m.Labels != nil {
		c.Labels = make(map[string]string, len(m.Labels))
		for k, val := range m.Labels {
			c.Labels[k] = val
		}
	}
	return &c
}
