package placement

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

func TestTemplateFacts(t *testing.T) {
	entry := func(node string, gen int64, phase v1.Phase, free int32) v1.TemplateNodeStatus {
		return v1.TemplateNodeStatus{NodeName: node, TemplateGeneration: gen, Phase: phase, FreeSlots: free}
	}
	tpl := func(policy v1.PoolPolicy, nodes ...v1.TemplateNodeStatus) *v1.BottleTemplate {
		return &v1.BottleTemplate{
			ObjectMeta: metav1.ObjectMeta{Generation: 3},
			Spec: v1.BottleTemplateSpec{
				MachineSpec: v1.MachineSpec{Resources: v1.Resources{CPUs: 3}},
				Pool:        v1.TemplatePool{Policy: policy, NodeSelector: map[string]string{"pool": "claude"}},
			},
			Status: v1.BottleTemplateStatus{Nodes: nodes},
		}
	}
	for _, c := range []struct {
		name            string
		t               *v1.BottleTemplate
		free, ready     []string
		requiredLabeled bool
	}{
		{"no entries", tpl(v1.PoolOnDemand), nil, nil, false},
		{"free slots and ready goldens, sorted", tpl(v1.PoolOnDemand,
			entry("n3", 3, v1.PhaseReady, 2), entry("n1", 3, v1.PhaseReady, 1), entry("n2", 3, v1.PhaseReady, 0)),
			[]string{"n1", "n3"}, []string{"n2"}, false},
		{"an older generation's golden says nothing", tpl(v1.PoolOnDemand, entry("n1", 2, v1.PhaseReady, 4)), nil, nil, false},
		{"a golden still provisioning is not warm", tpl(v1.PoolOnDemand, entry("n1", 3, v1.PhaseProvisioning, 0)), nil, nil, false},
		{"a failed golden is not warm", tpl(v1.PoolOnDemand, entry("n1", 3, v1.PhaseFailed, 0)), nil, nil, false},
		{"policy Selected requires the selector", tpl(v1.PoolSelected, entry("n1", 3, v1.PhaseReady, 1)), []string{"n1"}, nil, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := templateFacts(c.t)
			if !slices.Equal(f.freeSlot, c.free) || !slices.Equal(f.readyGolden, c.ready) {
				t.Errorf("warm nodes: free %v ready %v, want %v %v", f.freeSlot, f.readyGolden, c.free, c.ready)
			}
			if (f.requiredLabels != nil) != c.requiredLabeled {
				t.Errorf("required labels %v, want set=%v", f.requiredLabels, c.requiredLabeled)
			}
			if f.size.CPUs != 3 || f.size.MemoryMiB != v1.DefaultMemoryMiB {
				t.Errorf("size %+v, want the template's CPUs and the default memory", f.size)
			}
		})
	}
}

func TestReservationPodOfATemplate(t *testing.T) {
	o := DefaultOptions()
	b := &v1.Bottle{Spec: v1.BottleSpec{
		TemplateRef: &v1.TemplateReference{Name: "claude"},
		Placement: &v1.Placement{NodeSelector: map[string]string{"zone": "a"}, Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{{Weight: 7}},
		}}},
	}}
	f := machineFacts{size: v1.Resources{}.OrDefault(), requiredLabels: map[string]string{"pool": "claude"},
		freeSlot: []string{"n1"}, readyGolden: []string{"n2", "n3"}}
	pod := reservationPod(b, f, o)
	if pod.Spec.NodeSelector["pool"] != "claude" || pod.Spec.NodeSelector["zone"] != "a" {
		t.Errorf("the Pod must carry both the template's required labels and the Bottle's: %v", pod.Spec.NodeSelector)
	}
	pref := pod.Spec.Affinity.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution
	if len(pref) != 3 || pref[0].Weight != 7 {
		t.Fatalf("the Bottle's preference comes first, then the warm nodes: %+v", pref)
	}
	if pref[1].Weight != weightFreeSlot || !slices.Equal(pref[1].Preference.MatchFields[0].Values, []string{"n1"}) ||
		pref[2].Weight != weightReadyGolden || !slices.Equal(pref[2].Preference.MatchFields[0].Values, []string{"n2", "n3"}) {
		t.Errorf("warm nodes preferred by weight: %+v", pref[1:])
	}
	if b.Spec.Placement.Affinity.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].Weight != 7 ||
		len(b.Spec.Placement.Affinity.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution) != 1 {
		t.Error("the Bottle's own affinity must not be changed")
	}
	plain := reservationPod(b, machineFacts{size: f.size}, o)
	if plain.Annotations[AnnotationPlacement] == pod.Annotations[AnnotationPlacement] {
		t.Error("a change of the template's required labels must change the placement hash (a waiting Pod is made again)")
	}
	if placementHash(b.Spec.Placement, nil) != plain.Annotations[AnnotationPlacement] {
		t.Error("without required labels the hash is the Bottle's placement's alone")
	}
}
