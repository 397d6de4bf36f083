package agent_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

var _ = Describe("an agent told to stop", func() {
	It("finishes the running step within its grace, records it, starts no other, and the next agent does not run it again", func() {
		const node = "node-drain"
		a := startAgent(node, agentOptions{shutdownGrace: 40 * time.Second})
		ns := newNamespace()
		b := bottle(ns, node,
			step("drain", "echo x >> /home/node/drain-runs; while [ ! -e /tmp/release ]; do sleep 0.05; done; echo released"),
			step("after", "echo x >> /home/node/after-runs"),
		)
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		Eventually(running(b)).Should(Equal("drain"))
		machine := get(b).Status.MachineName
		Eventually(guestPoll(node, machine, "cat /home/node/drain-runs 2>/dev/null || true")).Should(Equal("x\n"))

		By("stopping the agent while the step runs: it waits for the step")
		a.cancel()
		Consistently(a.done, "1s", "50ms").ShouldNot(BeClosed(), "the agent did not wait for its running step")
		guest(node, machine, "touch /tmp/release")
		Eventually(a.done).Should(BeClosed())

		results := get(b).Status.ExecResults
		Expect(results).To(HaveLen(1), "the step after it did not start while the agent stopped")
		Expect(results[0].Name).To(Equal("drain"))
		Expect(results[0].FinishedAt).NotTo(BeNil(), "the drained step's result is recorded")
		Expect(results[0].ExitCode).To(HaveValue(BeZero()))
		Expect(results[0].Stdout).To(Equal("released\n"))

		By("a fresh agent goes on from there")
		a = startAgent(node, agentOptions{})
		defer a.stop()
		Eventually(phaseOf(b)).Should(Equal(v1.PhaseReady))
		Expect(guest(node, machine, "cat /home/node/drain-runs /home/node/after-runs")).To(Equal("x\nx\n"), "the drained step ran once, the next one once")
	})
})
