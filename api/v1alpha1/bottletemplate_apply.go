package v1alpha1

import (
	"crypto/sha256"
	"encoding/hex"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// maxFieldManager is the API server's limit on a field manager's length.
const maxFieldManager = 128

// FieldManagerAgentOn is the field manager under which the agent of node
// applies its entry of a BottleTemplate's status.nodes: one manager per
// node, so that each agent owns its own entry and nothing else (an apply
// without the entry removes it; it never touches another node's).
// FieldManagerAgent + "/" + node, or, when that is longer than the API
// server allows, a cut of it and 16 hex digits of sha256(node).
func FieldManagerAgentOn(node string) string {
	m := FieldManagerAgent + "/" + node
	if len(m) <= maxFieldManager {
		return m
	}
	sum := sha256.Sum256([]byte(node))
	h := hex.EncodeToString(sum[:])[:16]
	return m[:maxFieldManager-len(h)-1] + "-" + h
}

// ApplyObject is the template's identity alone, as an object to
// server-side apply (see Bottle.ApplyObject).
func (t *BottleTemplate) ApplyObject() *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(GroupVersion.String())
	u.SetKind("BottleTemplate")
	u.SetName(t.Name)
	u.SetNamespace(t.Namespace)
	return u
}

// NodeStatusApplyObject is ApplyObject with n as the only entry of
// status.nodes, for one node's agent to apply to the status subresource
// under FieldManagerAgentOn(n.NodeName). A nil n applies no entry, which
// removes the one that agent wrote before.
func (t *BottleTemplate) NodeStatusApplyObject(n *TemplateNodeStatus) (*unstructured.Unstructured, error) {
	nodes := []any{}
	if n != nil {
		raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(n)
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, raw)
	}
	u := t.ApplyObject()
	u.Object["status"] = map[string]any{"nodes": nodes}
	return u, nil
}
