package placement_test

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/testenv"
)

var kvm = map[string]string{v1.LabelKVMNode: "true"}

var (
	kstatusCurrent = status.CurrentStatus
	clientGrace0   = client.DeleteOptions{GracePeriodSeconds: new(int64)}
)

func newBottle(ns, name string, cpus, memMiB int32, node string) *v1.Bottle {
	return &v1.Bottle{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1.BottleSpec{
			NodeName: node,
			MachineSpec: v1.MachineSpec{
				Image:     "node:22",
				Resources: v1.Resources{CPUs: cpus, MemoryMiB: memMiB},
			},
		},
	}
}

func namespace(prefix string) string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}
	Expect(k8sClient.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

func get(b *v1.Bottle) func(Gomega) *v1.Bottle {
	return func(g Gomega) *v1.Bottle {
		out := &v1.Bottle{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(b), out)).To(Succeed())
		return out
	}
}

// cond returns "Status/Reason" of a condition, "" when absent.
func cond(typ string) func(*v1.Bottle) string {
	return func(b *v1.Bottle) string {
		c := meta.FindStatusCondition(b.Status.Conditions, typ)
		if c == nil {
			return ""
		}
		return string(c.Status) + "/" + c.Reason
	}
}

func kstatus(b *v1.Bottle) status.Status {
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(b)
	Expect(err).NotTo(HaveOccurred())
	res, err := status.Compute(&unstructured.Unstructured{Object: u})
	Expect(err).NotTo(HaveOccurred())
	return res.Status
}

func reservation(b *v1.Bottle) func(Gomega) *corev1.Pod {
	return func(g Gomega) *corev1.Pod {
		p := &corev1.Pod{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: b.Namespace, Name: b.ReservationPodName()}, p)).To(Succeed())
		return p
	}
}

