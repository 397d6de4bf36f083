package agent_test

import (
	"os"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/controllers/agent"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
	"github.com/bot-bottle/bottle-controller/internal/testenv"
	"github.com/bot-bottle/bottle-controller/internal/testutil"
)

// startTemplateAgent runs one node's template reconciler in-process, looking
// at each template again every second (or every resync).
func startTemplateAgent(node string, resync ...time.Duration) *testAgent {
	period := time.Second
	if len(resync) > 0 {
		period = resync[0]
	}
	return startTemplateAgentWith(node, period, 0)
}

// startTemplateAgentWith is startTemplateAgent with a ShutdownGrace (0:
// a golden's step is cut off at stop).
func startTemplateAgentWith(node string, period, grace time.Duration) *testAgent {
	return startTemplateAgentOpts(node, templateAgentOptions{period: period, grace: grace})
}

type templateAgentOptions struct {
	period, grace time.Duration
	// stepLogs, when set, keeps the golden steps' full output.
	stepLogs agent.StepLogs
}

func startTemplateAgentOpts(node string, o templateAgentOptions) *testAgent {
	period, grace := o.period, o.grace
	Expect(os.MkdirAll(dataDir(node), 0o755)).To(Succeed())
	logs := &testutil.SyncBuffer{}
	logger := zap.New(zap.WriteTo(logs), zap.UseDevMode(true), zap.Level(zapcore.DebugLevel))
	mopts := testutil.ManagerOptions(agent.ManagerOptions(testenv.Scheme(), node), logger)
	if grace > 0 {
		mopts.GracefulShutdownTimeout = new(grace + 5*time.Second)
	}
	mgr, err := ctrl.NewManager(cfg, mopts)
	Expect(err).NotTo(HaveOccurred())
	r := &agent.TemplateReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), NodeName: node,
		Machines:     smolvm.New(simPath, "SMOLVM_DATA_DIR="+dataDir(node)),
		ResyncPeriod: period, ShutdownGrace: grace, StepLogs: o.stepLogs,
	}
	Expect(r.SetupWithManager(mgr, "template-"+node)).To(Succeed())
	a := runAgent(node, mgr, logs)
	a.templates = r
	return a
}

func nodeEntry(t *v1.BottleTemplate, node string) func(Gomega) v1.TemplateNodeStatus {
	return func(g Gomega) v1.TemplateNodeStatus {
		cur := &v1.BottleTemplate{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(t), cur)).To(Succeed())
		for _, n := range cur.Status.Nodes {
			if n.NodeName == node {
				return n
			}
		}
		return v1.TemplateNodeStatus{}
	}
}

