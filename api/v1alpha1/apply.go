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
