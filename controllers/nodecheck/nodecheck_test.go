package nodecheck_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/onsi/gomega"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/controllers/agent"
	"github.com/bot-bottle/bottle-controller/controllers/nodecheck"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
	"github.com/bot-bottle/bottle-controller/internal/testenv"
)

// An agent on a node without smolvm marks each of its node's Bottles
// (Ready=False, Stalled=True, phase Failed: kstatus Failed), records a
// Warning event, fails /readyz with the reason, and leaves other nodes'
// Bottles alone.
func TestSmolvmMissingMarksBottles(t *testing.T) {
	cfg, ctx := startAPIServer(t)

	// The real startup check against a path with no smolvm.
	_, checkErr := smolvm.New("/nonexistent/smolvm").CheckVersion(ctx)
	if smolvm.ClassOf(checkErr) != smolvm.ClassNotInstalled {
		t.Fatalf("CheckVersion of a missing binary: %v", checkErr)
	}
	state := nodecheck.NewState(checkErr)
	if err := state.Readyz(nil); err == nil || !strings.Contains(err.Error(), "SmolvmUnavailable") || !strings.Contains(err.Error(), "/nonexistent/smolvm") {
		t.Errorf("readyz = %v, want the reason and the path", err)
	}

	startNodecheck(t, ctx, cfg, state)

	c, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	mine := bottle("mine", "node-a")
	other := bottle("other", "node-b")
	for _, b := range []*v1.Bottle{mine, other} {
		if err := c.Create(ctx, b); err != nil {
			t.Fatal(err)
		}
	}

	g := gomega.NewWithT(t)
	var got v1.Bottle
	g.Eventually(func(g gomega.Gomega) {
		g.Expect(c.Get(ctx, client.ObjectKeyFromObject(mine), &got)).To(gomega.Succeed())
		g.Expect(meta.IsStatusConditionTrue(got.Status.Conditions, v1.ConditionStalled)).To(gomega.BeTrue())
	}, 30*time.Second).Should(gomega.Succeed())
	stalled := meta.FindStatusCondition(got.Status.Conditions, v1.ConditionStalled)
	if stalled == nil || stalled.Status != metav1.ConditionTrue || stalled.Reason != nodecheck.Reason ||
		!strings.Contains(stalled.Message, "smolvm not found") {
		t.Fatalf("Stalled condition %+v", stalled)
	}
	if !meta.IsStatusConditionFalse(got.Status.Conditions, v1.ConditionReady) || got.Status.Phase != v1.PhaseFailed {
		t.Errorf("Ready/phase: %+v %s", got.Status.Conditions, got.Status.Phase)
	}
	obj, _ := runtime.DefaultUnstructuredConverter.ToUnstructured(&got)
	if res, err := status.Compute(&unstructured.Unstructured{Object: obj}); err != nil || res.Status != status.FailedStatus {
		t.Errorf("kstatus %v %v, want Failed", res, err)
	}

	var events eventsv1.EventList
	g.Eventually(func(g gomega.Gomega) {
		g.Expect(c.List(ctx, &events, client.InNamespace("default"))).To(gomega.Succeed())
		g.Expect(events.Items).NotTo(gomega.BeEmpty())
	}, 30*time.Second).Should(gomega.Succeed())
	found := false
	for _, e := range events.Items {
		if e.Regarding.Name == "mine" && e.Reason == nodecheck.Reason && e.Type == "Warning" {
			found = true
		}
		if e.Regarding.Name == "other" {
			t.Errorf("event about another node's Bottle: %+v", e)
		}
	}
	if !found {
		t.Errorf("no %s Warning event about Bottle mine: %+v", nodecheck.Reason, events.Items)
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(other), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Status.Conditions) != 0 {
		t.Errorf("another node's Bottle was marked: %+v", got.Status.Conditions)
	}
}

