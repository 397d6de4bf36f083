package agent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/controllers/agent"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
	"github.com/bot-bottle/bottle-controller/internal/smolvmsim"
)

var _ = Describe("Templated Bottles created at once", func() {
	It("each take a held slot of their own, with one release each and none refused", func() {
		const node, burst = "node-burst", 8
		poolNode(node, "burst")
		ta := startTemplateAgent(node, time.Hour)
		DeferCleanup(ta.stop)
		log := filepath.Join(GinkgoT().TempDir(), "smolvm.jsonl")
		ba := startAgent(node, agentOptions{resync: time.Minute, simEnv: []string{"SMOLVM_SIM_LOG=" + log}})
		DeferCleanup(ba.stop)
		ns := newNamespace()

		poolTemplate(ns, node, "burst", burst)
		ta.stop() // the pool stays as it is: every slot below was free before the burst

		bottles := make([]*v1.Bottle, burst)
		errs := make(chan error, burst)
		for i := range bottles {
			bottles[i] = templatedBottle(ns, fmt.Sprintf("b%d", i), node)
			go func(b *v1.Bottle) { errs <- k8sClient.Create(ctx, b) }(bottles[i])
		}
		for range bottles {
			Expect(<-errs).To(Succeed())
		}
		machines := map[string]bool{}
		for _, b := range bottles {
			Eventually(phaseOf(b)).Should(Equal(v1.PhaseReady))
			st := get(b).Status
			Expect(st.Template.HeldSlot).To(BeTrue(), "%s took a held slot", b.Name)
			machines[st.MachineName] = true
		}
		Expect(machines).To(HaveLen(burst), "no two Bottles share a slot")

		invs, err := smolvmsim.ReadLog(log)
		Expect(err).NotTo(HaveOccurred())
		releases := map[string]int{}
		for _, inv := range invs {
			if len(inv.Argv) > 1 && inv.Argv[1] == "fork-release" {
				Expect(inv.Exit).To(BeZero(), "smolvm refused a release: %v", inv.Argv)
				for i, a := range inv.Argv[:len(inv.Argv)-1] {
					if a == "--name" {
						releases[inv.Argv[i+1]]++
					}
				}
			}
		}
		for m := range machines {
			Expect(releases).To(HaveKeyWithValue(m, 1), "one release for %s", m)
		}
		Expect(releases).To(HaveLen(burst))
	})
})

var _ = Describe("A held slot claimed but not released", func() {
	It("is released by the next agent for the Bottle that recorded it, and given to no other", func() {
		const node = "node-claim"
		poolNode(node, "claim")
		ta := startTemplateAgent(node, time.Hour)
		DeferCleanup(ta.stop)
		ns := newNamespace()
		poolTemplate(ns, node, "claim", 2)
		ta.stop()

		By("the release fails after the claim is recorded: the status names the slot")
		log := filepath.Join(GinkgoT().TempDir(), "smolvm.jsonl")
		first := startAgent(node, agentOptions{retryBase: time.Hour,
			simEnv: []string{"SMOLVM_SIM_LOG=" + log, "SMOLVM_SIM_FAIL=fork-release=1"}})
		DeferCleanup(first.stop)
		a := templatedBottle(ns, "a", node)
		Expect(k8sClient.Create(ctx, a)).To(Succeed())
		var slot string
		Eventually(func(g Gomega) {
			st := get(a).Status
			c := meta.FindStatusCondition(st.Conditions, v1.ConditionMachineReady)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Reason).To(Equal(v1.ReasonSmolvmError))
			g.Expect(st.Template).NotTo(BeNil())
			g.Expect(st.Template.HeldSlot).To(BeTrue())
			slot = st.MachineName
		}).Should(Succeed())
		Expect(cli(node).Status(ctx, slot)).To(HaveField("ForkpointHeld", BeTrue()), "the slot is still held")
		first.stop()

		By("the next agent finishes that release for it, and gives another Bottle the other slot")
		next := startAgent(node, agentOptions{simEnv: []string{"SMOLVM_SIM_LOG=" + log}})
		DeferCleanup(next.stop)
		b := templatedBottle(ns, "b", node)
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		Eventually(phaseOf(a)).Should(Equal(v1.PhaseReady))
		Eventually(phaseOf(b)).Should(Equal(v1.PhaseReady))
		Expect(get(a).Status.MachineName).To(Equal(slot))
		Expect(get(b).Status.MachineName).NotTo(Equal(slot))
		Expect(get(b).Status.Template.HeldSlot).To(BeTrue())

		invs, err := smolvmsim.ReadLog(log)
		Expect(err).NotTo(HaveOccurred())
		var releases []string
		for _, inv := range invs {
			if inv.Verb() == "fork-release" {
				releases = append(releases, fmt.Sprintf("%s exit %d", inv.Machine(), inv.Exit))
			}
		}
		Expect(releases).To(ConsistOf(slot+" exit 1", slot+" exit 0", get(b).Status.MachineName+" exit 0"))
	})
})

