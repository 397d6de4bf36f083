package agent

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

// Pure decisions about a golden machine and its held slots on this node,
// from one `machine ls` (table tests in decide_pool_test.go).
//
// smolvm's ls does not say which golden a clone came from, and a clone
// carries its golden's labels, so the pool is told apart by name: a
// golden's slots are named after it (slotName), and a slot is free while
// smolvm reports it held (forkpoint_held) and taken once released. A
// Bottle that took a slot keeps its name in status.machineName.

// slotInfix separates a golden's name from its slots' numbers.
const slotInfix = "-s"

// slotName is the k-th held slot of golden.
func slotName(golden string, k int) string { return golden + slotInfix + strconv.Itoa(k) }

// slotIndex says whether name is one of golden's slots, and which.
func slotIndex(golden, name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, golden+slotInfix)
	if !ok || rest == "" || (len(rest) > 1 && rest[0] == '0') {
		return 0, false
	}
	k, err := strconv.Atoi(rest)
	if err != nil || k < 0 || strconv.Itoa(k) != rest {
		return 0, false
	}
	return k, true
}

// goldenPool is a golden and its slots as smolvm lists them.
type goldenPool struct {
	name string
	// golden is nil when the machine does not exist.
	golden *smolvm.Machine
	// free are the held slots no one has claimed, taken are the released
	// ones; both in slot order.
	free, taken []string
	// used are the slot numbers in use, free or taken.
	used map[int]bool
}

// viewPool picks golden and its slots out of a node's machines.
func viewPool(golden string, ms []smolvm.Machine) goldenPool {
	p := goldenPool{name: golden, used: map[int]bool{}}
	type slot struct {
		k    int
		name string
		held bool
	}
	var slots []slot
	for i := range ms {
		m := &ms[i]
		if m.Name == golden {
			p.golden = m
			continue
		}
		if k, ok := slotIndex(golden, m.Name); ok {
			slots = append(slots, slot{k, m.Name, m.ForkpointHeld})
			p.used[k] = true
		}
	}
	sort.Slice(slots, func(i, j int) bool { return slots[i].k < slots[j].k })
	for _, s := range slots {
		if s.held {
			p.free = append(p.free, s.name)
		} else {
			p.taken = append(p.taken, s.name)
		}
	}
	return p
}

// forkable says whether the golden can be forked now, and if not, why:
// smolvm forks a golden that runs forkable (before its first fork) or is
// frozen (after it).
func (p goldenPool) forkable() (bool, string) {
	switch {
	case p.golden == nil:
		return false, fmt.Sprintf("golden machine %s does not exist on this node yet", p.name)
	case p.golden.State == smolvm.StateFrozen:
		return true, ""
	case p.golden.State == smolvm.StateRunning && p.golden.Forkable:
		return true, ""
	case p.golden.State == smolvm.StateRunning:
		return false, fmt.Sprintf("golden machine %s is running but was not started forkable", p.name)
	}
	return false, fmt.Sprintf("golden machine %s is %s", p.name, p.golden.State)
}

// decideSlots names the held slots to fork so that want are free: the
// lowest numbers not in use, so names stay short and a slot number is
// reused only once its machine is gone.
func decideSlots(p goldenPool, want int) []string {
	if ok, _ := p.forkable(); !ok || len(p.free) >= want {
		return nil
	}
	var out []string
	for k := 0; len(p.free)+len(out) < want; k++ {
		if !p.used[k] {
			out = append(out, slotName(p.name, k))
		}
	}
	return out
}

// claimKind is how a templated Bottle gets its machine.
type claimKind int

const (
	// claimWait: no golden to fork from yet; the reason says why.
	claimWait claimKind = iota
	// claimSlot: release a free held slot (the fastest way).
	claimSlot
	// claimFork: fork a clone on demand.
	claimFork
)

type claim struct {
	kind claimKind
	// slot is the held slot to release (claimSlot).
	slot string
	// reason is why the Bottle waits (claimWait).
	reason string
}

// decideClaim picks a free slot, else an on-demand fork, else a wait.
// skip are slots another Bottle is claiming right now (in this process),
// which ls still lists as free.
func decideClaim(p goldenPool, skip map[string]bool) claim {
	for _, s := range p.free {
		if !skip[s] {
			return claim{kind: claimSlot, slot: s}
		}
	}
	if ok, why := p.forkable(); !ok {
		return claim{kind: claimWait, reason: why}
	}
	return claim{kind: claimFork}
}

// retirable says whether a golden of an earlier template generation can be
// deleted: no slot of it was handed out and no Bottle's machine (an
// on-demand clone, named after its Bottle) still depends on it. Its free
// slots go with it (delete --cascade).
func retirable(p goldenPool, bottleClones int) bool {
	return p.golden != nil && len(p.taken) == 0 && bottleClones == 0
}
