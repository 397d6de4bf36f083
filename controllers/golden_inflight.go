package controllers

import (
	"context"
	"sync"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// goldenSteps are the golden steps running on this node, by template UID.
// As for Bottles (inflight), the pass running a step cannot see the
// template change: the watch handler asks mustCancelGolden about each new
// version and cancels the step from outside the pass.
type goldenSteps struct {
	mu    sync.Mutex
	steps map[types.UID]goldenStep
}

type goldenStep struct {
	golden string
	cancel context.CancelCauseFunc
}

func (f *goldenSteps) start(ctx context.Context, uid types.UID, golden string) (context.Context, func()) {
	stepCtx, cancel := context.WithCancelCause(ctx)
	f.mu.Lock()
	if f.steps == nil {
		f.steps = map[types.UID]goldenStep{}
	}
	f.steps[uid] = goldenStep{golden: golden, cancel: cancel}
	f.mu.Unlock()
	return stepCtx, func() {
		f.mu.Lock()
		delete(f.steps, uid)
		f.mu.Unlock()
		cancel(nil)
	}
}

// observe cancels the template's running golden step when t no longer
// wants that golden; t is nil when the template is gone.
func (f *goldenSteps) observe(uid types.UID, t *v1.BottleTemplate) {
	f.mu.Lock()
	step, ok := f.steps[uid]
	f.mu.Unlock()
	if ok {
		if why := mustCancelGolden(step.golden, t); why != "" {
			step.cancel(&errStepCancelled{why: why})
		}
	}
}

// mustCancelGolden says why a step running in golden must stop ("": it
// runs on): the template went, or its machine changed, so the golden is
// no longer the one to provision.
func mustCancelGolden(golden string, t *v1.BottleTemplate) string {
	switch {
	case t == nil:
		return "the template was deleted"
	case !t.DeletionTimestamp.IsZero():
		return "the template is being deleted"
	case GoldenMachineName(t) != golden:
		return "the template's machine was edited: a new golden is made"
	}
	return ""
}

// goldenStepWatch feeds template events to steps; it enqueues nothing.
func goldenStepWatch(steps *goldenSteps) handler.TypedEventHandler[client.Object, reconcile.Request] {
	return handler.Funcs{
		UpdateFunc: func(_ context.Context, e event.UpdateEvent, _ workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			if t, ok := e.ObjectNew.(*v1.BottleTemplate); ok {
				steps.observe(t.UID, t)
			}
		},
		DeleteFunc: func(_ context.Context, e event.DeleteEvent, _ workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			steps.observe(e.Object.GetUID(), nil)
		},
	}
}
