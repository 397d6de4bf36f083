package placement

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"

	"github.com/bot-bottle/bottle-controller/internal/agentlease"
)

// Heartbeats knows which nodes have a live agent, from the agents' Leases
// (agentlease): a node is live while its Lease has a holder and was seen
// renewed less than timeout ago. "Seen" is this process's clock, as in
// client-go's leader election, so clock skew between nodes cannot make a
// dead agent look alive or a live one dead. A Lease released by an agent
// shutting down counts as one more renewal: a restarting agent is not
// reported gone unless it stays away for the timeout.
type Heartbeats struct {
	timeout time.Duration
	now     func() time.Time

	mu    sync.Mutex
	nodes map[string]*beat
	// leases maps a Lease's name to its node, to forget a deleted one.
	leases map[string]string
	// reported is each node's liveness as last sent on Changes.
	reported map[string]bool
}

type beat struct {
	holder, renewed string
	seen            time.Time
}

// Liveness is what Heartbeats knows of one node's agent.
type Liveness struct {
	Live bool
	// Detail says why not, or who holds the Lease.
	Detail string
	// Until is when a live node turns unavailable without a renewal.
	Until time.Time
}

// NewHeartbeats tracks Leases with the given timeout.
func NewHeartbeats(timeout time.Duration) *Heartbeats {
	return &Heartbeats{timeout: timeout, now: time.Now, nodes: map[string]*beat{}, leases: map[string]string{}, reported: map[string]bool{}}
}

// Observe records the current version of a node's Lease.
func (h *Heartbeats) Observe(l *coordinationv1.Lease) {
	node := l.Labels[agentlease.LabelNode]
	if node == "" || l.Name != agentlease.Name(node) {
		// Not an agent's Lease, or a decoy: a node's heartbeat is its
		// agent's Lease by name and label (config/policy binds both to the
		// agent's node).
		return
	}
	var holder, renewed string
	if l.Spec.HolderIdentity != nil {
		holder = *l.Spec.HolderIdentity
	}
	if l.Spec.RenewTime != nil {
		renewed = l.Spec.RenewTime.UTC().Format(time.RFC3339Nano)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.leases[l.Name] = node
	b, ok := h.nodes[node]
	if !ok || b.holder != holder || b.renewed != renewed {
		// A released Lease keeps the last holder's liveness: its renewal
		// time moved, so it is seen now.
		if holder == "" && ok {
			holder = b.holder
		}
		h.nodes[node] = &beat{holder: holder, renewed: renewed, seen: h.now()}
	}
}

// ForgetLease drops the node of a deleted Lease.
func (h *Heartbeats) ForgetLease(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if node, ok := h.leases[name]; ok {
		delete(h.leases, name)
		delete(h.nodes, node)
	}
}

// Of says whether node has a live agent.
func (h *Heartbeats) Of(node, namespace string) Liveness {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.of(node, namespace, h.now())
}

func (h *Heartbeats) of(node, namespace string, now time.Time) Liveness {
	lease := namespace + "/" + agentlease.Name(node)
	b, ok := h.nodes[node]
	switch {
	case !ok:
		return Liveness{Detail: fmt.Sprintf("no agent serves node %s: it has no agent Lease %s (is the node named right, labelled %s=true, and its agent running?)", node, lease, "bot-bottle.dev/kvm")}
	case b.holder == "":
		return Liveness{Detail: fmt.Sprintf("no agent holds Lease %s of node %s", lease, node)}
	}
	until := b.seen.Add(h.timeout)
	if !now.Before(until) {
		// The message names a fixed time, not an age: it goes into
		// status, which must not change on every pass.
		return Liveness{Detail: fmt.Sprintf("the agent of node %s (%s) stopped renewing Lease %s: last renewal seen at %s, timeout %s",
			node, b.holder, lease, b.seen.UTC().Format(time.RFC3339), h.timeout)}
	}
	return Liveness{Live: true, Detail: "agent " + b.holder, Until: until}
}

// changed returns the nodes whose liveness differs from what was last
// reported, and marks them reported.
func (h *Heartbeats) changed(namespace string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	var out []string
	for node := range h.nodes {
		live := h.of(node, namespace, now).Live
		if h.reported[node] != live {
			h.reported[node] = live
			out = append(out, node)
		}
	}
	for node := range h.reported {
		if _, ok := h.nodes[node]; !ok {
			delete(h.reported, node)
			out = append(out, node)
		}
	}
	sort.Strings(out)
	return out
}

// Run sends every node whose agent turns live or unavailable to notify,
// checking every tick: an expiry is the absence of an event, so it must be
// looked for.
func (h *Heartbeats) Run(ctx context.Context, namespace string, tick time.Duration, notify func(node string)) {
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		for _, node := range h.changed(namespace) {
			notify(node)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
