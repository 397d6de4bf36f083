package agentlease

import "time"

// observation is one attempt to read the node's Lease, as decide sees it.
type observation struct {
	// ReadFailed: the Lease could not be read (the API server or etcd is
	// unreachable, or the request timed out).
	ReadFailed bool
	// Missing: the Lease does not exist.
	Missing bool
	// Holder is the record's holderIdentity ("" when released).
	Holder string
	// Duration is the record's leaseDurationSeconds.
	Duration time.Duration
	// Unchanged is how long this process has read this very record, by its
	// own clock, without a failed read in between.
	Unchanged time.Duration
}

type leaseAction int

const (
	// leaseWait: another agent holds the Lease and may be alive.
	leaseWait leaseAction = iota
	// leaseAcquire: create the Lease, or take a released or expired one.
	leaseAcquire
	// leaseRenew: the Lease names this process; write a new renewTime.
	leaseRenew
	// leaseYield: this process held the Lease and now another holder does.
	leaseYield
)

// decide is what a process named identity does after one read of the
// Lease; held says whether it held the Lease when it last wrote it.
//
// A read that failed decides nothing: an outage is evidence neither that
// the holder died nor that it lost the node, so a holder keeps what runs
// and a standby restarts its expiry clock (Unchanged). A standby takes the
// Lease only after it read one record unchanged for the record's whole
// duration; the holder yields only to a holder it has read.
func decide(identity string, held bool, o observation) leaseAction {
	switch {
	case o.ReadFailed:
		return leaseWait
	case o.Missing, o.Holder == "":
		return leaseAcquire
	case o.Holder == identity:
		// Ours; also after a container restart under the same Pod name.
		return leaseRenew
	case held:
		return leaseYield
	case o.Unchanged >= o.Duration:
		return leaseAcquire
	default:
		return leaseWait
	}
}
