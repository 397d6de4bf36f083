package placement_test

import (
	"context"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/bot-bottle/bottle-controller/controllers/placement"
	"github.com/bot-bottle/bottle-controller/internal/agentlease"
	"github.com/bot-bottle/bottle-controller/internal/testenv"
	"github.com/bot-bottle/bottle-controller/internal/testutil"
)

// Timings of the suite: an agent Lease renewed every 250ms, a node without
// renewal for agentTimeout is without agent, and agentGrace later its
// Bottles are Stalled.
const (
	agentNamespace = "bottle-system"
	agentTimeout   = 3 * time.Second
	agentGrace     = 4 * time.Second
)

var (
	env       *envtest.Environment
	cfg       *rest.Config
	k8sClient client.Client
	ctx       context.Context
	cancel    context.CancelFunc
	scheduler *testenv.Scheduler
	logs      *testutil.SyncBuffer
)

func TestPlacement(t *testing.T) {
	RegisterFailHandler(Fail)
	SetDefaultEventuallyTimeout(60 * time.Second)
	SetDefaultEventuallyPollingInterval(100 * time.Millisecond)
	RunSpecs(t, "Placement (real kube-apiserver + kube-scheduler)")
}

var _ = BeforeSuite(func() {
	ctx, cancel = context.WithCancel(context.Background())
	e, c, err := testenv.Start(testenv.Options{})
	if testenv.Skippable(err) {
		Skip(err.Error())
	}
	Expect(err).NotTo(HaveOccurred())
	env, cfg = e, c
	k8sClient, err = client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	Expect(err).NotTo(HaveOccurred())
	Expect(k8sClient.Create(ctx, nsObj(agentNamespace))).To(Succeed())

	scheduler, err = testenv.StartScheduler(env, GinkgoT().TempDir())
	Expect(err).NotTo(HaveOccurred())
	startClusterController()
})

var _ = AfterSuite(func() {
	if cancel != nil {
		cancel()
	}
	if scheduler != nil {
		Expect(scheduler.Stop()).To(Succeed())
	}
	if env != nil {
		Expect(env.Stop()).To(Succeed())
	}
})

func nsObj(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

// startClusterController runs the cluster controller in-process, as
// `manager --mode=cluster` wires it (without leader election).
func startClusterController() {
	logs = &testutil.SyncBuffer{}
	logger := zap.New(zap.WriteTo(logs), zap.UseDevMode(true))
	ctrl.SetLogger(logger)
	startClusterControllerWith(logger)
}

func startClusterControllerWith(logger logr.Logger) {
	opts := testutil.ManagerOptions(ctrl.Options{Scheme: testenv.Scheme(), Cache: placement.CacheOptions(agentNamespace)}, logger)
	mgr, err := ctrl.NewManager(cfg, opts)
	Expect(err).NotTo(HaveOccurred())
	o := placement.DefaultOptions()
	o.AgentNamespace, o.AgentTimeout, o.AgentGrace = agentNamespace, agentTimeout, agentGrace
	r := &placement.Reconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: mgr.GetEventRecorder("bottle-cluster"),
		Heartbeats: placement.NewHeartbeats(agentTimeout), Options: o,
	}
	Expect(r.SetupWithManager(ctx, mgr)).To(Succeed())
	go func() {
		defer GinkgoRecover()
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
}

// heartbeat holds node's agent Lease the way an agent does (agentlease's
// lock under client-go leader election) until stopped. stop without
// release is an agent killed: the Lease just stops being renewed.
type heartbeat struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func beat(node string) *heartbeat {
	lock, err := agentlease.NewLock(cfg, agentNamespace, node, "agent-"+node, time.Second, logr.Discard())
	Expect(err).NotTo(HaveOccurred())
	hctx, hcancel := context.WithCancel(ctx)
	h := &heartbeat{cancel: hcancel, done: make(chan struct{})}
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: lock, LeaseDuration: 2 * time.Second, RenewDeadline: time.Second, RetryPeriod: 250 * time.Millisecond,
		Callbacks: leaderelection.LeaderCallbacks{OnStartedLeading: func(context.Context) {}, OnStoppedLeading: func() {}},
	})
	Expect(err).NotTo(HaveOccurred())
	go func() {
		defer close(h.done)
		le.Run(hctx)
	}()
	return h
}

func (h *heartbeat) kill() {
	h.cancel()
	Eventually(h.done).Should(BeClosed())
}

var _ = ReportAfterEach(func(r SpecReport) {
	if r.Failed() && logs != nil {
		AddReportEntry("cluster controller log", logs.String())
	}
})
