package agent

import "context"

// LeaseGate is the node's Lease as the reconciler sees it
// (agentlease.Elector): work on the node's machines starts only while this
// process holds the Lease and renewed it recently enough that no other
// agent can have taken it. Work already running is not the gate's: it runs
// on while the API server is out of reach, and stops when the agent gives
// way to another holder (its context ends).
type LeaseGate interface {
	// Wait returns once Held is true, or with ctx's error.
	Wait(ctx context.Context) error
	// Held reports whether work may start now.
	Held() bool
	// Deposed is closed once another agent took the Lease: work still
	// running stops at once (no drain at shutdown).
	Deposed() <-chan struct{}
}

// awaitLease blocks a pass until gate allows work (no gate: at once).
func awaitLease(ctx context.Context, gate LeaseGate) error {
	if gate == nil {
		return nil
	}
	return gate.Wait(ctx)
}

// leaseHeld says whether the next step may start.
func leaseHeld(gate LeaseGate) bool { return gate == nil || gate.Held() }

// deposedOf is gate's Deposed, or nil (never) without a gate.
func deposedOf(gate LeaseGate) <-chan struct{} {
	if gate == nil {
		return nil
	}
	return gate.Deposed()
}
