package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/bot-bottle/bottle-controller/internal/agentlease"
)

// leaseOptions configure the node Lease that keeps one agent per node.
type leaseOptions struct {
	namespace     string
	identity      string
	duration      time.Duration
	renewDeadline time.Duration
	retryPeriod   time.Duration
}

func (l *leaseOptions) bindFlags(fs *flag.FlagSet) {
	fs.StringVar(&l.namespace, "lease-namespace", agentlease.Namespace(), "Namespace of the node's Lease "+agentlease.NamePrefix+"<node> (default $POD_NAMESPACE, else "+agentlease.DefaultNamespace+").")
	fs.DurationVar(&l.duration, "lease-duration", agentlease.DefaultLeaseDuration, "How long a standby agent must read the Lease unrenewed before taking the node over (a failed read restarts the wait).")
	fs.DurationVar(&l.renewDeadline, "lease-renew-deadline", agentlease.DefaultRenewDeadline, "How long after its last renewal the holder stops starting new work. An agent keeps its running steps and sessions and keeps renewing (it gives way only to another holder); the cluster controller exits.")
	fs.DurationVar(&l.retryPeriod, "lease-retry-period", agentlease.DefaultRetryPeriod, "How often the Lease is renewed, or tried by a standby.")
	l.identity = agentlease.Identity()
}

// validate applies client-go's leader-election constraints, so a bad
// combination is a one-line flag error instead of a panic at start.
func (l *leaseOptions) validate() error {
	switch {
	case l.namespace == "":
		return fmt.Errorf("--lease-namespace must not be empty")
	case l.retryPeriod <= 0:
		return fmt.Errorf("--lease-retry-period must be positive, not %s", l.retryPeriod)
	case float64(l.renewDeadline) <= 1.2*float64(l.retryPeriod):
		return fmt.Errorf("--lease-renew-deadline (%s) must be more than 1.2 × --lease-retry-period (%s)", l.renewDeadline, l.retryPeriod)
	case l.duration <= l.renewDeadline:
		return fmt.Errorf("--lease-duration (%s) must be longer than --lease-renew-deadline (%s)", l.duration, l.renewDeadline)
	}
	return nil
}
