package agent_test

import (
	"crypto/sha256"
	"encoding/hex"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

var _ = Describe("A BottleTemplate's files and prompt", func() {
	It("land in the golden before its steps, are recorded by digest, and are in every fork", func() {
		const node = "node-golden-files"
		poolNode(node, "files")
		a := startTemplateAgent(node)
		DeferCleanup(a.stop)
		ns := newNamespace()
		Expect(k8sClient.Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: ns},
			Data:       map[string]string{"settings.json": `{"theme":"dark"}`},
		})).To(Succeed())

		tpl := &v1.BottleTemplate{
			ObjectMeta: metav1.ObjectMeta{Name: "tools", Namespace: ns},
			Spec: v1.BottleTemplateSpec{
				MachineSpec: v1.MachineSpec{
					Image:      "node:22",
					PromptPath: "/home/node/prompt.md",
					Prompt:     &v1.ContentSource{Inline: new("review the diff")},
					Files: []v1.File{
						{Path: "/home/node/.claude/settings.json", Owner: "node", ConfigMapKeyRef: &v1.KeyRef{Name: "settings", Key: "settings.json"}},
						{Path: "/etc/tools.conf", Inline: new("tools=1\n")},
					},
					Provision: []v1.ProvisionStep{
						step("read", `cat /home/node/.claude/settings.json /etc/tools.conf /home/node/prompt.md > /home/node/seen`),
					},
				},
				Pool: v1.TemplatePool{NodeSelector: map[string]string{"pool": "files"}, HeldSlots: 1},
			},
		}
		Expect(k8sClient.Create(ctx, tpl)).To(Succeed())
		Eventually(nodeEntry(tpl, node)).Should(And(HaveField("Phase", v1.PhaseReady), HaveField("FreeSlots", int32(1))))
		entry := nodeEntry(tpl, node)(Default)
		Expect(entry.ExecResults).To(ConsistOf(HaveField("ExitCode", HaveValue(BeEquivalentTo(0)))), "the step found every file")
		Expect(entry.Files).To(HaveExactElements(
			And(HaveField("Path", "/home/node/prompt.md"), HaveField("SHA256", sha256Hex("review the diff")), HaveField("Owner", "node")),
			And(HaveField("Path", "/home/node/.claude/settings.json"), HaveField("SHA256", sha256Hex(`{"theme":"dark"}`)), HaveField("Mode", int32(0o644))),
			And(HaveField("Path", "/etc/tools.conf"), HaveField("SHA256", sha256Hex("tools=1\n")), HaveField("Owner", "")),
		))
		Expect(guest(node, entry.GoldenMachine+"-s0", "cat /home/node/seen; stat -c %U /home/node/.claude/settings.json")).
			To(Equal("{\"theme\":\"dark\"}tools=1\nreview the diff" + "node\n"))
	})

	It("fail the golden, naming the file, when a file's owner never comes to exist", func() {
		const node = "node-golden-noowner"
		poolNode(node, "noowner")
		a := startTemplateAgent(node)
		DeferCleanup(a.stop)
		ns := newNamespace()
		tpl := &v1.BottleTemplate{
			ObjectMeta: metav1.ObjectMeta{Name: "tools", Namespace: ns},
			Spec: v1.BottleTemplateSpec{
				MachineSpec: v1.MachineSpec{
					Image:     "node:22",
					Files:     []v1.File{{Path: "/home/ghost/notes", Owner: "ghost", Inline: new("x")}},
					Provision: []v1.ProvisionStep{step("noop", "true")},
				},
				Pool: v1.TemplatePool{NodeSelector: map[string]string{"pool": "noowner"}},
			},
		}
		Expect(k8sClient.Create(ctx, tpl)).To(Succeed())
		Eventually(nodeEntry(tpl, node)).Should(And(
			HaveField("Phase", v1.PhaseFailed),
			HaveField("Reason", v1.ReasonOwnerNotFound),
			HaveField("Message", ContainSubstring(`user "ghost" does not exist yet for /home/ghost/notes`)),
		))
		Expect(nodeEntry(tpl, node)(Default).ExecResults).To(ConsistOf(HaveField("Name", "noop")), "the steps ran first: one of them might have made the user")
	})
})

