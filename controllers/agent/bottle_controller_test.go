package agent_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/controllers/agent"
)

var nsSeq int

// dumpBottles prints every Bottle's status when a spec fails.
func dumpBottles() {
	var list v1.BottleList
	if err := k8sClient.List(ctx, &list); err != nil {
		return
	}
	for _, b := range list.Items {
		raw, _ := json.MarshalIndent(b.Status, "", "  ")
		GinkgoWriter.Printf("bottle %s/%s status:\n%s\n", b.Namespace, b.Name, raw)
	}
}

func newNamespace() string {
	nsSeq++
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("ctl-%d-%d", GinkgoParallelProcess(), nsSeq)}}
	Expect(k8sClient.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

func get(b *v1.Bottle) *v1.Bottle {
	out := &v1.Bottle{}
	ExpectWithOffset(1, k8sClient.Get(ctx, client.ObjectKeyFromObject(b), out)).To(Succeed())
	return out
}

func phaseOf(b *v1.Bottle) func() v1.Phase {
	return func() v1.Phase {
		out := &v1.Bottle{}
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(b), out); err != nil {
			return ""
		}
		return out.Status.Phase
	}
}

// kstatusOf is what Flux and Argo CD conclude about a Bottle.
func kstatusOf(b *v1.Bottle) status.Status {
	// Read as JSON, as Flux does: a typed object would drop a zero
	// observedGeneration.
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(v1.GroupVersion.WithKind("Bottle"))
	Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(b), u)).To(Succeed())
	res, err := status.Compute(u)
	Expect(err).NotTo(HaveOccurred())
	return res.Status
}

// result is a step's recorded result; the zero value while there is none.
func result(b *v1.Bottle, name string) v1.ExecResult {
	for _, r := range get(b).Status.ExecResults {
		if r.Name == name {
			return r
		}
	}
	return v1.ExecResult{}
}

func events(b *v1.Bottle) []eventsv1.Event {
	var list eventsv1.EventList
	Expect(k8sClient.List(ctx, &list, client.InNamespace(b.Namespace))).To(Succeed())
	var out []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.Name == b.Name {
			out = append(out, e)
		}
	}
	return out
}

func eventReasons(b *v1.Bottle) func() []string {
	return func() []string {
		var reasons []string
		for _, e := range events(b) {
			reasons = append(reasons, e.Reason)
		}
		return reasons
	}
}

func machineState(node, name string) func() string {
	return func() string {
		m, err := cli(node).Status(ctx, name)
		if err != nil {
			return err.Error()
		}
		return m.State
	}
}

func machineExists(node, name string) func() bool {
	return func() bool {
		_, _, code := sim(node, "machine", "status", "--name", name, "--json")
		return code == 0
	}
}

// jsonLen is the size of s JSON-encoded as the API server stores it,
// without the quotes.
func jsonLen(s string) int {
	b, err := json.Marshal(s)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	return len(b) - 2
}

func step(name, script string) v1.ProvisionStep {
	return v1.ProvisionStep{Name: name, Script: script}
}

func bottle(ns, node string, steps ...v1.ProvisionStep) *v1.Bottle {
	return &v1.Bottle{
		ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: ns},
		Spec: v1.BottleSpec{
			NodeName: node,
			MachineSpec: v1.MachineSpec{
				Image:     "node:22-bookworm",
				Provision: steps,
			},
		},
	}
}

