package agent_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/controllers/agent"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
	"github.com/bot-bottle/bottle-controller/internal/testenv"
	"github.com/bot-bottle/bottle-controller/internal/testutil"
)

// benchAgent is one node's agent on a fresh control plane, for benchmarks:
// its smolvm calls are logged (SMOLVM_SIM_LOG) and its API writes and
// uncached reads counted.
type benchAgent struct {
	ctx           context.Context
	c             client.Client
	node, dir     string
	sim           string
	calls         string
	writes, reads *atomic.Int64
}

// startBenchAgent starts envtest and an agent with workers workers (0: the
// default), resync period resync (0: the default) and extra simulator
// environment; everything stops when the benchmark ends.
func startBenchAgent(b *testing.B, workers int, resync time.Duration, simEnv ...string) *benchAgent {
	b.Helper()
	log.SetLogger(logr.Discard())
	e, cfg, err := testenv.Start(testenv.Options{})
	if err != nil {
		b.Skip(err.Error())
	}
	b.Cleanup(func() { _ = e.Stop() })
	dir, err := os.MkdirTemp("", "bottle-bench-")
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
	a := &benchAgent{c: c, node: "bench-node", dir: dir, sim: sim, calls: filepath.Join(dir, "smolvm-calls"),
		writes: &atomic.Int64{}, reads: &atomic.Int64{}}
	mgr, err := ctrl.NewManager(cfg, testutil.ManagerOptions(agent.ManagerOptions(testenv.Scheme(), a.node), logr.Discard()))
	if err != nil {
		b.Fatal(err)
	}
	r := &agent.BottleReconciler{
		Client:    countingClient{Client: mgr.GetClient(), writes: a.writes},
		APIReader: countingReader{Reader: mgr.GetAPIReader(), reads: a.reads},
		Machines:  smolvm.New(sim, append(a.simEnv(), simEnv...)...),
		NodeName:  a.node, TempDir: dir,
		MaxConcurrentReconciles: workers,
		ResyncPeriod:            resync,
	}
	if err := r.SetupWithManager(mgr, "bench"); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	a.ctx = ctx
	go func() { _ = mgr.Start(ctx) }()
	return a
}

// simEnv is the simulator environment of the agent (and of calls made by
// hand on its node).
func (a *benchAgent) simEnv() []string {
	return []string{"SMOLVM_DATA_DIR=" + filepath.Join(a.dir, "data"), "SMOLVM_SIM_LOG=" + a.calls}
}

// smolvmCalls counts the smolvm processes started on the node so far.
func (a *benchAgent) smolvmCalls(b *testing.B) int {
	data, err := os.ReadFile(a.calls)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		b.Fatal(err)
	}
	return bytes.Count(data, []byte("\n"))
}

// BenchmarkBottlesToReady measures one agent taking a batch of Bottles (a
// file and N steps each, N = 0, 2, 8) from create to Ready on the
// simulator, with smolvm-like latencies injected (start 300ms, exec 20ms).
// Reported as seconds per batch, Bottles per second, the agent's API writes
// per Bottle from create to Ready (goal: at most 3 + 2 per step), and its
// smolvm processes per Bottle (goal: by hand's 3 + N, plus one).
func BenchmarkBottlesToReady(b *testing.B) {
	const batch = 8
	a := startBenchAgent(b, 0, 0, "SMOLVM_SIM_LATENCY=start=300ms,exec=20ms")
	for _, steps := range []int{0, 2, 8} {
		b.Run(fmt.Sprintf("steps=%d", steps), func(b *testing.B) {
			a.writes.Store(0)
			a.reads.Store(0)
			calls := a.smolvmCalls(b)
			total := bottlesToReady(a.ctx, b, a.c, a.node, batch, steps)
			b.ReportMetric(float64(a.writes.Load())/float64(total), "writes/bottle")
			b.ReportMetric(float64(a.reads.Load())/float64(total), "uncachedreads/bottle")
			b.ReportMetric(float64(a.smolvmCalls(b)-calls)/float64(total), "smolvm/bottle")
		})
	}
}

// bottlesToReady creates batches of Bottles with one file and steps steps
// until b.Loop ends, each time waiting for the batch to be Ready.
func bottlesToReady(ctx context.Context, b *testing.B, c client.Client, node string, batch, steps int) int {
	var provision []v1.ProvisionStep
	for k := range steps {
		provision = append(provision, v1.ProvisionStep{Name: fmt.Sprintf("s%d", k), Script: "cat /home/node/f"})
	}
	total := 0
	for i := 0; b.Loop(); i++ {
		ns := fmt.Sprintf("bench-%d-%d", steps, i)
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			b.Fatal(err)
		}
		for j := range batch {
			bt := &v1.Bottle{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("b%d", j), Namespace: ns},
				Spec: v1.BottleSpec{
					NodeName: node,
					MachineSpec: v1.MachineSpec{
						Image:     "node:22-bookworm",
						Files:     []v1.File{{Path: "/home/node/f", Owner: "node", Inline: ptr.To("x")}},
						Provision: provision,
					},
				},
			}
			if err := c.Create(ctx, bt); err != nil {
				b.Fatal(err)
			}
		}
		waitReady(ctx, b, c, ns, batch)
		total += batch
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "bottles/s")
	return total
}

// waitReady waits until n Bottles of namespace ns are Ready.
func waitReady(ctx context.Context, b *testing.B, c client.Client, ns string, n int) {
	b.Helper()
	deadline := time.Now().Add(10 * time.Minute)
	for {
		var list v1.BottleList
		if err := c.List(ctx, &list, client.InNamespace(ns)); err != nil {
			b.Fatal(err)
		}
		ready := 0
		for _, bt := range list.Items {
			if bt.Status.Phase == v1.PhaseReady {
				ready++
			}
		}
		if ready == n {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d/%d Ready after 10m", ready, n)
		}
		time.Sleep(20 * time.Millisecond) // polling interval of the measurement, not a wait for state
	}
}

// countingReader counts the reconciler's uncached reads.
type countingReader struct {
	client.Reader
	reads *atomic.Int64
}

func (c countingReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	c.reads.Add(1)
	return c.Reader.Get(ctx, key, obj, opts...)
}

// countingClient counts the reconciler's writes to the API server (events
// go through the recorder and are not counted).
type countingClient struct {
	client.Client
	writes *atomic.Int64
}

func (c countingClient) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	c.writes.Add(1)
	return c.Client.Patch(ctx, obj, patch, opts...)
}

func (c countingClient) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	c.writes.Add(1)
	return c.Client.Update(ctx, obj, opts...)
}

func (c countingClient) Apply(ctx context.Context, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
	c.writes.Add(1)
	return c.Client.Apply(ctx, obj, opts...)
}

func (c countingClient) Status() client.SubResourceWriter {
	return countingStatus{SubResourceWriter: c.Client.Status(), writes: c.writes}
}

type countingStatus struct {
	client.SubResourceWriter
	writes *atomic.Int64
}

func (c countingStatus) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	c.writes.Add(1)
	return c.SubResourceWriter.Patch(ctx, obj, patch, opts...)
}

func (c countingStatus) Update(ctx context.Context, obj client.Object, opts ...client.SubResourceUpdateOption) error {
	c.writes.Add(1)
	return c.SubResourceWriter.Update(ctx, obj, opts...)
}

func (c countingStatus) Apply(ctx context.Context, obj runtime.ApplyConfiguration, opts ...client.SubResourceApplyOption) error {
	c.writes.Add(1)
	return c.SubResourceWriter.Apply(ctx, obj, opts...)
}