var _ = Describe("A BottleTemplate's golden on a selected node", func() {
	It("is created, started forkable, provisioned once with the ledger, and keeps its held slots", func() {
		const node = "node-golden"
		poolNode(node, "claude")
		a := startTemplateAgent(node)
		DeferCleanup(a.stop)
		ns := newNamespace()

		tpl := &v1.BottleTemplate{
			ObjectMeta: metav1.ObjectMeta{Name: "tools", Namespace: ns},
			Spec: v1.BottleTemplateSpec{
				MachineSpec: v1.MachineSpec{
					Image: "node:22",
					Env:   []v1.EnvVar{{Name: "GREETING", Value: new("hello")}},
					Provision: []v1.ProvisionStep{
						step("install", `echo "$GREETING" > /home/node/installed; echo installed-once >> /home/node/runs`),
					},
				},
				Pool: v1.TemplatePool{NodeSelector: map[string]string{"pool": "claude"}, HeldSlots: 2},
			},
		}
		Expect(k8sClient.Create(ctx, tpl)).To(Succeed())

		Eventually(nodeEntry(tpl, node)).Should(And(
			HaveField("Phase", v1.PhaseReady),
			HaveField("FreeSlots", int32(2)),
			HaveField("HeldSlots", int32(2)),
		))
		entry := nodeEntry(tpl, node)(Default)
		golden := entry.GoldenMachine
		Expect(golden).To(Equal(agent.GoldenMachineName(get2(tpl))))
		Expect(entry.ExecResults).To(HaveLen(1))
		Expect(entry.ExecResults[0].Name).To(Equal("install"))
		Expect(entry.ExecResults[0].ExitCode).To(HaveValue(BeEquivalentTo(0)))
		Expect(entry.ExecResults[0].User).To(Equal("node"))

		By("the golden is frozen and its slots are held clones with what its steps made")
		m, err := cli(node).Status(ctx, golden)
		Expect(err).NotTo(HaveOccurred())
		Expect(m.State).To(Equal(smolvm.StateFrozen))
		slot, err := cli(node).Status(ctx, golden+"-s0")
		Expect(err).NotTo(HaveOccurred())
		Expect(slot.ForkpointHeld).To(BeTrue())
		Expect(guest(node, golden+"-s1", "cat /home/node/installed /home/node/runs")).To(Equal("hello\ninstalled-once\n"))

		By("a slot handed out is replaced, and the steps do not run again")
		Expect(cli(node).ForkRelease(ctx, golden+"-s0", nil)).To(Succeed())
		Eventually(func(g Gomega) {
			e := nodeEntry(tpl, node)(g)
			g.Expect(e.FreeSlots).To(Equal(int32(2)))
			g.Expect(e.HeldSlots).To(Equal(int32(3)))
		}).Should(Succeed())
		Expect(guest(node, golden+"-s2", "cat /home/node/runs")).To(Equal("installed-once\n"))
		Expect(nodeEntry(tpl, node)(Default).ExecResults[0].StartedAt).To(Equal(entry.ExecResults[0].StartedAt))

		By("more held slots asked for are forked from the same golden: a pool edit is not a machine edit")
		cur := get2(tpl)
		cur.Spec.Pool.HeldSlots = 3
		Expect(k8sClient.Update(ctx, cur)).To(Succeed())
		Eventually(nodeEntry(tpl, node)).Should(And(HaveField("FreeSlots", int32(3)), HaveField("TemplateGeneration", get2(tpl).Generation)))
		e := nodeEntry(tpl, node)(Default)
		Expect(e.GoldenMachine).To(Equal(golden))
		Expect(e.ExecResults[0].StartedAt).To(Equal(entry.ExecResults[0].StartedAt), "the steps did not run again")
		Expect(e.RetiredGoldens).To(BeEmpty())
		Expect(guest(node, golden+"-s3", "cat /home/node/runs")).To(Equal("installed-once\n"))
	})

	It("leaves a template alone on a node its selector does not match", func() {
		const node = "node-unselected"
		poolNode(node, "other")
		a := startTemplateAgent(node)
		DeferCleanup(a.stop)
		ns := newNamespace()
		tpl := &v1.BottleTemplate{
			ObjectMeta: metav1.ObjectMeta{Name: "tools", Namespace: ns},
			Spec: v1.BottleTemplateSpec{
				MachineSpec: v1.MachineSpec{Image: "node:22"},
				Pool:        v1.TemplatePool{NodeSelector: map[string]string{"pool": "claude"}, HeldSlots: 1},
			},
		}
		Expect(k8sClient.Create(ctx, tpl)).To(Succeed())
		Consistently(func(g Gomega) {
			ms, err := cli(node).List(ctx)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(ms).To(BeEmpty())
			g.Expect(nodeEntry(tpl, node)(g).NodeName).To(BeEmpty())
		}, 3*time.Second, 500*time.Millisecond).Should(Succeed())
	})
})

func get2(t *v1.BottleTemplate) *v1.BottleTemplate {
	out := &v1.BottleTemplate{}
	Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(t), out)).To(Succeed())
	return out
}

// templatedBottle is a Bottle of the specs' template "tools" on node.
func templatedBottle(ns, name, node string, steps ...v1.ProvisionStep) *v1.Bottle {
	return &v1.Bottle{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1.BottleSpec{
			NodeName:    node,
			TemplateRef: &v1.TemplateReference{Name: "tools"},
			MachineSpec: v1.MachineSpec{Provision: steps},
		},
	}
}

