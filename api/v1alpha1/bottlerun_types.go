package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ConcurrencyPolicy says what a run does when another run of the same
// Bottle is active.
// +kubebuilder:validation:Enum=Forbid;Queue
type ConcurrencyPolicy string

const (
	// ConcurrencyQueue waits (Pending) until the Bottle's active run
	// ends; queued runs start in creation order.
	ConcurrencyQueue ConcurrencyPolicy = "Queue"
	// ConcurrencyForbid fails the run (reason ConcurrencyForbidden) when
	// another run of the Bottle is active when it would start.
	ConcurrencyForbid ConcurrencyPolicy = "Forbid"
)

// BottleRunSpec is one command run once in a Bottle. The whole spec is
// immutable: a run is a record of what ran; a retry is a new BottleRun (or
// the retry annotation, which the run's agent honours only for a run that
// never started).
// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec is immutable: a BottleRun records one run; create a new BottleRun to run again"
// +kubebuilder:validation:XValidation:rule="has(self.bottleRef) != has(self.templateRef)",message="exactly one of bottleRef (run in an existing Bottle) or templateRef (run in a fresh Bottle forked from a BottleTemplate) must be set"
// +kubebuilder:validation:XValidation:rule="(has(self.command) && size(self.command) > 0) != has(self.script)",message="exactly one of command (an argv) or script (a POSIX shell script) must be set"
// +kubebuilder:validation:XValidation:rule="!has(self.outputs) || self.outputs.all(o, self.outputs.exists_one(p, p.name == o.name))",message="outputs names must be unique",fieldPath=".outputs"
type BottleRunSpec struct {
	// BottleRef names the Bottle, in the run's namespace, to run in. The
	// Bottle must be Ready for the run to start.
	// +optional
	BottleRef *BottleReference `json:"bottleRef,omitempty"`

	// TemplateRef names the BottleTemplate, in the run's namespace, to fork
	// a fresh Bottle from for this run. The Bottle is owned by the run and
	// deleted when the run ends (outputs are kept in the run's status).
	// +optional
	TemplateRef *TemplateReference `json:"templateRef,omitempty"`

	// Command is the argv run in the guest, without a shell.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=65536
	// +kubebuilder:validation:items:XValidation:rule="!self.contains('\\x00')",message="command arguments must not contain a NUL byte"
	Command []string `json:"command,omitempty"`

	// Script is a POSIX shell script, at most 64 KiB, with no NUL byte. It
	// reaches the guest on stdin, never on a command line.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=65536
	// +kubebuilder:validation:XValidation:rule="!self.contains('\\x00')",message="script must not contain a NUL byte"
	Script *string `json:"script,omitempty"`

	// User is the guest user the run runs as; the Bottle's execUser when
	// empty.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z_][a-z0-9_-]{0,31}$')",message="user must be a POSIX user name matching ^[a-z_][a-z0-9_-]{0,31}$"
	User string `json:"user,omitempty"`

	// Env is the run's environment, on top of the Bottle's spec.env (a
	// name set here wins). Values from Secrets never appear in status,
	// events, logs or any process's argv.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=64
	Env []EnvVar `json:"env,omitempty"`

	// TimeoutSeconds bounds the run's time once started; the run then fails
	// with reason TimedOut and exit code 124.
	// +optional
	// +kubebuilder:default=3600
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=86400
	TimeoutSeconds int32 `json:"timeoutSeconds,omitempty"`

	// Outputs are guest files read after the command ends (whatever its
	// exit code) and kept in status.outputs, each bounded by maxBytes, so
	// a review or a patch outlives the sandbox.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=8
	Outputs []RunOutput `json:"outputs,omitempty"`

	// TTLSecondsAfterFinished deletes the run that long after it finished
	// (Succeeded or Failed). Unset keeps it.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=31536000
	TTLSecondsAfterFinished *int32 `json:"ttlSecondsAfterFinished,omitempty"`

	// ConcurrencyPolicy is what happens when another run of the same
	// Bottle is active: Queue (the default) waits for it, Forbid fails.
	// +optional
	// +kubebuilder:default=Queue
	ConcurrencyPolicy ConcurrencyPolicy `json:"concurrencyPolicy,omitempty"`
}

