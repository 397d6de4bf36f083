package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RunState is the desired power state of a Bottle's machine. A string enum
// rather than a bool so it can grow (e.g. Suspended) without a new field.
// +kubebuilder:validation:Enum=Running;Stopped
type RunState string

const (
	RunStateRunning RunState = "Running"
	RunStateStopped RunState = "Stopped"
)

// RecreatePolicy is whether a Bottle's machine may be deleted and created
// again to apply a spec change smolvm cannot apply in place. The fields a
// machine is made with, and which of them only a new machine can take, are
// one table: machineFields in controllers/agent/machine_fields.go.
// +kubebuilder:validation:Enum=Never;OnChange
type RecreatePolicy string

const (
	// RecreateNever keeps the machine (and its disk); the change waits,
	// reported by MachineUpToDate=False.
	RecreateNever RecreatePolicy = "Never"
	// RecreateOnChange deletes the machine, losing its disk, and creates
	// and provisions a new one.
	RecreateOnChange RecreatePolicy = "OnChange"
)

// BottleSpec is the desired state of a Bottle: one smolvm microVM that
// sandboxes a coding agent.
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.nodeName) || (has(self.nodeName) && self.nodeName == oldSelf.nodeName)",message="nodeName is set once: it may be set while empty, but never changed or removed afterwards",fieldPath=".nodeName"
// +kubebuilder:validation:XValidation:rule="has(self.machineName) == has(oldSelf.machineName) && (!has(self.machineName) || self.machineName == oldSelf.machineName)",message="machineName is immutable: it cannot be added, changed or removed after creation",fieldPath=".machineName"
// +kubebuilder:validation:XValidation:rule="has(self.templateRef) == has(oldSelf.templateRef) && (!has(self.templateRef) || self.templateRef.name == oldSelf.templateRef.name)",message="templateRef is immutable: it cannot be added, changed or removed after creation (a Bottle is forked from its template once)",fieldPath=".templateRef"
// +kubebuilder:validation:XValidation:rule="has(self.templateRef) || has(self.image)",message="image is required: set spec.image to the OCI image the machine boots, or spec.templateRef to the BottleTemplate to fork it from",fieldPath=".image"
// +kubebuilder:validation:XValidation:rule="!has(self.templateRef) || !has(self.image)",message="image is the template's: a Bottle with spec.templateRef boots its BottleTemplate's image; remove spec.image (or edit the template)",fieldPath=".image"
// +kubebuilder:validation:XValidation:rule="!has(self.templateRef) || !has(self.resources)",message="resources are the template's: a Bottle with spec.templateRef is a clone of its BottleTemplate's machine, with its CPUs and memory; remove spec.resources (or edit the template)",fieldPath=".resources"
// +kubebuilder:validation:XValidation:rule="!has(self.templateRef) || !has(self.network)",message="network is the template's: a Bottle with spec.templateRef is a clone of its BottleTemplate's machine, with its egress allowlist; remove spec.network (or edit the template)",fieldPath=".network"
type BottleSpec struct {
	// NodeName is the node whose agent runs this Bottle's machine. Leave it
	// empty to let kube-scheduler choose (through the Bottle's reservation
	// Pod, within spec.placement); the cluster controller then records the
	// chosen node here. Set once: it may be set while empty, and never
	// changed or removed afterwards.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="nodeName must be a DNS subdomain: lowercase letters, digits, '-' and '.'"
	NodeName string `json:"nodeName,omitempty"`

	// Placement constrains where kube-scheduler may place a Bottle that
	// names no node, in the Pod API's own terms. It is read until the
	// Bottle is bound to a node; changing it afterwards has no effect.
	// +optional
	Placement *Placement `json:"placement,omitempty"`

	// MachineName is the smolvm machine name: at most 128 characters of
	// [A-Za-z0-9_-], starting with a letter or digit, without a trailing '-'
	// or '--'. Immutable once set. When empty the controller derives a name
	// and records it in status.machineName.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:XValidation:rule="self.matches('^[A-Za-z0-9][A-Za-z0-9_-]*$')",message="machineName must start with a letter or digit and contain only letters, digits, '_' and '-'"
	// +kubebuilder:validation:XValidation:rule="!self.endsWith('-')",message="machineName must not end with '-'"
	// +kubebuilder:validation:XValidation:rule="!self.contains('--')",message="machineName must not contain '--'"
	MachineName string `json:"machineName,omitempty"`

	// TemplateRef names the BottleTemplate, in the Bottle's namespace, whose
	// golden machine this Bottle is forked from. The template then owns
	// image, resources and network (setting them here is rejected); this
	// Bottle's own files, env, prompt and steps are applied after the fork.
	// Immutable.
	// +optional
	TemplateRef *TemplateReference `json:"templateRef,omitempty"`

	// MachineSpec is the machine and its provisioning. image is required
	// unless templateRef is set.
	MachineSpec `json:",inline"`

	// RunState is the desired power state. Stopped keeps the machine's disk.
	// +optional
	// +kubebuilder:default=Running
	RunState RunState `json:"runState,omitempty"`
	// RecreatePolicy says what happens when image or network changes: only
	// a new machine can take them. Never (the default) keeps the machine and
	// reports the change as not applied; OnChange deletes the machine,
	// losing its disk, and provisions a new one. A change of resources alone
	// is applied to the machine (stopped, updated and started again, its
	// disk kept).
	// +optional
	// +kubebuilder:default=Never
	RecreatePolicy RecreatePolicy `json:"recreatePolicy,omitempty"`

	// Lifecycle stops an idle Bottle's machine and deletes a Bottle after a
	// retention period. Unset: the Bottle runs until told otherwise.
	// +optional
	Lifecycle *Lifecycle `json:"lifecycle,omitempty"`
}

