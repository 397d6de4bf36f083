package gitops

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/controllers/templatesummary"
)

const templateHealthKey = "resource.customizations.health.agents.bot-bottle.dev_BottleTemplate"

// TestTemplateHealthOfEverySummary: over every kind of summary the cluster
// controller writes, Argo CD's health check and kstatus agree, and say
// what docs/templates.md says.
func TestTemplateHealthOfEverySummary(t *testing.T) {
	script := argoHealthLuaOf(t, templateHealthKey)
	node := func(name string, gen int64, phase v1.Phase) v1.TemplateNodeStatus {
		return v1.TemplateNodeStatus{NodeName: name, TemplateGeneration: gen, Phase: phase, Message: "golden says so", FreeSlots: 1}
	}
	selected := v1.TemplatePool{NodeSelector: map[string]string{"pool": "claude"}}
	cases := []struct {
		name    string
		pool    v1.TemplatePool
		nodes   []v1.TemplateNodeStatus
		argo    string
		kstatus status.Status
		message string
	}{
		{"on demand, no golden yet", v1.TemplatePool{}, nil, "Healthy", status.CurrentStatus, "the first Bottle of it on a node builds one"},
		{"selected, none reported", selected, nil, "Progressing", status.InProgressStatus, "no node matching pool.nodeSelector"},
		{"provisioning", selected, []v1.TemplateNodeStatus{node("n1", 2, v1.PhaseProvisioning)}, "Progressing", status.InProgressStatus, "being provisioned on node n1"},
		{"ready", selected, []v1.TemplateNodeStatus{node("n1", 2, v1.PhaseReady)}, "Healthy", status.CurrentStatus, "ready on node n1; 1 free"},
		{"failed", selected, []v1.TemplateNodeStatus{node("n1", 2, v1.PhaseFailed)}, "Degraded", status.FailedStatus, "failed on node n1: golden says so"},
		{"failed on one, ready on another", selected, []v1.TemplateNodeStatus{node("n1", 2, v1.PhaseFailed), node("n2", 2, v1.PhaseReady)},
			"Degraded", status.FailedStatus, "failed on node n1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tpl := &v1.BottleTemplate{ObjectMeta: metav1.ObjectMeta{Name: "claude", Namespace: "team", Generation: 2}}
			tpl.Spec.Pool = c.pool
			tpl.Status.Nodes = c.nodes
			st := templatesummary.StatusFor(tpl)
			st.Nodes = c.nodes
			tpl.Status = *st
			checkTemplateHealth(t, script, tpl, c.argo, c.kstatus, c.message)
		})
	}

	t.Run("summary behind the generation", func(t *testing.T) {
		tpl := &v1.BottleTemplate{ObjectMeta: metav1.ObjectMeta{Name: "claude", Namespace: "team", Generation: 2}}
		tpl.Status.Nodes = []v1.TemplateNodeStatus{node("n1", 2, v1.PhaseReady)}
		st := templatesummary.StatusFor(tpl)
		st.ObservedGeneration = 1
		tpl.Status = *st
		checkTemplateHealth(t, script, tpl, "Progressing", status.InProgressStatus, "observe generation 2")
	})
	t.Run("no summary yet", func(t *testing.T) {
		// As the API server stores a new template: status defaults to
		// observedGeneration 0.
		tpl := &v1.BottleTemplate{ObjectMeta: metav1.ObjectMeta{Name: "claude", Namespace: "team", Generation: 1}}
		checkTemplateHealth(t, script, tpl, "Progressing", status.InProgressStatus, "observe generation 1")
	})
}

func checkTemplateHealth(t *testing.T, script string, tpl *v1.BottleTemplate, argo string, ks status.Status, message string) {
	t.Helper()
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(tpl)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetAPIVersion(v1.GroupVersion.String())
	u.SetKind("BottleTemplate")
	// A zero observedGeneration is stored (the CRD's status default); the
	// typed conversion drops it.
	if _, ok := m["status"].(map[string]any)["observedGeneration"]; !ok {
		m["status"].(map[string]any)["observedGeneration"] = int64(0)
	}
	hs, msg := runHealth(t, script, u.Object)
	if hs != argo || !strings.Contains(msg, message) {
		t.Errorf("Argo CD: %s %q; want %s containing %q", hs, msg, argo, message)
	}
	res, err := status.Compute(u)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != ks {
		t.Errorf("kstatus %s (%s), want %s", res.Status, res.Message, ks)
	}
	if argoToKstatus[hs] != res.Status {
		t.Errorf("Argo CD says %s but kstatus says %s", hs, res.Status)
	}
}