// BottleReference names a Bottle in the referrer's namespace.
type BottleReference struct {
	// Name of the Bottle.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="bottleRef.name must be a Bottle name: a DNS subdomain"
	Name string `json:"name"`
}

// RunOutput is one guest file whose content is kept with the run's result.
type RunOutput struct {
	// Name identifies the output in status (a DNS label).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="output name must be a DNS label: lowercase letters, digits and '-'"
	Name string `json:"name"`

	// Path is the absolute guest path, read as the run's user.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	// +kubebuilder:validation:XValidation:rule="self.startsWith('/')",message="path must be an absolute path starting with '/'"
	// +kubebuilder:validation:XValidation:rule="!self.matches('(^|/)\\\\.\\\\.(/|$)')",message="path must not contain a '..' segment"
	// +kubebuilder:validation:XValidation:rule="!self.matches('[\\\\x00-\\\\x1f\\\\x7f]')",message="path must not contain control characters"
	Path string `json:"path"`

	// MaxBytes bounds how much of the file is kept (its first maxBytes);
	// all outputs together stay within 128 KiB of status.
	// +optional
	// +kubebuilder:default=16384
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65536
	MaxBytes int32 `json:"maxBytes,omitempty"`
}

// RunPhase is a one-word summary of a run.
// +kubebuilder:validation:Enum=Pending;Running;Succeeded;Failed
type RunPhase string

const (
	RunPhasePending   RunPhase = "Pending"
	RunPhaseRunning   RunPhase = "Running"
	RunPhaseSucceeded RunPhase = "Succeeded"
	RunPhaseFailed    RunPhase = "Failed"
)

// Run conditions, as a Job's: Complete=True once it exited 0, Failed=True
// once it failed; `kubectl wait --for=condition=Complete` waits on the
// first. Reconciling (kstatus) is True while it is Pending or Running.
const (
	ConditionComplete = "Complete"
	ConditionFailed   = "Failed"
)

// Run reasons: in status.reason and the Failed condition.
const (
	// ReasonRunSucceeded: the command exited 0.
	ReasonRunSucceeded = "Succeeded"
	// ReasonRunNonZeroExit: the command exited with another code.
	ReasonRunNonZeroExit = "NonZeroExit"
	// ReasonRunTimedOut: the command outlived timeoutSeconds and was killed.
	ReasonRunTimedOut = "TimedOut"
	// ReasonRunCancelled: the run was deleted (or its Bottle deleted or
	// stopped) while it ran.
	ReasonRunCancelled = "Cancelled"
	// ReasonRunLost: the run was started, and its agent stopped before it
	// recorded how it ended. It is never started again by itself.
	ReasonRunLost = "Lost"
	// ReasonRunConcurrencyForbidden: concurrencyPolicy Forbid, and another
	// run of the Bottle was active.
	ReasonRunConcurrencyForbidden = "ConcurrencyForbidden"
	// ReasonRunRefused: the command could not be started as it is (smolvm
	// or the driver refused it); it never will be.
	ReasonRunRefused = "Refused"
	// ReasonRunWaiting: Pending, waiting for the Bottle (to exist, be
	// scheduled, be Ready) or for the run ahead of it (Queue).
	ReasonRunWaiting = "Waiting"
	// ReasonRunStarted: Running.
	ReasonRunStarted = "Running"
)

