package controllers

import (
	"context"
	"errors"
	"sync"

	"k8s.io/apimachinery/pkg/types"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// inflight is the registry of running steps, by Bottle UID. controller-runtime
// never runs two passes of one Bottle at once, so the pass running a step
// cannot notice an edit, a Stop or a delete itself: the watch event handler
// asks mustCancel about every new version of the Bottle and cancels the
// step's context from outside the pass. The driver then kills the step's
// whole process group.
type inflight struct {
	mu    sync.Mutex
	steps map[types.UID]*inflightStep
}

type inflightStep struct {
	run    runningStep
	cancel context.CancelCauseFunc
}

// errStepCancelled is the cause a cancelled step's context carries.
type errStepCancelled struct{ why string }

func (e *errStepCancelled) Error() string { return e.why }

func newInflight() *inflight { return &inflight{steps: map[types.UID]*inflightStep{}} }

// start registers a step and returns its context, to be released by done.
func (f *inflight) start(ctx context.Context, uid types.UID, run runningStep) (context.Context, func()) {
	stepCtx, cancel := context.WithCancelCause(ctx)
	f.mu.Lock()
	f.steps[uid] = &inflightStep{run: run, cancel: cancel}
	f.mu.Unlock()
	return stepCtx, func() {
		f.mu.Lock()
		delete(f.steps, uid)
		f.mu.Unlock()
		cancel(nil)
	}
}

// observe cancels the Bottle's running step when the spec no longer wants
// it. b is nil when the Bottle is gone.
func (f *inflight) observe(uid types.UID, b *v1.Bottle) {
	f.mu.Lock()
	step, ok := f.steps[uid]
	f.mu.Unlock()
	if !ok {
		return
	}
	if why := mustCancel(step.run, b); why != "" {
		step.cancel(&errStepCancelled{why: why})
	}
}

// cancelReason is why a step's context was cancelled by observe, or "".
func cancelReason(stepCtx context.Context) string {
	var c *errStepCancelled
	if errors.As(context.Cause(stepCtx), &c) {
		return c.why
	}
	return ""
}
