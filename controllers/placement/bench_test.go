package placement_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	"k8s.io/apimachinery/pkg/api/meta"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/testenv"
)

// BenchmarkPlace200Bottles applies 200 Bottles without nodeName across 5
// Nodes with live agents and waits until every one is Scheduled, through
// the real kube-scheduler. It reports the wall time and the cluster
// controller's share: the time spent inside its reconciles (API calls
// included, the scheduler's work not), per Bottle. Goal: under 10 ms.
func BenchmarkPlace200Bottles(b *testing.B) {
	const bottles, nodes = 200, 5
	RegisterTestingT(b)
	log.SetLogger(ctrl.Log.WithName("bench")) // silence "SetLogger never called"
	var cancelAll context.CancelFunc
	ctx, cancelAll = context.WithCancel(context.Background())
	defer cancelAll()
	e, c, err := testenv.Start(testenv.Options{})
	if testenv.Skippable(err) {
		b.Skip(err.Error())
	}
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = e.Stop() }()
	env, cfg = e, c
	k8sClient, err = client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	Expect(err).NotTo(HaveOccurred())
	Expect(k8sClient.Create(ctx, nsObj(agentNamespace))).To(Succeed())
	s, err := testenv.StartScheduler(env, b.TempDir())
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = s.Stop() }()
	startClusterControllerQuiet()
	for i := range nodes {
		name := fmt.Sprintf("bench-%d", i)
		_, err := testenv.CreateNode(ctx, k8sClient, name, 256, "1Ti", kvm)
		Expect(err).NotTo(HaveOccurred())
		defer beat(name).kill()
	}

	b.ResetTimer()
	var wall, share time.Duration
	for range b.N {
		ns := nsObj("")
		ns.GenerateName = "bench-"
		Expect(k8sClient.Create(ctx, ns)).To(Succeed())
		before := reconcileSeconds("placement")
		start := time.Now()
		for i := range bottles {
			Expect(k8sClient.Create(ctx, newBottle(ns.Name, fmt.Sprintf("b%03d", i), 1, 1024, ""))).To(Succeed())
		}
		Eventually(func() int {
			var list v1.BottleList
			Expect(k8sClient.List(ctx, &list, client.InNamespace(ns.Name))).To(Succeed())
			n := 0
			for i := range list.Items {
				if meta.IsStatusConditionTrue(list.Items[i].Status.Conditions, v1.ConditionScheduled) {
					n++
				}
			}
			return n
		}).WithTimeout(5 * time.Minute).WithPolling(50 * time.Millisecond).Should(Equal(bottles))
		wall += time.Since(start)
		share += time.Duration((reconcileSeconds("placement") - before) * float64(time.Second))
		b.StopTimer()
		Expect(k8sClient.Delete(ctx, ns)).To(Succeed())
		b.StartTimer()
	}
	b.ReportMetric(wall.Seconds()/float64(b.N), "s-until-all-scheduled")
	b.ReportMetric(float64(share.Milliseconds())/float64(b.N*bottles), "controller-ms/bottle")
}

// reconcileSeconds is the total time controller-runtime measured inside
// the named controller's Reconcile calls.
func reconcileSeconds(controller string) float64 {
	families, err := ctrlmetrics.Registry.Gather()
	Expect(err).NotTo(HaveOccurred())
	for _, f := range families {
		if f.GetName() != "controller_runtime_reconcile_time_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			if label(m, "controller") == controller {
				return m.GetHistogram().GetSampleSum()
			}
		}
	}
	return 0
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