// Lifecycle is a Bottle's idle stop and retention.
type Lifecycle struct {
	// StopAfterIdle stops the machine (disk kept, spec.runState unchanged,
	// status.lifecycle.idleStoppedAt set) once no session (exec, attach,
	// cp), provisioning step or BottleRun has used it for that long, as the
	// node agent measures. A session or run on the Bottle starts it again
	// and waits for it. A Go duration of at least 1s, e.g. 30m.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s')",message="stopAfterIdle must be a duration of at least 1s, such as 30m"
	StopAfterIdle *metav1.Duration `json:"stopAfterIdle,omitempty"`

	// DeleteAfter deletes the Bottle that long after its machine was
	// stopped for idleness (with stopAfterIdle), or after its creation
	// (without). A Go duration of at least 1s, e.g. 168h.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s')",message="deleteAfter must be a duration of at least 1s, such as 168h"
	DeleteAfter *metav1.Duration `json:"deleteAfter,omitempty"`
}

// TemplateReference names a BottleTemplate in the referrer's namespace.
type TemplateReference struct {
	// Name of the BottleTemplate.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="templateRef.name must be a BottleTemplate name: a DNS subdomain"
	Name string `json:"name"`
}

// Placement is where kube-scheduler may put a Bottle's reservation Pod, on
// top of the nodes that carry LabelKVMNode and have a live agent.
type Placement struct {
	// NodeSelector must match a node's labels for the Bottle to go there.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// Affinity is the reservation Pod's node, pod and anti-affinity.
	// +optional
	Affinity *corev1.Affinity `json:"affinity,omitempty"`

	// Tolerations let the Bottle go to nodes with matching taints.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`
}

