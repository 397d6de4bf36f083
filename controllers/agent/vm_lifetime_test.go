package agent_test

import (
	"os"
	"strconv"
	"strings"
	"syscall"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// groupAndSession reads a process's process group and session from
// /proc/PID/stat (fields 5 and 6, after the parenthesised command name).
func groupAndSession(pid string) (pgrp, sid int) {
	raw, err := os.ReadFile("/proc/" + pid + "/stat")
	Expect(err).NotTo(HaveOccurred())
	s := string(raw)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	pgrp, err = strconv.Atoi(fields[2])
	Expect(err).NotTo(HaveOccurred())
	sid, err = strconv.Atoi(fields[3])
	Expect(err).NotTo(HaveOccurred())
	return pgrp, sid
}

var _ = Describe("VMs outlive the agent", func() {
	It("keeps a running machine through a hard agent stop and the next agent adopts it without re-running steps", func() {
		const node = "node-outlive"
		a := startAgent(node, agentOptions{})
		ns := newNamespace()
		b := bottle(ns, node, step("first", "echo x >> /home/node/first-runs"))
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		Eventually(phaseOf(b)).Should(Equal(v1.PhaseReady))
		machine := get(b).Status.MachineName
		before, err := cli(node).Status(ctx, machine)
		Expect(err).NotTo(HaveOccurred())
		Expect(before.State).To(Equal("running"))
		Expect(before.PID).To(BeNumerically(">", 0), "a running machine has a VMM process")

		By("stopping the agent hard: its manager is cancelled and every smolvm call it had running is killed with its process group")
		a.stop()

		By("the VMM is not in the agent's process group or session, so killing them cannot reach it")
		pgrp, sid := groupAndSession(strconv.Itoa(before.PID))
		ownPgrp, ownSid := groupAndSession("self")
		Expect(pgrp).NotTo(Equal(ownPgrp))
		Expect(sid).NotTo(Equal(ownSid))
		Expect(syscall.Kill(before.PID, 0)).To(Succeed(), "the VMM died with the agent")
		after, err := cli(node).Status(ctx, machine)
		Expect(err).NotTo(HaveOccurred())
		Expect(after.State).To(Equal("running"))
		Expect(after.PID).To(Equal(before.PID))

		By("changing the Bottle while no agent runs, so the next agent has work to do")
		cur := get(b)
		cur.Spec.Provision = append(cur.Spec.Provision, step("second", "echo y >> /home/node/second-runs"))
		Expect(k8sClient.Update(ctx, cur)).To(Succeed())
		generation := get(b).Generation

		By("starting a new agent for the same node")
		a = startAgent(node, agentOptions{})
		defer a.stop()
		DeferCleanup(func() {
			if CurrentSpecReport().Failed() {
				dumpBottles()
				GinkgoWriter.Printf("second agent's log:\n%s\n", a.logs.String())
			}
		})
		Eventually(func(g Gomega) {
			s := get(b).Status
			g.Expect(s.ObservedGeneration).To(Equal(generation))
			g.Expect(s.Phase).To(Equal(v1.PhaseReady))
		}).Should(Succeed())
		r := result(b, "second")
		Expect(r.FinishedAt).NotTo(BeNil(), "Ready at the new generation before its new step ran: %+v", get(b).Status)

		adopted, err := cli(node).Status(ctx, machine)
		Expect(err).NotTo(HaveOccurred())
		Expect(adopted.State).To(Equal("running"))
		Expect(adopted.PID).To(Equal(before.PID), "the machine was restarted or re-created, not adopted")
		Expect(guest(node, machine, "cat /home/node/first-runs")).To(Equal("x\n"), "a completed step ran again")
		Expect(guest(node, machine, "cat /home/node/second-runs")).To(Equal("y\n"))
		machines, err := cli(node).List(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(machines).To(HaveLen(1), "a second machine was created")
	})
})
