package templatesummary

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

func entry(node string, gen int64, phase v1.Phase, free int32) v1.TemplateNodeStatus {
	return v1.TemplateNodeStatus{NodeName: node, TemplateGeneration: gen, Phase: phase, FreeSlots: free, HeldSlots: free}
}

// kstatusOf is what Flux and Argo CD conclude about t once its summary is
// written.
func kstatusOf(t *testing.T, tpl *v1.BottleTemplate, live func(string) bool) status.Status {
	t.Helper()
	tpl = tpl.DeepCopy()
	want := desiredStatus(tpl, Summarize(tpl, live))
	want.Nodes = tpl.Status.Nodes
	tpl.Status = *want
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(tpl)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetGroupVersionKind(v1.GroupVersion.WithKind("BottleTemplate"))
	res, err := status.Compute(u)
	if err != nil {
		t.Fatal(err)
	}
	return res.Status
}

func TestSummarize(t *testing.T) {
	cases := []struct {
		name        string
		pool        v1.TemplatePool
		nodes       []v1.TemplateNodeStatus
		golden      int32
		free        int32
		ready       metav1.ConditionStatus
		reason      string
		says        string
		reconciling bool
		stalled     bool
		kstatus     status.Status
		live        func(string) bool
	}{
		{name: "no node yet, on demand", nodes: nil, ready: metav1.ConditionTrue, reason: ReasonGoldenOnDemand,
			says: "the first Bottle of it on a node builds one there", kstatus: status.CurrentStatus},
		{name: "no node yet, selected nodes", pool: v1.TemplatePool{Policy: v1.PoolSelected, NodeSelector: map[string]string{"a": "b"}},
			ready: metav1.ConditionFalse, reason: ReasonNoGolden, says: "no node matching pool.nodeSelector has reported", reconciling: true, kstatus: status.InProgressStatus},
		{name: "one node provisioning", nodes: []v1.TemplateNodeStatus{entry("n1", 2, v1.PhaseProvisioning, 0)},
			ready: metav1.ConditionFalse, reason: ReasonGoldenProvisioning, says: "being provisioned on node n1", reconciling: true, kstatus: status.InProgressStatus},
		{name: "ready on two nodes", nodes: []v1.TemplateNodeStatus{entry("n2", 2, v1.PhaseReady, 3), entry("n1", 2, v1.PhaseReady, 1)},
			golden: 2, free: 4, ready: metav1.ConditionTrue, reason: ReasonGoldenReady, says: "generation 2 ready on nodes n1, n2; 4 free held slot(s)", kstatus: status.CurrentStatus},
		{name: "ready on one, another on the old generation", nodes: []v1.TemplateNodeStatus{entry("n1", 2, v1.PhaseReady, 2), entry("n2", 1, v1.PhaseReady, 5)},
			golden: 1, free: 2, ready: metav1.ConditionTrue, reason: ReasonGoldenReady, says: "ready on node n1; 2 free", kstatus: status.CurrentStatus},
		{name: "only the old generation, on demand", nodes: []v1.TemplateNodeStatus{entry("n1", 1, v1.PhaseReady, 2)},
			ready: metav1.ConditionTrue, reason: ReasonGoldenOnDemand, says: "generation 2 yet: the first Bottle", kstatus: status.CurrentStatus},
		{name: "only the old generation, selected nodes", pool: v1.TemplatePool{NodeSelector: map[string]string{"a": "b"}},
			nodes: []v1.TemplateNodeStatus{entry("n1", 1, v1.PhaseReady, 2)}, ready: metav1.ConditionFalse, reason: ReasonNoGolden,
			says: "reported a golden machine of generation 2 yet", reconciling: true, kstatus: status.InProgressStatus},
		{name: "failed on one node", nodes: []v1.TemplateNodeStatus{{NodeName: "n1", TemplateGeneration: 2, Phase: v1.PhaseFailed, Message: `step "install" exited with code 1`}},
			ready: metav1.ConditionFalse, reason: ReasonGoldenFailed, says: `failed on node n1: step "install" exited with code 1`, stalled: true, kstatus: status.FailedStatus},
		{name: "failed on one node, ready on another", nodes: []v1.TemplateNodeStatus{entry("n1", 2, v1.PhaseFailed, 0), entry("n2", 2, v1.PhaseReady, 1)},
			golden: 1, free: 1, ready: metav1.ConditionTrue, reason: ReasonGoldenReady, says: "ready on node n2", stalled: true, kstatus: status.FailedStatus},
		{name: "provisioning on one node, ready on another", nodes: []v1.TemplateNodeStatus{entry("n1", 2, v1.PhaseProvisioning, 0), entry("n2", 2, v1.PhaseReady, 1)},
			golden: 1, free: 1, ready: metav1.ConditionTrue, reason: ReasonGoldenReady, says: "being provisioned on node n1", reconciling: true, kstatus: status.InProgressStatus},
		{name: "ready only on a node without a live agent", pool: v1.TemplatePool{NodeSelector: map[string]string{"a": "b"}},
			nodes: []v1.TemplateNodeStatus{entry("n1", 2, v1.PhaseReady, 3)}, live: func(n string) bool { return n != "n1" },
			ready: metav1.ConditionFalse, reason: ReasonNoGolden, says: "(node n1 without a live agent)", reconciling: true, kstatus: status.InProgressStatus},
		{name: "ready on a live node and a dead one", nodes: []v1.TemplateNodeStatus{entry("n1", 2, v1.PhaseReady, 3), entry("n2", 2, v1.PhaseReady, 1)},
			live: func(n string) bool { return n != "n1" }, golden: 1, free: 1, ready: metav1.ConditionTrue, reason: ReasonGoldenReady,
			says: "ready on node n2; 1 free", kstatus: status.CurrentStatus},
		{name: "many nodes provisioning", nodes: []v1.TemplateNodeStatus{entry("n1", 2, v1.PhaseCreating, 0), entry("n2", 2, v1.PhaseStarting, 0),
			entry("n3", 2, v1.PhaseCopyingFiles, 0), entry("n4", 2, v1.PhasePending, 0), entry("n5", 2, v1.PhaseDeleting, 0)},
			ready: metav1.ConditionFalse, reason: ReasonGoldenProvisioning, says: "on nodes n1, n2, n3 and 2 more", reconciling: true, kstatus: status.InProgressStatus},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tpl := &v1.BottleTemplate{ObjectMeta: metav1.ObjectMeta{Name: "t", Namespace: "ns", Generation: 2}}
			tpl.Spec.Pool = c.pool
			tpl.Status.Nodes = c.nodes
			s := Summarize(tpl, c.live)
			if s.GoldenNodes != c.golden || s.FreeSlots != c.free {
				t.Errorf("goldenNodes %d, freeSlots %d; want %d, %d", s.GoldenNodes, s.FreeSlots, c.golden, c.free)
			}
			if s.Ready.Status != c.ready || s.Ready.Reason != c.reason {
				t.Errorf("Ready %s/%s; want %s/%s", s.Ready.Status, s.Ready.Reason, c.ready, c.reason)
			}
			all := s.Ready.Message
			if s.Reconciling != nil {
				all += " | " + s.Reconciling.Message
			}
			if s.Stalled != nil {
				all += " | " + s.Stalled.Message
			}
			if !strings.Contains(all, c.says) {
				t.Errorf("messages %q do not say %q", all, c.says)
			}
			if (s.Reconciling != nil) != c.reconciling || (s.Stalled != nil) != c.stalled {
				t.Errorf("Reconciling %v, Stalled %v; want %v, %v", s.Reconciling != nil, s.Stalled != nil, c.reconciling, c.stalled)
			}
			if got := kstatusOf(t, tpl, c.live); got != c.kstatus {
				t.Errorf("kstatus %s, want %s", got, c.kstatus)
			}
		})
	}
}