// Resources sizes a machine.
type Resources struct {
	// CPUs is the number of virtual CPUs, at most 16: smolvm runs a VM
	// with at most 16 whatever it is asked (smolvm:src/data/resources.rs:79).
	// +optional
	// +kubebuilder:default=2
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=16
	CPUs int32 `json:"cpus,omitempty"`

	// MemoryMiB is the machine's memory in MiB.
	// +optional
	// +kubebuilder:default=4096
	// +kubebuilder:validation:Minimum=256
	// +kubebuilder:validation:Maximum=262144
	MemoryMiB int32 `json:"memoryMiB,omitempty"`
}

// Network is a machine's egress allowlist.
type Network struct {
	// AllowHosts are the host names the machine may reach (RFC 1123).
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:XValidation:rule="self.matches('^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\\\\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*$')",message="allowHosts entries must be RFC 1123 host names such as api.anthropic.com"
	AllowHosts []string `json:"allowHosts,omitempty"`

	// AllowCIDRs are the address ranges the machine may reach.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=43
	// +kubebuilder:validation:items:XValidation:rule="isCIDR(self)",message="allowCIDRs entries must be CIDRs such as 10.0.0.0/8 or 2001:db8::/32"
	AllowCIDRs []string `json:"allowCIDRs,omitempty"`
}

// KeyRef names one key of a ConfigMap or Secret in the Bottle's namespace.
type KeyRef struct {
	// Name of the ConfigMap or Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="name must be a DNS subdomain"
	Name string `json:"name"`

	// Key within the ConfigMap's or Secret's data.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[-._a-zA-Z0-9]+$')",message="key must consist of letters, digits, '-', '_' or '.'"
	Key string `json:"key"`
}

// ContentSource is where a file's content comes from: exactly one of inline,
// configMapKeyRef or secretKeyRef.
// +kubebuilder:validation:XValidation:rule="(has(self.inline) ? 1 : 0) + (has(self.configMapKeyRef) ? 1 : 0) + (has(self.secretKeyRef) ? 1 : 0) == 1",message="exactly one of inline, configMapKeyRef or secretKeyRef must be set"
type ContentSource struct {
	// Inline content, at most 64 KiB.
	// +optional
	// +kubebuilder:validation:MaxLength=65536
	Inline *string `json:"inline,omitempty"`

	// ConfigMapKeyRef reads the content from a ConfigMap key.
	// +optional
	ConfigMapKeyRef *KeyRef `json:"configMapKeyRef,omitempty"`

	// SecretKeyRef reads the content from a Secret key.
	// +optional
	SecretKeyRef *KeyRef `json:"secretKeyRef,omitempty"`
}

// EnvVar is one environment variable of the provisioning steps.
// +kubebuilder:validation:XValidation:rule="has(self.value) != has(self.valueFrom)",message="exactly one of value or valueFrom must be set"
type EnvVar struct {
	// Name is a C identifier.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XValidation:rule="self.matches('^[A-Za-z_][A-Za-z0-9_]*$')",message="env name must be a C identifier: letters, digits and '_', not starting with a digit"
	Name string `json:"name"`

	// Value is a literal value.
	// +optional
	// +kubebuilder:validation:MaxLength=32768
	Value *string `json:"value,omitempty"`

	// ValueFrom reads the value from a Secret or ConfigMap key.
	// +optional
	ValueFrom *EnvVarSource `json:"valueFrom,omitempty"`
}

// EnvVarSource is exactly one of secretKeyRef or configMapKeyRef.
// +kubebuilder:validation:XValidation:rule="has(self.secretKeyRef) != has(self.configMapKeyRef)",message="exactly one of secretKeyRef or configMapKeyRef must be set"
type EnvVarSource struct {
	// +optional
	SecretKeyRef *KeyRef `json:"secretKeyRef,omitempty"`
	// +optional
	ConfigMapKeyRef *KeyRef `json:"configMapKeyRef,omitempty"`
}