// Marking a Bottle is the agent's own status write: a server-side apply as
// the agent's field manager that keeps every status field the agent wrote
// before (step results, files), leaves the cluster controller's Scheduled
// alone, and drops Reconciling; one manager owns the agent's fields after.
func TestMarkKeepsAgentStatus(t *testing.T) {
	cfg, ctx := startAPIServer(t)

	c, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	b := bottle("kept", "node-a")
	if err := c.Create(ctx, b); err != nil {
		t.Fatal(err)
	}
	// What the Bottle controller wrote while smolvm still worked, and the
	// cluster controller's Scheduled, each under its own field manager.
	exit := int32(0)
	now := metav1.Now()
	cond := func(typ string, st metav1.ConditionStatus, reason string) metav1.Condition {
		return metav1.Condition{Type: typ, Status: st, Reason: reason, Message: "before", LastTransitionTime: now}
	}
	agentSt := &v1.BottleStatus{
		Phase:       v1.PhaseReady,
		MachineName: "kept",
		Files:       []v1.FileStatus{{Path: "/etc/motd", SHA256: strings.Repeat("a", 64), Bytes: 5}},
		ExecResults: []v1.ExecResult{{Name: "setup", ExitCode: &exit, Stdout: "ok\n"}},
		Conditions: []metav1.Condition{
			cond(v1.ConditionReady, metav1.ConditionTrue, v1.ReasonReady),
			cond(v1.ConditionReconciling, metav1.ConditionTrue, v1.ReasonProgressing),
			cond(v1.ConditionProvisioned, metav1.ConditionTrue, v1.ReasonProvisioned),
		},
	}
	for _, w := range []struct {
		manager string
		st      *v1.BottleStatus
	}{
		{v1.FieldManagerAgent, agentSt},
		{v1.FieldManagerCluster, &v1.BottleStatus{Conditions: []metav1.Condition{cond(v1.ConditionScheduled, metav1.ConditionTrue, v1.ReasonScheduled)}}},
	} {
		u, err := b.StatusApplyObject(w.st)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Status().Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(w.manager), client.ForceOwnership); err != nil {
			t.Fatal(err)
		}
	}

	startNodecheck(t, ctx, cfg, nodecheck.NewState(errors.New("smolvm not found at /nonexistent/smolvm")))

	g := gomega.NewWithT(t)
	var got v1.Bottle
	g.Eventually(func(g gomega.Gomega) {
		g.Expect(c.Get(ctx, client.ObjectKeyFromObject(b), &got)).To(gomega.Succeed())
		g.Expect(meta.IsStatusConditionTrue(got.Status.Conditions, v1.ConditionStalled)).To(gomega.BeTrue())
	}, 30*time.Second).Should(gomega.Succeed())

	st := got.Status
	if st.Phase != v1.PhaseFailed || !meta.IsStatusConditionFalse(st.Conditions, v1.ConditionReady) {
		t.Errorf("phase %s, conditions %+v: want Failed and Ready=False", st.Phase, st.Conditions)
	}
	if len(st.ExecResults) != 1 || st.ExecResults[0].Name != "setup" || st.ExecResults[0].Stdout != "ok\n" {
		t.Errorf("step results lost: %+v", st.ExecResults)
	}
	if len(st.Files) != 1 || st.Files[0].Path != "/etc/motd" || st.MachineName != "kept" {
		t.Errorf("files or machine name lost: %+v %q", st.Files, st.MachineName)
	}
	if !meta.IsStatusConditionTrue(st.Conditions, v1.ConditionProvisioned) || !meta.IsStatusConditionTrue(st.Conditions, v1.ConditionScheduled) {
		t.Errorf("Provisioned or Scheduled lost: %+v", st.Conditions)
	}
	if meta.FindStatusCondition(st.Conditions, v1.ConditionReconciling) != nil {
		t.Errorf("Reconciling kept: %+v", st.Conditions)
	}

	// Every status field but Scheduled has one manager: the agent's.
	owners := map[string][]string{}
	for _, mf := range got.ManagedFields {
		if mf.Subresource != "status" || mf.FieldsV1 == nil {
			continue
		}
		raw := mf.FieldsV1.GetRawString()
		for _, f := range []string{`"f:execResults"`, `"f:files"`, `"f:phase"`, `"f:machineName"`,
			`"k:{\"type\":\"Ready\"}"`, `"k:{\"type\":\"Stalled\"}"`, `"k:{\"type\":\"Scheduled\"}"`} {
			if strings.Contains(raw, f) {
				owners[f] = append(owners[f], mf.Manager)
			}
		}
	}
	for f, want := range map[string]string{
		`"f:execResults"`: v1.FieldManagerAgent, `"f:files"`: v1.FieldManagerAgent, `"f:phase"`: v1.FieldManagerAgent,
		`"f:machineName"`: v1.FieldManagerAgent, `"k:{\"type\":\"Ready\"}"`: v1.FieldManagerAgent,
		`"k:{\"type\":\"Stalled\"}"`: v1.FieldManagerAgent, `"k:{\"type\":\"Scheduled\"}"`: v1.FieldManagerCluster,
	} {
		if len(owners[f]) != 1 || owners[f][0] != want {
			t.Errorf("%s managed by %v, want only %s", f, owners[f], want)
		}
	}
}

// Watch reports recovery as soon as the check passes, and keeps the
// failure readable until then.
func TestWatchRecovers(t *testing.T) {
	state := nodecheck.NewState(errors.New("smolvm 1.2.0 is older than 1.9.0"))
	calls := 0
	err := state.Watch(context.Background(), time.Millisecond, func(context.Context) error {
		calls++
		if calls < 3 {
			if state.Err() == nil {
				t.Error("failure forgotten before recovery")
			}
			return errors.New("still old")
		}
		return nil
	})
	if !errors.Is(err, nodecheck.ErrRecovered) || state.Err() != nil || calls != 3 {
		t.Errorf("Watch = %v after %d checks, state %v", err, calls, state.Err())
	}
}

// startAPIServer runs a kube-apiserver for one test; it stops, after ctx
// is cancelled, when the test ends.
func startAPIServer(t *testing.T) (*rest.Config, context.Context) {
	env, cfg, err := testenv.Start(testenv.Options{})
	if testenv.Skippable(err) {
		t.Skip(err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return cfg, ctx
}

// startNodecheck runs the reconciler for node-a's Bottles, as cmd/manager
// wires it on a node without smolvm, until ctx ends.
func startNodecheck(t *testing.T, ctx context.Context, cfg *rest.Config, state *nodecheck.State) {
	skipNameValidation := true // each test of this binary registers the controller
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:     testenv.Scheme(),
		Metrics:    metricsserver.Options{BindAddress: "0"},
		Cache:      agent.NodeCacheOptions("node-a"),
		Controller: config.Controller{SkipNameValidation: &skipNameValidation},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := (&nodecheck.Reconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("bottle-agent"), State: state}).SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	go func() { _ = mgr.Start(ctx) }()
}

func bottle(name, node string) *v1.Bottle {
	return &v1.Bottle{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec:       v1.BottleSpec{NodeName: node, MachineSpec: v1.MachineSpec{Image: "node:22-bookworm"}},
	}
}