var _ = Describe("A BottleTemplate's failed golden step", func() {
	It("runs again when the template's retry annotation changes, once per token", func() {
		const node = "node-golden-retry"
		poolNode(node, "retry")
		a := startTemplateAgent(node)
		DeferCleanup(a.stop)
		ns := newNamespace()
		tpl := &v1.BottleTemplate{
			ObjectMeta: metav1.ObjectMeta{Name: "tools", Namespace: ns},
			Spec: v1.BottleTemplateSpec{
				MachineSpec: v1.MachineSpec{
					Image:     "node:22",
					Provision: []v1.ProvisionStep{step("needs-flag", `echo ran >> /tmp/runs; test -f /tmp/flag`)},
				},
				Pool: v1.TemplatePool{NodeSelector: map[string]string{"pool": "retry"}, HeldSlots: 1},
			},
		}
		Expect(k8sClient.Create(ctx, tpl)).To(Succeed())
		Eventually(nodeEntry(tpl, node)).Should(And(
			HaveField("Phase", v1.PhaseFailed),
			HaveField("Reason", v1.ReasonStepFailed),
			HaveField("Message", ContainSubstring(v1.AnnotationRetry)),
		))
		golden := nodeEntry(tpl, node)(Default).GoldenMachine
		Expect(guest(node, golden, "cat /tmp/runs")).To(Equal("ran\n"), "a failed step is not run again by itself")

		guest(node, golden, "touch /tmp/flag")
		cur := get2(tpl)
		cur.Annotations = map[string]string{v1.AnnotationRetry: "1"}
		Expect(k8sClient.Update(ctx, cur)).To(Succeed())
		Eventually(nodeEntry(tpl, node)).Should(And(HaveField("Phase", v1.PhaseReady), HaveField("LastHandledRetry", "1")))
		Expect(nodeEntry(tpl, node)(Default).ExecResults).To(ConsistOf(HaveField("ExitCode", HaveValue(BeEquivalentTo(0)))))
		Expect(guest(node, golden+"-s0", "cat /tmp/runs")).To(Equal("ran\nran\n"), "run once more for the token, and in the fork as the golden was")
	})
})

var _ = Describe("A template agent told to stop", func() {
	It("finishes the golden's running step within its grace, records it, starts no other, and the next agent does not run it again", func() {
		const node = "node-golden-drain"
		poolNode(node, "drain")
		a := startTemplateAgentWith(node, time.Second, 40*time.Second)
		ns := newNamespace()
		tpl := &v1.BottleTemplate{
			ObjectMeta: metav1.ObjectMeta{Name: "tools", Namespace: ns},
			Spec: v1.BottleTemplateSpec{
				MachineSpec: v1.MachineSpec{
					Image: "node:22",
					Provision: []v1.ProvisionStep{
						step("drain", "echo x >> /home/node/drain-runs; while [ ! -e /tmp/release ]; do sleep 0.05; done; echo released"),
						step("after", "echo x >> /home/node/after-runs"),
					},
				},
				Pool: v1.TemplatePool{NodeSelector: map[string]string{"pool": "drain"}},
			},
		}
		Expect(k8sClient.Create(ctx, tpl)).To(Succeed())
		Eventually(nodeEntry(tpl, node)).Should(HaveField("Phase", v1.PhaseProvisioning))
		golden := nodeEntry(tpl, node)(Default).GoldenMachine
		Eventually(guestPoll(node, golden, "cat /home/node/drain-runs 2>/dev/null || true")).Should(Equal("x\n"))

		By("stopping the agent while the step runs: it waits for the step")
		a.cancel()
		Consistently(a.done, "1s", "50ms").ShouldNot(BeClosed(), "the agent did not wait for the golden's running step")
		guest(node, golden, "touch /tmp/release")
		Eventually(a.done).Should(BeClosed())
		results := nodeEntry(tpl, node)(Default).ExecResults
		Expect(results).To(HaveLen(1), "the step after it did not start while the agent stopped")
		Expect(results[0].FinishedAt).NotTo(BeNil(), "the drained step's result is recorded")
		Expect(results[0].Stdout).To(Equal("released\n"))

		By("a fresh agent goes on from there")
		a = startTemplateAgent(node)
		DeferCleanup(a.stop)
		Eventually(nodeEntry(tpl, node)).Should(HaveField("Phase", v1.PhaseReady))
		Expect(guest(node, golden, "cat /home/node/drain-runs /home/node/after-runs")).To(Equal("x\nx\n"), "the drained step ran once, the next one once")
	})
})

