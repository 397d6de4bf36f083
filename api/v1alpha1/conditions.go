package v1alpha1

// Condition types. Ready summarises the others; Reconciling and Stalled follow
// kstatus so Flux, Argo CD and `kubectl wait` understand a Bottle.
const (
	ConditionReady        = "Ready"
	ConditionMachineReady = "MachineReady"
	ConditionFilesReady   = "FilesReady"
	ConditionProvisioned  = "Provisioned"
	ConditionReconciling  = "Reconciling"
	ConditionStalled      = "Stalled"

	// ConditionMachineUpToDate is False while the machine differs from the
	// spec: in what only a new machine can take (image, network), or in its
	// size (CPUs, memory) until a stop, update and start applies it. The
	// fields compared are one table: machineFields in
	// controllers/agent/machine_fields.go.
	ConditionMachineUpToDate = "MachineUpToDate"

	// ConditionScheduled is the cluster controller's: True once the
	// Bottle's reservation Pod is bound to spec.nodeName and that node's
	// agent is live.
	ConditionScheduled = "Scheduled"
)

// Condition reasons, also used as event reasons. They are part of the API:
// users and tools match on them.
const (
	// Ready and Reconciling.
	ReasonReady          = "Ready"
	ReasonProgressing    = "Progressing"
	ReasonReconcileError = "ReconcileError"
	// ReasonStatusTooLarge (Stalled): the API server refused the status as
	// too large; the output tails were dropped, nothing is re-run.
	ReasonStatusTooLarge = "StatusTooLarge"

	// MachineReady and MachineUpToDate.
	ReasonMachineCreated   = "MachineCreated"
	ReasonMachineRecreated = "MachineRecreated"
	ReasonMachineStarting  = "MachineStarting"
	ReasonMachineRunning   = "MachineRunning"
	ReasonMachineRestarted = "MachineRestarted"
	ReasonMachineStopped   = "MachineStopped"
	ReasonNameConflict     = "MachineNameConflict"
	ReasonInvalidName      = "InvalidMachineName"
	ReasonKVMUnavailable   = "KVMUnavailable"
	// ReasonSmolvmUnavailable: the node's smolvm is missing, unusable or
	// older than the supported minimum (Ready=False, Stalled=True).
	ReasonSmolvmUnavailable = "SmolvmUnavailable"
	ReasonSmolvmError       = "SmolvmError"
	// ReasonSmolvmTimeout: a smolvm call hung past its deadline; the
	// message names the verb. Retried with backoff.
	ReasonSmolvmTimeout    = "SmolvmTimeout"
	ReasonMachineDeleted   = "MachineDeleted"
	ReasonDeletionBlocked  = "DeletionBlocked"
	ReasonRecreateRequired = "RecreateRequired"
	// ReasonMachineRecreating: recreatePolicy OnChange is replacing the
	// machine to apply a change smolvm cannot make in place.
	ReasonMachineRecreating = "MachineRecreating"

	// FilesReady.
	ReasonFilesCopied    = "FilesCopied"
	ReasonCopyingFiles   = "CopyingFiles"
	ReasonSourceNotFound = "SourceNotFound"
	ReasonOwnerNotFound  = "OwnerNotFound"
	// ReasonWaitingForOwner: files wait for an owner a provisioning step
	// may still create.
	ReasonWaitingForOwner = "WaitingForOwner"
	// ReasonUnsafePath: a file was not written because its path goes
	// through a link a guest user could have made (or changed mid-check).
	ReasonUnsafePath = "UnsafePath"

	// Provisioned.
	ReasonProvisioned   = "Provisioned"
	ReasonProvisioning  = "Provisioning"
	ReasonStepFailed    = "StepFailed"
	ReasonStepSucceeded = "StepSucceeded"
	// ReasonStepCancelled: a running step was cancelled (the Bottle was
	// deleted or stopped, or the step was edited or removed).
	ReasonStepCancelled = "StepCancelled"

	// ReasonIdleStopped: Ready=True, phase Stopped: the agent stopped the
	// machine after spec.lifecycle.stopAfterIdle without use; a session or
	// a run starts it again.
	ReasonIdleStopped = "IdleStopped"

	// Scheduled, and Ready/Reconciling/Stalled while no agent speaks for
	// the Bottle (see ClusterReason).
	ReasonScheduled           = "Scheduled"
	ReasonWaitingForScheduler = "WaitingForScheduler"
	// ReasonWaitingForKubelet: the reservation Pod is bound to a node
	// whose kubelet has not admitted it yet.
	ReasonWaitingForKubelet   = "WaitingForKubelet"
	ReasonUnschedulable       = "Unschedulable"
	ReasonReservationFailed   = "ReservationFailed"
	ReasonReservationConflict = "ReservationConflict"
	// ReasonInvalidPlacement: the API server refused the reservation Pod
	// built from spec.placement (the CRD cannot check every Pod API rule).
	ReasonInvalidPlacement = "InvalidPlacement"
	// ReasonReservationRefused: the API server refused to create the
	// reservation Pod for another reason (admission: a missing
	// ServiceAccount, a quota); retried.
	ReasonReservationRefused = "ReservationRefused"
	ReasonNodeNameRequired   = "NodeNameRequired"
	// ReasonWaitingForTemplate: a templated Bottle's BottleTemplate does
	// not exist, so its reservation cannot be sized yet.
	ReasonWaitingForTemplate   = "WaitingForTemplate"
	ReasonNodeAgentUnavailable = "NodeAgentUnavailable"
	ReasonWaitingForNodeAgent  = "WaitingForNodeAgent"

	// ReasonWaitingForReservation: the agent will not create the machine
	// until the reservation Pod is bound to its node (Scheduled=True).
	ReasonWaitingForReservation = "WaitingForReservation"
)

// Reasons for what real smolvm does that its CLI contract did not say.
const (
	// ReasonAllowHostUnresolvable (MachineReady, Stalled): smolvm resolves
	// spec.network.allowHosts on the node when it creates the machine, and
	// one did not resolve; the message names it. Looked at again now and
	// then: a DNS record can appear.
	ReasonAllowHostUnresolvable = "AllowHostUnresolvable"
	// ReasonMachineUnreachable (MachineReady): smolvm reports the machine
	// unreachable (its guest agent missed a ping); the agent restarts it
	// only if that lasts.
	ReasonMachineUnreachable = "MachineUnreachable"
	// ReasonMachineResized (MachineUpToDate, event): spec.resources changed
	// and the machine is stopped, updated (`machine update`) and started
	// again, keeping its disk.
	ReasonMachineResized = "MachineResized"
)

// ClusterReason reports whether reason is one the cluster controller writes
// into Ready while no agent speaks for the Bottle (not placed yet, or its
// node's agent is not live). An agent that finds such a Ready writes its
// own status at once, whatever it wrote before.
func ClusterReason(reason string) bool {
	switch reason {
	case ReasonWaitingForScheduler, ReasonUnschedulable, ReasonReservationFailed, ReasonReservationConflict, ReasonInvalidPlacement,
		ReasonReservationRefused, ReasonNodeNameRequired, ReasonNodeAgentUnavailable, ReasonWaitingForNodeAgent,
		ReasonWaitingForTemplate:
		return true
	}
	return false
}

// ReasonEgressRefused is the reason of the Warning event that reports what
// a machine's egress allowlist refused (one per destination per read).
const ReasonEgressRefused = "EgressRefused"