var _ = Describe("Bottle lifecycle", Ordered, ContinueOnFailure, func() {
	const node = "node-a"
	var a *testAgent
	BeforeAll(func() { a = startAgent(node, agentOptions{resync: 2 * time.Second}) })
	AfterAll(func() { a.stop() })
	AfterEach(func() {
		if CurrentSpecReport().Failed() {
			dumpBottles()
			logs := a.logs.String()
			GinkgoWriter.Printf("agent log (tail):\n%s\n", logs[max(0, len(logs)-6000):])
		}
	})

	It("provisions a Bottle to Ready with results, files and prompt in the guest, then deletes its machine", func() {
		ns := newNamespace()
		Expect(k8sClient.Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: "prompt", Namespace: ns},
			Data:       map[string]string{"prompt.md": "Review the code.\n"},
		})).To(Succeed())
		b := bottle(ns, node,
			step("whoami", `echo "user=$(id -un) home=$HOME"; echo warn >&2`),
			v1.ProvisionStep{Name: "as-root", Script: "id -un", User: "root"},
			step("read-file", "cat /home/node/notes.txt"),
		)
		b.Spec.PromptPath = "/home/node/.claude/prompt.md"
		b.Spec.Prompt = &v1.ContentSource{ConfigMapKeyRef: &v1.KeyRef{Name: "prompt", Key: "prompt.md"}}
		b.Spec.Files = []v1.File{
			{Path: "/home/node/notes.txt", Owner: "node", Mode: ptr.To[int32](0o600), Inline: ptr.To("hello from a file\n")},
			{Path: "/opt/tool.sh", Mode: ptr.To[int32](0o755), Inline: ptr.To("#!/bin/sh\necho tool\n")},
		}
		Expect(k8sClient.Create(ctx, b)).To(Succeed())

		Eventually(phaseOf(b)).Should(Equal(v1.PhaseReady))
		got := get(b)
		Expect(meta.IsStatusConditionTrue(got.Status.Conditions, v1.ConditionReady)).To(BeTrue())
		Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
		Expect(got.Status.NodeName).To(Equal(node))
		Expect(got.Status.MachineState).To(Equal("running"))
		Expect(kstatusOf(b)).To(Equal(status.CurrentStatus))
		Expect(got.Finalizers).To(ContainElement(v1.Finalizer))

		machine := got.Status.MachineName
		Expect(machine).To(HavePrefix(ns + "-agent-"))

		who := result(b, "whoami")
		Expect(*who.ExitCode).To(BeZero())
		Expect(who.User).To(Equal("node"))
		Expect(who.Stdout).To(Equal("user=node home=/home/node\n"))
		Expect(who.Stderr).To(Equal("warn\n"))
		Expect(who.StartedAt).NotTo(BeNil())
		Expect(who.FinishedAt).NotTo(BeNil())
		Expect(who.ScriptSHA256).To(HaveLen(64))
		Expect(result(b, "as-root").Stdout).To(Equal("root\n"))
		Expect(result(b, "read-file").Stdout).To(Equal("hello from a file\n"))

		Expect(guest(node, machine, "stat -c '%a %U' /home/node/notes.txt /opt/tool.sh /home/node/.claude/prompt.md")).
			To(Equal("600 node\n755 root\n644 node\n"))
		Expect(guest(node, machine, "cat /home/node/.claude/prompt.md")).To(Equal("Review the code.\n"))
		Expect(got.Status.Files).To(HaveLen(3))
		for _, f := range got.Status.Files {
			Expect(f.SHA256).To(HaveLen(64))
		}
		Expect(got.Status.Files[0].Path).To(Equal("/home/node/.claude/prompt.md"))
		Expect(got.Status.Files[0].Bytes).To(Equal(int64(len("Review the code.\n"))))
		Expect(eventReasons(b)()).To(ContainElements("MachineCreated", "MachineStarting", "FilesCopied", "StepSucceeded"))
		// The phases on the way each have their action's event; only Ready
		// gets one of its own.
		Eventually(eventReasons(b)).Should(ContainElement("PhaseReady"))
		Expect(eventReasons(b)()).NotTo(ContainElement(BeElementOf("PhasePending", "PhaseCreating", "PhaseStarting", "PhaseCopyingFiles", "PhaseProvisioning")))

		By("re-copying a changed source, and only that file")
		notesCopied := got.Status.Files[1].CopiedAt
		cm := &corev1.ConfigMap{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "prompt"}, cm)).To(Succeed())
		cm.Data["prompt.md"] = "Review the code twice.\n"
		Expect(k8sClient.Update(ctx, cm)).To(Succeed())
		Eventually(guestPoll(node, machine, "cat /home/node/.claude/prompt.md")).Should(Equal("Review the code twice.\n"))
		Eventually(func() int64 { return get(b).Status.Files[0].Bytes }).Should(Equal(int64(len("Review the code twice.\n"))))
		Expect(get(b).Status.Files[1].CopiedAt).To(Equal(notesCopied))

		By("deleting the machine with the Bottle")
		Expect(k8sClient.Delete(ctx, b)).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(b), &v1.Bottle{}))
		}).Should(BeTrue())
		Expect(machineExists(node, machine)()).To(BeFalse())
	})

	It("forgets everything of a Bottle once it is deleted", func() {
		b := bottle(newNamespace(), node, step("hello", "echo hello"))
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		Eventually(phaseOf(b)).Should(Equal(v1.PhaseReady))
		uid, key := get(b).UID, client.ObjectKeyFromObject(b)
		Expect(a.bottles.Remembers(uid, key)).To(ContainElements("expectations", "metrics"))

		Expect(k8sClient.Delete(ctx, b)).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, key, &v1.Bottle{}))
		}).Should(BeTrue())
		Eventually(func() []string { return a.bottles.Remembers(uid, key) }).Should(BeEmpty())
		Consistently(func() []string { return a.bottles.Remembers(uid, key) }, time.Second).Should(BeEmpty())
	})

	It("stops at a failing step, does not retry it blindly, and resumes from it once edited", func() {
		ns := newNamespace()
		b := bottle(ns, node, step("first", "echo one"), step("broken", "echo about to fail; exit 3"), step("last", "echo three"))
		Expect(k8sClient.Create(ctx, b)).To(Succeed())

		Eventually(phaseOf(b)).Should(Equal(v1.PhaseFailed))
		got := get(b)
		c := meta.FindStatusCondition(got.Status.Conditions, v1.ConditionProvisioned)
		Expect(c.Status).To(Equal(metav1.ConditionFalse))
		Expect(c.Reason).To(Equal(v1.ReasonStepFailed))
		Expect(c.Message).To(ContainSubstring(`step "broken"`))
		Expect(c.Message).To(ContainSubstring("exited with code 3"))
		Expect(kstatusOf(b)).To(Equal(status.FailedStatus))
		Expect(got.Status.ExecResults).To(HaveLen(2))
		Expect(*result(b, "broken").ExitCode).To(Equal(int32(3)))
		firstStarted := result(b, "first").StartedAt
		brokenStarted := result(b, "broken").StartedAt

		By("not running the failed step again on resync")
		Consistently(func() *metav1.MicroTime { return result(b, "broken").StartedAt }, "5s", "500ms").Should(Equal(brokenStarted))

		By("editing the failed step")
		got = get(b)
		got.Spec.Provision[1].Script = "echo fixed"
		Expect(k8sClient.Update(ctx, got)).To(Succeed())
		Eventually(phaseOf(b)).Should(Equal(v1.PhaseReady))
		Expect(result(b, "first").StartedAt).To(Equal(firstStarted), "an earlier step ran again")
		Expect(result(b, "broken").Stdout).To(Equal("fixed\n"))
		Expect(result(b, "last").Stdout).To(Equal("three\n"))
		Expect(kstatusOf(b)).To(Equal(status.CurrentStatus))

		By("re-running a changed step and every step after it, and nothing before it")
		lastStarted := result(b, "last").StartedAt
		brokenStarted = result(b, "broken").StartedAt
		got = get(b)
		got.Spec.Provision[1].Script = "echo fixed again"
		Expect(k8sClient.Update(ctx, got)).To(Succeed())
		Eventually(func() *metav1.MicroTime { return result(b, "last").StartedAt }).ShouldNot(Or(BeNil(), Equal(lastStarted)))
		Eventually(phaseOf(b)).Should(Equal(v1.PhaseReady))
		Expect(result(b, "first").StartedAt).To(Equal(firstStarted))
		Expect(result(b, "broken").StartedAt).NotTo(Equal(brokenStarted))
	})

	It("recreates and re-provisions a machine deleted behind its back", func() {
		ns := newNamespace()
		b := bottle(ns, node, step("mark", "date +%s%N > /home/node/mark; cat /home/node/mark"))
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		Eventually(phaseOf(b)).Should(Equal(v1.PhaseReady))
		machine := get(b).Status.MachineName
		before := result(b, "mark").Stdout

		_, errOut, code := sim(node, "machine", "delete", "--name", machine, "-f")
		Expect(code).To(BeZero(), errOut)

		Eventually(eventReasons(b)).Should(ContainElement("MachineRecreated"))
		Eventually(func() string {
			if get(b).Status.Phase != v1.PhaseReady {
				return before
			}
			return result(b, "mark").Stdout
		}).ShouldNot(Equal(before))
		Expect(machineExists(node, machine)()).To(BeTrue())
		Expect(guest(node, machine, "cat /home/node/mark")).To(Equal(result(b, "mark").Stdout))
	})

	It("restarts a machine stopped behind its back without re-provisioning", func() {
		ns := newNamespace()
		b := bottle(ns, node, step("once", "echo once"))
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		Eventually(phaseOf(b)).Should(Equal(v1.PhaseReady))
		machine, started := get(b).Status.MachineName, result(b, "once").StartedAt

		sim(node, "machine", "stop", "--name", machine)
		Eventually(eventReasons(b)).Should(ContainElement("MachineRestarted"))
		Eventually(machineState(node, machine)).Should(Equal("running"))
		Eventually(phaseOf(b)).Should(Equal(v1.PhaseReady))
		Expect(result(b, "once").StartedAt).To(Equal(started))
	})

	It("keeps files and does not re-provision across a Stopped/Running round trip", func() {
		ns := newNamespace()
		b := bottle(ns, node, step("write", "echo kept > /home/node/kept; echo done"))
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		Eventually(phaseOf(b)).Should(Equal(v1.PhaseReady))
		machine, started := get(b).Status.MachineName, result(b, "write").StartedAt

		got := get(b)
		got.Spec.RunState = v1.RunStateStopped
		Expect(k8sClient.Update(ctx, got)).To(Succeed())
		Eventually(phaseOf(b)).Should(Equal(v1.PhaseStopped))
		Expect(get(b).Status.MachineState).To(Equal("stopped"))
		Expect(kstatusOf(b)).To(Equal(status.CurrentStatus))

		got = get(b)
		got.Spec.RunState = v1.RunStateRunning
		Expect(k8sClient.Update(ctx, got)).To(Succeed())
		Eventually(phaseOf(b)).Should(Equal(v1.PhaseReady))
		Expect(result(b, "write").StartedAt).To(Equal(started))
		Expect(guest(node, machine, "cat /home/node/kept")).To(Equal("kept\n"))
	})

	It("keeps a step printing 10 MB to a bounded tail in status", func() {
		ns := newNamespace()
		b := bottle(ns, node, step("loud", "head -c 10485760 /dev/zero | tr '\\0' a; echo; echo the-end"))
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		Eventually(phaseOf(b)).Should(Equal(v1.PhaseReady))
		r := result(b, "loud")
		Expect(r.Truncated).To(BeTrue())
		Expect(r.StdoutBytes).To(Equal(int64(10485760 + 1 + len("the-end\n"))))
		Expect(r.Stdout).To(HaveSuffix("the-end\n"))
		Expect(len(r.Stdout)).To(BeNumerically("<=", agent.OutputTail))
		raw, err := json.Marshal(get(b))
		Expect(err).NotTo(HaveOccurred())
		Expect(len(raw)).To(BeNumerically("<", 64*1024))
	})

	It("keeps a timed-out step's output, within the JSON-escaped tail budget and from a line start", func() {
		ns := newNamespace()
		st := step("slow", `i=0; while [ $i -lt 3000 ]; do echo "<<<<<<<< line $i"; i=$((i+1)); done; echo last-line; echo err-line >&2; exec sleep 600`)
		st.TimeoutSeconds = 3
		b := bottle(ns, node, st)
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		Eventually(func() *int32 { return result(b, "slow").ExitCode }).ShouldNot(BeNil())
		r := result(b, "slow")
		Expect(*r.ExitCode).To(Equal(int32(124)))
		Expect(r.Error).To(ContainSubstring("timed out"))
		Expect(r.Stdout).To(HaveSuffix("<<<<<<<< line 2999\nlast-line\n"))
		Expect(r.Stdout).To(MatchRegexp(`^<<<<<<<< line \d+\n`), "the tail starts at a line")
		Expect(jsonLen(r.Stdout)).To(BeNumerically("<=", v1.MaxTailJSONBytes))
		Expect(r.Stderr).To(Equal("err-line\n"))
		Expect(r.Truncated).To(BeTrue())
	})

	It("reports a machine name owned by something else as a conflict and never touches it", func() {
		ns := newNamespace()
		_, errOut, code := sim(node, "machine", "create", "--name", "taken-name", "--image", "alpine", "--label", "owner=someone")
		Expect(code).To(BeZero(), errOut)
		b := bottle(ns, node, step("never", "echo never"))
		b.Spec.MachineName = "taken-name"
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		Eventually(phaseOf(b)).Should(Equal(v1.PhaseFailed))
		c := meta.FindStatusCondition(get(b).Status.Conditions, v1.ConditionMachineReady)
		Expect(c.Reason).To(Equal(v1.ReasonNameConflict))
		Expect(kstatusOf(b)).To(Equal(status.FailedStatus))

		Expect(k8sClient.Delete(ctx, b)).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(b), &v1.Bottle{}))
		}).Should(BeTrue())
		Expect(machineState(node, "taken-name")()).To(Equal("created"))
	})

	It("keeps Secrets out of status, events and the agent's log", func() {
		ns := newNamespace()
		const token = "s3cr3t-T0KEN-value-42"
		Expect(k8sClient.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: ns},
			StringData: map[string]string{"token": token, "file": token + "-file"},
		})).To(Succeed())
		sum := sha256.Sum256([]byte(token))
		b := bottle(ns, node, step("use", `test "$(printf %s "$API_TOKEN" | sha256sum | cut -c1-64)" = "`+hex.EncodeToString(sum[:])+`" && echo token-ok; wc -c < /home/node/.token`))
		b.Spec.Env = []v1.EnvVar{{Name: "API_TOKEN", ValueFrom: &v1.EnvVarSource{SecretKeyRef: &v1.KeyRef{Name: "creds", Key: "token"}}}}
		b.Spec.Files = []v1.File{{Path: "/home/node/.token", Owner: "node", Mode: ptr.To[int32](0o400), SecretKeyRef: &v1.KeyRef{Name: "creds", Key: "file"}}}
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		Eventually(phaseOf(b)).Should(Equal(v1.PhaseReady))
		Expect(result(b, "use").Stdout).To(Equal(fmt.Sprintf("token-ok\n%d\n", len(token)+len("-file"))))
		Expect(guest(node, get(b).Status.MachineName, "cat /home/node/.token")).To(Equal(token + "-file"))

		raw, err := json.Marshal(get(b))
		Expect(err).NotTo(HaveOccurred())
		Expect(string(raw)).NotTo(ContainSubstring(token), "the Bottle (spec or status) holds the secret")
		for _, e := range events(b) {
			Expect(e.Note).NotTo(ContainSubstring(token))
		}
		Expect(a.logs.String()).NotTo(ContainSubstring(token))
		Expect(a.logs.String()).To(ContainSubstring(b.Name), "the log was captured")
	})

	It("waits for a missing ConfigMap and proceeds once it exists", func() {
		ns := newNamespace()
		b := bottle(ns, node, step("cat", "cat /etc/late.conf"))
		b.Spec.Files = []v1.File{{Path: "/etc/late.conf", ConfigMapKeyRef: &v1.KeyRef{Name: "late", Key: "conf"}}}
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		Eventually(func() string {
			c := meta.FindStatusCondition(get(b).Status.Conditions, v1.ConditionFilesReady)
			if c == nil {
				return ""
			}
			return c.Message
		}).Should(ContainSubstring(fmt.Sprintf("ConfigMap %s/late not found", ns)))
		Expect(get(b).Status.Phase).To(Equal(v1.PhaseCopyingFiles))
		Expect(kstatusOf(b)).To(Equal(status.InProgressStatus))

		Expect(k8sClient.Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: "late", Namespace: ns}, Data: map[string]string{"conf": "x=1\n"},
		})).To(Succeed())
		Eventually(phaseOf(b)).Should(Equal(v1.PhaseReady))
		Expect(result(b, "cat").Stdout).To(Equal("x=1\n"))
	})

	It("does not write status when nothing changed", func() {
		ns := newNamespace()
		b := bottle(ns, node, step("one", "true"))
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		Eventually(phaseOf(b)).Should(Equal(v1.PhaseReady))
		rv := get(b).ResourceVersion
		// Resync runs every 2s here: several passes must leave the object alone.
		Consistently(func() string { return get(b).ResourceVersion }, "5s", "250ms").Should(Equal(rv))
	})
})

