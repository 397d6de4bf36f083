package agent_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/utils/ptr"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/smolvmsim"
)

// invocations reads a simulator invocation log (SMOLVM_SIM_LOG) as one
// "VERB/MACHINE" per smolvm process.
func invocations(path string) func() []string {
	return func() []string {
		invs, err := smolvmsim.ReadLog(path)
		if err != nil {
			return nil
		}
		out := make([]string, 0, len(invs))
		for _, inv := range invs {
			out = append(out, strings.ReplaceAll(inv.Key(), " ", "/"))
		}
		return out
	}
}

var _ = Describe("smolvm processes per Bottle", Ordered, func() {
	const node = "node-parity"
	var (
		a   *testAgent
		log string
	)
	BeforeAll(func() {
		log = filepath.Join(GinkgoT().TempDir(), "smolvm-calls")
		a = startAgent(node, agentOptions{simEnv: []string{"SMOLVM_SIM_LOG=" + log}})
	})
	AfterAll(func() { a.stop() })

	It("reaches Ready with at most one smolvm process more than by hand (create, start, one cp per file, one exec per step)", func() {
		ns := newNamespace()
		b := bottle(ns, node, step("one", "id -un"), step("two", "cat /home/node/.config/f"))
		b.Spec.Files = []v1.File{{Path: "/home/node/.config/f", Owner: "node", Mode: ptr.To[int32](0o600), Inline: ptr.To("x")}}
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		Eventually(phaseOf(b)).Should(Equal(v1.PhaseReady))
		Expect(result(b, "two").Stdout).To(Equal("x"))

		byHand := 2 + len(b.Spec.Files) + len(b.Spec.Provision) // create, start, cp per file, exec per step
		calls := invocations(log)
		Expect(calls()).To(ContainElements("create/"+get(b).Status.MachineName, "start/"+get(b).Status.MachineName))
		// Passes that follow their own status writes must not ask smolvm
		// again: the count holds after Ready, not only at Ready.
		count := func() int { return len(calls()) }
		Consistently(count, 2*time.Second, 200*time.Millisecond).Should(BeNumerically("<=", byHand+1), "smolvm calls: %v", calls())
		AddReportEntry("smolvm calls", calls())
	})
})

var _ = Describe("smolvm processes of idle Bottles", Ordered, func() {
	const node = "node-idle"
	var (
		a   *testAgent
		log string
	)
	BeforeAll(func() {
		log = filepath.Join(GinkgoT().TempDir(), "smolvm-calls")
		a = startAgent(node, agentOptions{resync: time.Second, simEnv: []string{"SMOLVM_SIM_LOG=" + log}})
	})
	AfterAll(func() { a.stop() })

	It("asks smolvm once per node per resync while every Bottle is idle, and still finds a machine gone", func() {
		ns := newNamespace()
		var bottles []*v1.Bottle
		for i := range 3 {
			b := bottle(ns, node, step("one", "true"))
			b.Name = fmt.Sprintf("idle-%d", i)
			Expect(k8sClient.Create(ctx, b)).To(Succeed())
			bottles = append(bottles, b)
		}
		for _, b := range bottles {
			Eventually(phaseOf(b)).Should(Equal(v1.PhaseReady))
		}
		calls := invocations(log)
		count := func(lists bool) func() int {
			return func() int {
				n := 0
				for _, c := range calls() {
					if strings.HasPrefix(c, "ls/") == lists {
						n++
					}
				}
				return n
			}
		}
		lists, others := count(true), count(false)
		l0, o0 := lists(), others()
		Consistently(others, 3500*time.Millisecond, 100*time.Millisecond).Should(Equal(o0), "idle Bottles made smolvm calls of their own: %v", calls())
		Expect(lists()-l0).To(BeNumerically("~", 3, 1), "one machine ls per resync for the node")

		By("a machine deleted behind the agent's back is seen at the next resync and created again")
		machine := get(bottles[0]).Status.MachineName
		_, errOut, code := sim(node, "machine", "delete", "--name", machine, "-f")
		Expect(code).To(Equal(0), errOut)
		Eventually(eventReasons(bottles[0])).Should(ContainElement(v1.ReasonMachineRecreated))
		Eventually(phaseOf(bottles[0])).Should(Equal(v1.PhaseReady))
	})
})
