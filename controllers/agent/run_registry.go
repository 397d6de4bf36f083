package agent

import (
	"context"
	"sync"

	"k8s.io/apimachinery/pkg/types"
)

// activeRuns is the agent's registry of the runs it is running: one per
// Bottle at most (concurrency is per Bottle, and a Bottle's runs all run on
// its node's agent). It is in memory on purpose: a run the ledger says was
// started that is not in here was started by an agent process that has
// since stopped, so its end is unknown (Lost).
type activeRuns struct {
	mu       sync.Mutex
	byBottle map[types.NamespacedName]string // Bottle -> run name
	byRun    map[types.UID]*activeRun
}

type activeRun struct {
	bottle types.NamespacedName
	cancel context.CancelCauseFunc
}

func newActiveRuns() *activeRuns {
	return &activeRuns{byBottle: map[types.NamespacedName]string{}, byRun: map[types.UID]*activeRun{}}
}

// active is the run active in the Bottle, and whether it is uid.
func (a *activeRuns) active(bottle types.NamespacedName, uid types.UID) (name string, mine bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, mine = a.byRun[uid]
	return a.byBottle[bottle], mine
}

// claim makes run the Bottle's active run unless another one is; the
// check and the claim are one step, so two workers never start two runs of
// one Bottle at once.
func (a *activeRuns) claim(bottle types.NamespacedName, uid types.UID, name string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if cur, ok := a.byBottle[bottle]; ok && cur != name {
		return false
	}
	a.byBottle[bottle] = name
	a.byRun[uid] = &activeRun{bottle: bottle, cancel: func(error) {}}
	return true
}

// start gives the claimed run its context; release ends the claim.
func (a *activeRuns) start(ctx context.Context, uid types.UID) (context.Context, func()) {
	runCtx, cancel := context.WithCancelCause(ctx)
	a.mu.Lock()
	if r := a.byRun[uid]; r != nil {
		r.cancel = cancel
	}
	a.mu.Unlock()
	return runCtx, func() { a.release(uid); cancel(nil) }
}

func (a *activeRuns) release(uid types.UID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if r := a.byRun[uid]; r != nil {
		delete(a.byBottle, r.bottle)
		delete(a.byRun, uid)
	}
}

// cancelRun stops a running run (it was deleted).
func (a *activeRuns) cancelRun(uid types.UID, why string) {
	a.mu.Lock()
	r := a.byRun[uid]
	a.mu.Unlock()
	if r != nil {
		r.cancel(&errStepCancelled{why: why})
	}
}

// cancelBottle stops the run active in a Bottle (deleted or stopped).
func (a *activeRuns) cancelBottle(bottle types.NamespacedName, why string) {
	a.mu.Lock()
	var r *activeRun
	for _, x := range a.byRun {
		if x.bottle == bottle {
			r = x
		}
	}
	a.mu.Unlock()
	if r != nil {
		r.cancel(&errStepCancelled{why: why})
	}
}
