package agent_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/steplog"
)

func newRun(ns, name, bottleName string, argv ...string) *v1.BottleRun {
	return &v1.BottleRun{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       v1.BottleRunSpec{BottleRef: &v1.BottleReference{Name: bottleName}, Command: argv},
	}
}

func getRun(r *v1.BottleRun) *v1.BottleRun {
	out := &v1.BottleRun{}
	ExpectWithOffset(1, k8sClient.Get(ctx, client.ObjectKeyFromObject(r), out)).To(Succeed())
	return out
}

func runPhase(r *v1.BottleRun) func() v1.RunPhase {
	return func() v1.RunPhase {
		out := &v1.BottleRun{}
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(r), out); err != nil {
			return ""
		}
		return out.Status.Phase
	}
}

func runGone(r *v1.BottleRun) func() bool {
	return func() bool {
		return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(r), &v1.BottleRun{}))
	}
}

func runKstatus(r *v1.BottleRun) status.Status {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(v1.GroupVersion.WithKind("BottleRun"))
	Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(r), u)).To(Succeed())
	res, err := status.Compute(u)
	Expect(err).NotTo(HaveOccurred())
	return res.Status
}

func dumpRuns() {
	var list v1.BottleRunList
	if err := k8sClient.List(ctx, &list); err != nil {
		return
	}
	for _, r := range list.Items {
		raw, _ := json.MarshalIndent(r.Status, "", "  ")
		GinkgoWriter.Printf("run %s/%s status:\n%s\n", r.Namespace, r.Name, raw)
	}
}

