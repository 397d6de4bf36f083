package v1alpha1

// Finalizer keeps a Bottle until its machine is gone.
const Finalizer = "agents.bot-bottle.dev/machine"

// Machine labels, set on the smolvm machine (not on the Bottle). The UID label
// is what makes a machine ours: it lets an agent adopt its machine after a
// restart and refuse to touch anyone else's.
const (
	LabelUID       = "agents.bot-bottle.dev/uid"
	LabelNamespace = "agents.bot-bottle.dev/namespace"
	LabelName      = "agents.bot-bottle.dev/name"
)

// DefaultExecUser is spec.execUser's API default (the +kubebuilder:default
// marker on BottleSpec.ExecUser spells the same value).
const DefaultExecUser = "node"

// UserNamePattern is the rule for guest user names (spec.execUser,
// files[].owner, provision[].user and the exec subresource's user): a POSIX
// name that can never be read as an option. The CRD's CEL rules spell the
// same pattern.
const UserNamePattern = `^[a-z_][a-z0-9_-]{0,31}$`

// Placement labels. LabelKVMNode marks the nodes an agent runs on (the
// DaemonSet's node selector); the cluster controller sets LabelSchedulable
// on each of them to "true" while the node's agent Lease is live and
// "false" otherwise; reservation Pods require both, so kube-scheduler only
// places Bottles on nodes whose agent can run them. LabelReservation marks
// reservation Pods.
const (
	LabelKVMNode     = "bot-bottle.dev/kvm"
	LabelSchedulable = "agents.bot-bottle.dev/schedulable"
	LabelReservation = "agents.bot-bottle.dev/reservation"
)

// LabelNetwork, on the smolvm machine, identifies the egress allowlist it
// was created with: smolvm's status does not report the allowlist, and a
// changed one needs a new machine.
const LabelNetwork = "agents.bot-bottle.dev/network"

// FieldManagerAgent is the field manager of the node agent's server-side
// applies (status, finalizer). Conditions are a map keyed by type, so a
// writer with another field manager owning its own condition types never
// clobbers the agent's, nor the agent its.
const FieldManagerAgent = "bottle-agent"

// FieldManagerCluster is the cluster controller's field manager: it applies
// the Scheduled condition (and, while no agent speaks for the Bottle, Ready,
// Reconciling, Stalled, phase and observedGeneration), and sets
// spec.nodeName from the reservation Pod's binding.
const FieldManagerCluster = "bottle-cluster"
