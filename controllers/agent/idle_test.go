package agent_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/zap/zapcore"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/controllers/placement"
	"github.com/bot-bottle/bottle-controller/internal/activity"
	"github.com/bot-bottle/bottle-controller/internal/testenv"
	"github.com/bot-bottle/bottle-controller/internal/testutil"
)

// startRetention runs the cluster controller's retention reconciler
// in-process, as `manager --mode=cluster` wires it.
func startRetention() *testAgent {
	logs := &testutil.SyncBuffer{}
	logger := zap.New(zap.WriteTo(logs), zap.UseDevMode(true), zap.Level(zapcore.DebugLevel))
	mgr, err := ctrl.NewManager(cfg, testutil.ManagerOptions(ctrl.Options{Scheme: testenv.Scheme()}, logger))
	Expect(err).NotTo(HaveOccurred())
	Expect((&placement.RetentionReconciler{Client: mgr.GetClient()}).SetupWithManager(mgr)).To(Succeed())
	return runAgent("cluster-retention", mgr, logs)
}

func readyReason(b *v1.Bottle) func() string {
	return func() string {
		c := meta.FindStatusCondition(get(b).Status.Conditions, v1.ConditionReady)
		if c == nil {
			return ""
		}
		return c.Reason
	}
}

var _ = Describe("Idle lifecycle", Ordered, func() {
	const node = "node-idle"
	var a *testAgent
	BeforeAll(func() { a = startAgent(node, agentOptions{activity: activity.New(), resync: 2 * time.Second}) })
	AfterAll(func() { a.stop() })
	AfterEach(func() {
		if CurrentSpecReport().Failed() {
			dumpBottles()
			dumpRuns()
			logs := a.logs.String()
			GinkgoWriter.Printf("agent log (tail):\n%s\n", logs[max(0, len(logs)-6000):])
		}
	})

	It("stops an idle Bottle's machine (disk kept, runState unchanged), and a run starts it again and runs", func() {
		ns := newNamespace()
		b := bottle(ns, node, step("mark", "echo kept > /home/node/mark"))
		b.Spec.Lifecycle = &v1.Lifecycle{StopAfterIdle: &metav1.Duration{Duration: 2 * time.Second}}
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		Eventually(readyReason(b)).Should(Equal(v1.ReasonIdleStopped))
		got := get(b)
		Expect(got.Status.Phase).To(Equal(v1.PhaseStopped))
		Expect(got.Spec.RunState).To(Equal(v1.RunStateRunning), "the spec is the user's: never changed")
		Expect(got.Status.Lifecycle.IdleStoppedAt).NotTo(BeNil())
		Expect(meta.IsStatusConditionTrue(got.Status.Conditions, v1.ConditionReady)).To(BeTrue())
		Eventually(machineState(node, got.Status.MachineName)).Should(Equal("stopped"))
		stoppedAt := got.Status.Lifecycle.IdleStoppedAt

		r := newRun(ns, "after-idle", b.Name, "cat", "/home/node/mark")
		Expect(k8sClient.Create(ctx, r)).To(Succeed())
		Eventually(runPhase(r)).Should(Equal(v1.RunPhaseSucceeded))
		Expect(getRun(r).Status.Stdout).To(Equal("kept\n"), "the disk was kept")
		Expect(getRun(r).Status.StartedAt.After(stoppedAt.Time)).To(BeTrue())

		By("idle again after the run: stopped again, later than the first time")
		Eventually(func() bool {
			l := get(b).Status.Lifecycle
			return l != nil && l.IdleStoppedAt != nil && l.IdleStoppedAt.After(stoppedAt.Time)
		}).Should(BeTrue())
		Expect(get(b).Status.ExecResults).To(HaveLen(1), "waking runs no step again")
	})

	It("deletes a Bottle deleteAfter its idle stop (the cluster controller's retention)", func() {
		rt := startRetention()
		DeferCleanup(rt.stop)
		ns := newNamespace()
		b := bottle(ns, node)
		b.Spec.Lifecycle = &v1.Lifecycle{
			StopAfterIdle: &metav1.Duration{Duration: time.Second},
			DeleteAfter:   &metav1.Duration{Duration: 2 * time.Second},
		}
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		Eventually(readyReason(b)).Should(Equal(v1.ReasonIdleStopped))
		machine := get(b).Status.MachineName
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(b), &v1.Bottle{}))
		}).Should(BeTrue())
		Eventually(machineExists(node, machine)).Should(BeFalse(), "the machine goes with the Bottle")
	})
})
