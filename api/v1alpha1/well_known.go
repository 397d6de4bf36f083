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
