package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Phase is a one-word summary of where a Bottle is in its lifecycle. The
// conditions carry the detail; the phase exists for `kubectl get`.
// +kubebuilder:validation:Enum=Pending;Creating;Starting;CopyingFiles;Provisioning;Ready;Stopped;Failed;Deleting;Unknown
type Phase string

const (
	PhasePending      Phase = "Pending"
	PhaseCreating     Phase = "Creating"
	PhaseStarting     Phase = "Starting"
	PhaseCopyingFiles Phase = "CopyingFiles"
	PhaseProvisioning Phase = "Provisioning"
	PhaseReady        Phase = "Ready"
	PhaseStopped      Phase = "Stopped"
	PhaseFailed       Phase = "Failed"
	PhaseDeleting     Phase = "Deleting"
	// PhaseUnknown: the Bottle's node has no live agent, so nothing reports
	// on its machine (the cluster controller's word, as a Pod's Unknown).
	PhaseUnknown Phase = "Unknown"
)

// BottleStatus is the observed state of a Bottle.
type BottleStatus struct {
	// Phase summarises the lifecycle for humans.
	// +optional
	Phase Phase `json:"phase,omitempty"`

	// ObservedGeneration is the generation the status was computed for.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Ready, MachineReady, MachineUpToDate, FilesReady,
	// Provisioned, Reconciling, Stalled (the agent's), and Scheduled (the
	// cluster controller's).
	// +optional
	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"`

	// NodeName is the node whose agent owns the machine.
	// +optional
	NodeName string `json:"nodeName,omitempty"`

	// MachineName is the smolvm machine actually used.
	// +optional
	MachineName string `json:"machineName,omitempty"`

	// Template is where a templated Bottle's machine came from: set once
	// the machine is forked, and kept (a template edit makes a new golden;
	// this Bottle keeps the one it came from).
	// +optional
	Template *TemplateOrigin `json:"template,omitempty"`

	// MachineState is the last state smolvm reported (created, running, stopped, failed, ...).
	// +optional
	MachineState string `json:"machineState,omitempty"`

	// Files are the files copied into the guest: digests, never content.
	// +optional
	// +listType=map
	// +listMapKey=path
	Files []FileStatus `json:"files,omitempty"`

	// LastHandledRetry is the last value of the agents.bot-bottle.dev/retry
	// annotation the agent acted on.
	// +optional
	LastHandledRetry string `json:"lastHandledRetry,omitempty"`

	// ExecResults are the provisioning steps' results, in spec order. A
	// running step has startedAt and no finishedAt.
	// +optional
	// +listType=map
	// +listMapKey=name
	ExecResults []ExecResult `json:"execResults,omitempty"`

	// EgressRefusals are the destinations the machine's egress allowlist
	// refused, most recently refused first, at most 16: read from smolvm
	// once per resync period while the machine runs. `kubectl bottle
	// egress` lists them with the spec.network patch that would allow
	// them.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:XValidation:rule="self.all(a, self.exists_one(b, b.operation == a.operation && b.destination == a.destination))",message="egressRefusals holds one entry per operation and destination"
	EgressRefusals []EgressRefusal `json:"egressRefusals,omitempty"`

	// Lifecycle is the idle stop's record (spec.lifecycle).
	// +optional
	Lifecycle *LifecycleStatus `json:"lifecycle,omitempty"`
}

// LifecycleStatus records an idle stop.
type LifecycleStatus struct {
	// IdleStoppedAt is when the agent stopped the machine for idleness; it
	// stays stopped (phase Stopped, Ready reason IdleStopped) until a
	// session or run starts it again, which clears this.
	// +optional
	IdleStoppedAt *metav1.Time `json:"idleStoppedAt,omitempty"`
}

// FileStatus records one file copied into the guest.
type FileStatus struct {
	// Path is the guest path.
	Path string `json:"path"`
	// SHA256 is the hex SHA-256 of the content copied. For content from a
	// Secret it is an HMAC-SHA256 keyed with the install's digest key, so
	// that readers of status cannot test guesses of a secret against it.
	SHA256 string `json:"sha256"`
	// Bytes is the content's size.
	Bytes int64 `json:"bytes"`
	// Mode is the permission bits the file was copied with.
	// +optional
	Mode int32 `json:"mode,omitempty"`
	// Owner is the guest user that owns the file; empty for root.
	// +optional
	Owner string `json:"owner,omitempty"`
	// CopiedAt is when the file was last copied.
	// +optional
	CopiedAt *metav1.Time `json:"copiedAt,omitempty"`
}

// ExecResult is the outcome of one provisioning step.
type ExecResult struct {
	// Name of the step.
	Name string `json:"name"`
	// User the step ran as.
	// +optional
	User string `json:"user,omitempty"`
	// ExitCode of the script; absent while it runs.
	// +optional
	ExitCode *int32 `json:"exitCode,omitempty"`
	// Stdout is the tail of the standard output.
	// +optional
	Stdout string `json:"stdout,omitempty"`
	// Stderr is the tail of the standard error.
	// +optional
	Stderr string `json:"stderr,omitempty"`
	// StdoutBytes is the total size of the standard output.
	// +optional
	StdoutBytes int64 `json:"stdoutBytes,omitempty"`
	// StderrBytes is the total size of the standard error.
	// +optional
	StderrBytes int64 `json:"stderrBytes,omitempty"`
	// Truncated is true when stdout or stderr holds only a tail.
	// +optional
	Truncated bool `json:"truncated,omitempty"`
	// StartedAt is when the step started (microsecond precision).
	// +optional
	StartedAt *metav1.MicroTime `json:"startedAt,omitempty"`
	// FinishedAt is when the step finished (microsecond precision).
	// +optional
	FinishedAt *metav1.MicroTime `json:"finishedAt,omitempty"`
	// ScriptSHA256 identifies the script the step ran.
	// +optional
	ScriptSHA256 string `json:"scriptSHA256,omitempty"`
	// TimeoutSeconds is the timeout the step ran with: a failed step whose
	// timeoutSeconds changes runs again.
	// +optional
	TimeoutSeconds int32 `json:"timeoutSeconds,omitempty"`
	// Error is set when the step could not run to an exit code: "timed out
	// after Ns", or "cancelled: WHY" (deleted, stopped, step edited).
	// +optional
	Error string `json:"error,omitempty"`
}