var _ = Describe("A templated Bottle", func() {
	It("takes a held slot, or is forked on demand, runs its own steps after the template's, and its machine goes with it", func() {
		const node = "node-forks"
		poolNode(node, "forks")
		// No resync within the spec: a slot taken is replaced because the
		// Bottle that took it wakes its template.
		ta := startTemplateAgent(node, time.Hour)
		DeferCleanup(ta.stop) // stopping twice is harmless
		ba := startAgent(node, agentOptions{resync: 2 * time.Second})
		DeferCleanup(ba.stop)
		DeferCleanup(func() {
			if CurrentSpecReport().Failed() {
				dumpBottles()
				logs := ba.logs.String()
				GinkgoWriter.Printf("agent log (tail):\n%s\n", logs[max(0, len(logs)-8000):])
			}
		})
		ns := newNamespace()

		By("a Bottle of a template with no golden on its node waits, saying why")
		early := templatedBottle(ns, "early", node, step("own", "true"))
		Expect(k8sClient.Create(ctx, early)).To(Succeed())
		Eventually(func(g Gomega) {
			c := meta.FindStatusCondition(get(early).Status.Conditions, v1.ConditionMachineReady)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Reason).To(Equal(agent.ReasonWaitingForGolden))
			g.Expect(c.Message).To(ContainSubstring("BottleTemplate tools not found"))
		}).Should(Succeed())

		tpl := &v1.BottleTemplate{
			ObjectMeta: metav1.ObjectMeta{Name: "tools", Namespace: ns},
			Spec: v1.BottleTemplateSpec{
				MachineSpec: v1.MachineSpec{
					Image:     "node:22",
					Provision: []v1.ProvisionStep{step("install", `echo tools > /home/node/installed`)},
				},
				Pool: v1.TemplatePool{NodeSelector: map[string]string{"pool": "forks"}, HeldSlots: 1},
			},
		}
		Expect(k8sClient.Create(ctx, tpl)).To(Succeed())
		Eventually(nodeEntry(tpl, node)).Should(HaveField("FreeSlots", int32(1)))
		golden := nodeEntry(tpl, node)(Default).GoldenMachine

		By("the waiting Bottle takes the held slot")
		Eventually(phaseOf(early)).Should(Equal(v1.PhaseReady))
		st := get(early).Status
		Expect(st.MachineName).To(Equal(golden + "-s0"))
		Expect(st.Template).NotTo(BeNil())
		Expect(st.Template.HeldSlot).To(BeTrue())
		Expect(st.Template.GoldenMachine).To(Equal(golden))
		Expect(st.Template.Steps).To(ConsistOf(HaveField("Name", "install")))
		Expect(st.ExecResults).To(ConsistOf(HaveField("Name", "own")))

		By("with no free slot left, the next Bottle is forked on demand, under its own machine name")
		Eventually(machineState(node, golden+"-s1")).Should(Equal("running"), "the slot taken is replaced")
		named := templatedBottle(ns, "named", node)
		named.Spec.MachineName = "my-fork"
		Expect(k8sClient.Create(ctx, named)).To(Succeed())
		Eventually(phaseOf(named)).Should(Equal(v1.PhaseReady))
		Expect(get(named).Status.MachineName).To(Equal("my-fork"), "spec.machineName is honoured: a free slot is left, a fork is made under that name")
		Expect(get(named).Status.Template.HeldSlot).To(BeFalse())
		Expect(machineState(node, golden+"-s1")()).To(Equal("running"))
		Expect(cli(node).Status(ctx, golden+"-s1")).To(HaveField("ForkpointHeld", BeTrue()))
		ta.stop() // no more replenishing
		Expect(cli(node).ForkRelease(ctx, golden+"-s1", nil)).To(Succeed(), "someone takes the free slot first")
		b := templatedBottle(ns, "late", node,
			step("own", `cat /home/node/installed > /home/node/seen; echo "$WHO" >> /home/node/seen`))
		b.Spec.Env = []v1.EnvVar{{Name: "WHO", Value: new("late")}}
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		Eventually(phaseOf(b)).Should(Equal(v1.PhaseReady))
		st = get(b).Status
		Expect(st.Template.HeldSlot).To(BeFalse())
		Expect(st.MachineName).To(Equal(v1.MachineNameFor(ns, "late", string(get(b).UID))))
		Expect(guest(node, st.MachineName, "cat /home/node/seen")).To(Equal("tools\nlate\n"))

		By("deleting the Bottles deletes their machines; the golden stays")
		for _, x := range []*v1.Bottle{early, named, b} {
			name := get(x).Status.MachineName
			Expect(k8sClient.Delete(ctx, x)).To(Succeed())
			Eventually(machineExists(node, name)).Should(BeFalse())
		}
		Expect(machineState(node, golden)()).To(Equal(smolvm.StateFrozen))
	})
})