// File is copied into the guest with a mode and an owner.
// +kubebuilder:validation:XValidation:rule="(has(self.inline) ? 1 : 0) + (has(self.configMapKeyRef) ? 1 : 0) + (has(self.secretKeyRef) ? 1 : 0) == 1",message="exactly one of inline, configMapKeyRef or secretKeyRef must be set"
type File struct {
	// Path is the absolute guest path.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	// +kubebuilder:validation:XValidation:rule="self.startsWith('/')",message="path must be an absolute path starting with '/'"
	// +kubebuilder:validation:XValidation:rule="!self.matches('(^|/)\\\\.\\\\.(/|$)')",message="path must not contain a '..' segment"
	// +kubebuilder:validation:XValidation:rule="!self.matches('[\\\\x00-\\\\x1f\\\\x7f]')",message="path must not contain control characters"
	// +kubebuilder:validation:XValidation:rule="!self.contains('//') && !self.contains('/./') && !self.endsWith('/.') && !self.endsWith('/')",message="path must be canonical: no '//', no '.' segment, no trailing '/'"
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('/var/lib/.bottle-staged-')",message="path must not start with /var/lib/.bottle-staged-: the agent stages copies there"
	Path string `json:"path"`

	// Mode is the file's permission bits, 0 to 0777 (decimal 0 to 511).
	// +optional
	// +kubebuilder:default=420
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=511
	Mode *int32 `json:"mode,omitempty"`

	// Owner is the guest user that owns the file; root when empty.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z_][a-z0-9_-]{0,31}$')",message="owner must be a POSIX user name matching ^[a-z_][a-z0-9_-]{0,31}$"
	Owner string `json:"owner,omitempty"`

	// Inline content, at most 64 KiB.
	// +optional
	// +kubebuilder:validation:MaxLength=65536
	Inline *string `json:"inline,omitempty"`

	// ConfigMapKeyRef reads the content from a ConfigMap key.
	// +optional
	ConfigMapKeyRef *KeyRef `json:"configMapKeyRef,omitempty"`

	// SecretKeyRef reads the content from a Secret key.
	// +optional
	SecretKeyRef *KeyRef `json:"secretKeyRef,omitempty"`
}

// ProvisionStep is one script run inside the guest.
type ProvisionStep struct {
	// Name identifies the step (a DNS label).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="step name must be a DNS label: lowercase letters, digits and '-'"
	Name string `json:"name"`

	// Script is a POSIX shell script, at most 64 KiB, with no NUL byte (a
	// shell cannot carry one).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=65536
	// +kubebuilder:validation:XValidation:rule="!self.contains('\\x00')",message="script must not contain a NUL byte"
	Script string `json:"script"`

	// User overrides spec.execUser for this step.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z_][a-z0-9_-]{0,31}$')",message="user must be a POSIX user name matching ^[a-z_][a-z0-9_-]{0,31}$"
	User string `json:"user,omitempty"`

	// TimeoutSeconds bounds the step's run time.
	// +optional
	// +kubebuilder:default=600
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=86400
	TimeoutSeconds int32 `json:"timeoutSeconds,omitempty"`
}

// Bottle is one smolvm microVM that sandboxes a coding agent, run by the agent
// on spec.nodeName.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=btl,categories=all
// +kubebuilder:selectablefield:JSONPath=`.spec.nodeName`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=`.spec.nodeName`
// +kubebuilder:printcolumn:name="Machine",type=string,JSONPath=`.status.machineName`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Template",type=string,priority=1,JSONPath=`.spec.templateRef.name`
// +kubebuilder:printcolumn:name="Reason",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Message",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=="Ready")].message`
type Bottle struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec BottleSpec `json:"spec"`
	// Status defaults to observedGeneration 0, so a Bottle no agent has
	// looked at yet reads as in progress (kstatus: generation mismatch), not
	// as Current.
	// +optional
	// +kubebuilder:default={observedGeneration: 0}
	Status BottleStatus `json:"status,omitempty"`
}

// BottleList is a list of Bottles.
// +kubebuilder:object:root=true
type BottleList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Bottle `json:"items"`
}
