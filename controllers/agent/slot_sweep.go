package agent

import (
	"context"
	"sync"
	"time"

	"github.com/go-logr/logr"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

// slotSweep remembers the released held slots the resync found with no
// Bottle naming them, and since when (decideOrphans).
type slotSweep struct {
	mu       sync.Mutex
	suspects map[string]time.Time
}

// sweepSlots deletes the node's released held slots that no Bottle has
// owned for SlotOrphanGrace: what an agent left that stopped between a
// slot's release and the status write that names it (decide_orphans.go).
// ms is the resync's listing, begun at listedAt; bottles are the node's
// Bottles read after it, so a slot released and recorded meanwhile counts
// as owned. A slot counts as owned when a Bottle's status names it, when
// this agent knows it as a Bottle's machine (a status write that failed),
// and while this agent is handing it out.
func (r *BottleReconciler) sweepSlots(ctx context.Context, logger logr.Logger, ms []smolvm.Machine, listedAt time.Time, bottles []v1.Bottle) {
	if !leaseHeld(r.Lease) {
		return
	}
	owned := r.expectations.machines()
	for i := range bottles {
		if n := bottles[i].Status.MachineName; n != "" {
			owned[n] = true
		}
	}
	for _, n := range r.claims.busy() {
		owned[n] = true
	}
	r.sweep.mu.Lock()
	del, next := decideOrphans(releasedSlots(ms), owned, r.sweep.suspects, listedAt, r.SlotOrphanGrace)
	r.sweep.suspects = next
	r.sweep.mu.Unlock()
	for _, name := range del {
		if err := r.Machines.Delete(ctx, name); err != nil {
			logger.Info("deleting a released held slot no Bottle names failed", "machine", name, "error", err.Error())
			continue
		}
		r.view.saw(name, nil)
		logger.Info("deleted a released held slot no Bottle names (its agent stopped between the release and the Bottle's status write)",
			"machine", name, "grace", r.SlotOrphanGrace.String())
	}
}