var _ = Describe("A BottleTemplate's goldens over its life", func() {
	It("makes a new golden for an edit, deletes the old one with its last clone, and the last one with the template", func() {
		const node = "node-retire"
		poolNode(node, "retire")
		ta := startTemplateAgent(node)
		DeferCleanup(ta.stop)
		ba := startAgent(node, agentOptions{resync: 2 * time.Second})
		DeferCleanup(ba.stop)
		ns := newNamespace()

		tpl := &v1.BottleTemplate{
			ObjectMeta: metav1.ObjectMeta{Name: "tools", Namespace: ns},
			Spec: v1.BottleTemplateSpec{
				MachineSpec: v1.MachineSpec{Image: "node:22", Provision: []v1.ProvisionStep{step("install", "echo v1 > /home/node/v")}},
				Pool:        v1.TemplatePool{NodeSelector: map[string]string{"pool": "retire"}, HeldSlots: 1},
			},
		}
		Expect(k8sClient.Create(ctx, tpl)).To(Succeed())
		DeferCleanup(func() {
			if CurrentSpecReport().Failed() {
				GinkgoWriter.Printf("entry: %+v\n", nodeEntry(tpl, node)(Default))
				logs := ta.logs.String()
				GinkgoWriter.Printf("template agent log (tail):\n%s\n", logs[max(0, len(logs)-6000):])
			}
		})
		Eventually(nodeEntry(tpl, node)).Should(HaveField("FreeSlots", int32(1)))
		g1 := nodeEntry(tpl, node)(Default).GoldenMachine
		b := templatedBottle(ns, "user", node)
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		Eventually(phaseOf(b)).Should(Equal(v1.PhaseReady))
		Eventually(nodeEntry(tpl, node)).Should(And(HaveField("Clones", int32(1)), HaveField("FreeSlots", int32(1))),
			"the slot taken counts as a clone, and is replaced")

		By("an edit makes a new golden; the old one stays for the Bottle forked from it")
		cur := get2(tpl)
		cur.Spec.Provision[0].Script = "echo v2 > /home/node/v"
		Expect(k8sClient.Update(ctx, cur)).To(Succeed())
		Eventually(func(g Gomega) {
			e := nodeEntry(tpl, node)(g)
			g.Expect(e.GoldenMachine).NotTo(Equal(g1))
			g.Expect(e.Phase).To(Equal(v1.PhaseReady))
			g.Expect(e.RetiredGoldens).To(ConsistOf(And(HaveField("MachineName", g1), HaveField("Clones", int32(1)))))
		}).Should(Succeed())
		g2 := nodeEntry(tpl, node)(Default).GoldenMachine
		Expect(guest(node, get(b).Status.MachineName, "cat /home/node/v")).To(Equal("v1\n"), "the Bottle keeps its golden's files")
		Expect(guest(node, g2+"-s0", "cat /home/node/v")).To(Equal("v2\n"))

		By("the old golden goes with its last clone, its free slot with it")
		Expect(k8sClient.Delete(ctx, b)).To(Succeed())
		Eventually(machineExists(node, g1)).Should(BeFalse())
		Expect(machineExists(node, g1+"-s1")()).To(BeFalse())
		Eventually(nodeEntry(tpl, node)).Should(HaveField("RetiredGoldens", BeEmpty()))

		By("deleting the template deletes its golden and slots, and the agent forgets it")
		Expect(ta.templates.RemembersTemplate(client.ObjectKeyFromObject(tpl))).To(BeTrue())
		Expect(k8sClient.Delete(ctx, get2(tpl))).To(Succeed())
		Eventually(func(g Gomega) {
			ms, err := cli(node).List(ctx)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(ms).To(BeEmpty())
		}).Should(Succeed())
		Eventually(func() bool { return ta.templates.RemembersTemplate(client.ObjectKeyFromObject(tpl)) }).Should(BeFalse())
	})
})

