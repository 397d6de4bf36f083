// Package placement is the cluster controller: it gives every Bottle a
// reservation Pod (so kube-scheduler and the kubelet account for the VM's
// CPUs and memory, and place Bottles that name no node), copies the Pod's
// binding into spec.nodeName, and says when no live agent serves a Bottle's
// node. It runs once per cluster, leader-elected (`manager --mode=cluster`);
// the node agents stay node-local.
package placement

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/bot-bottle/bottle-controller/internal/agentlease"
)

// Defaults. The memory overhead is the VMM's own, the same 256 MiB the
// systemd VM launcher adds to a unit's MemoryMax; the CPU overhead covers
// the VMM's I/O threads.
const (
	DefaultPauseImage   = "registry.k8s.io/pause:3.10"
	DefaultAgentTimeout = agentlease.DefaultLeaseDuration
	DefaultAgentGrace   = 5 * time.Minute
	DefaultOverheadCPU  = "100m"
	DefaultOverheadMem  = "256Mi"
)

// Options configure the cluster controller.
type Options struct {
	// Reservations: every Bottle gets a reservation Pod and Bottles without
	// a nodeName are placed by kube-scheduler. Off, Bottles must name their
	// node and nothing is reserved (agents must run with it off too).
	Reservations bool
	// PauseImage is the reservation Pod's only container.
	PauseImage string
	// OverheadCPU and OverheadMemory are added to the VM's CPUs and memory
	// in the reservation Pod's requests (and limits).
	OverheadCPU, OverheadMemory resource.Quantity
	// AgentNamespace is where the node agents' Leases live.
	AgentNamespace string
	// AgentTimeout is how long after a node's agent Lease was last seen
	// renewed the node counts as without a live agent.
	AgentTimeout time.Duration
	// AgentGrace is how long a Bottle's node may be without a live agent
	// before the Bottle is Stalled (kstatus Failed) rather than Reconciling.
	AgentGrace time.Duration
}

// DefaultOptions are the flags' defaults.
func DefaultOptions() Options {
	return Options{
		Reservations:   true,
		PauseImage:     DefaultPauseImage,
		OverheadCPU:    resource.MustParse(DefaultOverheadCPU),
		OverheadMemory: resource.MustParse(DefaultOverheadMem),
		AgentNamespace: agentlease.DefaultNamespace,
		AgentTimeout:   DefaultAgentTimeout,
		AgentGrace:     DefaultAgentGrace,
	}
}

// Validate rejects options the controller cannot work with.
func (o Options) Validate() error {
	switch {
	case o.Reservations && o.PauseImage == "":
		return fmt.Errorf("the pause image must not be empty")
	case o.OverheadCPU.Sign() < 0 || o.OverheadMemory.Sign() < 0:
		return fmt.Errorf("the reservation overheads must not be negative")
	case o.AgentNamespace == "":
		return fmt.Errorf("the agent namespace must not be empty")
	case o.AgentTimeout < time.Second:
		return fmt.Errorf("the agent timeout must be at least 1s, not %s", o.AgentTimeout)
	case o.AgentGrace < 0:
		return fmt.Errorf("the agent grace must not be negative")
	}
	return nil
}
