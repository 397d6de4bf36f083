package placement

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// AnnotationPlacement holds a hash of what the Pod was scheduled with
// (the Bottle's placement), so a change while it waits re-creates it.
const AnnotationPlacement = "agents.bot-bottle.dev/placement-hash"

// ContainerName is the reservation Pod's one container.
const ContainerName = "reservation"

// ReservationPod is the Pod that holds b's place: requests (and limits, so
// its QoS is Guaranteed) of the VM's CPUs and memory plus the overhead,
// placed by kube-scheduler on a KVM node with a live agent that fits
// b.spec.placement, and pinned by node affinity to spec.nodeName when set. It runs only the
// pause image, without a service account token.
func ReservationPod(b *v1.Bottle, o Options) *corev1.Pod {
	return reservationPod(b, machineFacts{size: b.Spec.Resources.OrDefault()}, o)
}

// reservationPod is ReservationPod for a machine f describes: a templated
// Bottle's size is its template's, a template of policy Selected confines
// it to the nodes it selects, and nodes with a warm golden are preferred.
func reservationPod(b *v1.Bottle, f machineFacts, o Options) *corev1.Pod {
	res := corev1.ResourceList{corev1.ResourceCPU: cpuOf(f.size, o), corev1.ResourceMemory: memoryOf(f.size, o)}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:        b.ReservationPodName(),
			Namespace:   b.Namespace,
			Labels:      map[string]string{v1.LabelReservation: "true"},
			Annotations: map[string]string{AnnotationPlacement: placementHash(b.Spec.Placement, f.requiredLabels)},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: v1.GroupVersion.String(), Kind: "Bottle", Name: b.Name, UID: b.UID,
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
			}},
		},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name:                     ContainerName,
				Image:                    o.PauseImage,
				Resources:                corev1.ResourceRequirements{Requests: res, Limits: res.DeepCopy()},
				TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
				SecurityContext: &corev1.SecurityContext{
					RunAsNonRoot:             ptr.To(true),
					RunAsUser:                ptr.To[int64](65535),
					ReadOnlyRootFilesystem:   ptr.To(true),
					AllowPrivilegeEscalation: ptr.To(false),
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
					SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
				},
			}},
			AutomountServiceAccountToken:  ptr.To(false),
			EnableServiceLinks:            ptr.To(false),
			TerminationGracePeriodSeconds: ptr.To[int64](1),
		},
	}
	sel := map[string]string{}
	maps.Copy(sel, f.requiredLabels)
	if p := b.Spec.Placement; p != nil {
		// The Bottle's own selector wins a key both name: the Pod then
		// fits no node the template keeps goldens on, and says so.
		maps.Copy(sel, p.NodeSelector)
		pod.Spec.Affinity = p.Affinity.DeepCopy()
		for _, t := range p.Tolerations {
			pod.Spec.Tolerations = append(pod.Spec.Tolerations, *t.DeepCopy())
		}
	}
	sel[v1.LabelKVMNode] = "true"
	sel[v1.LabelSchedulable] = "true"
	pod.Spec.NodeSelector = sel
	prefer(pod, f)
	if b.Spec.NodeName != "" {
		// Not spec.nodeName on the Pod, which would skip kube-scheduler: a
		// Bottle naming its node still passes its filters (fit, taints,
		// KVM), and only the scheduler's binding says it fits.
		pinTo(pod, b.Spec.NodeName)
	}
	return pod
}

// pinTo requires node by name in every required node-affinity term (terms
// are alternatives, so each must carry it).
func pinTo(pod *corev1.Pod, node string) {
	name := corev1.NodeSelectorRequirement{Key: metav1.ObjectNameField, Operator: corev1.NodeSelectorOpIn, Values: []string{node}}
	if pod.Spec.Affinity == nil {
		pod.Spec.Affinity = &corev1.Affinity{}
	}
	if pod.Spec.Affinity.NodeAffinity == nil {
		pod.Spec.Affinity.NodeAffinity = &corev1.NodeAffinity{}
	}
	na := pod.Spec.Affinity.NodeAffinity
	if na.RequiredDuringSchedulingIgnoredDuringExecution == nil || len(na.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms) == 0 {
		na.RequiredDuringSchedulingIgnoredDuringExecution = &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{}}}
	}
	terms := na.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	for i := range terms {
		terms[i].MatchFields = append(terms[i].MatchFields, name)
	}
}

