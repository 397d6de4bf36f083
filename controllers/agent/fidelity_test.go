package agent_test

import (
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/smolvmsim"
)

// machinePID is the machine's VMM pid as smolvm reports it (0: none).
func machinePID(node, machine string) int {
	m, err := cli(node).Status(ctx, machine)
	if err != nil {
		return 0
	}
	return m.PID
}

// wedge makes the machine's guest agent unanswering (the simulator's
// marker) or answering again.
func wedge(node, machine string, on bool) {
	marker := filepath.Join(dataDir(node), "machines", machine, smolvmsim.UnreachableMarker)
	if on {
		Expect(os.WriteFile(marker, nil, 0o600)).To(Succeed())
	} else {
		Expect(os.Remove(marker)).To(Succeed())
	}
}

func machineReadyReason(b *v1.Bottle) func() string {
	return func() string {
		c := meta.FindStatusCondition(get(b).Status.Conditions, v1.ConditionMachineReady)
		if c == nil {
			return ""
		}
		return c.Reason
	}
}

// What real smolvm does that the agent must meet, against the
// simulator behaving as smolvm's source says.
var _ = Describe("smolvm as it really behaves", func() {
	It("stalls a Bottle whose allowHost does not resolve on the node, naming the host", func() {
		const node = "node-dns"
		a := startAgent(node, agentOptions{})
		defer a.stop()
		ns := newNamespace()
		b := bottle(ns, node, step("never", "echo never"))
		b.Spec.Network.AllowHosts = []string{"registry.npmjs.org", "api.example.invalid"}
		Expect(k8sClient.Create(ctx, b)).To(Succeed())

		Eventually(func() string {
			c := meta.FindStatusCondition(get(b).Status.Conditions, v1.ConditionStalled)
			if c == nil || c.Status != metav1.ConditionTrue {
				return ""
			}
			return c.Reason
		}).Should(Equal(v1.ReasonAllowHostUnresolvable))
		c := meta.FindStatusCondition(get(b).Status.Conditions, v1.ConditionStalled)
		Expect(c.Message).To(ContainSubstring("'api.example.invalid'"))
		Expect(get(b).Status.Phase).To(Equal(v1.PhaseFailed))
	})

	It("records a step that prints smolvm's error texts as the step's failure, not smolvm's", func() {
		const node = "node-spoof"
		a := startAgent(node, agentOptions{})
		defer a.stop()
		ns := newNamespace()
		b := bottle(ns, node, step("spoof",
			`echo "Error: agent operation failed: start machine: kvm not available: no /dev/kvm" >&2; exit 1`))
		Expect(k8sClient.Create(ctx, b)).To(Succeed())

		Eventually(phaseOf(b)).Should(Equal(v1.PhaseFailed))
		got := get(b)
		c := meta.FindStatusCondition(got.Status.Conditions, v1.ConditionProvisioned)
		Expect(c.Reason).To(Equal(v1.ReasonStepFailed))
		Expect(c.Message).To(ContainSubstring("exited with code 1"))
		s := meta.FindStatusCondition(got.Status.Conditions, v1.ConditionStalled)
		if s != nil {
			Expect(s.Reason).NotTo(Equal(v1.ReasonKVMUnavailable))
		}
		Expect(*result(b, "spoof").ExitCode).To(Equal(int32(1)))
	})

	It("waits out a transient unreachable without restarting the machine", func() {
		const node = "node-unreach"
		a := startAgent(node, agentOptions{resync: time.Second, unreachableGrace: time.Hour})
		defer a.stop()
		ns := newNamespace()
		b := bottle(ns, node, step("ok", "echo ok"))
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		Eventually(phaseOf(b)).Should(Equal(v1.PhaseReady))
		machine := get(b).Status.MachineName
		pid := machinePID(node, machine)
		Expect(pid).NotTo(BeZero())

		wedge(node, machine, true)
		Eventually(machineReadyReason(b)).Should(Equal(v1.ReasonMachineUnreachable))
		Consistently(func() int { return machinePID(node, machine) }, 3*time.Second, 200*time.Millisecond).Should(Equal(pid))
		Expect(eventReasons(b)()).NotTo(ContainElement(v1.ReasonMachineRestarted))

		wedge(node, machine, false)
		Eventually(machineReadyReason(b)).Should(Equal(v1.ReasonMachineRunning))
		Expect(machinePID(node, machine)).To(Equal(pid), "the machine was restarted")
	})

	It("restarts a machine that stays unreachable past the grace", func() {
		const node = "node-unreach-long"
		a := startAgent(node, agentOptions{resync: time.Second, unreachableGrace: time.Second})
		defer a.stop()
		ns := newNamespace()
		b := bottle(ns, node, step("ok", "echo ok"))
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		Eventually(phaseOf(b)).Should(Equal(v1.PhaseReady))
		machine := get(b).Status.MachineName
		pid := machinePID(node, machine)

		wedge(node, machine, true)
		Eventually(eventReasons(b)).Should(ContainElement(v1.ReasonMachineRestarted))
		wedge(node, machine, false)
		Eventually(machineReadyReason(b)).Should(Equal(v1.ReasonMachineRunning))
		Expect(machinePID(node, machine)).NotTo(Equal(pid))
	})

	It("stalls a step in an image whose USER is not root, saying what to do", func() {
		const node = "node-imageuser"
		a := startAgent(node, agentOptions{simEnv: []string{smolvmsim.ImagesEnv + `={"node:22-user": {"user": "node"}}`}})
		defer a.stop()
		ns := newNamespace()
		b := bottle(ns, node, step("build", "echo build"))
		b.Spec.Image = "node:22-user"
		Expect(k8sClient.Create(ctx, b)).To(Succeed())

		Eventually(phaseOf(b)).Should(Equal(v1.PhaseFailed))
		c := meta.FindStatusCondition(get(b).Status.Conditions, v1.ConditionStalled)
		Expect(c).NotTo(BeNil())
		Expect(c.Reason).To(Equal(v1.ReasonStepFailed))
		Expect(c.Message).To(ContainSubstring("non-root USER"))
		Expect(c.Message).To(ContainSubstring("USER root"))
	})

	It("applies a new size by stopping, updating and starting the machine, keeping its disk", func() {
		const node = "node-update"
		a := startAgent(node, agentOptions{resync: time.Second})
		defer a.stop()
		ns := newNamespace()
		b := bottle(ns, node, step("mark", "echo x >> /home/node/mark"))
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		Eventually(phaseOf(b)).Should(Equal(v1.PhaseReady))
		machine := get(b).Status.MachineName
		pid := machinePID(node, machine)

		got := get(b)
		got.Spec.Resources.CPUs = 4
		Expect(k8sClient.Update(ctx, got)).To(Succeed())
		Eventually(eventReasons(b)).Should(ContainElement(v1.ReasonMachineResized))
		Eventually(func() int {
			m, err := cli(node).Status(ctx, machine)
			if err != nil || m.State != "running" {
				return 0
			}
			return m.CPUs
		}).Should(Equal(4))
		Eventually(func() bool {
			got := get(b)
			return got.Status.Phase == v1.PhaseReady && got.Status.ObservedGeneration == got.Generation
		}).Should(BeTrue())
		Expect(machinePID(node, machine)).NotTo(Equal(pid), "the machine was not restarted")
		Expect(guest(node, machine, "cat /home/node/mark")).To(Equal("x\n"), "the disk was lost or the step ran again")
		Expect(eventReasons(b)()).NotTo(ContainElement(v1.ReasonMachineRecreating))
	})
})