var _ = Describe("A node the template no longer selects", func() {
	It("deletes its golden and slots and removes its entry from the template's status", func() {
		const node = "node-golden-leave"
		nodeObj := poolNode(node, "leave")
		a := startTemplateAgent(node)
		DeferCleanup(a.stop)
		ns := newNamespace()
		tpl := &v1.BottleTemplate{
			ObjectMeta: metav1.ObjectMeta{Name: "tools", Namespace: ns},
			Spec: v1.BottleTemplateSpec{
				MachineSpec: v1.MachineSpec{Image: "node:22", Provision: []v1.ProvisionStep{step("noop", "true")}},
				Pool:        v1.TemplatePool{NodeSelector: map[string]string{"pool": "leave"}, Policy: v1.PoolSelected, HeldSlots: 1},
			},
		}
		Expect(k8sClient.Create(ctx, tpl)).To(Succeed())
		Eventually(nodeEntry(tpl, node)).Should(HaveField("FreeSlots", int32(1)))
		golden := nodeEntry(tpl, node)(Default).GoldenMachine

		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(nodeObj), nodeObj)).To(Succeed())
		nodeObj.Labels["pool"] = "elsewhere"
		Expect(k8sClient.Update(ctx, nodeObj)).To(Succeed())
		Eventually(machineExists(node, golden)).Should(BeFalse())
		Expect(machineExists(node, golden+"-s0")()).To(BeFalse())
		Eventually(nodeEntry(tpl, node)).Should(HaveField("NodeName", BeEmpty()), "the entry is gone, not left saying Ready")
	})
})

var _ = Describe("A golden step of a template that is edited or deleted", func() {
	It("is cancelled at once; the edit's golden is provisioned and the old one deleted", func() {
		const node = "node-golden-cancel"
		poolNode(node, "cancel")
		a := startTemplateAgent(node, time.Hour)
		DeferCleanup(a.stop)
		ns := newNamespace()
		forever := v1.ProvisionStep{Name: "install", TimeoutSeconds: 3600, Script: "while [ ! -e /tmp/never ]; do sleep 0.05; done"}
		tpl := &v1.BottleTemplate{
			ObjectMeta: metav1.ObjectMeta{Name: "tools", Namespace: ns},
			Spec: v1.BottleTemplateSpec{
				MachineSpec: v1.MachineSpec{Image: "node:22", Provision: []v1.ProvisionStep{forever}},
				Pool:        v1.TemplatePool{NodeSelector: map[string]string{"pool": "cancel"}},
			},
		}
		Expect(k8sClient.Create(ctx, tpl)).To(Succeed())
		Eventually(nodeEntry(tpl, node)).Should(HaveField("Phase", v1.PhaseProvisioning))
		old := nodeEntry(tpl, node)(Default).GoldenMachine

		cur := get2(tpl)
		cur.Spec.Provision[0].Script = "echo v2"
		Expect(k8sClient.Update(ctx, cur)).To(Succeed())
		Eventually(nodeEntry(tpl, node)).WithTimeout(20*time.Second).Should(And(
			HaveField("Phase", v1.PhaseReady), HaveField("GoldenMachine", Not(Equal(old)))),
			"the step of the old golden (an hour's timeout) no longer holds the template up")
		Eventually(machineExists(node, old)).Should(BeFalse())

		By("deleting the template cancels its running step too")
		cur = get2(tpl)
		cur.Spec.Provision = []v1.ProvisionStep{forever}
		Expect(k8sClient.Update(ctx, cur)).To(Succeed())
		Eventually(nodeEntry(tpl, node)).Should(HaveField("Phase", v1.PhaseProvisioning))
		Expect(k8sClient.Delete(ctx, get2(tpl))).To(Succeed())
		Eventually(func(g Gomega) {
			ms, err := cli(node).List(ctx)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(ms).To(BeEmpty())
		}).WithTimeout(20 * time.Second).Should(Succeed())
	})
})
