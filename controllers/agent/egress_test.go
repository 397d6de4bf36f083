package agent_test

import (
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/testutil"
)

// probe connects from the guest to host:port and prints the first line the
// server sends, or bash's error.
func probe(node, machine, host string, port int) (stdout, stderr string, code int) {
	return sim(node, "machine", "exec", "--name", machine, "--", "bash", "-c",
		fmt.Sprintf("exec 3<>/dev/tcp/%s/%d && head -n1 <&3", host, port))
}

func refusalsOf(b *v1.Bottle) func() []string {
	return func() []string {
		var out []string
		for _, r := range get(b).Status.EgressRefusals {
			out = append(out, r.Key())
		}
		return out
	}
}

func eventNotes(b *v1.Bottle, reason string) func() []string {
	return func() []string {
		var out []string
		for _, e := range events(b) {
			if e.Reason == reason {
				out = append(out, e.Type+" "+e.Note)
			}
		}
		return out
	}
}

func egressCounter(op string) float64 {
	mfs, err := ctrlmetrics.Registry.Gather()
	Expect(err).NotTo(HaveOccurred())
	for _, mf := range mfs {
		if mf.GetName() != "bottle_egress_refusals_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "operation" && l.GetValue() == op {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// The egress allowlist, enforced by the simulator as smolvm does, end to
// end through the agent: what is allowed is reachable, what is not is
// refused and shows on the Bottle (status, events, metrics) within a
// resync period, and an allowlist edit takes effect as docs/agent.md says.
var _ = Describe("egress", func() {
	It("reaches exactly the allowlist, surfaces every refusal, and an edit revokes access", func() {
		hosts := testutil.NewEgressHosts(GinkgoT())
		allowed := hosts.Add(GinkgoT(), "allowed.egress.test")
		byCIDR := hosts.Add(GinkgoT(), "cidr.egress.test")
		unlisted := hosts.Add(GinkgoT(), "unlisted.egress.test")
		const node = "node-egress"
		opts := agentOptions{resync: 2 * time.Second, simEnv: []string{"SMOLVM_SIM_HOSTS=" + hosts.File}}
		a := startAgent(node, opts)
		defer func() { a.stop() }()

		ns := newNamespace()
		b := bottle(ns, node)
		b.Spec.Network = v1.Network{AllowHosts: []string{allowed.Name}, AllowCIDRs: []string{byCIDR.CIDR}}
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		Eventually(phaseOf(b)).Should(Equal(v1.PhaseReady))
		machine := get(b).Status.MachineName

		out, errOut, code := probe(node, machine, allowed.Name, allowed.Port)
		Expect(code).To(Equal(0), "allowed host by name: %s", errOut)
		Expect(out).To(Equal("hello from " + allowed.Name + "\n"))
		out, errOut, code = probe(node, machine, byCIDR.IP, byCIDR.Port)
		Expect(code).To(Equal(0), "allowed CIDR: %s", errOut)
		Expect(out).To(Equal("hello from " + byCIDR.Name + "\n"))
		out, _, code = probe(node, machine, unlisted.IP, unlisted.Port)
		Expect(code).NotTo(Equal(0), "an unlisted address was reached: %s", out)
		_, _, code = sim(node, "machine", "exec", "--name", machine, "--", "getent", "hosts", unlisted.Name)
		Expect(code).NotTo(Equal(0), "an unlisted name resolved")

		connect, resolve := "connect "+unlisted.Addr(), "resolve "+unlisted.Name
		Eventually(refusalsOf(b)).Should(ContainElements(connect, resolve))
		for _, r := range get(b).Status.EgressRefusals {
			Expect(r.Destination).NotTo(Or(ContainSubstring(allowed.IP), ContainSubstring(byCIDR.IP)), "an allowed destination recorded as refused")
			Expect(r.Count).To(BeNumerically(">=", 1))
			Expect(r.LastSeen.IsZero()).To(BeFalse())
		}
		Eventually(eventNotes(b, v1.ReasonEgressRefused)).Should(ContainElement(
			MatchRegexp(`^Warning refused connect to %s ×1 in the last \d+s$`, strings.ReplaceAll(unlisted.Addr(), ".", `\.`))))
		Expect(egressCounter(v1.EgressConnect)).To(BeNumerically(">=", 1))
		Expect(egressCounter(v1.EgressResolve)).To(BeNumerically(">=", 1))

		// Read once: the next reads add nothing for the same refusals.
		counted := get(b).Status.EgressRefusals
		Consistently(func() []v1.EgressRefusal { return get(b).Status.EgressRefusals }, 5*time.Second, time.Second).
			Should(Equal(counted), "a refusal was counted twice")

		By("restarting the agent: its cursor is gone, status says what was read")
		a.stop()
		a = startAgent(node, opts)
		Consistently(func() []v1.EgressRefusal { return get(b).Status.EgressRefusals }, 5*time.Second, time.Second).
			Should(Equal(counted), "a restarted agent counted a refusal again")

		By("removing the host from the allowlist (recreatePolicy Never): Stalled, the machine as it was")
		got := get(b)
		got.Spec.Network.AllowHosts = nil
		Expect(k8sClient.Update(ctx, got)).To(Succeed())
		Eventually(phaseOf(b)).Should(Equal(v1.PhaseFailed))
		c := meta.FindStatusCondition(get(b).Status.Conditions, v1.ConditionMachineUpToDate)
		Expect(c).NotTo(BeNil())
		Expect(c.Reason).To(Equal(v1.ReasonRecreateRequired))
		Expect(c.Message).To(ContainSubstring("spec.network"))
		_, errOut, code = probe(node, machine, allowed.Name, allowed.Port)
		Expect(code).To(Equal(0), "docs/security.md: until it is recreated the machine keeps its allowlist: %s", errOut)

		By("recreatePolicy OnChange: the new machine cannot reach the removed host")
		got = get(b)
		got.Spec.RecreatePolicy = v1.RecreateOnChange
		Expect(k8sClient.Update(ctx, got)).To(Succeed())
		Eventually(eventReasons(b)).Should(ContainElement(v1.ReasonMachineRecreating))
		Eventually(func() bool {
			g := get(b)
			return g.Status.Phase == v1.PhaseReady && g.Status.ObservedGeneration == g.Generation &&
				meta.FindStatusCondition(g.Status.Conditions, v1.ConditionMachineUpToDate) == nil
		}).Should(BeTrue())
		out, _, code = probe(node, machine, allowed.Name, allowed.Port)
		Expect(code).NotTo(Equal(0), "a host removed from the allowlist is still reachable: %s", out)
		out, errOut, code = probe(node, machine, byCIDR.IP, byCIDR.Port)
		Expect(code).To(Equal(0), "the CIDR left in the allowlist: %s", errOut)
		Expect(out).To(Equal("hello from " + byCIDR.Name + "\n"))
		Eventually(refusalsOf(b)).Should(ContainElement("connect " + allowed.Addr()))
	})

	It("gives a Bottle without an allowlist no network at all", func() {
		hosts := testutil.NewEgressHosts(GinkgoT())
		h := hosts.Add(GinkgoT(), "any.egress.test")
		const node = "node-nonet"
		a := startAgent(node, agentOptions{simEnv: []string{"SMOLVM_SIM_HOSTS=" + hosts.File}})
		defer a.stop()
		b := bottle(newNamespace(), node)
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		Eventually(phaseOf(b)).Should(Equal(v1.PhaseReady))
		_, errOut, code := probe(node, get(b).Status.MachineName, h.IP, h.Port)
		Expect(code).NotTo(Equal(0))
		Expect(errOut).To(ContainSubstring("Network is unreachable"))
	})
})