var _ = Describe("Placement through kube-scheduler", Ordered, func() {
	var beats []*heartbeat
	AfterAll(func() {
		for _, h := range beats {
			h.kill()
		}
	})

	It("places 20 Bottles without nodeName on 3 Nodes of different sizes, never past a node's allocatable", func() {
		sizes := map[string]int64{"fit-small": 6, "fit-medium": 10, "fit-large": 16} // CPUs; 2 GiB of memory per CPU
		for node, cpus := range sizes {
			labels := map[string]string{v1.LabelKVMNode: "true", "size": node, "fit": "yes"}
			_, err := testenv.CreateNode(ctx, k8sClient, node, cpus, fmt.Sprintf("%dGi", 2*cpus), labels)
			Expect(err).NotTo(HaveOccurred())
			beats = append(beats, beat(node))
		}
		// A KVM node whose agent never runs: nothing may land there.
		_, err := testenv.CreateNode(ctx, k8sClient, "fit-noagent", 64, "128Gi", map[string]string{v1.LabelKVMNode: "true", "fit": "yes"})
		Expect(err).NotTo(HaveOccurred())

		ns := namespace("fit")
		var bottles []*v1.Bottle
		for i := range 20 {
			// Every fourth Bottle has 2 CPUs and 2 GiB, the others 1 and 1:
			// with the 100m/256Mi overhead each, 20 Bottles ask for 27 of
			// the 32 CPUs and 30 of the 64 GiB.
			size := int32(1)
			if i%4 == 3 {
				size = 2
			}
			b := newBottle(ns, fmt.Sprintf("b%02d", i), size, 1024*size, "")
			// Other specs' nodes (in any order) stay out of this one.
			b.Spec.Placement = &v1.Placement{NodeSelector: map[string]string{"fit": "yes"}}
			if i == 0 {
				b.Spec.Placement.NodeSelector["size"] = "fit-small"
			}
			Expect(k8sClient.Create(ctx, b)).To(Succeed())
			bottles = append(bottles, b)
		}
		for _, b := range bottles {
			Eventually(get(b)).Should(WithTransform(cond(v1.ConditionScheduled), Equal("True/Scheduled")), func() string {
				return fmt.Sprintf("%s: %+v", b.Name, get(b)(Default).Status.Conditions)
			})
			got := get(b)(Default)
			Expect(got.Spec.NodeName).To(BeKeyOf(sizes))
			Expect(reservation(b)(Default).Spec.NodeName).To(Equal(got.Spec.NodeName))
		}
		for _, b := range bottles {
			// No agent runs here (only heartbeats): once a live agent
			// stays silent past its first word's time, the cluster
			// controller says the Bottle waits for it.
			Eventually(get(b)).WithTimeout(20 * time.Second).Should(WithTransform(cond(v1.ConditionReady), Equal("False/"+v1.ReasonWaitingForNodeAgent)))
		}
		Expect(get(bottles[0])(Default).Spec.NodeName).To(Equal("fit-small"), "spec.placement.nodeSelector is honoured")

		var pods corev1.PodList
		Expect(k8sClient.List(ctx, &pods, client.InNamespace(ns))).To(Succeed())
		Expect(pods.Items).To(HaveLen(20))
		used := map[string]corev1.ResourceList{}
		for _, p := range pods.Items {
			Expect(p.Spec.NodeName).NotTo(Equal("fit-noagent"))
			sum := used[p.Spec.NodeName]
			if sum == nil {
				sum = corev1.ResourceList{}
			}
			for k, q := range p.Spec.Containers[0].Resources.Requests {
				v := sum[k]
				v.Add(q)
				sum[k] = v
			}
			used[p.Spec.NodeName] = sum
		}
		for node, cpus := range sizes {
			n := &corev1.Node{}
			Expect(k8sClient.Get(ctx, client.ObjectKey{Name: node}, n)).To(Succeed())
			Expect(n.Labels).To(HaveKeyWithValue(v1.LabelSchedulable, "true"))
			u := used[node]
			Expect(u.Cpu().Cmp(*resource.NewQuantity(cpus, resource.DecimalSI))).To(BeNumerically("<=", 0), node)
			Expect(u.Memory().Cmp(resource.MustParse(fmt.Sprintf("%dGi", 2*cpus)))).To(BeNumerically("<=", 0), node)
		}
		n := &corev1.Node{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Name: "fit-noagent"}, n)).To(Succeed())
		Expect(n.Labels).To(HaveKeyWithValue(v1.LabelSchedulable, "false"))
	})

	It("reports a Bottle that fits nowhere with the scheduler's reason, and places it once a big enough Node appears", func() {
		ns := namespace("big")
		// smolvm's most (16 vCPUs) plus the reservation's overhead fits
		// no node here: fit-large has exactly 16.
		b := newBottle(ns, "huge", 16, 4096, "")
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		Eventually(get(b)).Should(WithTransform(cond(v1.ConditionScheduled), Equal("False/"+v1.ReasonUnschedulable)))
		got := get(b)(Default)
		Expect(meta.FindStatusCondition(got.Status.Conditions, v1.ConditionScheduled).Message).To(MatchRegexp(`0/\d+ nodes are available: .*Insufficient cpu`))
		// The scheduler says only that fit-noagent (a KVM node whose agent
		// never ran, from the spec before) "didn't match"; the Bottle names
		// it, with any other KVM node whose agent is down (another
		// Describe's, when Ginkgo runs it first).
		Expect(meta.FindStatusCondition(got.Status.Conditions, v1.ConditionScheduled).Message).To(MatchRegexp(`no live node agent on KVM node\(s\) [^:]*\bfit-noagent\b`))
		Expect(cond(v1.ConditionReady)(got)).To(Equal("False/" + v1.ReasonUnschedulable))
		Expect(got.Status.Phase).To(Equal(v1.PhasePending))
		Expect(kstatus(got)).To(Equal(status.InProgressStatus))

		_, err := testenv.CreateNode(ctx, k8sClient, "big-node", 64, "64Gi", kvm)
		Expect(err).NotTo(HaveOccurred())
		beats = append(beats, beat("big-node"))
		Eventually(get(b)).Should(WithTransform(func(b *v1.Bottle) string { return b.Spec.NodeName }, Equal("big-node")))
		Eventually(get(b)).Should(WithTransform(cond(v1.ConditionScheduled), Equal("True/Scheduled")))
	})

	It("says NodeAgentUnavailable within 15s for a typo'd nodeName, and Stalled after the grace", func() {
		ns := namespace("typo")
		b := newBottle(ns, "typo", 1, 1024, "fit-smal")
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		Eventually(get(b)).WithTimeout(15 * time.Second).Should(And(
			WithTransform(cond(v1.ConditionScheduled), Equal("False/"+v1.ReasonNodeAgentUnavailable)),
			WithTransform(cond(v1.ConditionReady), Equal("False/"+v1.ReasonNodeAgentUnavailable)),
			WithTransform(cond(v1.ConditionReconciling), Equal("True/"+v1.ReasonNodeAgentUnavailable)),
		))
		got := get(b)(Default)
		Expect(meta.FindStatusCondition(got.Status.Conditions, v1.ConditionScheduled).Message).To(ContainSubstring("no agent serves node fit-smal"))
		Expect(kstatus(got)).To(Equal(status.InProgressStatus))
		Eventually(get(b)).Should(WithTransform(cond(v1.ConditionStalled), Equal("True/"+v1.ReasonNodeAgentUnavailable)))
		got = get(b)(Default)
		Expect(got.Status.Phase).To(Equal(v1.PhaseFailed))
		Expect(cond(v1.ConditionReconciling)(got)).To(BeEmpty())
		Expect(kstatus(got)).To(Equal(status.FailedStatus))
	})

	It("turns a killed agent's Bottles NodeAgentUnavailable after the timeout, and back once it returns", func() {
		ns := namespace("killed")
		_, err := testenv.CreateNode(ctx, k8sClient, "mortal", 8, "16Gi", kvm)
		Expect(err).NotTo(HaveOccurred())
		h := beat("mortal")
		b := newBottle(ns, "on-mortal", 1, 1024, "mortal")
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		Eventually(get(b)).Should(WithTransform(cond(v1.ConditionScheduled), Equal("True/Scheduled")))

		h.kill()
		killed := time.Now()
		Eventually(get(b)).WithTimeout(15 * time.Second).Should(WithTransform(cond(v1.ConditionReady), Equal("False/"+v1.ReasonNodeAgentUnavailable)))
		Expect(time.Since(killed)).To(BeNumerically(">=", agentTimeout-time.Second), "not before the Lease's last renewal times out")
		Expect(get(b)(Default).Status.Phase).To(Equal(v1.PhaseUnknown))
		n := &corev1.Node{}
		Eventually(func(g Gomega) map[string]string {
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Name: "mortal"}, n)).To(Succeed())
			return n.Labels
		}).Should(HaveKeyWithValue(v1.LabelSchedulable, "false"))

		beats = append(beats, beat("mortal"))
		Eventually(get(b)).Should(And(
			WithTransform(cond(v1.ConditionScheduled), Equal("True/Scheduled")),
			WithTransform(cond(v1.ConditionReady), Equal("False/"+v1.ReasonWaitingForNodeAgent)),
		))
	})

	It("deletes the reservation Pod with its Bottle", func() {
		ns := namespace("del")
		b := newBottle(ns, "gone", 1, 1024, "fit-large")
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		// fit-large may be full by now: the Pod need not be bound.
		Eventually(reservation(b)).ShouldNot(BeNil())
		Expect(k8sClient.Delete(ctx, b)).To(Succeed())
		Eventually(func() error {
			return k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: b.ReservationPodName()}, &corev1.Pod{})
		}).Should(Satisfy(apierrors.IsNotFound))
	})

	It("keeps the reservation while the machine is taken down, and remakes it pinned on a resize", func() {
		_, err := testenv.CreateNode(ctx, k8sClient, "resizer", 8, "16Gi", kvm)
		Expect(err).NotTo(HaveOccurred())
		beats = append(beats, beat("resizer"))
		ns := namespace("resize")
		b := newBottle(ns, "grows", 1, 1024, "resizer")
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		Eventually(get(b)).Should(WithTransform(cond(v1.ConditionScheduled), Equal("True/Scheduled")))
		before := reservation(b)(Default)
		cpu := func(p *corev1.Pod) int64 { return p.Spec.Containers[0].Resources.Requests.Cpu().MilliValue() }

		By("a resize: the Pod is made again with the new size, pinned to the same node")
		got := get(b)(Default)
		got.Spec.Resources.CPUs = 2
		Expect(k8sClient.Update(ctx, got)).To(Succeed())
		Eventually(reservation(b)).Should(And(
			WithTransform(func(p *corev1.Pod) types.UID { return p.UID }, Not(Equal(before.UID))),
			WithTransform(cpu, Equal(cpu(before)+1000)),
		))
		after := reservation(b)(Default)
		Expect(after.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchFields).To(
			ContainElement(corev1.NodeSelectorRequirement{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"resizer"}}))
		Eventually(get(b)).Should(WithTransform(cond(v1.ConditionScheduled), Equal("True/Scheduled")))

		By("deleted while the agent still takes the machine down (its finalizer): the Pod stays")
		got = get(b)(Default)
		got.Finalizers = append(got.Finalizers, v1.Finalizer)
		Expect(k8sClient.Update(ctx, got)).To(Succeed())
		Expect(k8sClient.Delete(ctx, got)).To(Succeed())
		Eventually(get(b)).Should(WithTransform(func(b *v1.Bottle) bool { return !b.DeletionTimestamp.IsZero() }, BeTrue()))
		Consistently(reservation(b), "3s", "250ms").Should(And(
			WithTransform(func(p *corev1.Pod) types.UID { return p.UID }, Equal(after.UID)),
			WithTransform(func(p *corev1.Pod) bool { return p.DeletionTimestamp.IsZero() }, BeTrue()),
		), "the reservation of a machine being taken down is kept")

		By("the machine gone (the finalizer removed): the Pod goes")
		got = get(b)(Default)
		got.Finalizers = nil
		Expect(k8sClient.Update(ctx, got)).To(Succeed())
		Eventually(func() error {
			return k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: b.ReservationPodName()}, &corev1.Pod{})
		}).Should(Satisfy(apierrors.IsNotFound))
	})

	It("reports a placement the Pod API refuses on the Bottle, and recovers when it is fixed", func() {
		_, err := testenv.CreateNode(ctx, k8sClient, "roomy", 8, "16Gi", map[string]string{v1.LabelKVMNode: "true", "size": "roomy"})
		Expect(err).NotTo(HaveOccurred())
		beats = append(beats, beat("roomy"))
		ns := namespace("invalid")
		b := newBottle(ns, "bad-affinity", 1, 1024, "")
		b.Spec.Placement = &v1.Placement{Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "size", Operator: "Near", Values: []string{"roomy"}}}}}}}}}
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		Eventually(get(b)).Should(And(
			WithTransform(cond(v1.ConditionScheduled), Equal("False/"+v1.ReasonInvalidPlacement)),
			WithTransform(cond(v1.ConditionStalled), Equal("True/"+v1.ReasonInvalidPlacement)),
		))
		got := get(b)(Default)
		Expect(meta.FindStatusCondition(got.Status.Conditions, v1.ConditionScheduled).Message).To(ContainSubstring(`Invalid value: "Near": not a valid selector operator`))
		Expect(kstatus(got)).To(Equal(status.FailedStatus))

		got.Spec.Placement.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchExpressions[0].Operator = corev1.NodeSelectorOpIn
		Expect(k8sClient.Update(ctx, got)).To(Succeed())
		Eventually(get(b)).Should(WithTransform(func(b *v1.Bottle) string { return b.Spec.NodeName }, Equal("roomy")), func() string {
			return fmt.Sprintf("%+v", get(b)(Default).Status.Conditions)
		})
		Eventually(get(b)).Should(WithTransform(cond(v1.ConditionStalled), BeEmpty()))
	})

	It("reports a reservation Pod the API server refuses with its words, and makes it once it accepts", func() {
		// A quota of no Pods stands in for any admission refusal (the
		// dev cluster's was a namespace without its default ServiceAccount,
		// which this envtest does not check).
		ns := namespace("refused")
		quota := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "no-pods", Namespace: ns},
			Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("0")}}}
		Expect(k8sClient.Create(ctx, quota)).To(Succeed())
		// No kube-controller-manager computes the quota's status here; the
		// admission plugin enforces what status says.
		quota.Status = corev1.ResourceQuotaStatus{Hard: quota.Spec.Hard, Used: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("0")}}
		Expect(k8sClient.Status().Update(ctx, quota)).To(Succeed())
		b := newBottle(ns, "refused", 1, 1024, "")
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		Eventually(get(b)).Should(WithTransform(cond(v1.ConditionScheduled), Equal("False/"+v1.ReasonReservationRefused)))
		msg := meta.FindStatusCondition(get(b)(Default).Status.Conditions, v1.ConditionScheduled).Message
		Expect(msg).To(ContainSubstring(`the API server refused reservation Pod bottle-refused`))
		Expect(msg).To(ContainSubstring(`is forbidden`))
		Expect(msg).To(ContainSubstring(`quota`))

		Expect(k8sClient.Delete(ctx, quota)).To(Succeed())
		Eventually(reservation(b)).ShouldNot(BeNil(), "the Pod is made once the API server accepts it")
		Eventually(get(b)).ShouldNot(WithTransform(cond(v1.ConditionScheduled), Equal("False/"+v1.ReasonReservationRefused)))
	})

	It("sends a Bottle that names its node through kube-scheduler: no VM past the node's room", func() {
		_, err := testenv.CreateNode(ctx, k8sClient, "named-small", 2, "4Gi", kvm)
		Expect(err).NotTo(HaveOccurred())
		beats = append(beats, beat("named-small"))
		ns := namespace("named")
		big := newBottle(ns, "big", 16, 262144, "named-small")
		fits := newBottle(ns, "fits", 1, 1024, "named-small")
		Expect(k8sClient.Create(ctx, big)).To(Succeed())
		Expect(k8sClient.Create(ctx, fits)).To(Succeed())
		// Once the node is labelled schedulable (its agent is live), the
		// scheduler's reason is the node's room.
		Eventually(func(g Gomega) string {
			b := get(big)(g)
			g.Expect(cond(v1.ConditionScheduled)(b)).To(Equal("False/" + v1.ReasonUnschedulable))
			return meta.FindStatusCondition(b.Status.Conditions, v1.ConditionScheduled).Message
		}).Should(And(ContainSubstring("on node named-small:"), ContainSubstring("Insufficient cpu")))
		Expect(reservation(big)(Default).Spec.NodeName).To(BeEmpty(), "not bound: no kubelet or VM takes it")
		Eventually(get(fits)).Should(WithTransform(cond(v1.ConditionScheduled), Equal("True/"+v1.ReasonScheduled)))
		Expect(reservation(fits)(Default).Spec.NodeName).To(Equal("named-small"), "bound by kube-scheduler")
	})

	It("refuses to move a Bottle once placed (nodeName is set once)", func() {
		ns := namespace("once")
		b := newBottle(ns, "once", 1, 1024, "")
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		Eventually(get(b)).Should(WithTransform(func(b *v1.Bottle) string { return b.Spec.NodeName }, Not(BeEmpty())))
		// A status write between the read and the update is a conflict,
		// not the answer: read again.
		Eventually(func() error {
			got := get(b)(Default)
			got.Spec.NodeName = "elsewhere"
			return k8sClient.Update(ctx, got)
		}).Should(MatchError(ContainSubstring("nodeName is set once")))
	})
})