var _ = Describe("A BottleTemplate's golden across agent restarts", func() {
	It("is adopted by the next agent: no step runs again and no slot is forked again", func() {
		const node = "node-adopt"
		poolNode(node, "adopt")
		a := startTemplateAgent(node)
		ns := newNamespace()
		tpl := &v1.BottleTemplate{
			ObjectMeta: metav1.ObjectMeta{Name: "tools", Namespace: ns},
			Spec: v1.BottleTemplateSpec{
				MachineSpec: v1.MachineSpec{Image: "node:22", Provision: []v1.ProvisionStep{step("install", "echo x >> /home/node/runs")}},
				Pool:        v1.TemplatePool{NodeSelector: map[string]string{"pool": "adopt"}, HeldSlots: 2},
			},
		}
		Expect(k8sClient.Create(ctx, tpl)).To(Succeed())
		Eventually(nodeEntry(tpl, node)).Should(HaveField("FreeSlots", int32(2)))
		before := nodeEntry(tpl, node)(Default)
		a.stop()
		machines := func() []string {
			ms, err := cli(node).List(ctx)
			Expect(err).NotTo(HaveOccurred())
			var names []string
			for _, m := range ms {
				names = append(names, m.Name+"/"+m.State)
			}
			return names
		}
		was := machines()

		b := startTemplateAgent(node)
		DeferCleanup(b.stop)
		Eventually(func() string { return b.logs.String() }).Should(ContainSubstring("golden reconciled"), "the new agent looked at the template")
		Consistently(machines, 3*time.Second, 500*time.Millisecond).Should(Equal(was))
		after := nodeEntry(tpl, node)(Default)
		Expect(after.ExecResults).To(HaveLen(1))
		Expect(after.ExecResults[0].StartedAt).To(Equal(before.ExecResults[0].StartedAt))
		Expect(after.Phase).To(Equal(v1.PhaseReady))
		Expect(guest(node, before.GoldenMachine+"-s0", "cat /home/node/runs")).To(Equal("x\n"))
	})
})

var _ = Describe("A templated Bottle on a node its template does not select", func() {
	It("gets a golden built on its node under policy OnDemand, which stays after the Bottle goes", func() {
		const node = "node-ondemand"
		nodeObj := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}
		Expect(k8sClient.Create(ctx, nodeObj)).To(Succeed())
		DeferCleanup(func() { Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, nodeObj))).To(Succeed()) })
		ta := startTemplateAgent(node)
		DeferCleanup(ta.stop)
		ba := startAgent(node, agentOptions{resync: 2 * time.Second})
		DeferCleanup(ba.stop)
		ns := newNamespace()
		tpl := &v1.BottleTemplate{
			ObjectMeta: metav1.ObjectMeta{Name: "tools", Namespace: ns},
			Spec: v1.BottleTemplateSpec{
				MachineSpec: v1.MachineSpec{Image: "node:22", Provision: []v1.ProvisionStep{step("install", "echo t > /home/node/t")}},
				Pool:        v1.TemplatePool{NodeSelector: map[string]string{"pool": "elsewhere"}},
			},
		}
		Expect(k8sClient.Create(ctx, tpl)).To(Succeed())
		b := templatedBottle(ns, "lone", node, step("own", "cat /home/node/t > /home/node/seen"))
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		Eventually(phaseOf(b)).Should(Equal(v1.PhaseReady))
		st := get(b).Status
		Expect(st.Template.HeldSlot).To(BeFalse(), "no held slots asked for: forked on demand")
		Eventually(nodeEntry(tpl, node)).Should(HaveField("Clones", int32(1)))
		Expect(guest(node, st.MachineName, "cat /home/node/seen")).To(Equal("t\n"))
		golden := st.Template.GoldenMachine

		Expect(k8sClient.Delete(ctx, b)).To(Succeed())
		Eventually(machineExists(node, st.MachineName)).Should(BeFalse())
		Consistently(machineState(node, golden), 3*time.Second, 500*time.Millisecond).Should(Equal(smolvm.StateFrozen))
	})
})

// poolNode makes a Node labelled pool=pool (what a template's
// pool.nodeSelector matches), deleted after the spec.
func poolNode(node, pool string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node, Labels: map[string]string{"pool": pool}}}
	Expect(k8sClient.Create(ctx, n)).To(Succeed())
	DeferCleanup(func() { Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, n))).To(Succeed()) })
	return n
}
