package agent_test

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// BenchmarkIdleResync measures what Ready Bottles cost while nothing
// changes: smolvm processes per resync of the node, uncached API reads per
// resync, and CPU per resync (the agent's own plus the smolvm processes it
// waited for), with BENCH_IDLE_BOTTLES Ready Bottles (default 100) resynced
// every 5 s (long enough for an agent that asks smolvm once per Bottle to
// keep up). %core-500@1m extrapolates the CPU to 500 Bottles resynced
// every minute (the default period): the goal is at most 2.7 %.
func BenchmarkIdleResync(b *testing.B) {
	n := 100
	if v, err := strconv.Atoi(os.Getenv("BENCH_IDLE_BOTTLES")); err == nil && v > 0 {
		n = v
	}
	const period = 5 * time.Second
	a := startBenchAgent(b, 0, period)
	ns := "idle"
	if err := a.c.Create(a.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		b.Fatal(err)
	}
	for i := range n {
		bt := &v1.Bottle{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("b%d", i), Namespace: ns},
			Spec:       v1.BottleSpec{NodeName: a.node, MachineSpec: v1.MachineSpec{Image: "node:22-bookworm"}},
		}
		if err := a.c.Create(a.ctx, bt); err != nil {
			b.Fatal(err)
		}
	}
	waitReady(a.ctx, b, a.c, ns, n)
	// Let the passes that follow the last status writes settle.
	time.Sleep(2 * period) // an idle interval, not a wait for state

	calls, reads, cpu := a.smolvmCalls(b), a.reads.Load(), cpuTime(b)
	start := time.Now()
	for b.Loop() {
		time.Sleep(3 * period) // the measured idle interval
	}
	resyncs := time.Since(start).Seconds() / period.Seconds()
	perResync := (cpuTime(b) - cpu).Seconds() / resyncs
	b.ReportMetric(float64(a.smolvmCalls(b)-calls)/resyncs, "smolvm/resync")
	b.ReportMetric(float64(a.reads.Load()-reads)/resyncs, "uncachedreads/resync")
	b.ReportMetric(perResync*1000, "cpu-ms/resync")
	b.ReportMetric(perResync*1000/float64(n), "cpu-ms/bottle-resync")
	b.ReportMetric(perResync/float64(n)*500/60*100, "%core-500@1m")
}

// cpuTime is the CPU this process and its waited-for children (smolvm and
// the sandboxes it ran) used so far.
func cpuTime(b *testing.B) time.Duration {
	var self, children syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &self); err != nil {
		b.Fatal(err)
	}
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children); err != nil {
		b.Fatal(err)
	}
	tv := func(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }
	return tv(self.Utime) + tv(self.Stime) + tv(children.Utime) + tv(children.Stime)
}