var _ = Describe("A released held slot no Bottle names", func() {
	It("is deleted by the resync once the grace has passed, and a Bottle's own slot is kept", func() {
		const node = "node-orphan"
		poolNode(node, "orphan")
		ta := startTemplateAgent(node, time.Hour)
		DeferCleanup(ta.stop)
		ns := newNamespace()
		tpl := poolTemplate(ns, node, "orphan", 2)
		ta.stop() // the pool stays as it is

		var (
			mu      sync.Mutex
			applies []string // a's status applies, as sent
		)
		ba := startAgent(node, agentOptions{resync: 200 * time.Millisecond, slotOrphanGrace: time.Second,
			statusApply: func(ctx context.Context, c client.Client, sub string, obj runtime.ApplyConfiguration, opts ...client.SubResourceApplyOption) error {
				raw, err := json.Marshal(obj)
				Expect(err).NotTo(HaveOccurred())
				if strings.Contains(string(raw), `"name":"a","namespace":"`+ns+`"`) {
					mu.Lock()
					applies = append(applies, string(raw))
					mu.Unlock()
				}
				return c.SubResource(sub).Apply(ctx, obj, opts...)
			}})
		DeferCleanup(ba.stop)
		a := templatedBottle(ns, "a", node)
		Expect(k8sClient.Create(ctx, a)).To(Succeed())
		Eventually(phaseOf(a)).Should(Equal(v1.PhaseReady))
		own := get(a).Status.MachineName
		mu.Lock()
		Expect(applies).To(HaveLen(1), "the claim goes with the Ready write: one status write")
		Expect(applies[0]).To(ContainSubstring(`"machineName":"` + own + `"`))
		mu.Unlock()

		By("the other slot is released as by an agent that stopped before the Bottle's status write")
		golden := agent.GoldenMachineName(tpl)
		var other string
		for _, k := range []string{"0", "1"} {
			if n := golden + "-s" + k; n != own {
				other = n
			}
		}
		Expect(cli(node).ForkRelease(ctx, other, nil)).To(Succeed())
		Eventually(func() error {
			_, err := cli(node).Status(ctx, other)
			return err
		}).WithTimeout(30 * time.Second).Should(Satisfy(smolvm.IsNotFound))

		Expect(cli(node).Status(ctx, own)).To(HaveField("State", smolvm.StateRunning), "the Bottle's slot is kept")
		Expect(phaseOf(a)()).To(Equal(v1.PhaseReady))
		Expect(ba.logs.String()).To(ContainSubstring("deleted a released held slot no Bottle names"))
	})
})

// poolTemplate creates the template "tools" in ns (one quick step), kept on
// the nodes labelled pool=pool with slots held slots, and waits until node
// has them all free.
func poolTemplate(ns, node, pool string, slots int32) *v1.BottleTemplate {
	tpl := &v1.BottleTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: "tools", Namespace: ns},
		Spec: v1.BottleTemplateSpec{
			MachineSpec: v1.MachineSpec{Image: "node:22", Provision: []v1.ProvisionStep{step("install", "true")}},
			Pool:        v1.TemplatePool{NodeSelector: map[string]string{"pool": pool}, HeldSlots: slots},
		},
	}
	Expect(k8sClient.Create(ctx, tpl)).To(Succeed())
	Eventually(nodeEntry(tpl, node)).WithTimeout(time.Minute).Should(HaveField("FreeSlots", slots))
	return tpl
}
