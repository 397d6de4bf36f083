package agent_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

// batchLatency stands for a real VM boot and real guest work.
const batchLatency = "SMOLVM_SIM_LATENCY=start=2s,exec=200ms"

// BenchmarkBatchVsByHand takes 50 Bottles (one file, two steps) to Ready
// with the agent's default worker count, and makes the same smolvm calls by
// hand, one after the other (create, start, cp, exec, exec per machine),
// in the same run and with the same latencies (start 2s, exec 200ms).
// byhand-s ÷ agent-s is the speed-up (goal: at least 10x). The CPU per
// Bottle (this process and the smolvm processes it waited for) says how far
// the simulator's own cost bounds the agent on a small host: all of it is
// spent in parallel, by hand's is spread over minutes. BENCH_WORKERS sets
// another worker count, to compare.
func BenchmarkBatchVsByHand(b *testing.B) {
	const n = 50
	workers, _ := strconv.Atoi(os.Getenv("BENCH_WORKERS"))
	a := startBenchAgent(b, workers, 0, batchLatency)
	cli := smolvm.New(a.sim, append(a.simEnv(), batchLatency)...)
	host := filepath.Join(a.dir, "f")
	if err := os.WriteFile(host, []byte("x"), 0o600); err != nil {
		b.Fatal(err)
	}
	steps := []v1.ProvisionStep{{Name: "one", Script: "id -un"}, {Name: "two", Script: "cat /home/node/f"}}

	var agent, byHand, agentCPU, byHandCPU time.Duration
	for i := 0; b.Loop(); i++ {
		ns := fmt.Sprintf("batch-%d", i)
		if err := a.c.Create(a.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			b.Fatal(err)
		}
		start, cpu := time.Now(), cpuTime(b)
		for j := range n {
			bt := &v1.Bottle{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("b%d", j), Namespace: ns},
				Spec: v1.BottleSpec{
					NodeName: a.node,
					MachineSpec: v1.MachineSpec{
						Image:     "node:22-bookworm",
						Files:     []v1.File{{Path: "/home/node/f", Owner: "node", Inline: ptr.To("x")}},
						Provision: steps,
					},
				},
			}
			if err := a.c.Create(a.ctx, bt); err != nil {
				b.Fatal(err)
			}
		}
		waitReady(a.ctx, b, a.c, ns, n)
		agent += time.Since(start)
		agentCPU += cpuTime(b) - cpu

		start, cpu = time.Now(), cpuTime(b)
		for j := range n {
			byHandBottle(a.ctx, b, cli, fmt.Sprintf("hand-%d-%d", i, j), host, steps)
		}
		byHand += time.Since(start)
		byHandCPU += cpuTime(b) - cpu
	}
	b.ReportMetric(agent.Seconds()/float64(b.N), "agent-s")
	b.ReportMetric(byHand.Seconds()/float64(b.N), "byhand-s")
	b.ReportMetric(byHand.Seconds()/agent.Seconds(), "speedup-x")
	b.ReportMetric(agentCPU.Seconds()/float64(b.N*n), "agent-cpu-s/bottle")
	b.ReportMetric(byHandCPU.Seconds()/float64(b.N*n), "byhand-cpu-s/bottle")
}

// byHandBottle makes a Bottle's smolvm calls as a person would: create,
// start, copy the file, run each step as node.
func byHandBottle(ctx context.Context, b *testing.B, cli *smolvm.CLI, name, host string, steps []v1.ProvisionStep) {
	b.Helper()
	if err := cli.Create(ctx, smolvm.MachineSpec{Name: name, Image: "node:22-bookworm"}); err != nil {
		b.Fatal(err)
	}
	if err := cli.Start(ctx, name); err != nil {
		b.Fatal(err)
	}
	if err := cli.CopyIn(ctx, name, host, "/home/node/f", 0o644, 1000, 1000); err != nil {
		b.Fatal(err)
	}
	for _, s := range steps {
		res, err := cli.Exec(ctx, smolvm.ExecRequest{Machine: name, User: "node", Script: s.Script, Timeout: time.Minute})
		if err != nil || res.ExitCode != 0 {
			b.Fatalf("step %s on %s: %v, exit %d", s.Name, name, err, res.ExitCode)
		}
	}
}
