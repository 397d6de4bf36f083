package agent_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/zap/zapcore"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/controllers/placement"
	"github.com/bot-bottle/bottle-controller/internal/testenv"
	"github.com/bot-bottle/bottle-controller/internal/testutil"
)

// startFreshRuns runs the cluster controller's fresh-Bottle run reconciler
// in-process, as `manager --mode=cluster` wires it.
func startFreshRuns() *testAgent {
	logs := &testutil.SyncBuffer{}
	logger := zap.New(zap.WriteTo(logs), zap.UseDevMode(true), zap.Level(zapcore.DebugLevel))
	mgr, err := ctrl.NewManager(cfg, testutil.ManagerOptions(ctrl.Options{Scheme: testenv.Scheme()}, logger))
	Expect(err).NotTo(HaveOccurred())
	Expect((&placement.FreshRunReconciler{Client: mgr.GetClient()}).SetupWithManager(mgr)).To(Succeed())
	return runAgent("cluster", mgr, logs)
}

var _ = Describe("A BottleRun in a fresh Bottle", func() {
	It("forks a Bottle from the template, runs in it, keeps the outputs and deletes the Bottle", func() {
		const node = "node-fresh-runs"
		poolNode(node, "fresh")
		ta := startTemplateAgent(node)
		DeferCleanup(ta.stop)
		ba := startAgent(node, agentOptions{resync: 2 * time.Second})
		DeferCleanup(ba.stop)
		fr := startFreshRuns()
		DeferCleanup(fr.stop)
		DeferCleanup(func() {
			if CurrentSpecReport().Failed() {
				dumpBottles()
				dumpRuns()
				logs := ba.logs.String()
				GinkgoWriter.Printf("agent log (tail):\n%s\n", logs[max(0, len(logs)-8000):])
			}
		})
		ns := newNamespace()
		tpl := &v1.BottleTemplate{
			ObjectMeta: metav1.ObjectMeta{Name: "tools", Namespace: ns},
			Spec: v1.BottleTemplateSpec{
				MachineSpec: v1.MachineSpec{
					Image:     "node:22",
					Provision: []v1.ProvisionStep{step("install", `echo from-the-template > /home/node/installed`)},
				},
				Pool: v1.TemplatePool{NodeSelector: map[string]string{"pool": "fresh"}, HeldSlots: 1},
			},
		}
		Expect(k8sClient.Create(ctx, tpl)).To(Succeed())

		r := &v1.BottleRun{
			ObjectMeta: metav1.ObjectMeta{Name: "review", Namespace: ns},
			Spec: v1.BottleRunSpec{
				TemplateRef: &v1.TemplateReference{Name: "tools"},
				Script:      ptr.To(`cat /home/node/installed; echo "LGTM" > /tmp/review.md`),
				Outputs:     []v1.RunOutput{{Name: "review", Path: "/tmp/review.md"}},
			},
		}
		Expect(k8sClient.Create(ctx, r)).To(Succeed())

		By("the cluster controller makes the run's Bottle, owned by the run, naming no node")
		fresh := &v1.Bottle{ObjectMeta: metav1.ObjectMeta{Name: "run-review", Namespace: ns}}
		Eventually(func() error { return k8sClient.Get(ctx, client.ObjectKeyFromObject(fresh), fresh) }).Should(Succeed())
		Expect(fresh.Spec.TemplateRef.Name).To(Equal("tools"))
		Expect(fresh.Spec.NodeName).To(BeEmpty())
		Expect(metav1.IsControlledBy(fresh, getRun(r))).To(BeTrue())
		Eventually(func() string { return getRun(r).Status.BottleName }).Should(Equal("run-review"))
		Expect(getRun(r).Status.Phase).To(Equal(v1.RunPhasePending))

		By("once placed (kube-scheduler's binding, copied by the placement controller: set here by hand), its agent runs the run")
		fresh.Spec.NodeName = node
		Expect(k8sClient.Update(ctx, fresh)).To(Succeed())
		Eventually(runPhase(r)).Should(Equal(v1.RunPhaseSucceeded))
		got := getRun(r)
		Expect(got.Status.Stdout).To(Equal("from-the-template\n"))
		Expect(got.Status.Outputs).To(ConsistOf(v1.RunOutputResult{Name: "review", Content: "LGTM\n", Bytes: 5}))
		Expect(got.Status.NodeName).To(Equal(node))

		By("the Bottle goes once the run ended; the result stays")
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(fresh), &v1.Bottle{}))
		}).Should(BeTrue())
		Expect(getRun(r).Status.Outputs).To(HaveLen(1))
	})
})
