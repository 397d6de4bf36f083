package agent

import (
	"fmt"
	"sort"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

// egressCursor is how far the agent has read a machine's egress log:
// smolvm's records carry second-precision timestamps and no sequence
// number, so the cursor is the newest timestamp read and how many records
// carried it. It lives in the agent's memory; after a restart it starts
// from the newest lastSeen in status (records in that second are taken as
// read).
type egressCursor struct {
	at time.Time
	n  int
}

// newDenials returns the records of events (oldest first, as smolvm lists
// them) that are after the cursor, and the cursor after them. Records
// without a timestamp cannot be placed and are never counted.
func newDenials(events []smolvm.EgressDenial, c egressCursor) ([]smolvm.EgressDenial, egressCursor) {
	var fresh []smolvm.EgressDenial
	next := c
	seenAtCursor := 0
	for _, e := range events {
		t, ok := e.Time()
		if !ok {
			continue
		}
		switch {
		case t.Before(c.at):
			continue
		case t.Equal(c.at):
			seenAtCursor++
			if seenAtCursor <= c.n {
				continue
			}
		}
		fresh = append(fresh, e)
		switch {
		case t.After(next.at):
			next = egressCursor{at: t, n: 1}
		case t.Equal(next.at):
			next.n++
		}
	}
	return fresh, next
}

// cursorFromStatus is the cursor of an agent that has not read the machine
// yet: nothing at or before the newest refusal status already counts.
func cursorFromStatus(refusals []v1.EgressRefusal) egressCursor {
	var c egressCursor
	for _, r := range refusals {
		if r.LastSeen.After(c.at) {
			c.at = r.LastSeen.Time
		}
	}
	if !c.at.IsZero() {
		c.n = int(^uint(0) >> 1) // every record of that second
	}
	return c
}

// egressTally is the fresh records of one destination.
type egressTally struct {
	op, dest    string
	count       int64
	first, last time.Time
}

// tallyDenials sums fresh records per destination, most recently refused
// first (then by count, then by name, so the order is stable).
func tallyDenials(fresh []smolvm.EgressDenial) []egressTally {
	by := map[string]*egressTally{}
	for _, e := range fresh {
		t, _ := e.Time()
		k := e.Operation + " " + e.Dest
		if by[k] == nil {
			by[k] = &egressTally{op: e.Operation, dest: e.Dest, first: t}
		}
		tl := by[k]
		tl.count++
		if t.After(tl.last) {
			tl.last = t
		}
	}
	out := make([]egressTally, 0, len(by))
	for _, t := range by {
		out = append(out, *t)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if !a.last.Equal(b.last) {
			return a.last.After(b.last)
		}
		if a.count != b.count {
			return a.count > b.count
		}
		return a.op+a.dest < b.op+b.dest
	})
	return out
}

// mergeRefusals adds tallies to status's refusals and keeps the max most
// recently refused destinations, most recent first.
func mergeRefusals(old []v1.EgressRefusal, tallies []egressTally, max int) []v1.EgressRefusal {
	by := map[string]v1.EgressRefusal{}
	for _, r := range old {
		by[r.Key()] = r
	}
	for _, t := range tallies {
		k := t.op + " " + t.dest
		r, ok := by[k]
		if !ok {
			r = v1.EgressRefusal{Operation: t.op, Destination: t.dest, FirstSeen: metav1.NewTime(t.first)}
		}
		r.Count += t.count
		if t.last.After(r.LastSeen.Time) {
			r.LastSeen = metav1.NewTime(t.last)
		}
		by[k] = r
	}
	out := make([]v1.EgressRefusal, 0, len(by))
	for _, r := range by {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if !a.LastSeen.Equal(&b.LastSeen) {
			return a.LastSeen.After(b.LastSeen.Time)
		}
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		return a.Key() < b.Key()
	})
	if len(out) > max {
		out = out[:max]
	}
	return out
}

// maxEgressEventsPerRead bounds the Warning events one read emits: the most
// recently refused destinations each get one, the rest one more between them.
const maxEgressEventsPerRead = 5

// egressEvent is one Warning event of a read.
type egressEvent struct {
	// action keys the event: Kubernetes folds events of one object, reason
	// and action into one series (client-go tools/events getKey), so each
	// destination has an action of its own, or their notes would be lost.
	action, note string
}

// maxEventAction is events.k8s.io's limit on action.
const maxEventAction = 128

// egressEvents are the Warning events of one read: one per destination,
// aggregated ("refused connect to 10.0.0.1:443 ×12 in the last 1m0s"), at
// most maxEgressEventsPerRead plus one that counts the rest. A destination
// refused again within the series window adds to its event's series count
// (kubectl describe's "xN"): the note keeps the first read's count; status
// has the totals.
func egressEvents(tallies []egressTally, window time.Duration) []egressEvent {
	var out []egressEvent
	for i, t := range tallies {
		if i == maxEgressEventsPerRead {
			rest := int64(0)
			for _, r := range tallies[i:] {
				rest += r.count
			}
			out = append(out, egressEvent{action: "EgressRefusedMore",
				note: fmt.Sprintf("refused %d more destinations ×%d in the last %s (kubectl bottle egress lists them)", len(tallies)-i, rest, window)})
			break
		}
		action := egressTarget(t.op, t.dest)
		if len(action) > maxEventAction {
			action = action[:maxEventAction]
		}
		out = append(out, egressEvent{action: action,
			note: fmt.Sprintf("refused %s ×%d in the last %s", egressTarget(t.op, t.dest), t.count, window)})
	}
	return out
}

// egressTarget says what was refused: "connect to 10.0.0.1:443",
// "sendto 10.0.0.1:53", "resolve pypi.org".
func egressTarget(op, dest string) string {
	if op == v1.EgressConnect {
		return "connect to " + dest
	}
	return op + " " + dest
}
