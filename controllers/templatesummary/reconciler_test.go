package templatesummary_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/controllers/templatesummary"
	"github.com/bot-bottle/bottle-controller/internal/testenv"
)

// TestSummaryFollowsTheAgentsEntries: against a real API server, the
// reconciler's summary follows what the agents apply, each under its own
// field manager, and Flux's kstatus reads it: in progress until a selected
// node reports, Current once a golden is Ready, Failed when one fails.
func TestSummaryFollowsTheAgentsEntries(t *testing.T) {
	env, cfg, err := testenv.Start(testenv.Options{})
	if testenv.Skippable(err) {
		t.Skip(err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = env.Stop() }()
	g := NewWithT(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	skip := true
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: testenv.Scheme(), Metrics: metricsserver.Options{BindAddress: "0"},
		Controller: config.Controller{SkipNameValidation: &skip}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect((&templatesummary.Reconciler{Client: mgr.GetClient()}).SetupWithManager(mgr)).To(Succeed())
	go func() { _ = mgr.Start(ctx) }()
	c, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())

	tpl := &v1.BottleTemplate{ObjectMeta: metav1.ObjectMeta{Name: "claude", Namespace: "default"},
		Spec: v1.BottleTemplateSpec{MachineSpec: v1.MachineSpec{Image: "node:22-bookworm"},
			Pool: v1.TemplatePool{NodeSelector: map[string]string{"pool": "claude"}, HeldSlots: 2}}}
	g.Expect(c.Create(ctx, tpl)).To(Succeed())

	get := func() *v1.BottleTemplate {
		got := &v1.BottleTemplate{}
		g.Expect(c.Get(ctx, client.ObjectKeyFromObject(tpl), got)).To(Succeed())
		return got
	}
	kstatus := func() status.Status {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(v1.GroupVersion.WithKind("BottleTemplate"))
		g.Expect(c.Get(ctx, client.ObjectKeyFromObject(tpl), u)).To(Succeed())
		res, err := status.Compute(u)
		g.Expect(err).NotTo(HaveOccurred())
		return res.Status
	}
	ready := func() string {
		cond := meta.FindStatusCondition(get().Status.Conditions, v1.ConditionReady)
		if cond == nil {
			return ""
		}
		return string(cond.Status) + "/" + cond.Reason
	}
	apply := func(n v1.TemplateNodeStatus) {
		u, err := tpl.NodeStatusApplyObject(&n)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(c.Status().Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(v1.FieldManagerAgentOn(n.NodeName)), client.ForceOwnership)).To(Succeed())
	}
	const wait = 30 * time.Second

	t.Log("no selected node has reported yet: in progress")
	g.Eventually(ready, wait).Should(Equal("False/" + templatesummary.ReasonNoGolden))
	g.Expect(kstatus()).To(Equal(status.InProgressStatus))
	g.Expect(get().Status.ObservedGeneration).To(Equal(int64(1)))

	t.Log("node-a provisioning, then ready with two free slots")
	apply(v1.TemplateNodeStatus{NodeName: "node-a", TemplateGeneration: 1, Phase: v1.PhaseProvisioning})
	g.Eventually(ready, wait).Should(Equal("False/" + templatesummary.ReasonGoldenProvisioning))
	apply(v1.TemplateNodeStatus{NodeName: "node-a", TemplateGeneration: 1, Phase: v1.PhaseReady, HeldSlots: 2, FreeSlots: 2})
	g.Eventually(ready, wait).Should(Equal("True/" + templatesummary.ReasonGoldenReady))
	g.Eventually(kstatus, wait).Should(Equal(status.CurrentStatus))
	got := get()
	g.Expect(got.Status.GoldenNodes).To(Equal(int32(1)))
	g.Expect(got.Status.FreeSlots).To(Equal(int32(2)))
	g.Expect(meta.FindStatusCondition(got.Status.Conditions, v1.ConditionReconciling)).To(BeNil(), "Reconciling is removed once nothing is in progress")

	t.Log("node-b failing: Stalled, while node-a still serves")
	apply(v1.TemplateNodeStatus{NodeName: "node-b", TemplateGeneration: 1, Phase: v1.PhaseFailed, Message: `step "install" exited with code 1`})
	g.Eventually(kstatus, wait).Should(Equal(status.FailedStatus))
	got = get()
	stalled := meta.FindStatusCondition(got.Status.Conditions, v1.ConditionStalled)
	g.Expect(stalled).NotTo(BeNil())
	g.Expect(stalled.Message).To(ContainSubstring(`failed on node node-b: step "install" exited with code 1`))
	g.Expect(got.Status.Nodes).To(HaveLen(2), "the summary never touches the agents' entries")

	t.Log("a free slot claimed: the count follows, and drops to zero")
	apply(v1.TemplateNodeStatus{NodeName: "node-a", TemplateGeneration: 1, Phase: v1.PhaseReady, HeldSlots: 2})
	g.Eventually(func() int32 { return get().Status.FreeSlots }, wait).Should(BeZero())
	g.Expect(get().Status.GoldenNodes).To(Equal(int32(1)))
}
