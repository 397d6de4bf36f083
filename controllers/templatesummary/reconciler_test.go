package templatesummary_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/controllers/placement"
	"github.com/bot-bottle/bottle-controller/controllers/templatesummary"
	"github.com/bot-bottle/bottle-controller/internal/agentlease"
	"github.com/bot-bottle/bottle-controller/internal/testenv"
)

// TestSummaryFollowsTheAgentsEntries: against a real API server, the
// reconciler's summary follows what the agents apply, each under its own
// field manager, and Flux's kstatus reads it: in progress until a selected
// node reports, Current once a golden is Ready, Failed when one fails.
func TestSummaryFollowsTheAgentsEntries(t *testing.T) {
	cfg := startEnv(t)
	g := NewWithT(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := startSummary(ctx, t, cfg, &templatesummary.Reconciler{})

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

func startEnv(t *testing.T) *rest.Config {
	t.Helper()
	env, cfg, err := testenv.Start(testenv.Options{})
	if testenv.Skippable(err) {
		t.Skip(err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	return cfg
}

// startSummary runs r in a manager of its own and returns a client.
func startSummary(ctx context.Context, t *testing.T, cfg *rest.Config, r *templatesummary.Reconciler) client.Client {
	t.Helper()
	skip := true
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: testenv.Scheme(), Metrics: metricsserver.Options{BindAddress: "0"},
		Controller: config.Controller{SkipNameValidation: &skip}})
	if err != nil {
		t.Fatal(err)
	}
	r.Client = mgr.GetClient()
	if err := r.SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	go func() { _ = mgr.Start(ctx) }()
	c, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSummaryDropsANodeWhoseAgentStopped: a golden counts while its node's
// agent renews its Lease, and stops counting once the agent timeout passes
// without a renewal, with no other event to wake the reconciler.
func TestSummaryDropsANodeWhoseAgentStopped(t *testing.T) {
	cfg := startEnv(t)
	g := NewWithT(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const agentNS, timeout = "bottle-system", 3 * time.Second
	hb := placement.NewHeartbeats(timeout)
	c := startSummary(ctx, t, cfg, &templatesummary.Reconciler{Heartbeats: hb, AgentNamespace: agentNS})

	// The agent renews its Lease until stopRenewing is closed.
	holder := "agent-pod"
	renew := func() {
		now := metav1.NewMicroTime(time.Now())
		hb.Observe(&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: agentlease.Name("node-a"), Namespace: agentNS,
			Labels: map[string]string{agentlease.LabelNode: "node-a"}}, Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder, RenewTime: &now}})
	}
	renew()
	stopRenewing := make(chan struct{})
	go func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopRenewing:
				return
			case <-tick.C:
				renew()
			}
		}
	}()

	tpl := &v1.BottleTemplate{ObjectMeta: metav1.ObjectMeta{Name: "claude", Namespace: "default"},
		Spec: v1.BottleTemplateSpec{MachineSpec: v1.MachineSpec{Image: "node:22-bookworm"}}}
	g.Expect(c.Create(ctx, tpl)).To(Succeed())
	u, err := tpl.NodeStatusApplyObject(&v1.TemplateNodeStatus{NodeName: "node-a", TemplateGeneration: 1, Phase: v1.PhaseReady, FreeSlots: 2, HeldSlots: 2})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(c.Status().Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(v1.FieldManagerAgentOn("node-a")), client.ForceOwnership)).To(Succeed())

	golden := func() int32 {
		got := &v1.BottleTemplate{}
		g.Expect(c.Get(ctx, client.ObjectKeyFromObject(tpl), got)).To(Succeed())
		return got.Status.GoldenNodes
	}
	g.Eventually(golden, 30*time.Second).Should(Equal(int32(1)), "counted while the agent is live")
	close(stopRenewing)
	g.Eventually(golden, 30*time.Second).Should(BeZero(), "dropped once the agent timeout passed")
}
