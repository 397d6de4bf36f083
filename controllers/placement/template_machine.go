package placement

import (
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// Weights of a templated Bottle's preferred nodes (1–100, kube-scheduler's
// range): a node whose current golden has a free held slot hands the
// Bottle an already-booted clone; one whose golden is Ready forks on
// demand; any other node first builds a golden (policy OnDemand) and the
// Bottle waits for it.
const (
	weightFreeSlot    = 100
	weightReadyGolden = 50
)

// machineFacts is what a Bottle's reservation is made from beyond the
// Bottle itself: its machine's size and, for a templated Bottle, where its
// template keeps goldens.
type machineFacts struct {
	size v1.Resources
	// requiredLabels are node labels the Pod must match: a template of
	// policy Selected runs its Bottles only on the nodes it selects.
	requiredLabels map[string]string
	// freeSlot and readyGolden are the nodes whose agents report the
	// template's current golden Ready, with and without a free held slot.
	// They are preferences: kube-scheduler still decides, by fit first.
	freeSlot, readyGolden []string
}

// templateFacts reads them from t's spec and its nodes' entries. An entry
// of an older generation says nothing about the current golden.
func templateFacts(t *v1.BottleTemplate) machineFacts {
	f := machineFacts{size: t.Spec.Resources.OrDefault()}
	if t.Spec.Pool.Policy == v1.PoolSelected {
		f.requiredLabels = t.Spec.Pool.NodeSelector
	}
	for _, n := range t.Status.Nodes {
		if n.TemplateGeneration != t.Generation || n.Phase != v1.PhaseReady {
			continue
		}
		if n.FreeSlots > 0 {
			f.freeSlot = append(f.freeSlot, n.NodeName)
		} else {
			f.readyGolden = append(f.readyGolden, n.NodeName)
		}
	}
	slices.Sort(f.freeSlot)
	slices.Sort(f.readyGolden)
	return f
}

// machineOf is b's machineFacts: its own size, or its template's (a fork
// has its golden's size) and the template's nodes. missing says why they
// are not known yet: the template does not exist (it may be created after
// the Bottle, as GitOps applies in any order).
func (r *Reconciler) machineOf(ctx context.Context, b *v1.Bottle) (f machineFacts, missing string, err error) {
	if b.Spec.TemplateRef == nil {
		return machineFacts{size: b.Spec.Resources.OrDefault()}, "", nil
	}
	t := &v1.BottleTemplate{}
	err = r.Get(ctx, client.ObjectKey{Namespace: b.Namespace, Name: b.Spec.TemplateRef.Name}, t)
	if apierrors.IsNotFound(err) {
		return machineFacts{size: v1.Resources{}.OrDefault()}, fmt.Sprintf("BottleTemplate %s/%s does not exist: its resources size the reservation", b.Namespace, b.Spec.TemplateRef.Name), nil
	}
	if err != nil {
		return machineFacts{}, "", fmt.Errorf("reading BottleTemplate %s: %w", b.Spec.TemplateRef.Name, err)
	}
	return templateFacts(t), "", nil
}

// prefer adds f's warm nodes to pod's preferred node affinity, after the
// Bottle's own preferences. They are read when the Pod is made: a Pod
// waiting for the scheduler is not made again when slots come and go.
func prefer(pod *corev1.Pod, f machineFacts) {
	terms := []corev1.PreferredSchedulingTerm{}
	for _, w := range []struct {
		nodes  []string
		weight int32
	}{{f.freeSlot, weightFreeSlot}, {f.readyGolden, weightReadyGolden}} {
		if len(w.nodes) == 0 {
			continue
		}
		terms = append(terms, corev1.PreferredSchedulingTerm{Weight: w.weight, Preference: corev1.NodeSelectorTerm{
			MatchFields: []corev1.NodeSelectorRequirement{{Key: metav1.ObjectNameField, Operator: corev1.NodeSelectorOpIn, Values: w.nodes}},
		}})
	}
	if len(terms) == 0 {
		return
	}
	if pod.Spec.Affinity == nil {
		pod.Spec.Affinity = &corev1.Affinity{}
	}
	if pod.Spec.Affinity.NodeAffinity == nil {
		pod.Spec.Affinity.NodeAffinity = &corev1.NodeAffinity{}
	}
	na := pod.Spec.Affinity.NodeAffinity
	na.PreferredDuringSchedulingIgnoredDuringExecution = append(na.PreferredDuringSchedulingIgnoredDuringExecution, terms...)
}
