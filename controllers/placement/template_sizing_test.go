package placement_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

var _ = Describe("A templated Bottle's reservation", func() {
	It("waits for its template, then reserves the template's size, not the default", func() {
		ns := namespace("tpl-size")
		b := &v1.Bottle{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "forked"},
			Spec:       v1.BottleSpec{TemplateRef: &v1.TemplateReference{Name: "claude"}},
		}
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		Eventually(get(b)).Should(WithTransform(cond(v1.ConditionScheduled), Equal("False/"+v1.ReasonWaitingForTemplate)))
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: b.ReservationPodName()}, &corev1.Pod{})).NotTo(Succeed(), "no Pod is sized before the template exists")

		By("the template appearing (GitOps applies in any order)")
		t := &v1.BottleTemplate{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "claude"},
			Spec: v1.BottleTemplateSpec{MachineSpec: v1.MachineSpec{
				Image: "node:22", Resources: v1.Resources{CPUs: 3, MemoryMiB: 2048},
			}},
		}
		Expect(k8sClient.Create(ctx, t)).To(Succeed())
		Eventually(reservation(b)).WithTimeout(30 * time.Second).Should(WithTransform(func(p *corev1.Pod) []string {
			req := p.Spec.Containers[0].Resources.Requests
			return []string{req.Cpu().String(), req.Memory().String()}
		}, Equal([]string{"3100m", "2304Mi"})))
	})
})
