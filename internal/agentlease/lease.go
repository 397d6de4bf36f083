// Package agentlease is the Lease that makes an agent the only one serving
// its node. Each agent competes for the Lease named Name(node) in its own
// namespace; the holder reconciles the node's Bottles and renews the Lease
// every few seconds, so the Lease's renewTime doubles as the node agent's
// heartbeat (what a placement controller reads to know a node is served).
// A second agent started for the same node waits as a standby: it is not
// ready (/readyz/lease says who holds the Lease) and runs no reconciler
// until the Lease expires or is released, then takes over. Elector keeps
// the Lease; losing contact with the API server does not end its hold.
package agentlease

import (
	"context"
	"os"
	"sync"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// The Lease of node N is NamePrefix+N (hashed when that exceeds a name's
// 253 characters), in the agents' namespace (the Pod's, DefaultNamespace
// outside a cluster), labelled LabelNode=N. These three are the contract
// between agents and anything that watches them.
const (
	NamePrefix       = "bottle-agent-"
	DefaultNamespace = "bottle-system"
	LabelNode        = "agents.bot-bottle.dev/node"
)

// Default timings, as kube-controller-manager's: a standby takes over at
// most LeaseDuration after the holder stopped renewing.
const (
	DefaultLeaseDuration = 15 * time.Second
	DefaultRenewDeadline = 10 * time.Second
	DefaultRetryPeriod   = 2 * time.Second
)

// The Lease lives in the agents' own namespace: a namespaced Role, for
// what Elector does (read, create, update). The policy
// config/policy/agent_lease_scope.yaml confines each agent to its node's.
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;create;update,namespace=bottle-system

// Name is the Lease of node's agent (v1alpha1.BoundedName: hashed when
// NamePrefix+node would exceed a name's 253 characters).
func Name(node string) string { return v1.BoundedName(NamePrefix, node) }

// Namespace is where this process's Lease lives: $POD_NAMESPACE (set from
// the downward API) or DefaultNamespace.
func Namespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	return DefaultNamespace
}

// Identity names this process in the Lease's holderIdentity: the Pod's name
// when known (a restarted container resumes its own Lease at once), else the
// host name plus a random suffix.
func Identity() string {
	if pod := os.Getenv("POD_NAME"); pod != "" {
		return pod
	}
	host, err := os.Hostname()
	if err != nil {
		host = "agent"
	}
	return host + "_" + string(uuid.NewUUID())
}

// Lock is node's Lease as a leader-election lock that remembers who holds
// it, for the readiness check and the standby log line.
type Lock struct {
	resourcelock.Interface
	log logr.Logger

	mu       sync.Mutex
	holder   string
	observed bool
}

// NewLock returns the lock for node's Lease in namespace, held as identity.
// Requests time out after timeout so a hung call cannot outlast a renewal.
func NewLock(cfg *rest.Config, namespace, node, identity string, timeout time.Duration, log logr.Logger) (*Lock, error) {
	cfg = rest.AddUserAgent(rest.CopyConfig(cfg), "bottle-agent-lease")
	cfg.Timeout = timeout
	c, err := coordinationv1client.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Lock{
		Interface: &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Namespace: namespace, Name: Name(node)},
			Client:     c,
			LockConfig: resourcelock.ResourceLockConfig{Identity: identity},
			Labels:     map[string]string{LabelNode: node},
		},
		log: log,
	}, nil
}

// Get reads the Lease and notes its holder; a change of holder other than
// this process is logged once.
func (l *Lock) Get(ctx context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	rec, raw, err := l.Interface.Get(ctx)
	if err != nil {
		return rec, raw, err
	}
	l.mu.Lock()
	changed := !l.observed || rec.HolderIdentity != l.holder
	l.holder, l.observed = rec.HolderIdentity, true
	l.mu.Unlock()
	if changed && rec.HolderIdentity != "" && rec.HolderIdentity != l.Identity() {
		l.log.Info("standby: the node's lease is held by another agent; waiting for it to expire or be released",
			"lease", l.Describe(), "holder", rec.HolderIdentity)
	}
	return rec, raw, nil
}

// Holder is the holder last read, "" before the first read or when free.
func (l *Lock) Holder() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.holder
}