var _ = Describe("agent restarts", func() {
	It("re-runs only the step a crash interrupted and never creates a second machine", func() {
		const node = "node-crash"
		a := startAgent(node, agentOptions{})
		ns := newNamespace()
		b := bottle(ns, node,
			step("first", "echo x >> /home/node/first-runs; echo first"),
			step("blocker", "echo x >> /home/node/blocker-runs; while [ ! -e /tmp/release ]; do sleep 0.05; done; echo released"),
			step("after", "echo after"),
		)
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		Eventually(func() string { return get(b).Status.MachineName }).ShouldNot(BeEmpty())
		machine := get(b).Status.MachineName
		Eventually(func() string {
			out, _, _ := sim(node, "machine", "exec", "--name", machine, "--", "sh", "-c", "cat /home/node/blocker-runs 2>/dev/null")
			return out
		}).Should(Equal("x\n"))

		By("killing the agent while the blocker step runs")
		a.stop()
		results := get(b).Status.ExecResults
		Expect(results).To(HaveLen(2), "the finished step and the running one are recorded")
		Expect(results[0].FinishedAt).NotTo(BeNil())
		Expect(results[1].Name).To(Equal("blocker"))
		Expect(results[1].StartedAt).NotTo(BeNil())
		Expect(results[1].FinishedAt).To(BeNil(), "the interrupted step shows as started, not finished")

		By("starting a fresh agent")
		a = startAgent(node, agentOptions{})
		defer a.stop()
		Eventually(func() string {
			out, _, _ := sim(node, "machine", "exec", "--name", machine, "--", "sh", "-c", "cat /home/node/blocker-runs")
			return out
		}).Should(Equal("x\nx\n"), "the interrupted step runs again (at-least-once)")
		guest(node, machine, "touch /tmp/release")
		Eventually(phaseOf(b)).Should(Equal(v1.PhaseReady))
		Expect(guest(node, machine, "cat /home/node/first-runs")).To(Equal("x\n"), "a completed step ran twice")
		machines, err := cli(node).List(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(machines).To(HaveLen(1), "a second machine was created")
	})
})

var _ = Describe("two agents in one cluster", func() {
	It("each acts only on its own node's Bottles", func() {
		east, west := startAgent("east", agentOptions{}), startAgent("west", agentOptions{})
		defer east.stop()
		defer west.stop()
		ns := newNamespace()
		var bs []*v1.Bottle
		for i, node := range []string{"east", "west", "east", "nowhere"} {
			b := bottle(ns, node, step("where", "echo ok"))
			b.Name = fmt.Sprintf("b%d", i)
			Expect(k8sClient.Create(ctx, b)).To(Succeed())
			bs = append(bs, b)
		}
		for _, b := range bs[:3] {
			Eventually(phaseOf(b)).Should(Equal(v1.PhaseReady))
			Expect(get(b).Status.NodeName).To(Equal(b.Spec.NodeName))
			Expect(machineExists(b.Spec.NodeName, get(b).Status.MachineName)()).To(BeTrue())
		}
		Expect(machineExists("west", get(bs[0]).Status.MachineName)()).To(BeFalse())
		Expect(machineExists("east", get(bs[1]).Status.MachineName)()).To(BeFalse())
		Consistently(func() v1.BottleStatus { return get(bs[3]).Status }, "2s").Should(BeZero())
		Expect(get(bs[3]).Finalizers).To(BeEmpty())
	})
})

var _ = Describe("spec changes smolvm cannot apply in place", func() {
	It("keeps the machine and says how to apply a new image or size", func() {
		const node = "node-resize"
		a := startAgent(node, agentOptions{resync: time.Second})
		defer a.stop()
		ns := newNamespace()
		b := bottle(ns, node, step("mark", "echo x > /home/node/mark"))
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		Eventually(phaseOf(b)).Should(Equal(v1.PhaseReady))
		machine := get(b).Status.MachineName

		got := get(b)
		got.Spec.Image = "node:24-bookworm"
		got.Spec.Resources.CPUs = 4
		Expect(k8sClient.Update(ctx, got)).To(Succeed())
		Eventually(func() string {
			c := meta.FindStatusCondition(get(b).Status.Conditions, v1.ConditionMachineUpToDate)
			if c == nil {
				return ""
			}
			return c.Message
		}).Should(And(ContainSubstring(`spec.image "node:24-bookworm" (machine: "node:22-bookworm")`),
			ContainSubstring("spec.resources.cpus 4 (machine: 2)"), ContainSubstring("delete and re-create")))
		Eventually(eventReasons(b)).Should(ContainElement(v1.ReasonRecreateRequired))
		By("never reading green while the spec is not applied")
		Eventually(phaseOf(b)).Should(Equal(v1.PhaseFailed))
		Expect(kstatusOf(b)).To(Equal(status.FailedStatus))
		c := meta.FindStatusCondition(get(b).Status.Conditions, v1.ConditionStalled)
		Expect(c).NotTo(BeNil())
		Expect(c.Reason).To(Equal(v1.ReasonRecreateRequired))
		Expect(c.Message).To(ContainSubstring("recreatePolicy: OnChange"))
		Expect(get(b).Status.MachineState).To(Equal("running"), "the machine still runs as it was")
		Expect(guest(node, machine, "cat /home/node/mark")).To(Equal("x\n"), "the machine was recreated")
	})
})
