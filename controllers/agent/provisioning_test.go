package agent_test

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
	"github.com/bot-bottle/bottle-controller/internal/testenv"
)

// sample is one observation of a Bottle by a GitOps health check.
type sample struct {
	at      time.Duration
	kstatus status.Status
	b       v1.Bottle
}

// watchKstatus polls the Bottle every 100 ms, as Flux's health check would,
// until it is Ready or stop is closed.
// firstStatusWrite watches b (before it is created) and sends the first
// status the agent writes: a watch sees every version, a poll may not.
func firstStatusWrite(b *v1.Bottle) <-chan v1.BottleStatus {
	wc, err := client.NewWithWatch(cfg, client.Options{Scheme: testenv.Scheme()})
	Expect(err).NotTo(HaveOccurred())
	w, err := wc.Watch(ctx, &v1.BottleList{}, client.InNamespace(b.Namespace),
		client.MatchingFields{"metadata.name": b.Name})
	Expect(err).NotTo(HaveOccurred())
	out := make(chan v1.BottleStatus, 1)
	go func() {
		defer GinkgoRecover()
		defer w.Stop()
		for ev := range w.ResultChan() {
			if got, ok := ev.Object.(*v1.Bottle); ok && got.Status.Phase != "" {
				out <- got.Status
				return
			}
		}
	}()
	return out
}

func watchKstatus(b *v1.Bottle, created time.Time, stop <-chan struct{}) <-chan []sample {
	out := make(chan []sample, 1)
	go func() {
		defer GinkgoRecover()
		var samples []sample
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			// Read as JSON, as Flux does: a typed object would drop a zero
			// observedGeneration.
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(v1.GroupVersion.WithKind("Bottle"))
			if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(b), u); err == nil {
				res, err := status.Compute(u)
				Expect(err).NotTo(HaveOccurred())
				got := &v1.Bottle{}
				Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, got)).To(Succeed())
				samples = append(samples, sample{at: time.Since(created), kstatus: res.Status, b: *got})
				if got.Status.Phase == v1.PhaseReady {
					out <- samples
					return
				}
			}
			select {
			case <-stop:
				out <- samples
				return
			case <-tick.C:
			}
		}
	}()
	return out
}

func guestRuns(node string, b *v1.Bottle, file string) func() string { //nolint:unparam // any agent's node, like the other guest helpers
	return func() string {
		out, _, _ := sim(node, "machine", "exec", "--name", get(b).Status.MachineName, "--", "sh", "-c", "cat "+file+" 2>/dev/null")
		return out
	}
}

// running is the step that status shows started and not finished.
func running(b *v1.Bottle) func() string {
	return func() string {
		for _, r := range get(b).Status.ExecResults {
			if r.StartedAt != nil && r.FinishedAt == nil {
				return r.Name
			}
		}
		return ""
	}
}

