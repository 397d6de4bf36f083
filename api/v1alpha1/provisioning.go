package v1alpha1

// Retry annotations. Setting AnnotationRetry to a value the agent has not
// handled yet (status.lastHandledRetry) re-runs the failed, timed-out or
// cancelled step and every step after it; with AnnotationRetryStep set too,
// it re-runs from that step even if it succeeded. Any new value works, so
// git can carry it (a date, a commit id); `kubectl bottle retry` sets both.
const (
	AnnotationRetry     = "agents.bot-bottle.dev/retry"
	AnnotationRetryStep = "agents.bot-bottle.dev/retry-step"
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

// Reasons added for provisioning a GitOps pipeline can trust.
const (
	// ReasonSmolvmTimeout: a smolvm call hung past its deadline; the
	// message names the verb. Retried with backoff.
	ReasonSmolvmTimeout = "SmolvmTimeout"
	// ReasonStatusTooLarge: the API server refused the status as too large;
	// the output tails were dropped, nothing is re-run.
	ReasonStatusTooLarge = "StatusTooLarge"
	// ReasonStepCancelled: a running step was cancelled (the Bottle was
	// deleted or stopped, or the step was edited or removed).
	ReasonStepCancelled = "StepCancelled"
	// ReasonWaitingForOwner: files wait for an owner a provisioning step
	// may still create.
	ReasonWaitingForOwner = "WaitingForOwner"
	// ReasonMachineRecreating: recreatePolicy OnChange is replacing the
	// machine to apply a change smolvm cannot make in place.
	ReasonMachineRecreating = "MachineRecreating"
)
