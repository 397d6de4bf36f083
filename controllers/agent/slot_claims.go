package agent

import (
	"slices"
	"sync"
	"time"
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
	// staleBefore: listings begun before it showed a slot free that was
	// not (errSlotGone); the next claim lists again.
	staleBefore time.Time
}

// listedAfter is when a listing must have begun for a claim to pick from
// it: within slotListMaxAge of now, and after the last slot found gone.
func (c *claims) listedAfter(now time.Time) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maxTime(now.Add(-slotListMaxAge), c.staleBefore)
}

// gone records that a listing begun before now showed a slot free that
// was not.
func (c *claims) gone(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.staleBefore = now
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
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

// busy are the slots being handed out or handed out lately: a Bottle's
// even before its status says so.
func (c *claims) busy() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.inFlight)+len(c.handedOut))
	for slot := range c.inFlight {
		out = append(out, slot)
	}
	for slot := range c.handedOut {
		out = append(out, slot)
	}
	return out
}

// slotListMaxAge is how old a listing may be for a claim to pick a free
// slot from it without a new one. A slot such a listing wrongly shows free
// (it was released or deleted outside this agent since) fails its release
// with errSlotGone, and the claim lists again at once; slots this agent
// handed out are skipped whatever the listing says (claims).
const slotListMaxAge = 5 * time.Second
