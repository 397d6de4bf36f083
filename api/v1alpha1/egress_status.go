package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// MaxEgressRefusals bounds status.egressRefusals: the most recent distinct
// destinations are kept, the least recently refused dropped.
const MaxEgressRefusals = 16

// Egress operations smolvm records (smolvm:src/agent/manager.rs:386-397).
const (
	EgressConnect = "connect" // a TCP connection
	EgressSendto  = "sendto"  // a UDP datagram
	EgressResolve = "resolve" // a DNS query for a name the allowlist does not cover
)

// EgressRefusal is one destination the machine's egress policy refused, as
// smolvm recorded it (`smolvm machine egress-events`), summed by the agent.
type EgressRefusal struct {
	// Operation is connect (TCP), sendto (UDP) or resolve (DNS).
	// +kubebuilder:validation:Enum=connect;sendto;resolve
	Operation string `json:"operation"`

	// Destination is ip:port for connect and sendto, the host name for
	// resolve.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=300
	Destination string `json:"destination"`

	// Count is how many refusals the agent has read for this destination
	// since it first saw one (a lower bound: each read takes at most the
	// newest --limit records).
	// +kubebuilder:validation:Minimum=1
	Count int64 `json:"count"`

	// FirstSeen and LastSeen are smolvm's timestamps (second precision) of
	// the first and the latest refusal counted.
	FirstSeen metav1.Time `json:"firstSeen"`
	LastSeen  metav1.Time `json:"lastSeen"`
}

// Key identifies a refusal's destination within status.egressRefusals.
func (e EgressRefusal) Key() string { return e.Operation + " " + e.Destination }