// pinnedTo is the node every required term of pod's node affinity names,
// "" when it names none.
func pinnedTo(pod *corev1.Pod) string {
	a := pod.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return ""
	}
	node := ""
	for _, t := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		found := ""
		for _, f := range t.MatchFields {
			if f.Key == metav1.ObjectNameField && f.Operator == corev1.NodeSelectorOpIn && len(f.Values) == 1 {
				found = f.Values[0]
			}
		}
		if found == "" || node != "" && found != node {
			return ""
		}
		node = found
	}
	return node
}

func cpuOf(size v1.Resources, o Options) resource.Quantity {
	q := *resource.NewQuantity(int64(size.CPUs), resource.DecimalSI)
	q.Add(o.OverheadCPU)
	return q
}

func memoryOf(size v1.Resources, o Options) resource.Quantity {
	q := *resource.NewQuantity(int64(size.MemoryMiB)<<20, resource.BinarySI)
	q.Add(o.OverheadMemory)
	return q
}

// placementHash hashes what the Pod must be scheduled with: the Bottle's
// placement and the labels its template requires (absent for most
// Bottles, which keeps their hash as it was).
func placementHash(p *v1.Placement, required map[string]string) string {
	var v any = p
	if len(required) > 0 {
		v = struct {
			Placement *v1.Placement     `json:"placement"`
			Template  map[string]string `json:"template"`
		}{p, required}
	}
	raw, _ := json.Marshal(v) // a Placement always marshals
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:8])
}

// stale says why pod no longer reserves what want does for a Bottle on
// node ("" when it still does). Pods are all but immutable, so a stale one
// is deleted and made again: while it waits for the scheduler, after a
// placement change or once the Bottle names a node it is not pinned to;
// once bound, after a resize or when the Bottle names another node. A
// bound Pod of a templated Bottle keeps its size (keepSize): the Bottle's
// machine is a fork of the golden it was made from, which an edit of the
// template does not resize.
func stale(pod, want *corev1.Pod, node string, keepSize bool) string {
	have, need := pod.Spec.Containers, want.Spec.Containers
	if len(have) != 1 {
		return "the Bottle's resources changed"
	}
	sizeKept := keepSize && pod.Spec.NodeName != ""
	if !sizeKept && (!have[0].Resources.Requests.Cpu().Equal(*need[0].Resources.Requests.Cpu()) ||
		!have[0].Resources.Requests.Memory().Equal(*need[0].Resources.Requests.Memory())) {
		return "the Bottle's resources changed"
	}
	switch {
	case node != "" && pod.Spec.NodeName != "" && pod.Spec.NodeName != node:
		return "the Bottle names node " + node + ", the Pod is on " + pod.Spec.NodeName
	case pod.Spec.NodeName == "" && pinnedTo(pod) != node:
		return "the Bottle names node " + node
	case pod.Spec.NodeName == "" && pod.Annotations[AnnotationPlacement] != want.Annotations[AnnotationPlacement]:
		return "the Bottle's placement changed"
	}
	return ""
}

// ownedBy reports whether pod is b's reservation (controller reference to
// this very Bottle, not an earlier one of the same name).
func ownedBy(pod *corev1.Pod, b *v1.Bottle) bool {
	ref := metav1.GetControllerOf(pod)
	return ref != nil && ref.UID == b.UID && ref.Kind == "Bottle"
}

// isReservation reports whether pod is some Bottle's reservation.
func isReservation(pod *corev1.Pod) bool {
	ref := metav1.GetControllerOf(pod)
	return pod.Labels[v1.LabelReservation] == "true" && ref != nil && ref.Kind == "Bottle" &&
		ref.APIVersion == v1.GroupVersion.String()
}
