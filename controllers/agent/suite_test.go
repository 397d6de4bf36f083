package agent_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/zap/zapcore"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/bot-bottle/bottle-controller/controllers/agent"
	"github.com/bot-bottle/bottle-controller/internal/activity"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
	"github.com/bot-bottle/bottle-controller/internal/testenv"
	"github.com/bot-bottle/bottle-controller/internal/testutil"
)

var (
	env       *envtest.Environment
	cfg       *rest.Config
	k8sClient client.Client
	ctx       context.Context
	cancel    context.CancelFunc
	simPath   string
	simRoot   string
)

func TestControllers(t *testing.T) {
	RegisterFailHandler(Fail)
	SetDefaultEventuallyTimeout(60 * time.Second)
	SetDefaultEventuallyPollingInterval(100 * time.Millisecond)
	RunSpecs(t, "Bottle reconciler (real kube-apiserver + smolvm simulator)")
}

var _ = BeforeSuite(func() {
	ctx, cancel = context.WithCancel(context.Background())
	if testing.Short() {
		Skip(testenv.ErrShort.Error())
	}
	if err := testutil.BwrapMissing(); err != nil {
		if !testutil.InCI() {
			Skip(err.Error())
		}
		Fail("bwrap missing under CI: " + err.Error())
	}
	e, c, err := testenv.Start(testenv.Options{})
	if testenv.Skippable(err) {
		Skip(err.Error())
	}
	Expect(err).NotTo(HaveOccurred())
	env, cfg = e, c
	k8sClient, err = client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	Expect(err).NotTo(HaveOccurred())

	dir := GinkgoT().TempDir()
	simPath, err = testutil.Simulator(dir)
	Expect(err).NotTo(HaveOccurred())
	simRoot = filepath.Join(dir, "nodes")
})

var _ = AfterSuite(func() {
	if cancel != nil {
		cancel()
	}
	if env != nil {
		Expect(env.Stop()).To(Succeed())
	}
})

// dataDir is one node's smolvm state: each node has its own smolvm.
func dataDir(node string) string { return filepath.Join(simRoot, node) }

func cli(node string) *smolvm.CLI {
	return smolvm.New(simPath, "SMOLVM_DATA_DIR="+dataDir(node))
}

// sim runs the simulator directly, as a person on the node would.
func sim(node string, args ...string) (stdout, stderr string, code int) {
	cmd := exec.Command(simPath, args...)
	cmd.Env = append(os.Environ(), "SMOLVM_DATA_DIR="+dataDir(node))
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else {
		Expect(err).NotTo(HaveOccurred())
	}
	return o.String(), e.String(), code
}

// guest runs a shell script in a machine as root and returns its stdout.
func guest(node, machine, script string) string {
	out, errOut, code := sim(node, "machine", "exec", "--name", machine, "--", "sh", "-c", script)
	ExpectWithOffset(1, code).To(Equal(0), "guest script failed: %s", errOut)
	return out
}

// guestPoll is guest for Eventually: a failed exec (e.g. while a copy is
// being re-staged) is retried rather than failing the spec.
func guestPoll(node, machine, script string) func(Gomega) string {
	return func(g Gomega) string {
		out, errOut, code := sim(node, "machine", "exec", "--name", machine, "--", "sh", "-c", script)
		g.Expect(code).To(Equal(0), "guest script failed: %s", errOut)
		return out
	}
}

type testAgent struct {
	node string
	// bottles is the agent's Bottle reconciler (nil for agents started
	// another way than startAgent).
	bottles *agent.BottleReconciler
	// templates is the agent's BottleTemplate reconciler (nil for agents
	// started another way than startTemplateAgent).
	templates *agent.TemplateReconciler

	cancel context.CancelFunc
	done   chan struct{}
	logs   *testutil.SyncBuffer
}

type agentOptions struct {
	resync time.Duration
	// simEnv is extra environment for the simulator (fault injection).
	simEnv []string
	// workers is MaxConcurrentReconciles (0: the default).
	workers int
	// timeouts are the driver's smolvm deadlines (zero fields: the
	// defaults), as the agent's --smolvm-*-timeout flags set them.
	timeouts smolvm.Timeouts
	// stepLogs, when set, keeps the steps' full output.
	stepLogs agent.StepLogs
	// apiReads, when set, counts the agent's uncached reads.
	apiReads *readCounts
	// unreachableGrace is UnreachableGrace (0: the default).
	unreachableGrace time.Duration
	// retryBase is the first backoff after a smolvm failure (0: the
	// default).
	retryBase time.Duration
	// shutdownGrace is ShutdownGrace (0: steps are cut off at stop).
	shutdownGrace time.Duration
	// slotOrphanGrace is SlotOrphanGrace (0: the default).
	slotOrphanGrace time.Duration
	// activity, when set, is the node's activity record (idle stop, wake).
	activity *activity.Tracker
	// statusApply, when set, stands between the Bottle reconciler and the
	// API server for status applies (fault injection: a refusal the real
	// API server gives only to objects too large to build here).
	statusApply func(ctx context.Context, c client.Client, sub string, obj runtime.ApplyConfiguration, opts ...client.SubResourceApplyOption) error
}

