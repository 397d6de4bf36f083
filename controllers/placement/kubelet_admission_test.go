package placement_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/testenv"
)

var _ = Describe("A reservation on a node that runs a kubelet", func() {
	It("is Scheduled only once the kubelet admitted the Pod, not when kube-scheduler bound it", func() {
		const node = "kubelet-node"
		n, err := testenv.CreateNode(ctx, k8sClient, node, 8, "16Gi", map[string]string{v1.LabelKVMNode: "true", "kubelet-test": "yes"})
		Expect(err).NotTo(HaveOccurred())
		// What a kubelet reports of itself.
		n.Status.NodeInfo.KubeletVersion = "v1.37.1"
		Expect(k8sClient.Status().Update(ctx, n)).To(Succeed())
		h := beat(node)
		DeferCleanup(h.kill)

		ns := namespace("kubelet")
		b := newBottle(ns, "admitted", 1, 1024, "")
		b.Spec.Placement = &v1.Placement{NodeSelector: map[string]string{"kubelet-test": "yes"}}
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		Eventually(get(b)).WithTimeout(30 * time.Second).Should(WithTransform(cond(v1.ConditionScheduled), Equal("False/"+v1.ReasonWaitingForKubelet)))
		Expect(get(b)(Default).Spec.NodeName).To(Equal(node), "bound by the scheduler")

		By("the kubelet admitting the Pod (its start time)")
		pod := reservation(b)(Default)
		pod.Status.StartTime = new(metav1.Now())
		Expect(k8sClient.Status().Update(ctx, pod)).To(Succeed())
		Eventually(get(b)).Should(WithTransform(cond(v1.ConditionScheduled), Equal("True/Scheduled")))
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(pod), &corev1.Pod{})).To(Succeed())
	})
})