var _ = Describe("provisioning a GitOps pipeline can trust", Ordered, ContinueOnFailure, func() {
	const node = "node-trust"
	var a *testAgent
	BeforeAll(func() { a = startAgent(node, agentOptions{}) })
	AfterAll(func() { a.stop() })
	AfterEach(func() {
		if CurrentSpecReport().Failed() {
			dumpBottles()
			logs := a.logs.String()
			GinkgoWriter.Printf("agent log (tail):\n%s\n", logs[max(0, len(logs)-6000):])
		}
	})

	It("shows progress from the first second and is never kstatus Current while work is pending", func() {
		ns := newNamespace()
		b := bottle(ns, node, step("slow", "echo begun; sleep 3; echo done"), step("after", "echo after"))
		b.Spec.Files = []v1.File{{Path: "/etc/motd", Inline: ptr.To("hi\n")}}
		stop := make(chan struct{})
		defer close(stop)
		created := time.Now()
		firstWrite := firstStatusWrite(b)
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		samples := watchKstatus(b, created, stop)
		var seen []sample
		Eventually(samples, "90s").Should(Receive(&seen))
		Expect(seen).NotTo(BeEmpty())
		Expect(seen[len(seen)-1].b.Status.Phase).To(Equal(v1.PhaseReady), "the poll ended before Ready")

		var first *sample
		sawRunning := false
		for i, s := range seen {
			if s.b.Status.Phase != "" && first == nil {
				first = &seen[i]
			}
			if i < len(seen)-1 {
				Expect(s.kstatus).NotTo(Equal(status.CurrentStatus),
					"kstatus said Current at %s while the Bottle was %s: %+v", s.at, s.b.Status.Phase, s.b.Status.Conditions)
			}
			for _, r := range s.b.Status.ExecResults {
				if r.Name == "slow" && r.StartedAt != nil && r.FinishedAt == nil {
					sawRunning = true
				}
			}
		}
		Expect(first).NotTo(BeNil())
		// Ordering, not wall time (load moves that): the agent's first
		// status write, seen through a watch that gets every version,
		// comes before any smolvm result.
		Expect(<-firstWrite).To(And(
			WithTransform(func(st v1.BottleStatus) string { return st.MachineState }, BeEmpty()),
			WithTransform(func(st v1.BottleStatus) bool {
				return meta.IsStatusConditionTrue(st.Conditions, v1.ConditionReconciling)
			}, BeTrue()),
		), "the first status the agent wrote already held a smolvm result")
		Expect(meta.IsStatusConditionTrue(first.b.Status.Conditions, v1.ConditionReconciling)).To(BeTrue())
		Expect(first.b.Status.ObservedGeneration).To(Equal(first.b.Generation))
		Expect(sawRunning).To(BeTrue(), "status never showed the running step (startedAt, no finishedAt)")
		Expect(kstatusOf(b)).To(Equal(status.CurrentStatus))
	})

	It("records a step exactly once whatever else changes on the Bottle while it runs", func() {
		ns := newNamespace()
		b := bottle(ns, node, step("count", "echo run >> /home/node/runs; sleep 3; echo counted"), step("next", "cat /home/node/runs"))
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		Eventually(running(b)).Should(Equal("count"))
		for i := range 5 {
			patch := fmt.Sprintf(`{"metadata":{"annotations":{"example.com/a%d":"v"}}}`, i)
			Expect(k8sClient.Patch(ctx, b, client.RawPatch(types.MergePatchType, []byte(patch)))).To(Succeed())
		}
		Expect(k8sClient.Patch(ctx, b, client.RawPatch(types.MergePatchType,
			[]byte(`{"metadata":{"labels":{"app.kubernetes.io/managed-by":"argocd"}}}`)))).To(Succeed())
		Eventually(phaseOf(b)).Should(Equal(v1.PhaseReady))
		Expect(result(b, "count").Stdout).To(Equal("counted\n"))
		Expect(result(b, "next").Stdout).To(Equal("run\n"), "the step ran more than once")
		Expect(guestRuns(node, b, "/home/node/runs")()).To(Equal("run\n"))
		Expect(get(b).Labels).To(HaveKey("app.kubernetes.io/managed-by"))
	})

	It("cancels a running step on delete, quickly", func() {
		ns := newNamespace()
		b := bottle(ns, node, v1.ProvisionStep{Name: "forever", Script: "echo started; sleep 600", TimeoutSeconds: 700})
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		Eventually(running(b)).Should(Equal("forever"))
		machine := get(b).Status.MachineName
		start := time.Now()
		Expect(k8sClient.Delete(ctx, b)).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(b), &v1.Bottle{}))
		}, "5s", "50ms").Should(BeTrue(), "deleting a Bottle mid-step did not complete within 5 s")
		GinkgoWriter.Printf("delete during a 10-minute step took %s\n", time.Since(start))
		Expect(machineExists(node, machine)()).To(BeFalse())
		Expect(eventReasons(b)()).To(ContainElement(v1.ReasonStepCancelled))
	})

	It("cancels a running step on runState Stopped and on an edit, keeping its output", func() {
		ns := newNamespace()
		b := bottle(ns, node, v1.ProvisionStep{Name: "long", Script: "echo started; touch /tmp/started; sleep 600", TimeoutSeconds: 700})
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		Eventually(running(b)).Should(Equal("long"))
		Eventually(func() int {
			_, _, code := sim(node, "machine", "exec", "--name", get(b).Status.MachineName, "--", "test", "-e", "/tmp/started")
			return code
		}).Should(BeZero(), "the step has printed")

		By("stopping the Bottle")
		start := time.Now()
		Expect(k8sClient.Patch(ctx, b, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"runState":"Stopped"}}`)))).To(Succeed())
		Eventually(func() string { return result(b, "long").Error }, "2s", "50ms").Should(Equal("cancelled: runState is Stopped"))
		GinkgoWriter.Printf("cancel on Stop took %s\n", time.Since(start))
		r := result(b, "long")
		Expect(r.Stdout).To(Equal("started\n"), "the output so far is kept")
		Expect(r.FinishedAt).NotTo(BeNil())
		Eventually(phaseOf(b)).Should(Equal(v1.PhaseStopped))

		By("running it again: the cancelled step waits for a retry")
		Expect(k8sClient.Patch(ctx, b, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"runState":"Running"}}`)))).To(Succeed())
		Eventually(phaseOf(b)).Should(Equal(v1.PhaseFailed))
		c := meta.FindStatusCondition(get(b).Status.Conditions, v1.ConditionStalled)
		Expect(c.Message).To(ContainSubstring("kubectl bottle retry " + b.Name))
		Expect(k8sClient.Patch(ctx, b, client.RawPatch(types.MergePatchType,
			[]byte(`{"metadata":{"annotations":{"agents.bot-bottle.dev/retry":"1"}}}`)))).To(Succeed())
		Eventually(running(b)).Should(Equal("long"))
		Expect(get(b).Status.LastHandledRetry).To(Equal("1"))

		By("editing the running step")
		start = time.Now()
		got := get(b)
		got.Spec.Provision[0].Script = "echo edited"
		Expect(k8sClient.Update(ctx, got)).To(Succeed())
		Eventually(func() string { return result(b, "long").Stdout }, "10s", "50ms").Should(Equal("edited\n"))
		GinkgoWriter.Printf("edit of a running step to its new result took %s\n", time.Since(start))
		Eventually(phaseOf(b)).Should(Equal(v1.PhaseReady))
		// The Stop above made a StepCancelled event too: look for the edit's.
		Eventually(func() []string {
			var notes []string
			for _, e := range events(b) {
				if e.Reason == v1.ReasonStepCancelled {
					notes = append(notes, e.Note)
				}
			}
			return notes
		}).Should(ContainElement(ContainSubstring("cancelled: the step was edited")))
	})

	It("copies a file as soon as a step creates its owner", func() {
		ns := newNamespace()
		b := bottle(ns, node,
			v1.ProvisionStep{Name: "mkuser", User: "root", Script: "useradd -m -s /bin/sh agent"},
			step("whoami", "id -un; cat /home/agent/.claude/prompt.md"))
		b.Spec.ExecUser = "agent"
		b.Spec.PromptPath = "/home/agent/.claude/prompt.md"
		b.Spec.Prompt = &v1.ContentSource{Inline: ptr.To("be kind\n")}
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		Eventually(phaseOf(b)).Should(Equal(v1.PhaseReady))
		Expect(result(b, "whoami").Stdout).To(Equal("agent\nbe kind\n"))
		Expect(guest(node, get(b).Status.MachineName, "stat -c '%U %a' /home/agent/.claude/prompt.md /home/agent/.claude")).
			To(Equal("agent 644\nagent 755\n"))
		Expect(events(b)).To(ContainElement(HaveField("Note", ContainSubstring(`user "agent" does not exist yet for /home/agent/.claude/prompt.md`))))
	})

	It("stalls, naming the files, when no step creates their owner", func() {
		ns := newNamespace()
		b := bottle(ns, node, step("noop", "true"))
		b.Spec.Files = []v1.File{{Path: "/tmp/x", Owner: "ghost", Inline: ptr.To("x")}}
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		Eventually(phaseOf(b)).Should(Equal(v1.PhaseFailed))
		c := meta.FindStatusCondition(get(b).Status.Conditions, v1.ConditionStalled)
		Expect(c.Reason).To(Equal(v1.ReasonOwnerNotFound))
		Expect(c.Message).To(ContainSubstring(`user "ghost" does not exist yet for /tmp/x`))
	})

	It("re-runs a failed step on a retry annotation, and a timed-out one when its timeout changes", func() {
		ns := newNamespace()
		b := bottle(ns, node,
			step("first", "echo x >> /home/node/first; echo first"),
			step("flaky", "echo x >> /home/node/flaky; test -e /tmp/fixed || exit 3"),
			v1.ProvisionStep{Name: "slow", Script: "sleep 2; echo slow", TimeoutSeconds: 1})
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		Eventually(phaseOf(b)).Should(Equal(v1.PhaseFailed))
		c := meta.FindStatusCondition(get(b).Status.Conditions, v1.ConditionProvisioned)
		Expect(c.Message).To(And(ContainSubstring(`step "flaky" (2/3) exited with code 3`),
			ContainSubstring("kubectl bottle retry "+b.Name), ContainSubstring(v1.AnnotationRetry)))

		guest(node, get(b).Status.MachineName, "touch /tmp/fixed")
		Expect(k8sClient.Patch(ctx, b, client.RawPatch(types.MergePatchType,
			[]byte(`{"metadata":{"annotations":{"agents.bot-bottle.dev/retry":"2026-01-01T00:00:00Z"}}}`)))).To(Succeed())
		Eventually(func() string { return result(b, "slow").Error }).Should(Equal("timed out after 1s"))
		Expect(*result(b, "flaky").ExitCode).To(BeZero())
		Expect(guestRuns(node, b, "/home/node/flaky")()).To(Equal("x\nx\n"))
		Expect(guestRuns(node, b, "/home/node/first")()).To(Equal("x\n"), "a step before the retried one ran again")
		Eventually(phaseOf(b)).Should(Equal(v1.PhaseFailed))
		Consistently(func() string { return result(b, "slow").Error }, "3s", "500ms").Should(Equal("timed out after 1s"),
			"the same retry token ran the next failure again")

		got := get(b)
		got.Spec.Provision[2].TimeoutSeconds = 10
		Expect(k8sClient.Update(ctx, got)).To(Succeed())
		Eventually(phaseOf(b)).Should(Equal(v1.PhaseReady))
		Expect(result(b, "slow").Stdout).To(Equal("slow\n"))
		Expect(result(b, "slow").TimeoutSeconds).To(Equal(int32(10)))
	})

	It("retries from a named step with the retry-step annotation", func() {
		ns := newNamespace()
		b := bottle(ns, node, step("one", "echo x >> /home/node/one"), step("two", "echo x >> /home/node/two"))
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		Eventually(phaseOf(b)).Should(Equal(v1.PhaseReady))
		Expect(k8sClient.Patch(ctx, b, client.RawPatch(types.MergePatchType,
			[]byte(`{"metadata":{"annotations":{"agents.bot-bottle.dev/retry":"a","agents.bot-bottle.dev/retry-step":"one"}}}`)))).To(Succeed())
		Eventually(guestRuns(node, b, "/home/node/two")).Should(Equal("x\nx\n"))
		Expect(guestRuns(node, b, "/home/node/one")()).To(Equal("x\nx\n"))
		Eventually(phaseOf(b)).Should(Equal(v1.PhaseReady))
		Expect(get(b).Status.LastHandledRetry).To(Equal("a"))
	})

	It("never reads green with a network change not applied, and recreates with recreatePolicy OnChange", func() {
		ns := newNamespace()
		b := bottle(ns, node, step("mark", "date +%s%N > /home/node/mark; cat /home/node/mark"))
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		Eventually(phaseOf(b)).Should(Equal(v1.PhaseReady))
		machine, mark := get(b).Status.MachineName, result(b, "mark").Stdout

		got := get(b)
		got.Spec.Network.AllowHosts = []string{"api.anthropic.com"}
		Expect(k8sClient.Update(ctx, got)).To(Succeed())
		Eventually(phaseOf(b)).Should(Equal(v1.PhaseFailed))
		c := meta.FindStatusCondition(get(b).Status.Conditions, v1.ConditionMachineUpToDate)
		Expect(c).NotTo(BeNil())
		Expect(c.Message).To(ContainSubstring("spec.network"))
		Expect(kstatusOf(b)).To(Equal(status.FailedStatus))

		got = get(b)
		got.Spec.RecreatePolicy = v1.RecreateOnChange
		Expect(k8sClient.Update(ctx, got)).To(Succeed())
		Eventually(eventReasons(b)).Should(ContainElement(v1.ReasonMachineRecreating))
		Eventually(func() string {
			if get(b).Status.Phase != v1.PhaseReady {
				return mark
			}
			return result(b, "mark").Stdout
		}).ShouldNot(Equal(mark), "the new machine was not provisioned")
		Expect(meta.FindStatusCondition(get(b).Status.Conditions, v1.ConditionMachineUpToDate)).To(BeNil())
		Expect(kstatusOf(b)).To(Equal(status.CurrentStatus))
		m, err := cli(node).Status(ctx, machine)
		Expect(err).NotTo(HaveOccurred())
		Expect(m.Network).To(BeTrue(), "the recreated machine has the new allowlist")
	})
})