var _ = Describe("BottleRuns", Ordered, ContinueOnFailure, func() {
	const node = "node-runs"
	var (
		a     *testAgent
		store *steplog.Store
		ns    string
		b     *v1.Bottle
	)
	BeforeAll(func() {
		var err error
		store, err = steplog.New(GinkgoT().TempDir(), steplog.DefaultLimit)
		Expect(err).NotTo(HaveOccurred())
		a = startAgent(node, agentOptions{stepLogs: store})
		ns = newNamespace()
		b = bottle(ns, node)
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
	})
	AfterAll(func() { a.stop() })
	AfterEach(func() {
		if CurrentSpecReport().Failed() {
			dumpBottles()
			dumpRuns()
			logs := a.logs.String()
			GinkgoWriter.Printf("agent log (tail):\n%s\n", logs[max(0, len(logs)-6000):])
		}
	})

	It("waits for its Bottle, runs an argv once and records its exit code, tails and log (Failed, NonZeroExit)", func() {
		r := newRun(ns, "argv", b.Name, "sh", "-c", `echo "out $(id -un)"; echo err >&2; exit 3`)
		Expect(k8sClient.Create(ctx, r)).To(Succeed())
		Eventually(runPhase(r)).Should(Equal(v1.RunPhaseFailed))
		got := getRun(r)
		Expect(*got.Status.ExitCode).To(Equal(int32(3)))
		Expect(got.Status.Reason).To(Equal(v1.ReasonRunNonZeroExit))
		Expect(got.Status.Stdout).To(Equal("out node\n"))
		Expect(got.Status.Stderr).To(Equal("err\n"))
		Expect(got.Status.StdoutBytes).To(Equal(int64(9)))
		Expect(got.Status.User).To(Equal("node"))
		Expect(got.Status.NodeName).To(Equal(node))
		Expect(got.Status.BottleName).To(Equal(b.Name))
		Expect(got.Status.StartedAt).NotTo(BeNil())
		Expect(got.Status.FinishedAt).NotTo(BeNil())
		Expect(meta.IsStatusConditionTrue(got.Status.Conditions, v1.ConditionFailed)).To(BeTrue())
		Expect(meta.FindStatusCondition(got.Status.Conditions, v1.ConditionComplete)).To(BeNil())
		Expect(runKstatus(r)).To(Equal(status.FailedStatus))

		var log bytes.Buffer
		Expect(store.Copy(ctx, &log, string(got.UID), v1.RunLogStep, steplog.ReadOptions{TailLines: -1})).To(Succeed())
		Expect(log.String()).To(ContainSubstring("out node\n"))
		Expect(log.String()).To(ContainSubstring("err\n"))
	})

	It("runs a script as its user with env from a Secret, keeps outputs, and is Complete", func() {
		Expect(k8sClient.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "token", Namespace: ns},
			StringData: map[string]string{"t": "s3cret"},
		})).To(Succeed())
		r := newRun(ns, "script", b.Name)
		r.Spec.Command = nil
		r.Spec.Script = ptr.To(`printf 'review of %s\n' "$TOPIC" > /tmp/review.md; [ "$(printf %s "$TOKEN" | wc -c)" = 6 ] && echo token-ok; id -un; head -c 100 /dev/zero | tr '\0' x > /tmp/big`)
		r.Spec.User = "root"
		r.Spec.Env = []v1.EnvVar{
			{Name: "TOPIC", Value: ptr.To("main")},
			{Name: "TOKEN", ValueFrom: &v1.EnvVarSource{SecretKeyRef: &v1.KeyRef{Name: "token", Key: "t"}}},
		}
		r.Spec.Outputs = []v1.RunOutput{
			{Name: "review", Path: "/tmp/review.md"},
			{Name: "big", Path: "/tmp/big", MaxBytes: 10},
			{Name: "missing", Path: "/tmp/none"},
		}
		Expect(k8sClient.Create(ctx, r)).To(Succeed())
		Eventually(runPhase(r)).Should(Equal(v1.RunPhaseSucceeded))
		got := getRun(r)
		Expect(*got.Status.ExitCode).To(BeZero())
		Expect(got.Status.Stdout).To(Equal("token-ok\nroot\n"))
		Expect(meta.IsStatusConditionTrue(got.Status.Conditions, v1.ConditionComplete)).To(BeTrue())
		Expect(runKstatus(r)).To(Equal(status.CurrentStatus))
		Expect(got.Status.Outputs).To(HaveLen(3))
		Expect(got.Status.Outputs[0]).To(Equal(v1.RunOutputResult{Name: "review", Content: "review of main\n", Bytes: 15}))
		Expect(got.Status.Outputs[1]).To(Equal(v1.RunOutputResult{Name: "big", Content: "xxxxxxxxxx", Bytes: 100, Truncated: true}))
		Expect(got.Status.Outputs[2].Error).To(ContainSubstring("cannot read /tmp/none"))
		raw, _ := json.Marshal(got)
		Expect(string(raw)).NotTo(ContainSubstring("s3cret"))
	})

	It("times out (TimedOut, exit code 124)", func() {
		r := newRun(ns, "slow", b.Name, "sleep", "60")
		r.Spec.TimeoutSeconds = 1
		Expect(k8sClient.Create(ctx, r)).To(Succeed())
		Eventually(runPhase(r)).Should(Equal(v1.RunPhaseFailed))
		got := getRun(r)
		Expect(got.Status.Reason).To(Equal(v1.ReasonRunTimedOut))
		Expect(*got.Status.ExitCode).To(Equal(int32(124)))
	})

	It("is cancelled when deleted, and the next queued run then starts", func() {
		long := newRun(ns, "long", b.Name, "sh", "-c", "echo started; sleep 600")
		Expect(k8sClient.Create(ctx, long)).To(Succeed())
		Eventually(runPhase(long)).Should(Equal(v1.RunPhaseRunning))
		next := newRun(ns, "after-long", b.Name, "echo", "next")
		Expect(k8sClient.Create(ctx, next)).To(Succeed())
		Eventually(func() string { return getRun(next).Status.Message }).Should(ContainSubstring(`queued behind run "long"`))
		Expect(getRun(next).Status.Phase).To(Equal(v1.RunPhasePending))
		Expect(runKstatus(next)).To(Equal(status.InProgressStatus))

		Expect(k8sClient.Delete(ctx, long)).To(Succeed())
		Eventually(runGone(long)).Should(BeTrue())
		// Well inside the 600 s sleep: the command was killed.
		Eventually(runPhase(next)).Should(Equal(v1.RunPhaseSucceeded))
		Expect(getRun(next).Status.Stdout).To(Equal("next\n"))
	})

	It("enforces concurrency: Forbid fails while another run is active, Queue runs after it", func() {
		first := newRun(ns, "first", b.Name, "sh", "-c", "sleep 5; echo first")
		Expect(k8sClient.Create(ctx, first)).To(Succeed())
		Eventually(runPhase(first)).Should(Equal(v1.RunPhaseRunning))
		forbid := newRun(ns, "forbid", b.Name, "echo", "never")
		forbid.Spec.ConcurrencyPolicy = v1.ConcurrencyForbid
		queued := newRun(ns, "queued", b.Name, "echo", "queued")
		Expect(k8sClient.Create(ctx, forbid)).To(Succeed())
		Expect(k8sClient.Create(ctx, queued)).To(Succeed())

		Eventually(runPhase(forbid)).Should(Equal(v1.RunPhaseFailed))
		f := getRun(forbid)
		Expect(f.Status.Reason).To(Equal(v1.ReasonRunConcurrencyForbidden))
		Expect(f.Status.StartedAt).To(BeNil())
		Expect(f.Status.ExitCode).To(BeNil())

		Eventually(runPhase(queued)).Should(Equal(v1.RunPhaseSucceeded))
		q, fr := getRun(queued), getRun(first)
		Expect(fr.Status.Phase).To(Equal(v1.RunPhaseSucceeded))
		Expect(q.Status.StartedAt.Before(fr.Status.FinishedAt)).To(BeFalse(), "the queued run started before the first ended")
	})

	It("runs a finished run again only when the retry annotation asks, once per value", func() {
		r := newRun(ns, "again", b.Name, "sh", "-c", "echo x >> /tmp/again; wc -l < /tmp/again; exit 1")
		Expect(k8sClient.Create(ctx, r)).To(Succeed())
		Eventually(runPhase(r)).Should(Equal(v1.RunPhaseFailed))
		first := getRun(r)
		Expect(first.Status.Stdout).To(Equal("1\n"))

		first.Annotations = map[string]string{v1.AnnotationRetry: "try-2"}
		Expect(k8sClient.Update(ctx, first)).To(Succeed())
		Eventually(func() string { return getRun(r).Status.Stdout }).Should(Equal("2\n"))
		Eventually(runPhase(r)).Should(Equal(v1.RunPhaseFailed))
		second := getRun(r)
		Expect(second.Status.LastHandledRetry).To(Equal("try-2"))
		Expect(second.Status.StartedAt.After(first.Status.FinishedAt.Time)).To(BeTrue())

		By("a later run in the Bottle shows the retried one ran exactly twice")
		probe := newRun(ns, "again-probe", b.Name, "cat", "/tmp/again")
		Expect(k8sClient.Create(ctx, probe)).To(Succeed())
		Eventually(runPhase(probe)).Should(Equal(v1.RunPhaseSucceeded))
		Expect(getRun(probe).Status.Stdout).To(Equal("x\nx\n"))
	})

	It("deletes a finished run after ttlSecondsAfterFinished, with its log", func() {
		r := newRun(ns, "ttl", b.Name, "echo", "bye")
		r.Spec.TTLSecondsAfterFinished = ptr.To[int32](1)
		Expect(k8sClient.Create(ctx, r)).To(Succeed())
		Eventually(runPhase(r)).Should(Equal(v1.RunPhaseSucceeded))
		uid := string(getRun(r).UID)
		Eventually(runGone(r)).Should(BeTrue())
		Eventually(func() bool { return store.Has(uid, v1.RunLogStep) }).Should(BeFalse())
	})

	It("is started at most once: a run cut off by an agent stop is marked Lost by the next agent, never run again", func() {
		r := newRun(ns, "once", b.Name, "sh", "-c", "echo ran >> /tmp/once-count; echo started; sleep 600")
		Expect(k8sClient.Create(ctx, r)).To(Succeed())
		Eventually(runPhase(r)).Should(Equal(v1.RunPhaseRunning))
		machine := get(b).Status.MachineName
		Eventually(guestPoll(node, machine, "cat /tmp/once-count")).Should(Equal("ran\n"))

		a.stop()
		Expect(getRun(r).Status.Phase).To(Equal(v1.RunPhaseRunning), "the stopped agent recorded no end")
		a = startAgent(node, agentOptions{stepLogs: store})

		Eventually(runPhase(r)).Should(Equal(v1.RunPhaseFailed))
		got := getRun(r)
		Expect(got.Status.Reason).To(Equal(v1.ReasonRunLost))
		Expect(got.Status.ExitCode).To(BeNil())
		Expect(got.Status.Message).To(ContainSubstring("never started again"))
		Expect(meta.IsStatusConditionTrue(got.Status.Conditions, v1.ConditionFailed)).To(BeTrue())
		// A later run proves the agent is at work; the lost one did not run again.
		probe := newRun(ns, "probe", b.Name, "cat", "/tmp/once-count")
		Expect(k8sClient.Create(ctx, probe)).To(Succeed())
		Eventually(runPhase(probe)).Should(Equal(v1.RunPhaseSucceeded))
		Expect(strings.Count(getRun(probe).Status.Stdout, "ran")).To(Equal(1))
	})

	It("finishes within the agent's shutdown grace when the agent is told to stop, and records its result", func() {
		a.stop()
		a = startAgent(node, agentOptions{stepLogs: store, shutdownGrace: 40 * time.Second})
		r := newRun(ns, "drained", b.Name, "sh", "-c", "echo x >> /tmp/drained-count; while [ ! -e /tmp/release-run ]; do sleep 0.05; done; echo released")
		Expect(k8sClient.Create(ctx, r)).To(Succeed())
		Eventually(runPhase(r)).Should(Equal(v1.RunPhaseRunning))
		machine := get(b).Status.MachineName
		Eventually(guestPoll(node, machine, "cat /tmp/drained-count")).Should(Equal("x\n"))

		a.cancel()
		Consistently(a.done, "1s", "50ms").ShouldNot(BeClosed(), "the agent did not wait for its running run")
		guest(node, machine, "touch /tmp/release-run")
		Eventually(a.done).Should(BeClosed())
		got := getRun(r)
		Expect(got.Status.Phase).To(Equal(v1.RunPhaseSucceeded), "a rollout records the run's end instead of leaving it Lost")
		Expect(got.Status.Stdout).To(Equal("released\n"))
		a = startAgent(node, agentOptions{stepLogs: store})
	})
})