// BottleRunStatus is a run's result, recorded as the step ledger records a
// step: started is written before the command starts, so a run whose end
// is unknown is marked Lost, never run twice.
type BottleRunStatus struct {
	// Phase is Pending, Running, Succeeded or Failed.
	// +optional
	Phase RunPhase `json:"phase,omitempty"`

	// ObservedGeneration is the generation the status was computed for.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Complete, Failed (as a Job's) and Reconciling (kstatus).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// BottleName is the Bottle the run runs in (bottleRef, or the fresh
	// Bottle made from templateRef).
	// +optional
	BottleName string `json:"bottleName,omitempty"`

	// NodeName is the node whose agent ran the run and keeps its log.
	// +optional
	NodeName string `json:"nodeName,omitempty"`

	// User the run ran as.
	// +optional
	User string `json:"user,omitempty"`

	// Reason is why the run is where it is: Succeeded, NonZeroExit,
	// TimedOut, Cancelled, Lost, ConcurrencyForbidden, Refused, Waiting.
	// +optional
	Reason string `json:"reason,omitempty"`

	// Message says it in words.
	// +optional
	Message string `json:"message,omitempty"`

	// ExitCode of the command; absent while it runs and when it has none
	// (cancelled, lost). 124 after a timeout.
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

	// StartedAt is when the command was started (written before it
	// starts).
	// +optional
	StartedAt *metav1.MicroTime `json:"startedAt,omitempty"`
	// FinishedAt is when the run ended.
	// +optional
	FinishedAt *metav1.MicroTime `json:"finishedAt,omitempty"`

	// LastHandledRetry is the last value of the agents.bot-bottle.dev/retry
	// annotation the agent acted on: a new value on a finished run runs it
	// again, once (the previous result is replaced).
	// +optional
	LastHandledRetry string `json:"lastHandledRetry,omitempty"`

	// Outputs are the contents of spec.outputs, read after the command.
	// +optional
	// +listType=map
	// +listMapKey=name
	Outputs []RunOutputResult `json:"outputs,omitempty"`
}

// RunOutputResult is one output's content.
type RunOutputResult struct {
	// Name of the output.
	Name string `json:"name"`
	// Content is the file's first maxBytes, as text (invalid UTF-8 is
	// replaced).
	// +optional
	Content string `json:"content,omitempty"`
	// Bytes is the file's size.
	// +optional
	Bytes int64 `json:"bytes,omitempty"`
	// Truncated is true when content holds only the file's beginning.
	// +optional
	Truncated bool `json:"truncated,omitempty"`
	// Error says why the file could not be read (missing, unreadable).
	// +optional
	Error string `json:"error,omitempty"`
}

// BottleRun runs one command once in a Bottle and records its result, as
// a Job does for a Pod.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=brun,categories=all
// +kubebuilder:printcolumn:name="Bottle",type=string,JSONPath=`.status.bottleName`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Exit",type=integer,JSONPath=`.status.exitCode`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Message",type=string,priority=1,JSONPath=`.status.message`
type BottleRun struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec BottleRunSpec `json:"spec"`
	// +optional
	// +kubebuilder:default={observedGeneration: 0}
	Status BottleRunStatus `json:"status,omitempty"`
}

// BottleRunList is a list of BottleRuns.
// +kubebuilder:object:root=true
type BottleRunList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BottleRun `json:"items"`
}

// Finished says whether the run has ended (Succeeded or Failed).
func (r *BottleRun) Finished() bool {
	return r.Status.Phase == RunPhaseSucceeded || r.Status.Phase == RunPhaseFailed
}

// TargetBottle is the Bottle the run runs in: bottleRef's, or the fresh one
// recorded in status.
func (r *BottleRun) TargetBottle() string {
	if r.Spec.BottleRef != nil {
		return r.Spec.BottleRef.Name
	}
	return r.Status.BottleName
}

// FreshBottleName is the name of the Bottle a templateRef run makes.
func (r *BottleRun) FreshBottleName() string {
	n := "run-" + r.Name
	if len(n) > 253 {
		n = n[:253]
	}
	return n
}

// RunLogStep is the key of a run's output in the node's log store (keyed
// by the run's UID).
const RunLogStep = "run"

// BottleRunResource is the BottleRun's resource name.
const BottleRunResource = "bottleruns"