var _ = Describe("hung smolvm calls", func() {
	It("names the hung verb in a condition and keeps the other Bottles going", func() {
		const node = "node-hang"
		a := startAgent(node, agentOptions{
			workers:  4,
			simEnv:   []string{"SMOLVM_SIM_HANG=start=hang-*,delete=hang-*"},
			timeouts: smolvm.Timeouts{Start: 2 * time.Second, Delete: 2 * time.Second},
		})
		defer a.stop()
		ns := newNamespace()
		var hung []*v1.Bottle
		for i := range 4 {
			b := bottle(ns, node, step("never", "echo never"))
			b.Name = fmt.Sprintf("hung-%d", i)
			b.Spec.MachineName = fmt.Sprintf("hang-%d", i)
			Expect(k8sClient.Create(ctx, b)).To(Succeed())
			hung = append(hung, b)
		}
		healthy := bottle(ns, node, step("ok", "echo ok"))
		healthy.Name = "healthy"
		Expect(k8sClient.Create(ctx, healthy)).To(Succeed())

		Eventually(phaseOf(healthy)).Should(Equal(v1.PhaseReady), func() string {
			dumpBottles()
			l := a.logs.String()
			return "agent log (tail):\n" + l[max(0, len(l)-6000):]
		})
		Expect(result(healthy, "ok").Stdout).To(Equal("ok\n"))
		for _, b := range hung {
			machineReady := func() string {
				c := meta.FindStatusCondition(get(b).Status.Conditions, v1.ConditionMachineReady)
				if c == nil {
					return ""
				}
				return c.Reason + ": " + c.Message
			}
			Eventually(machineReady).Should(And(HavePrefix(v1.ReasonSmolvmTimeout+": start:"), ContainSubstring("did not answer in time")))
			Expect(kstatusOf(b)).To(Equal(status.InProgressStatus))
			// Retries keep saying so rather than flapping through "starting"
			// (each write would wake the Bottle again, past the backoff).
			Consistently(machineReady, 3*time.Second, 50*time.Millisecond).Should(HavePrefix(v1.ReasonSmolvmTimeout + ": start:"))
		}
		for _, b := range append(hung, healthy) {
			Expect(k8sClient.Delete(ctx, b)).To(Succeed())
		}
		// The hung Bottles keep their finalizer: their machines cannot be deleted.
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(healthy), &v1.Bottle{}))
		}).Should(BeTrue())
		for _, b := range hung {
			Expect(k8sClient.Patch(ctx, b, client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`)))).To(Succeed())
		}
	})
})
