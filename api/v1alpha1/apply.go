package v1alpha1

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// ApplyObject is the Bottle's identity alone, as an object to server-side
// apply: each writer (the agent, the cluster controller) adds only the
// fields it owns, so an apply never claims another writer's.
func (b *Bottle) ApplyObject() *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(GroupVersion.String())
	u.SetKind("Bottle")
	u.SetName(b.Name)
	u.SetNamespace(b.Namespace)
	return u
}

// StatusApplyObject is ApplyObject with st as its status, for an apply to
// the status subresource.
func (b *Bottle) StatusApplyObject(st *BottleStatus) (*unstructured.Unstructured, error) {
	raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(st)
	if err != nil {
		return nil, err
	}
	u := b.ApplyObject()
	u.Object["status"] = raw
	return u, nil
}

// agentConditions are the condition types the node agent writes (the
// Bottle controller, and nodecheck on a node that cannot run machines,
// both under FieldManagerAgent). Conditions are a map keyed by type, so
// another writer (the cluster controller owning its own condition types)
// and the agent never clobber each other.
var agentConditions = map[string]bool{
	ConditionReady: true, ConditionReconciling: true, ConditionStalled: true,
	ConditionMachineReady: true, ConditionFilesReady: true, ConditionProvisioned: true,
	ConditionMachineUpToDate: true,
}

// IsAgentCondition reports whether the node agent writes conditions of type typ.
func IsAgentCondition(typ string) bool { return agentConditions[typ] }

// AgentStatus is st without the conditions other writers own: the whole of
// what the agent applies. Every agent apply carries all of it, because an
// apply under FieldManagerAgent that leaves out a field the agent owns
// removes that field.
func AgentStatus(st *BottleStatus) *BottleStatus {
	mine := st.DeepCopy()
	mine.Conditions = nil
	for _, c := range st.Conditions {
		if IsAgentCondition(c.Type) {
			mine.Conditions = append(mine.Conditions, c)
		}
	}
	return mine
}

// AgentStatusApplyObject is the object every agent status apply sends:
// StatusApplyObject of AgentStatus(st), to be applied as FieldManagerAgent.
func (b *Bottle) AgentStatusApplyObject(st *BottleStatus) (*unstructured.Unstructured, error) {
	return b.StatusApplyObject(AgentStatus(st))
}
