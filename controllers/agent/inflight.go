package agent

import (
	"context"
	"errors"
	"sync"

	"k8s.io/apimachinery/pkg/types"
)

// inflight is the registry of running steps, by the UID of the object they
// provision (a Bottle, or a template's golden). controller-runtime never
// runs two passes of one object at once, so the pass running a step cannot
// notice an edit, a Stop or a delete itself: the watch event handler asks
// mustCancel about every new version of the object and cancels the step's
// context from outside the pass. The driver then kills the step's whole
// process group. R is what the registry knows of the running step.
type inflight[O, R any] struct {
	mu    sync.Mutex
	steps map[types.UID]*inflightStep[R]
	// mustCancel says why the step running as run must stop now that its
	// object is o (the zero O: the object is gone); "" lets it run.
	mustCancel func(run R, o O) string
}

type inflightStep[R any] struct {
	run    R
	cancel context.CancelCauseFunc
}

// errStepCancelled is the cause a cancelled step's context carries.
type errStepCancelled struct{ why string }

func (e *errStepCancelled) Error() string { return e.why }

func newInflight[O, R any](mustCancel func(run R, o O) string) *inflight[O, R] {
	return &inflight[O, R]{steps: map[types.UID]*inflightStep[R]{}, mustCancel: mustCancel}
}

// start registers a step and returns its context, to be released by done.
func (f *inflight[O, R]) start(ctx context.Context, uid types.UID, run R) (context.Context, func()) {
	stepCtx, cancel := context.WithCancelCause(ctx)
	f.mu.Lock()
	f.steps[uid] = &inflightStep[R]{run: run, cancel: cancel}
	f.mu.Unlock()
	return stepCtx, func() {
		f.mu.Lock()
		delete(f.steps, uid)
		f.mu.Unlock()
		cancel(nil)
	}
}

// observe cancels the object's running step when o no longer wants it.
func (f *inflight[O, R]) observe(uid types.UID, o O) {
	f.mu.Lock()
	step, ok := f.steps[uid]
	f.mu.Unlock()
	if !ok {
		return
	}
	if why := f.mustCancel(step.run, o); why != "" {
		step.cancel(&errStepCancelled{why: why})
	}
}

// gone cancels the running step of an object that was deleted.
func (f *inflight[O, R]) gone(uid types.UID) {
	var none O
	f.observe(uid, none)
}

// cancelReason is why a step's context was cancelled by observe, or "".
func cancelReason(stepCtx context.Context) string {
	var c *errStepCancelled
	if errors.As(context.Cause(stepCtx), &c) {
		return c.why
	}
	return ""
}
