package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// BottleTemplateStatus is the observed state of a BottleTemplate. It has
// two kinds of writer, each owning its own fields through server-side
// apply:
//
//   - each node's agent applies its own entry of nodes[] (and nothing else)
//     under FieldManagerAgentOn(node), so agents never conflict and an
//     agent that drops its entry removes only its own;
//   - the cluster controller (FieldManagerCluster) applies the summary
//     built from nodes[]: observedGeneration, conditions, goldenNodes and
//     freeSlots.
type BottleTemplateStatus struct {
	// ObservedGeneration is the template generation the summary was
	// computed for.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Ready (some node has a Ready golden of the current
	// generation), Reconciling and Stalled (kstatus).
	// +optional
	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"`

	// GoldenNodes is the number of nodes whose golden of the current
	// generation is Ready.
	// +optional
	GoldenNodes int32 `json:"goldenNodes,omitempty"`

	// FreeSlots is the number of free held slots, over every node, of the
	// current generation's goldens.
	// +optional
	FreeSlots int32 `json:"freeSlots,omitempty"`

	// Nodes is each node's golden machine of this template, one entry per
	// node, written by that node's agent.
	// +optional
	// +listType=map
	// +listMapKey=nodeName
	Nodes []TemplateNodeStatus `json:"nodes,omitempty"`
}

// TemplateNodeStatus is one node's golden machine of a template: its
// provisioning ledger (the same a Bottle keeps) and its held slots.
type TemplateNodeStatus struct {
	// NodeName is the node whose agent writes this entry.
	// +required
	NodeName string `json:"nodeName"`

	// TemplateGeneration is the template generation this entry is for. A
	// golden serves every generation of the same machine (an edit of
	// spec.pool alone keeps it): the agent moves the entry to the current
	// generation on its next pass.
	// +optional
	TemplateGeneration int64 `json:"templateGeneration,omitempty"`

	// GoldenMachine is the golden's smolvm machine name.
	// +optional
	GoldenMachine string `json:"goldenMachine,omitempty"`

	// Phase is where the golden is: Pending, Creating, Starting,
	// CopyingFiles, Provisioning, Ready (forkable, slots can be held),
	// Failed or Deleting.
	// +optional
	Phase Phase `json:"phase,omitempty"`

	// Reason is why the golden is in its phase, in CamelCase (the reasons
	// a Bottle's Ready condition uses).
	// +optional
	Reason string `json:"reason,omitempty"`

	// Message says the same for humans.
	// +optional
	Message string `json:"message,omitempty"`

	// LastHandledRetry is the last value of the template's
	// agents.bot-bottle.dev/retry annotation this node's agent acted on.
	// +optional
	LastHandledRetry string `json:"lastHandledRetry,omitempty"`

	// Files are the files copied into the golden: digests, never content.
	// +optional
	// +listType=map
	// +listMapKey=path
	Files []FileStatus `json:"files,omitempty"`

	// ExecResults are the template's provisioning steps' results in the
	// golden, in spec order.
	// +optional
	// +listType=map
	// +listMapKey=name
	ExecResults []ExecResult `json:"execResults,omitempty"`

	// HeldSlots is the number of booted clones parked on the node (smolvm
	// `machine fork --hold`), claimed or not.
	// +optional
	HeldSlots int32 `json:"heldSlots,omitempty"`

	// FreeSlots is the number of held slots no Bottle has claimed yet.
	// +optional
	FreeSlots int32 `json:"freeSlots,omitempty"`

	// Clones is the number of Bottles' machines forked from this golden
	// that still exist.
	// +optional
	Clones int32 `json:"clones,omitempty"`

	// RetiredGoldens are the node's goldens of earlier machine specs, kept
	// only because clones of them still exist: each is deleted with its
	// last clone.
	// +optional
	// +listType=map
	// +listMapKey=machineName
	RetiredGoldens []RetiredGolden `json:"retiredGoldens,omitempty"`
}

// RetiredGolden is a golden of an earlier machine spec of the template
// that still has clones.
type RetiredGolden struct {
	// MachineName is the golden's smolvm machine name.
	// +required
	MachineName string `json:"machineName"`
	// TemplateGeneration is the generation it was made for.
	// +optional
	TemplateGeneration int64 `json:"templateGeneration,omitempty"`
	// Clones is the number of its clones that still exist.
	// +optional
	Clones int32 `json:"clones,omitempty"`
}

// TemplateOrigin is where a templated Bottle's machine came from.
type TemplateOrigin struct {
	// Name of the BottleTemplate.
	Name string `json:"name"`
	// Generation of the template when the Bottle was forked.
	// +optional
	Generation int64 `json:"generation,omitempty"`
	// GoldenMachine is the golden's smolvm machine name on the Bottle's
	// node.
	// +optional
	GoldenMachine string `json:"goldenMachine,omitempty"`
	// HeldSlot is true when the machine was a held slot released to this
	// Bottle, false when it was forked for it on demand.
	// +optional
	HeldSlot bool `json:"heldSlot,omitempty"`
	// Steps are the template's provisioning steps the machine inherited
	// from its golden (their results are in the template's status), in
	// order. This Bottle's own steps ran after them.
	// +optional
	// +listType=map
	// +listMapKey=name
	Steps []InheritedStep `json:"steps,omitempty"`
}

// InheritedStep identifies one template step a clone inherited.
type InheritedStep struct {
	// Name of the step.
	Name string `json:"name"`
	// ScriptSHA256 identifies the script the golden ran.
	// +optional
	ScriptSHA256 string `json:"scriptSHA256,omitempty"`
}
