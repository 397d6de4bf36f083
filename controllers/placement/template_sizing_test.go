package placement_test

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/testenv"
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

var _ = Describe("A templated Bottle's node", Ordered, func() {
	var beats []*heartbeat
	BeforeAll(func() {
		for node, l := range map[string]map[string]string{
			"warm-a": {v1.LabelKVMNode: "true", "warm-test": "yes"},
			"warm-b": {v1.LabelKVMNode: "true", "warm-test": "yes", "pool": "claude-selected"},
		} {
			_, err := testenv.CreateNode(ctx, k8sClient, node, 8, "32Gi", l)
			Expect(err).NotTo(HaveOccurred())
			beats = append(beats, beat(node))
		}
	})
	AfterAll(func() {
		for _, h := range beats {
			h.kill()
		}
	})
	templated := func(ns, name, tpl string) *v1.Bottle {
		b := &v1.Bottle{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: v1.BottleSpec{TemplateRef: &v1.TemplateReference{Name: tpl},
				// Other specs' nodes stay out of this one.
				Placement: &v1.Placement{NodeSelector: map[string]string{"warm-test": "yes"}}},
		}
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		return b
	}
	nodeOf := func(b *v1.Bottle) string {
		Eventually(get(b)).WithTimeout(30 * time.Second).Should(WithTransform(cond(v1.ConditionScheduled), Equal("True/Scheduled")))
		return get(b)(Default).Spec.NodeName
	}

	It("is a node whose agent reports a free held slot of the template's current golden", func() {
		ns := namespace("tpl-warm")
		t := &v1.BottleTemplate{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "claude"},
			Spec:       v1.BottleTemplateSpec{MachineSpec: v1.MachineSpec{Image: "node:22", Resources: v1.Resources{CPUs: 1, MemoryMiB: 1024}}},
		}
		Expect(k8sClient.Create(ctx, t)).To(Succeed())
		// What warm-a's agent writes once its golden is provisioned (the
		// agent is not running here; its entry is the input).
		t.Status.Nodes = []v1.TemplateNodeStatus{{NodeName: "warm-a", TemplateGeneration: t.Generation, Phase: v1.PhaseReady, HeldSlots: 4, FreeSlots: 4}}
		Expect(k8sClient.Status().Update(ctx, t)).To(Succeed())
		for i := range 4 {
			b := templated(ns, fmt.Sprintf("fork-%d", i), "claude")
			Expect(nodeOf(b)).To(Equal("warm-a"), "kube-scheduler would spread these by load; the free slots draw them to warm-a")
			Expect(reservation(b)(Default).Spec.Affinity.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution).To(ContainElement(
				HaveField("Preference.MatchFields", ContainElement(HaveField("Values", Equal([]string{"warm-a"}))))))
		}
	})

	It("is only a node the template selects when its policy is Selected", func() {
		ns := namespace("tpl-selected")
		t := &v1.BottleTemplate{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "claude"},
			Spec: v1.BottleTemplateSpec{
				MachineSpec: v1.MachineSpec{Image: "node:22", Resources: v1.Resources{CPUs: 1, MemoryMiB: 1024}},
				Pool:        v1.TemplatePool{Policy: v1.PoolSelected, NodeSelector: map[string]string{"pool": "claude-selected"}},
			},
		}
		Expect(k8sClient.Create(ctx, t)).To(Succeed())
		for i := range 3 {
			b := templated(ns, fmt.Sprintf("fork-%d", i), "claude")
			Expect(nodeOf(b)).To(Equal("warm-b"))
			Expect(reservation(b)(Default).Spec.NodeSelector).To(HaveKeyWithValue("pool", "claude-selected"))
		}
	})
})
