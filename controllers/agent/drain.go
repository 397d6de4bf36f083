package agent

import (
	"context"
	"time"
)

// drainContext is the context of one pass, which outlives the agent's
// shutdown by grace. A pass that is running a step when the agent is told
// to stop (a rollout, a deleted Pod, a drained node) finishes the step and
// records its result within the Pod's terminationGracePeriodSeconds,
// instead of cutting it off for the next agent to run again from its start.
// New work does not start meanwhile: controller-runtime dispatches no pass
// once ctx ends, and a running pass starts no further step (stopping).
// A step still running when grace ends is cut off as before: its status
// shows it started and not finished, and the next agent runs it again.
// An agent deposed by another (deposed closes) drains nothing: the new
// holder may run the same step, so the old one's ends at once.
// grace 0 keeps ctx: the pass ends with the agent.
func drainContext(ctx context.Context, grace time.Duration, deposed <-chan struct{}) (context.Context, context.CancelFunc) {
	if grace <= 0 {
		return ctx, func() {}
	}
	drain, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-t.C:
		case <-deposed:
		case <-drain.Done():
		}
		cancel()
	})
	return drain, func() {
		stop()
		cancel()
	}
}

// stopping says whether the agent has been told to stop: ctx is the pass's
// own context as controller-runtime gave it, not its drain.
func stopping(ctx context.Context) bool { return ctx.Err() != nil }
