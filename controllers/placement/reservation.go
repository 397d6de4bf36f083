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
// pinned to spec.nodeName when set and otherwise placed by kube-scheduler on
// a KVM node with a live agent that fits b.spec.placement. It runs only the
// pause image, without a service account token.
func ReservationPod(b *v1.Bottle, o Options) *corev1.Pod {
	res := corev1.ResourceList{corev1.ResourceCPU: cpuOf(b, o), corev1.ResourceMemory: memoryOf(b, o)}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:        b.ReservationPodName(),
			Namespace:   b.Namespace,
			Labels:      map[string]string{v1.LabelReservation: "true"},
			Annotations: map[string]string{AnnotationPlacement: placementHash(b.Spec.Placement)},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: v1.GroupVersion.String(), Kind: "Bottle", Name: b.Name, UID: b.UID,
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
			}},
		},
		Spec: corev1.PodSpec{
			NodeName: b.Spec.NodeName,
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
	if b.Spec.NodeName == "" {
		sel := map[string]string{}
		if p := b.Spec.Placement; p != nil {
			maps.Copy(sel, p.NodeSelector)
		}
		sel[v1.LabelKVMNode] = "true"
		sel[v1.LabelSchedulable] = "true"
		pod.Spec.NodeSelector = sel
		if p := b.Spec.Placement; p != nil {
			pod.Spec.Affinity = p.Affinity.DeepCopy()
			for _, t := range p.Tolerations {
				pod.Spec.Tolerations = append(pod.Spec.Tolerations, *t.DeepCopy())
			}
		}
	}
	return pod
}

func cpuOf(b *v1.Bottle, o Options) resource.Quantity {
	q := *resource.NewQuantity(int64(b.Spec.Resources.OrDefault().CPUs), resource.DecimalSI)
	q.Add(o.OverheadCPU)
	return q
}

func memoryOf(b *v1.Bottle, o Options) resource.Quantity {
	q := *resource.NewQuantity(int64(b.Spec.Resources.OrDefault().MemoryMiB)<<20, resource.BinarySI)
	q.Add(o.OverheadMemory)
	return q
}

func placementHash(p *v1.Placement) string {
	raw, _ := json.Marshal(p) // a Placement always marshals
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:8])
}

// stale says why pod no longer reserves what want does ("" when it still
// does). Pods are all but immutable, so a stale one is deleted and made
// again: while it waits for the scheduler, after a placement change; once
// bound, after a resize or when the Bottle names another node.
func stale(pod, want *corev1.Pod) string {
	have, need := pod.Spec.Containers, want.Spec.Containers
	if len(have) != 1 || !have[0].Resources.Requests.Cpu().Equal(*need[0].Resources.Requests.Cpu()) ||
		!have[0].Resources.Requests.Memory().Equal(*need[0].Resources.Requests.Memory()) {
		return "the Bottle's resources changed"
	}
	switch {
	case want.Spec.NodeName != "" && pod.Spec.NodeName != "" && pod.Spec.NodeName != want.Spec.NodeName:
		return "the Bottle names node " + want.Spec.NodeName + ", the Pod is on " + pod.Spec.NodeName
	case pod.Spec.NodeName == "" && want.Spec.NodeName != "":
		return "the Bottle names node " + want.Spec.NodeName
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
