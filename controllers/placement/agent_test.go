package placement_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/controllers/agent"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
	"github.com/bot-bottle/bottle-controller/internal/testenv"
	"github.com/bot-bottle/bottle-controller/internal/testutil"
)

// startAgent runs a node agent in-process as cmd/manager wires it with
// --reservations (its heartbeat is separate: see beat).
func startAgent(node, simPath, dataDir string) context.CancelFunc {
	Expect(os.MkdirAll(dataDir, 0o755)).To(Succeed())
	logger := zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true))
	mgr, err := ctrl.NewManager(cfg, testutil.ManagerOptions(agent.ManagerOptions(testenv.Scheme(), node), logger))
	Expect(err).NotTo(HaveOccurred())
	r := &agent.BottleReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: mgr.GetEventRecorder("bottle-agent"),
		Machines: smolvm.New(simPath, "SMOLVM_DATA_DIR="+dataDir), NodeName: node,
		TempDir: GinkgoT().TempDir(), RequireReservation: true,
	}
	Expect(r.SetupWithManager(mgr, "bottle-"+node)).To(Succeed())
	actx, acancel := context.WithCancel(ctx)
	go func() {
		defer GinkgoRecover()
		Expect(mgr.Start(actx)).To(Succeed())
	}()
	return acancel
}

// owner returns the field manager that owns condition typ's status.
func owner(b *v1.Bottle, typ string) []string {
	key := `"k:{\"type\":\"` + typ + `\"}":{`
	var out []string
	for _, mf := range b.ManagedFields {
		raw := mf.FieldsV1.GetRawString()
		if i := strings.Index(raw, key); i >= 0 && strings.Contains(raw[i:], `"f:status"`) {
			out = append(out, mf.Manager)
		}
	}
	return out
}

var _ = Describe("A node agent with the cluster controller", Ordered, func() {
	const node = "agent-node"
	var (
		simPath, dataDir string
		stopAgent        context.CancelFunc
		hb               *heartbeat
	)
	BeforeAll(func() {
		if err := testutil.BwrapMissing(); err != nil {
			if !testutil.InCI() {
				Skip(err.Error())
			}
			Fail("bwrap missing under CI: " + err.Error())
		}
		dir := GinkgoT().TempDir()
		var err error
		simPath, err = testutil.Simulator(dir)
		Expect(err).NotTo(HaveOccurred())
		dataDir = filepath.Join(dir, node)
		_, err = testenv.CreateNode(ctx, k8sClient, node, 8, "16Gi", map[string]string{v1.LabelKVMNode: "true", "agent": "yes"})
		Expect(err).NotTo(HaveOccurred())
		hb = beat(node)
		stopAgent = startAgent(node, simPath, dataDir)
	})
	AfterAll(func() {
		if stopAgent != nil {
			stopAgent()
		}
		if hb != nil {
			hb.kill()
		}
	})

	machines := func() string {
		cmd := exec.Command(simPath, "machine", "ls", "--json")
		cmd.Env = append(os.Environ(), "SMOLVM_DATA_DIR="+dataDir)
		out, err := cmd.Output()
		Expect(err).NotTo(HaveOccurred())
		return string(out)
	}

	It("runs a Bottle placed by kube-scheduler, each writer keeping its own conditions", func() {
		ns := namespace("shared")
		b := newBottle(ns, "shared", 1, 512, "")
		b.Spec.Placement = &v1.Placement{NodeSelector: map[string]string{"agent": "yes"}}
		b.Spec.Provision = []v1.ProvisionStep{{Name: "hello", Script: "echo hello"}}
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		Eventually(get(b)).Should(And(
			WithTransform(cond(v1.ConditionReady), Equal("True/Ready")),
			WithTransform(cond(v1.ConditionScheduled), Equal("True/Scheduled")),
		))
		got := get(b)(Default)
		Expect(got.Spec.NodeName).To(Equal(node))
		Expect(owner(got, v1.ConditionScheduled)).To(ConsistOf(v1.FieldManagerCluster))
		Expect(owner(got, v1.ConditionReady)).To(ConsistOf(v1.FieldManagerAgent))
		Expect(got.Status.ExecResults).To(HaveLen(1))

		By("the agent's heartbeat stops: the cluster controller speaks for the Bottle")
		hb.kill()
		Eventually(get(b)).WithTimeout(15 * time.Second).Should(And(
			WithTransform(cond(v1.ConditionReady), Equal("False/"+v1.ReasonNodeAgentUnavailable)),
			WithTransform(cond(v1.ConditionScheduled), Equal("False/"+v1.ReasonNodeAgentUnavailable)),
		))
		Expect(get(b)(Default).Status.ExecResults).To(HaveLen(1), "the agent's results stay")

		By("the heartbeat returns: the agent takes Ready back, Scheduled stays the cluster controller's")
		hb = beat(node)
		Eventually(get(b)).Should(And(
			WithTransform(cond(v1.ConditionReady), Equal("True/Ready")),
			WithTransform(cond(v1.ConditionScheduled), Equal("True/Scheduled")),
			WithTransform(cond(v1.ConditionReconciling), BeEmpty()),
		))
		Consistently(get(b)).WithTimeout(2 * time.Second).Should(And(
			WithTransform(cond(v1.ConditionReady), Equal("True/Ready")),
			WithTransform(cond(v1.ConditionScheduled), Equal("True/Scheduled")),
		))
		got = get(b)(Default)
		Expect(owner(got, v1.ConditionReady)).To(ConsistOf(v1.FieldManagerAgent))
		Expect(got.Status.Phase).To(Equal(v1.PhaseReady))
		Expect(kstatus(got)).To(Equal(kstatusCurrent))
	})

	It("creates no machine until the Bottle's reservation is bound", func() {
		ns := namespace("gate")
		b := newBottle(ns, "gated", 1, 512, node)
		// A Pod that is not a reservation already holds the name.
		squatter := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: b.ReservationPodName()},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
		}
		Expect(k8sClient.Create(ctx, squatter)).To(Succeed())
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		Eventually(get(b)).Should(And(
			WithTransform(cond(v1.ConditionScheduled), Equal("False/"+v1.ReasonReservationConflict)),
			WithTransform(cond(v1.ConditionReady), Equal("False/"+v1.ReasonWaitingForReservation)),
		))
		Consistently(machines).WithTimeout(2 * time.Second).ShouldNot(ContainSubstring(get(b)(Default).MachineName()))
		Expect(get(b)(Default).Status.Phase).To(Equal(v1.PhasePending))

		Expect(k8sClient.Delete(ctx, squatter, &clientGrace0)).To(Succeed())
		Eventually(get(b)).Should(WithTransform(cond(v1.ConditionReady), Equal("True/Ready")))
		Expect(machines()).To(ContainSubstring(get(b)(Default).MachineName()))
	})
})
