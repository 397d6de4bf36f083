package agent

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

// claims are the held slots this agent has handed out, or is handing out,
// that a machine list may still show as free. A slot stays here after its
// release returns, until a list that began after that shows it taken or
// gone: without that, a list begun before the release lets a second Bottle
// pick the same slot, and smolvm refuses it ("is not a held pool slot").
type claims struct {
	mu sync.Mutex
	// inFlight are the slots whose release is running.
	inFlight map[string]bool
	// handedOut are slots whose release returned, and when it did.
	handedOut map[string]time.Time
}

// decide picks the Bottle's way to a machine from pool, as listed by a
// list that began at listedAt, and takes the slot it picks, all under one
// lock: Bottles deciding at once never pick the same slot. recorded are
// the slots Bottles' statuses name (claims of an earlier agent process
// whose release may not have happened).
func (c *claims) decide(pool goldenPool, listedAt time.Time, recorded map[string]bool) claim {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.init()
	skip := make(map[string]bool, len(c.inFlight)+len(c.handedOut)+len(recorded))
	for slot := range recorded {
		skip[slot] = true
	}
	for slot := range c.inFlight {
		skip[slot] = true
	}
	for slot, at := range c.handedOut {
		if at.Before(listedAt) && !slices.Contains(pool.free, slot) {
			delete(c.handedOut, slot) // the list has caught up with it
			continue
		}
		skip[slot] = true
	}
	d := decideClaim(pool, skip)
	if d.kind == claimSlot {
		c.inFlight[d.slot] = true
	}
	return d
}

func (c *claims) init() {
	if c.inFlight == nil {
		c.inFlight, c.handedOut = map[string]bool{}, map[string]time.Time{}
	}
}

// hold takes slot for a release the Bottle's status already records;
// false while another release of it runs.
func (c *claims) hold(slot string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.init()
	if c.inFlight[slot] {
		return false
	}
	c.inFlight[slot] = true
	return true
}

// done ends a release of slot at time at. A slot that was handed out (or
// is lost to smolvm) is never picked again, whatever a list begun earlier
// says; one whose release failed may be picked again.
func (c *claims) done(slot string, handedOut bool, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.init()
	delete(c.inFlight, slot)
	if handedOut {
		c.handedOut[slot] = at
	}
}

// sharedList is one node-wide `machine ls` shared by the Bottles that need
// one at the same moment: a burst of templated Bottles each claiming a slot
// would otherwise start one smolvm process each, and on a small node those
// processes are most of the burst's CPU.
type sharedList struct {
	mu   sync.Mutex
	call *listCall
	// last is the latest list that succeeded.
	last *listCall
}

// slotListMaxAge is how old a list may be for a claim to pick a free slot
// from it without a new one. A slot such a list wrongly shows free (it was
// released or deleted outside this agent since) fails its release with
// errSlotGone, and the claim lists again at once; slots this agent handed
// out are skipped whatever the list says (claims).
const slotListMaxAge = 5 * time.Second

// recent returns the latest list if it began less than maxAge ago.
func (s *sharedList) recent(maxAge time.Duration) ([]smolvm.Machine, time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last == nil || time.Since(s.last.started) >= maxAge {
		return nil, time.Time{}, false
	}
	return s.last.ms, s.last.started, true
}

// forget drops the latest list: the next claim lists again.
func (s *sharedList) forget() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = nil
}

type listCall struct {
	done    chan struct{}
	started time.Time
	// joined counts the callers waiting on it besides the one running it.
	joined int
	ms     []smolvm.Machine
	err    error
}

// list returns the machines from a list that is running or starts now, and
// when that list began. The slice is shared: callers must not change it.
func (s *sharedList) list(ctx context.Context, ls func(context.Context) ([]smolvm.Machine, error)) ([]smolvm.Machine, time.Time, error) {
	s.mu.Lock()
	c := s.call
	if c == nil {
		c = &listCall{done: make(chan struct{}), started: time.Now()}
		s.call = c
		s.mu.Unlock()
		// Not this caller's cancellation: others wait on the result. The
		// driver's own deadline for ls still bounds it.
		c.ms, c.err = ls(context.WithoutCancel(ctx))
		s.mu.Lock()
		s.call = nil
		if c.err == nil && (s.last == nil || s.last.started.Before(c.started)) {
			s.last = c
		}
		s.mu.Unlock()
		close(c.done)
	} else {
		c.joined++
		s.mu.Unlock()
		select {
		case <-c.done:
		case <-ctx.Done():
			return nil, time.Time{}, ctx.Err()
		}
	}
	return c.ms, c.started, c.err
}
