package agent_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/controllers/agent"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
	"github.com/bot-bottle/bottle-controller/internal/testenv"
	"github.com/bot-bottle/bottle-controller/internal/testutil"
)

// BenchmarkBottleRunRoundTrip measures a BottleRun of `true` in a Ready
// Bottle on the simulator, from create to Succeeded as a client polling
// the API server sees it (10 ms polls): the agent's pickup, the locked
// start write, one smolvm exec, the finish write. With exec latency 20ms
// injected, as smolvm's own.
func BenchmarkBottleRunRoundTrip(b *testing.B) {
	log.SetLogger(logr.Discard())
	e, cfg, err := testenv.Start(testenv.Options{})
	if err != nil {
		b.Skip(err.Error())
	}
	b.Cleanup(func() { _ = e.Stop() })
	dir, err := os.MkdirTemp("", "bottle-bench-run-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = os.RemoveAll(dir) })
	sim, err := testutil.Simulator(dir)
	if err != nil {
		b.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		b.Fatal(err)
	}
	const node = "bench-run-node"
	mgr, err := ctrl.NewManager(cfg, testutil.ManagerOptions(agent.ManagerOptions(testenv.Scheme(), node), logr.Discard()))
	if err != nil {
		b.Fatal(err)
	}
	machines := smolvm.New(sim, "SMOLVM_DATA_DIR="+filepath.Join(dir, "data"), "SMOLVM_SIM_LATENCY=exec=20ms")
	r := &agent.BottleReconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Machines: machines, NodeName: node, TempDir: dir}
	if err := r.SetupWithManager(mgr, "bench"); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	rr := &agent.BottleRunReconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Machines: machines, NodeName: node}
	if err := rr.SetupWithManager(ctx, mgr, "bench-runs"); err != nil {
		b.Fatal(err)
	}
	go func() { _ = mgr.Start(ctx) }()

	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench-runs"}}); err != nil {
		b.Fatal(err)
	}
	bt := &v1.Bottle{ObjectMeta: metav1.ObjectMeta{Name: "b", Namespace: "bench-runs"},
		Spec: v1.BottleSpec{NodeName: node, MachineSpec: v1.MachineSpec{Image: "node:22"}}}
	if err := c.Create(ctx, bt); err != nil {
		b.Fatal(err)
	}
	waitFor(b, func() bool {
		cur := &v1.Bottle{}
		return c.Get(ctx, client.ObjectKeyFromObject(bt), cur) == nil && cur.Status.Phase == v1.PhaseReady
	})
	for i := 0; b.Loop(); i++ {
		run := &v1.BottleRun{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("r%d", i), Namespace: "bench-runs"},
			Spec: v1.BottleRunSpec{BottleRef: &v1.BottleReference{Name: "b"}, Command: []string{"true"}}}
		if err := c.Create(ctx, run); err != nil {
			b.Fatal(err)
		}
		waitFor(b, func() bool {
			cur := &v1.BottleRun{}
			return c.Get(ctx, client.ObjectKeyFromObject(run), cur) == nil && cur.Status.Phase == v1.RunPhaseSucceeded
		})
	}
}

func waitFor(b *testing.B, cond func() bool) {
	b.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatal("timed out")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
