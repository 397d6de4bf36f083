package agent

import (
	"context"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

// maxViewAge bounds how old an answer about a machine a pass may act on
// without asking smolvm again. It covers a resync's burst of passes (they
// all read the listing the resync made) and the pass that follows a pass's
// own status write (it reads what that pass did).
const maxViewAge = 10 * time.Second

// resync checks every Bottle of the node once per ResyncPeriod for drift
// at the cost of one `machine ls`: it lists the node's machines, then
// enqueues every Bottle, whose passes all read that one listing (see
// machineView). Bottles do not requeue themselves for drift: per-Bottle
// timers would spread the passes over the period, each asking smolvm.
func (r *BottleReconciler) resync(logger logr.Logger) source.Source {
	return source.Func(func(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
		go func() {
			t := time.NewTicker(r.ResyncPeriod)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				r.resyncOnce(ctx, logger, q)
			}
		}()
		return nil
	})
}

func (r *BottleReconciler) resyncOnce(ctx context.Context, logger logr.Logger, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	r.sourceDigests.expire()
	// A failed listing is not fatal: each pass asks again (one listing,
	// shared) and reports the failure on its Bottle.
	machines, listedAt, listErr := r.view.listing(ctx, r.view.now())
	if listErr != nil && ctx.Err() == nil {
		logger.Info("listing smolvm machines for the resync failed", "error", listErr.Error())
	}
	var list v1.BottleList
	if err := r.List(ctx, &list); err != nil {
		if ctx.Err() == nil {
			logger.Error(err, "listing Bottles from the cache for the resync")
		}
		return
	}
	if listErr == nil {
		r.sweepSlots(ctx, logger, machines, listedAt, list.Items)
	}
	// Behind the passes events ask for: a new Bottle does not wait for the
	// whole node's drift check.
	add := q.Add
	if pq, ok := q.(priorityqueue.PriorityQueue[reconcile.Request]); ok {
		add = func(req reconcile.Request) {
			pq.AddWithOpts(priorityqueue.AddOpts{Priority: ptr.To(handler.LowPriority)}, req)
		}
	}
	for i := range list.Items {
		if list.Items[i].Spec.NodeName == r.NodeName {
			add(reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
		}
	}
}

// listMachines is the view's one question to smolvm.
func (r *BottleReconciler) listMachines(ctx context.Context) ([]smolvm.Machine, error) {
	return r.Machines.List(ctx)
}
