package agent_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

var _ = Describe("smolvm failures", func() {
	It("retries a failing start with backoff and keeps the finalizer while delete fails", func() {
		const node = "node-faulty"
		a := startAgent(node, agentOptions{simEnv: []string{"SMOLVM_SIM_FAIL=start=2,delete=2"}})
		defer a.stop()
		ns := newNamespace()
		b := bottle(ns, node, step("ok", "echo ok"))
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		Eventually(phaseOf(b)).Should(Equal(v1.PhaseReady))
		machine := get(b).Status.MachineName

		Expect(k8sClient.Delete(ctx, b)).To(Succeed())
		Eventually(eventReasons(b)).Should(ContainElement(v1.ReasonDeletionBlocked))
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(b), &v1.Bottle{}))
		}).Should(BeTrue())
		Expect(machineExists(node, machine)()).To(BeFalse(), "the finalizer went before the machine")
	})

	It("stalls with a clear reason on a node without KVM", func() {
		const node = "node-nokvm"
		a := startAgent(node, agentOptions{simEnv: []string{"SMOLVM_SIM_NO_KVM=1"}})
		defer a.stop()
		ns := newNamespace()
		b := bottle(ns, node, step("never", "echo never"))
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		Eventually(phaseOf(b)).Should(Equal(v1.PhaseFailed))
		// Only a human can fix the host: the agent does not ask smolvm again
		// on every event, which would flap the status through Starting.
		Consistently(phaseOf(b), 2*time.Second, 50*time.Millisecond).Should(Equal(v1.PhaseFailed))
		c := meta.FindStatusCondition(get(b).Status.Conditions, v1.ConditionStalled)
		Expect(c).NotTo(BeNil())
		Expect(c.Reason).To(Equal(v1.ReasonKVMUnavailable))
		Expect(c.Message).To(ContainSubstring("KVM not available"))
		Expect(kstatusOf(b)).To(Equal(status.FailedStatus))

		By("still deleting the Bottle: create/status/delete need no KVM")
		Expect(k8sClient.Delete(ctx, b)).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(b), &v1.Bottle{}))
		}).Should(BeTrue())
	})
})
