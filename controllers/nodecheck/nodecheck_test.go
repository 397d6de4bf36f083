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
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
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
	env, cfg, err := testenv.Start(testenv.Options{})
	if testenv.Skippable(err) {
		t.Skip(err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = env.Stop() }()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The real startup check against a path with no smolvm.
	_, checkErr := smolvm.New("/nonexistent/smolvm").CheckVersion(ctx)
	if smolvm.ClassOf(checkErr) != smolvm.ClassNotInstalled {
		t.Fatalf("CheckVersion of a missing binary: %v", checkErr)
	}
	state := nodecheck.NewState(checkErr)
	if err := state.Readyz(nil); err == nil || !strings.Contains(err.Error(), "SmolvmUnavailable") || !strings.Contains(err.Error(), "/nonexistent/smolvm") {
		t.Errorf("readyz = %v, want the reason and the path", err)
	}

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:  testenv.Scheme(),
		Metrics: metricsserver.Options{BindAddress: "0"},
		Cache:   agent.NodeCacheOptions("node-a"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := (&nodecheck.Reconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("bottle-agent"), State: state}).SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	go func() { _ = mgr.Start(ctx) }()

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

func bottle(name, node string) *v1.Bottle {
	return &v1.Bottle{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec:       v1.BottleSpec{NodeName: node, MachineSpec: v1.MachineSpec{Image: "node:22-bookworm"}},
	}
}