// startAgent runs one node's agent in-process, as cmd/manager wires it.
func startAgent(node string, o agentOptions) *testAgent {
	if o.resync == 0 {
		o.resync = time.Minute
	}
	Expect(os.MkdirAll(dataDir(node), 0o755)).To(Succeed())
	logs := &testutil.SyncBuffer{}
	logger := zap.New(zap.WriteTo(logs), zap.UseDevMode(true), zap.Level(zapcore.DebugLevel))
	mopts := testutil.ManagerOptions(agent.ManagerOptions(testenv.Scheme(), node), logger)
	if o.shutdownGrace > 0 {
		mopts.GracefulShutdownTimeout = ptr.To(o.shutdownGrace + 5*time.Second)
	}
	mgr, err := ctrl.NewManager(cfg, mopts)
	Expect(err).NotTo(HaveOccurred())
	apiReader := mgr.GetAPIReader()
	if o.apiReads != nil {
		apiReader = countingAPIReader{Reader: apiReader, counts: o.apiReads}
	}
	machines := smolvm.New(simPath, append([]string{"SMOLVM_DATA_DIR=" + dataDir(node)}, o.simEnv...)...)
	machines.Timeouts = o.timeouts
	bottleClient := mgr.GetClient()
	if o.statusApply != nil {
		bottleClient = interceptor.NewClient(withoutWatch{bottleClient}, interceptor.Funcs{SubResourceApply: o.statusApply})
	}
	r := &agent.BottleReconciler{
		Client:                  bottleClient,
		APIReader:               apiReader,
		Recorder:                mgr.GetEventRecorder("bottle-agent"),
		Machines:                machines,
		NodeName:                node,
		ResyncPeriod:            o.resync,
		SourceRetryPeriod:       time.Second,
		TempDir:                 GinkgoT().TempDir(),
		MaxConcurrentReconciles: o.workers,
		StepLogs:                o.stepLogs,
		UnreachableGrace:        o.unreachableGrace,
		SmolvmRetryBase:         o.retryBase,
		ShutdownGrace:           o.shutdownGrace,
		Activity:                o.activity,
		SlotOrphanGrace:         o.slotOrphanGrace,
	}
	Expect(r.SetupWithManager(mgr, "bottle-"+node)).To(Succeed())
	rr := &agent.BottleRunReconciler{
		Client:        mgr.GetClient(),
		APIReader:     apiReader,
		Recorder:      mgr.GetEventRecorder("bottle-agent"),
		Machines:      r.Machines,
		NodeName:      node,
		Logs:          o.stepLogs,
		QueuePoll:     200 * time.Millisecond,
		Activity:      o.activity,
		ShutdownGrace: o.shutdownGrace,
	}
	Expect(rr.SetupWithManager(ctx, mgr, "bottlerun-"+node)).To(Succeed())
	a := runAgent(node, mgr, logs)
	a.bottles = r
	return a
}

// withoutWatch is the manager's client where interceptor wants a
// client.WithWatch: the reconciler never watches through its client.
type withoutWatch struct{ client.Client }

func (withoutWatch) Watch(context.Context, client.ObjectList, ...client.ListOption) (watch.Interface, error) {
	return nil, errors.New("the reconciler's client does not watch")
}

// runAgent starts mgr as node's agent and returns once its cache has
// synced: specs time what the agent does once it sees an object, so wait
// until it can see them.
func runAgent(node string, mgr ctrl.Manager, logs *testutil.SyncBuffer) *testAgent {
	actx, acancel := context.WithCancel(ctx)
	a := &testAgent{node: node, cancel: acancel, done: make(chan struct{}), logs: logs}
	go func() {
		defer GinkgoRecover()
		defer close(a.done)
		Expect(mgr.Start(actx)).To(Succeed())
	}()
	Expect(mgr.GetCache().WaitForCacheSync(actx)).To(BeTrue())
	return a
}

func (a *testAgent) stop() {
	a.cancel()
	Eventually(a.done).Should(BeClosed())
}

var _ logr.Logger
