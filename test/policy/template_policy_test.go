package policy

import (
	"context"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// applyEntry applies node's entry of t's status.nodes as that node's agent
// does (its own field manager), through c.
func applyEntry(c client.Client, t *v1.BottleTemplate, node string, free int32) error {
	u, err := t.NodeStatusApplyObject(&v1.TemplateNodeStatus{NodeName: node, GoldenMachine: "golden-" + node,
		TemplateGeneration: 1, Phase: v1.PhaseReady, HeldSlots: free, FreeSlots: free})
	if err != nil {
		return err
	}
	return c.Status().Apply(context.Background(), client.ApplyConfigurationFromUnstructured(u),
		client.FieldOwner(v1.FieldManagerAgentOn(node)), client.ForceOwnership)
}

func patchTemplateStatus(c client.Client, t *v1.BottleTemplate, body string) error {
	obj := &v1.BottleTemplate{ObjectMeta: metav1.ObjectMeta{Name: t.Name, Namespace: t.Namespace}}
	return c.Status().Patch(context.Background(), obj, client.RawPatch(types.MergePatchType, []byte(body)))
}

// testTemplateEntryConfinedToItsNode: a token bound to a Pod on node A may
// write A's entry of a template's status.nodes, and nothing else of the
// template: not B's entry, not the cluster controller's summary.
func testTemplateEntryConfinedToItsNode(t *testing.T, e *env) {
	g := NewWithT(t)
	ctx := context.Background()
	tpl := &v1.BottleTemplate{ObjectMeta: metav1.ObjectMeta{Name: "claude", Namespace: team},
		Spec: v1.BottleTemplateSpec{MachineSpec: v1.MachineSpec{Image: "node:22-bookworm"}}}
	g.Expect(e.admin.Create(ctx, tpl)).To(Succeed())
	agentA, _ := e.tokenClient(t, e.agentPod(t, "tpl-node-a"))
	agentB, _ := e.tokenClient(t, e.agentPod(t, "tpl-node-b"))

	// The policy reaches the admission plugin through informers: wait until
	// it refuses A writing B's entry (each attempt a different value, so
	// that none is a no-op the policy rightly allows).
	attempt := int32(0)
	g.Eventually(func() error {
		attempt++
		return applyEntry(agentA, tpl, "tpl-node-b", attempt)
	}).WithTimeout(60 * time.Second).WithPolling(100 * time.Millisecond).
		Should(MatchError(ContainSubstring("the Bottle agent of node tpl-node-a may change only its own node's entry of status.nodes of BottleTemplate team/claude")))

	// Each agent its own entry, side by side.
	g.Expect(applyEntry(agentA, tpl, "tpl-node-a", 2)).To(Succeed())
	g.Expect(applyEntry(agentB, tpl, "tpl-node-b", 3)).To(Succeed())
	g.Expect(applyEntry(agentA, tpl, "tpl-node-a", 1)).To(Succeed())

	// Not another node's entry: neither rewrite it nor drop it.
	onlyMine := fmt.Sprintf(`{"status":{"nodes":[{"nodeName":"tpl-node-a","phase":"Ready","freeSlots":%d}]}}`, 1)
	g.Expect(patchTemplateStatus(agentA, tpl, onlyMine)).To(MatchError(ContainSubstring("may change only its own node's entry")))

	// Not the cluster controller's summary.
	g.Expect(patchTemplateStatus(agentA, tpl, `{"status":{"goldenNodes":5}}`)).To(MatchError(ContainSubstring("may not change the status summary")))
	g.Expect(patchTemplateStatus(agentA, tpl, `{"status":{"conditions":[{"type":"Ready","status":"True","reason":"Ready","message":"","lastTransitionTime":"2026-01-01T00:00:00Z"}]}}`)).
		To(MatchError(ContainSubstring("may not change the status summary")))

	// A token bound to no Pod names no node.
	unbound, _ := e.tokenClient(t, nil)
	g.Expect(applyEntry(unbound, tpl, "tpl-node-a", 7)).To(MatchError(ContainSubstring("the Bottle agent's token names no node")))

	// RBAC grants no spec writes, creates or deletes.
	g.Expect(apierrors.IsForbidden(agentA.Delete(ctx, tpl))).To(BeTrue())
	err := agentA.Patch(ctx, tpl, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"image":"evil"}}`)))
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "spec patch: %v", err)

	// What each agent wrote survived.
	got := &v1.BottleTemplate{}
	g.Expect(e.admin.Get(ctx, client.ObjectKeyFromObject(tpl), got)).To(Succeed())
	free := map[string]int32{}
	for _, n := range got.Status.Nodes {
		free[n.NodeName] = n.FreeSlots
	}
	g.Expect(free).To(Equal(map[string]int32{"tpl-node-a": 1, "tpl-node-b": 3}))
	g.Expect(got.Status.GoldenNodes).To(BeZero())
}
