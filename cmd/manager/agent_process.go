package main

import (
	"context"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/bot-bottle/bottle-controller/internal/agentlease"
)

// releaseTimeout bounds the Lease release at shutdown.
const releaseTimeout = 5 * time.Second

// agentProcess runs the agent's manager under the node's Lease.
//
// controller-runtime's leader election exits the process (skipping the
// graceful shutdown) once renewals have failed for RenewDeadline. For the
// cluster controller that is right: it holds nothing a restart loses. An
// agent holds running steps (up to a day long) and interactive sessions,
// and a step killed mid-run is run again from the start. A control-plane
// outage is not another agent taking the node: while nobody can write the
// Lease, nobody can take it. So the agent keeps the Lease with
// agentlease.Elector: it stops starting new work while it cannot renew,
// keeps what runs, and gives way (stopping the manager gracefully, which
// cancels the running steps) only when it reads another holder. The Lease
// is released only after the manager stopped, so a standby never starts a
// step this process still runs.
type agentProcess struct {
	ctrl.Manager
	elector *agentlease.Elector
}

func (a *agentProcess) Start(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// The elector outlives the manager's context: it renews while the
	// manager shuts down, and releases after.
	electorCtx, stopElector := context.WithCancel(context.WithoutCancel(ctx))
	defer stopElector()
	deposed := make(chan error, 1)
	go func() {
		err := a.elector.Run(electorCtx)
		if err != nil {
			cancel(err)
		}
		deposed <- err
	}()
	err := a.Manager.Start(ctx)
	stopElector()
	if derr := <-deposed; derr != nil {
		return derr
	}
	rctx, rcancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer rcancel()
	if rerr := a.elector.Release(rctx); rerr != nil {
		ctrl.Log.WithName("lease").Info("could not release the node's lease; a standby takes over once it expires", "error", rerr.Error())
	}
	return err
}

// electedOnly adds runnables (the reconcilers) that start only once this
// process first holds the node's Lease.
type electedOnly struct {
	ctrl.Manager
	elected <-chan struct{}
}

func (m electedOnly) Add(r manager.Runnable) error {
	return m.Manager.Add(manager.RunnableFunc(func(ctx context.Context) error {
		select {
		case <-m.elected:
		case <-ctx.Done():
			return nil
		}
		return r.Start(ctx)
	}))
}
