package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// BottleTemplateResource is the BottleTemplate's resource name in URLs and
// RBAC rules.
const BottleTemplateResource = "bottletemplates"

// PoolPolicy says which nodes keep a golden machine of a template.
// +kubebuilder:validation:Enum=OnDemand;Selected
type PoolPolicy string

const (
	// PoolOnDemand: the nodes pool.nodeSelector matches keep a golden ahead
	// of any Bottle, and any other node a Bottle of the template lands on
	// builds one when that Bottle arrives (the Bottle waits for it) and
	// keeps it, with its held slots, until the template changes or goes.
	PoolOnDemand PoolPolicy = "OnDemand"
	// PoolSelected: only the nodes pool.nodeSelector matches keep a golden,
	// and the template's Bottles are placed only on them.
	PoolSelected PoolPolicy = "Selected"
)

// MaxHeldSlots bounds pool.heldSlots (the CRD's Maximum marker spells the
// same number): each held slot is a booted clone parked on the node.
const MaxHeldSlots = 64

// BottleTemplateSpec is a machine provisioned once per node (its golden
// machine) and how warm it is kept there. Bottles naming it in
// spec.templateRef are forks of their node's golden.
// +kubebuilder:validation:XValidation:rule="has(self.image)",message="image is required: set spec.image to the OCI image the template's golden machine boots",fieldPath=".image"
// +kubebuilder:validation:XValidation:rule="!has(self.files) || self.files.all(f, !has(f.secretKeyRef))",message="files[].secretKeyRef is not allowed on a template: its files are in its golden machine and in every Bottle forked from it; give each Bottle its Secret in its own spec.files or spec.env",fieldPath=".files"
// +kubebuilder:validation:XValidation:rule="!has(self.prompt) || !has(self.prompt.secretKeyRef)",message="prompt.secretKeyRef is not allowed on a template: its prompt is in its golden machine and in every Bottle forked from it; use inline or configMapKeyRef, or give each Bottle its own prompt",fieldPath=".prompt"
type BottleTemplateSpec struct {
	// MachineSpec is the golden machine and its provisioning: image
	// (required), resources, network, execUser, env, files, prompt and
	// provision steps. Every Bottle of the template inherits the result.
	MachineSpec `json:",inline"`

	// Pool is which nodes keep a golden of this template, and how many
	// booted clones each keeps ready for the next Bottles.
	// +optional
	// +kubebuilder:default={}
	Pool TemplatePool `json:"pool,omitempty"`
}

// TemplatePool is where and how warm a template is kept.
// +kubebuilder:validation:XValidation:rule="!has(self.policy) || self.policy != 'Selected' || (has(self.nodeSelector) && size(self.nodeSelector) > 0)",message="policy Selected needs a non-empty pool.nodeSelector: it names the only nodes that keep a golden of this template and run its Bottles",fieldPath=".nodeSelector"
type TemplatePool struct {
	// NodeSelector matches the labels of the nodes (among those an agent
	// runs on) that keep a golden of this template ahead of any Bottle, as a
	// Pod's nodeSelector does. Empty: no node does ahead of time.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// Policy is OnDemand (the default: selected nodes keep a golden ahead
	// of time, and any node a Bottle of this template lands on builds one
	// when it first needs it) or Selected (only the selected nodes keep a
	// golden, and the template's Bottles are placed only there).
	// +optional
	// +kubebuilder:default=OnDemand
	Policy PoolPolicy `json:"policy,omitempty"`

	// HeldSlots is how many booted clones of its golden each node keeps
	// parked (smolvm `machine fork --hold`) and replaces as Bottles claim
	// them. A Bottle that finds none free is forked on demand.
	// +optional
	// +kubebuilder:default=0
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=64
	HeldSlots int32 `json:"heldSlots,omitempty"`
}

// BottleTemplate is a machine provisioned once per node and forked for
// each Bottle that names it in spec.templateRef.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=btpl
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Golden Nodes",type=integer,JSONPath=`.status.goldenNodes`
// +kubebuilder:printcolumn:name="Free Slots",type=integer,JSONPath=`.status.freeSlots`
// +kubebuilder:printcolumn:name="Held",type=integer,JSONPath=`.spec.pool.heldSlots`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Image",type=string,priority=1,JSONPath=`.spec.image`
// +kubebuilder:printcolumn:name="Policy",type=string,priority=1,JSONPath=`.spec.pool.policy`
// +kubebuilder:printcolumn:name="Reason",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Message",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=="Ready")].message`
type BottleTemplate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec BottleTemplateSpec `json:"spec"`
	// Status defaults to observedGeneration 0, so a template nothing has
	// reported on yet reads as in progress (kstatus), not as Current.
	// +optional
	// +kubebuilder:default={observedGeneration: 0}
	Status BottleTemplateStatus `json:"status,omitempty"`
}

// BottleTemplateList is a list of BottleTemplates.
// +kubebuilder:object:root=true
type BottleTemplateList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BottleTemplate `json:"items"`
}
