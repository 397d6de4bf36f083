package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/agentlease"
	"github.com/bot-bottle/bottle-controller/internal/testenv"
	"github.com/bot-bottle/bottle-controller/internal/testutil"
)

var (
	logsOnce   sync.Once
	sharedLogs = &testutil.SyncBuffer{}
)

// agentLogs is what every agent of this test binary logs: controller-runtime
// takes only the first logger it is given, so the tests share one buffer.
func agentLogs() *testutil.SyncBuffer {
	logsOnce.Do(func() { ctrl.SetLogger(zap.New(zap.WriteTo(sharedLogs), zap.UseDevMode(true))) })
	return sharedLogs
}

// runningAgent is one agent process's manager, run in this test process.
type runningAgent struct {
	probe  string
	cancel context.CancelFunc
	// done is closed when the manager returned, with its error in err.
	done chan struct{}
	err  error
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String()
}

// startTestAgent runs an agent with short lease timings; extra flags come
// last (a second --exec-bind-address wins).
func startTestAgent(t *testing.T, cfg *rest.Config, identity, node, ns, simPath, dataDir string, extra ...string) *runningAgent {
	t.Helper()
	o, err := parseFlags(append([]string{
		"--node-name=" + node, "--reservations=false", "--smolvm-path=" + simPath, "--smolvm-data-dir=" + dataDir,
		"--metrics-bind-address=0", "--health-probe-bind-address=" + freeAddr(t), "--exec-bind-address=0",
		"--lease-namespace=" + ns, "--lease-duration=3s", "--lease-renew-deadline=2s", "--lease-retry-period=250ms",
	}, extra...))
	if err != nil {
		t.Fatal(err)
	}
	o.lease.identity = identity
	o.skipNameValidation = true // two managers in one process
	ctx, cancel := context.WithCancel(context.Background())
	mgr, err := newAgent(ctx, cfg, o)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	a := &runningAgent{probe: o.probeAddr, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(a.done)
		a.err = mgr.Start(ctx)
	}()
	t.Cleanup(a.stop)
	return a
}

// stop stops the agent and waits for it (at most a minute); it may be
// called again.
func (a *runningAgent) stop() {
	a.cancel()
	select {
	case <-a.done:
	case <-time.After(time.Minute):
	}
}

func (a *runningAgent) readyCode() int { code, _ := a.readyz(); return code }

