package agent

import (
	"sort"
	"time"

	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

// A held slot is released to a Bottle before the Bottle's status names it:
// the claim goes into the pass's next status write (the Bottle's Ready, or
// its first step's start), so a Bottle from a held slot costs one status
// write, not two. An agent that stops between the release and that write
// leaves a released slot no Bottle names; the resync finds it and deletes
// it (slot_sweep.go). These are the pure decisions (decide_orphans_test.go).

// DefaultSlotOrphanGrace is how long a released slot must have been seen
// with no Bottle naming it before it is deleted: far longer than any
// release takes to reach a Bottle's status, so only a claim whose agent
// stopped is ever taken for an orphan.
const DefaultSlotOrphanGrace = 2 * time.Minute

// releasedSlots are the machines of ms that are held slots of a golden
// (named after the golden their labels name) and no longer held: each was
// released to a Bottle.
func releasedSlots(ms []smolvm.Machine) []string {
	var out []string
	for i := range ms {
		m := &ms[i]
		g := goldenOf(m)
		if g == "" || m.ForkpointHeld || m.Forkable {
			continue
		}
		if _, ok := slotIndex(g, m.Name); ok {
			out = append(out, m.Name)
		}
	}
	sort.Strings(out)
	return out
}

// decideOrphans picks the released slots to delete: those no Bottle owns
// now that were already seen unowned at least grace ago (suspects: when
// each was first seen so). It returns the suspects to keep for the next
// sweep: every unowned slot not deleted, with its first sighting.
func decideOrphans(released []string, owned map[string]bool, suspects map[string]time.Time, now time.Time, grace time.Duration) (del []string, next map[string]time.Time) {
	next = map[string]time.Time{}
	for _, name := range released {
		if owned[name] {
			continue
		}
		first, seen := suspects[name]
		if seen && now.Sub(first) >= grace {
			del = append(del, name)
			continue
		}
		if !seen {
			first = now
		}
		next[name] = first
	}
	return del, next
}