func TestDesiredStatusKeepsTransitionTimes(t *testing.T) {
	tpl := &v1.BottleTemplate{ObjectMeta: metav1.ObjectMeta{Generation: 1}}
	tpl.Status.Nodes = []v1.TemplateNodeStatus{entry("n1", 1, v1.PhaseReady, 1)}
	first := desiredStatus(tpl, Summarize(tpl, nil))
	past := metav1.NewTime(first.Conditions[0].LastTransitionTime.Add(-3600e9))
	first.Conditions[0].LastTransitionTime = past
	tpl.Status.Conditions = first.Conditions
	tpl.Status.ObservedGeneration, tpl.Status.GoldenNodes, tpl.Status.FreeSlots = first.ObservedGeneration, first.GoldenNodes, first.FreeSlots
	if !upToDate(tpl, desiredStatus(tpl, Summarize(tpl, nil))) {
		t.Error("an unchanged summary is not up to date")
	}
	tpl.Status.Nodes[0].FreeSlots = 0
	again := desiredStatus(tpl, Summarize(tpl, nil))
	if upToDate(tpl, again) {
		t.Error("a changed free-slot count is up to date")
	}
	if !again.Conditions[0].LastTransitionTime.Equal(&past) {
		t.Errorf("Ready stayed True but its transition time moved to %v", again.Conditions[0].LastTransitionTime)
	}
}
