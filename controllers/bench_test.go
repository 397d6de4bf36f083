package controllers_test

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
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/controllers"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
	"github.com/bot-bottle/bottle-controller/internal/testenv"
	"github.com/bot-bottle/bottle-controller/internal/testutil"
)

// BenchmarkBottlesToReady measures one agent taking a batch of Bottles (a
// file and two steps each) from create to Ready on the simulator, with
// smolvm-like latencies injected (start 300ms, exec 20ms). Reported as
// seconds per batch and Bottles per second.
func BenchmarkBottlesToReady(b *testing.B) {
	const batch = 8
	log.SetLogger(logr.Discard())
	e, cfg, err := testenv.Start(testenv.Options{})
	if err != nil {
		b.Skip(err.Error())
	}
	defer func() { _ = e.Stop() }()
	dir := b.TempDir()
	sim, err := testutil.Simulator(dir)
	if err != nil {
		b.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		b.Fatal(err)
	}

	const node = "bench-node"
	mgr, err := ctrl.NewManager(cfg, testutil.ManagerOptions(controllers.ManagerOptions(testenv.Scheme(), node), logr.Discard()))
	if err != nil {
		b.Fatal(err)
	}
	r := &controllers.BottleReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(),
		Machines: smolvm.New(sim, "SMOLVM_DATA_DIR="+filepath.Join(dir, "data"), "SMOLVM_SIM_LATENCY=start=300ms,exec=20ms"),
		NodeName: node, TempDir: dir,
	}
	if err := r.SetupWithManager(mgr, "bench"); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = mgr.Start(ctx) }()

	total := 0
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		ns := fmt.Sprintf("bench-%d", i)
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			b.Fatal(err)
		}
		for j := range batch {
			bt := &v1.Bottle{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("b%d", j), Namespace: ns},
				Spec: v1.BottleSpec{
					NodeName: node, Image: "node:22-bookworm",
					Files:     []v1.File{{Path: "/home/node/f", Owner: "node", Inline: ptr.To("x")}},
					Provision: []v1.ProvisionStep{{Name: "a", Script: "cat /home/node/f"}, {Name: "b", Script: "id -un"}},
				},
			}
			if err := c.Create(ctx, bt); err != nil {
				b.Fatal(err)
			}
		}
		deadline := time.Now().Add(5 * time.Minute)
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
			if ready == batch {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%d/%d Ready after 5m", ready, batch)
			}
			time.Sleep(20 * time.Millisecond) // polling interval of the measurement, not a wait for state
		}
		total += batch
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "bottles/s")
	_ = os.RemoveAll(dir)
}