// readyz returns the status code and body of the agent's /readyz/lease.
func (a *runningAgent) readyz() (int, string) {
	resp, err := http.Get("http://" + a.probe + "/readyz/lease")
	if err != nil {
		return 0, err.Error()
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestOneAgentPerNode runs two agents for one node against a real API
// server and the simulator: the first waits for a crashed holder's Lease to
// expire, the second stays a standby while the first provisions, every step
// runs exactly once, and the standby takes over when the first stops.
func TestOneAgentPerNode(t *testing.T) {
	testutil.RequireBwrap(t)
	env, cfg, err := testenv.Start(testenv.Options{})
	if testenv.Skippable(err) {
		t.Skip(err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	logs := agentLogs()
	g := NewWithT(t)
	g.SetDefaultEventuallyTimeout(60 * time.Second)
	g.SetDefaultEventuallyPollingInterval(100 * time.Millisecond)
	ctx := context.Background()
	c, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())

	dir := t.TempDir()
	simPath, err := testutil.Simulator(simDir)
	if err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(dir, "node")
	g.Expect(os.MkdirAll(dataDir, 0o755)).To(Succeed())
	const node, ns = "lease-node", "bottle-system"
	g.Expect(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	leaseKey := client.ObjectKey{Namespace: ns, Name: agentlease.Name(node)}
	holder := func() string {
		l := &coordinationv1.Lease{}
		if err := c.Get(ctx, leaseKey, l); err != nil {
			return err.Error()
		}
		return ptr.Deref(l.Spec.HolderIdentity, "")
	}

	// An agent that crashed a moment ago: its Lease has 5 s to run.
	now := metav1.NewMicroTime(time.Now())
	g.Expect(c.Create(ctx, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: agentlease.Name(node)},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("crashed-agent"), LeaseDurationSeconds: ptr.To[int32](5),
			AcquireTime: &now, RenewTime: &now},
	})).To(Succeed())

	a := startTestAgent(t, cfg, "agent-a", node, ns, simPath, dataDir)
	g.Expect(a.readyCode()).To(Equal(http.StatusInternalServerError), "a standby is not ready")
	g.Eventually(func() string { _, body := a.readyz(); return body }).Should(
		ContainSubstring(fmt.Sprintf("standby: lease %s/%s held by crashed-agent", ns, agentlease.Name(node))))
	g.Expect(logs.String()).To(ContainSubstring("standby"))
	g.Eventually(holder, 15*time.Second).Should(Equal("agent-a"), "the expired Lease is taken over")
	g.Eventually(a.readyCode).Should(Equal(http.StatusOK))

	b := startTestAgent(t, cfg, "agent-b", node, ns, simPath, dataDir)
	g.Eventually(b.readyCode).Should(Equal(http.StatusInternalServerError))
	g.Eventually(func() string { _, body := b.readyz(); return body }).Should(ContainSubstring("held by agent-a"))

	// Each step appends a line to its own guest file: one line, one run.
	count := func(step string) string {
		return fmt.Sprintf(`echo run >> /home/node/runs-%s; sleep 0.3`, step)
	}
	bottle := &v1.Bottle{
		ObjectMeta: metav1.ObjectMeta{Name: "leased", Namespace: "default"},
		Spec: v1.BottleSpec{
			NodeName: node,
			MachineSpec: v1.MachineSpec{
				Image: "node:22",
				Provision: []v1.ProvisionStep{
					{Name: "one", Script: count("one")}, {Name: "two", Script: count("two")}, {Name: "three", Script: count("three")},
				},
			},
		},
	}
	g.Expect(c.Create(ctx, bottle)).To(Succeed())
	ready := func(gen int64) func() bool {
		return func() bool {
			got := &v1.Bottle{}
			if c.Get(ctx, client.ObjectKeyFromObject(bottle), got) != nil {
				return false
			}
			return got.Status.ObservedGeneration >= gen && meta.IsStatusConditionTrue(got.Status.Conditions, v1.ConditionReady)
		}
	}
	g.Eventually(ready(1)).Should(BeTrue())
	got := &v1.Bottle{}
	g.Expect(c.Get(ctx, client.ObjectKeyFromObject(bottle), got)).To(Succeed())
	machine := got.Status.MachineName
	runs := func(step string) string {
		cmd := exec.Command(simPath, "machine", "exec", "--name", machine, "--", "cat", "/home/node/runs-"+step)
		cmd.Env = append(os.Environ(), "SMOLVM_DATA_DIR="+dataDir)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			return fmt.Sprintf("%v: %s", err, errOut.String())
		}
		return out.String()
	}
	for _, s := range []string{"one", "two", "three"} {
		g.Expect(runs(s)).To(Equal("run\n"), "step %s ran exactly once", s)
	}
	g.Expect(holder()).To(Equal("agent-a"))

	// The holder stops: it releases the Lease and the standby takes over.
	// It renews until its manager has stopped and releases last, so once
	// stop returns the Lease is already free (or the standby's): a takeover
	// by expiry would leave agent-a there for another --lease-duration (3 s).
	a.stop()
	g.Expect(a.err).NotTo(HaveOccurred())
	g.Expect(holder()).To(Or(BeEmpty(), Equal("agent-b")), "the stopped holder released its Lease")
	g.Eventually(holder, 10*time.Second).Should(Equal("agent-b"))
	g.Eventually(b.readyCode).Should(Equal(http.StatusOK))

	// The new holder provisions what is new, and nothing again.
	g.Expect(c.Get(ctx, client.ObjectKeyFromObject(bottle), got)).To(Succeed())
	got.Spec.Provision = append(got.Spec.Provision, v1.ProvisionStep{Name: "four", Script: count("four")})
	g.Expect(c.Update(ctx, got)).To(Succeed())
	g.Eventually(ready(2)).Should(BeTrue())
	for _, s := range []string{"one", "two", "three", "four"} {
		g.Expect(runs(s)).To(Equal("run\n"), "step %s ran exactly once", s)
	}
	g.Expect(strings.Count(logs.String(), "held by another agent")).To(BeNumerically(">=", 2), "each standby said so in its log")
}
