package policy

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

func patchRunStatus(c client.Client, r *v1.BottleRun, body string) error {
	obj := &v1.BottleRun{ObjectMeta: metav1.ObjectMeta{Name: r.Name, Namespace: r.Namespace}}
	return c.Status().Patch(context.Background(), obj, client.RawPatch(types.MergePatchType, []byte(body)))
}

// testRunsConfinedToTheirNode: a token bound to a Pod on node A may claim an
// unclaimed run for A, write A's runs and delete them (TTL); not B's runs,
// not a claim for B, and no creates.
func testRunsConfinedToTheirNode(t *testing.T, e *env) {
	g := NewWithT(t)
	ctx := context.Background()
	newRun := func(name string) *v1.BottleRun {
		r := &v1.BottleRun{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: team},
			Spec: v1.BottleRunSpec{BottleRef: &v1.BottleReference{Name: "b"}, Command: []string{"true"}}}
		g.Expect(e.admin.Create(ctx, r)).To(Succeed())
		return r
	}
	mine, theirs := newRun("run-a"), newRun("run-b")
	agentA, _ := e.tokenClient(t, e.agentPod(t, "run-node-a"))
	agentB, _ := e.tokenClient(t, e.agentPod(t, "run-node-b"))

	// B claims its run; then, once the policy is in force, A may not
	// touch it (each attempt a different message, so none is a no-op).
	g.Expect(patchRunStatus(agentB, theirs, `{"status":{"nodeName":"run-node-b","phase":"Running"}}`)).To(Succeed())
	attempt := 0
	g.Eventually(func() error {
		attempt++
		return patchRunStatus(agentA, theirs, `{"status":{"phase":"Succeeded","message":"forged `+string(rune('a'+attempt%26))+`"}}`)
	}).WithTimeout(60 * time.Second).WithPolling(100 * time.Millisecond).
		Should(MatchError(ContainSubstring("the Bottle agent of node run-node-a may not change BottleRun team/run-b: it is node run-node-b's run")))

	// A claims an unclaimed run for itself, not for another node.
	g.Expect(patchRunStatus(agentA, mine, `{"status":{"nodeName":"run-node-b"}}`)).
		To(MatchError(ContainSubstring("may claim BottleRun team/run-a only for its own node")))
	g.Expect(patchRunStatus(agentA, mine, `{"status":{"nodeName":"run-node-a","phase":"Running"}}`)).To(Succeed())
	g.Expect(patchRunStatus(agentA, mine, `{"status":{"phase":"Succeeded"}}`)).To(Succeed())

	// Deletes (the TTL): its own runs only.
	g.Expect(agentA.Delete(ctx, theirs)).To(MatchError(ContainSubstring("it is node run-node-b's run")))
	g.Expect(agentA.Delete(ctx, mine)).To(Succeed())

	// No creates (RBAC grants none either), and a token bound to no Pod
	// names no node.
	err := agentA.Create(ctx, &v1.BottleRun{ObjectMeta: metav1.ObjectMeta{Name: "run-c", Namespace: team},
		Spec: v1.BottleRunSpec{BottleRef: &v1.BottleReference{Name: "b"}, Command: []string{"true"}}})
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "create: %v", err)
	unbound, _ := e.tokenClient(t, nil)
	g.Expect(patchRunStatus(unbound, theirs, `{"status":{"message":"x"}}`)).To(MatchError(ContainSubstring("the Bottle agent's token names no node")))

	got := &v1.BottleRun{}
	g.Expect(e.admin.Get(ctx, client.ObjectKeyFromObject(theirs), got)).To(Succeed())
	g.Expect(got.Status.Phase).To(Equal(v1.RunPhaseRunning), "B's run is as B wrote it")
}
