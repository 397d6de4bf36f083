// Command bench-e2e (make bench-e2e) benchmarks the whole system on the dev
// environment (hack/dev-up.sh: kube-apiserver, etcd, kube-scheduler, the
// cluster controller and the agent on the smolvm simulator) and prints each
// figure (docs/benchmarks.md) next to its baseline measured in the same run:
// the same smolvm calls made by hand (the agent's own driver, one call after
// the other, nothing around them) or the smolvm command run directly.
// docs/benchmarks.md describes the method and the figures of a reference
// run.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

type options struct {
	repo, workDir     string
	apiPort, etcdPort int
	quietLatency      string
	batchLatency      string
	singles           int
	singleGap         time.Duration
	batch, handBatch  int
	execRuns          int
	streamMiB         int
	streamRuns        int
	resyncs           int
	resyncPeriod      time.Duration
	jsonOut           string
	plugin            string
	templateLatency   string
	templateStep      time.Duration
	pool              int
	phases            string
}

func main() {
	o := &options{}
	flag.StringVar(&o.workDir, "dir", ".bench-e2e", "Directory for the dev environments, logs and files (removed at the start).")
	flag.IntVar(&o.apiPort, "apiserver-port", 26443, "kube-apiserver port of the dev environments (the agent, scheduler and controllers take the next 108 ports, as in hack/dev-up.sh; keep them below the kernel's ephemeral range, where a client connection can take one).")
	flag.IntVar(&o.etcdPort, "etcd-port", 22379, "etcd client port of the dev environments (and the next one for peers).")
	flag.StringVar(&o.quietLatency, "quiet-latency", "start=300ms,exec=20ms", "SMOLVM_SIM_LATENCY for the single-Bottle and exec figures.")
	flag.StringVar(&o.batchLatency, "batch-latency", "start=2s,exec=200ms", "SMOLVM_SIM_LATENCY for the batch figures (a real VM's boot and guest work).")
	flag.IntVar(&o.singles, "singles", 5, "Bottles made one at a time (and as many by hand).")
	flag.DurationVar(&o.singleGap, "single-gap", 0, "Template phase: how long to wait, once the pool is full again, before the next templated Bottle one at a time (the previous one's aftermath, its events and its slot's replacement, then has passed).")
	flag.IntVar(&o.batch, "batch", 50, "Bottles made at once.")
	flag.IntVar(&o.handBatch, "hand-batch", 50, "Bottles made by hand one after the other, the batch's baseline.")
	flag.IntVar(&o.execRuns, "exec-runs", 20, "kubectl-bottle exec B -- true runs (and as many direct).")
	flag.IntVar(&o.streamMiB, "stream-mib", 1024, "MiB streamed out of the guest per exec stream run.")
	flag.IntVar(&o.streamRuns, "stream-runs", 3, "Exec stream runs (and as many direct).")
	flag.IntVar(&o.resyncs, "resyncs", 3, "Resync periods of the agent measured while the batch's Bottles idle.")
	flag.DurationVar(&o.resyncPeriod, "resync-period", 10*time.Second, "The agent's --resync-period.")
	flag.StringVar(&o.jsonOut, "json", "", "Also write the figures as JSON to this file.")
	flag.StringVar(&o.templateLatency, "template-latency", "start=2s,exec=200ms,fork=73ms", "SMOLVM_SIM_LATENCY for the template figures (fork: smolvm's own clone boot figure).")
	flag.DurationVar(&o.templateStep, "template-step", time.Minute, "How long the template's one step (and the plain Bottle's) takes.")
	flag.IntVar(&o.pool, "pool", 50, "Held slots of the template, and templated Bottles made at once against them.")
	flag.StringVar(&o.phases, "phases", "quiet,batch,template", "Phases to run, comma-separated: quiet (single Bottles, exec), batch (many at once, idle), template.")
	flag.Parse()
	ctrllog.SetLogger(logr.Discard())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := benchmark(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench-e2e:", err)
		os.Exit(1)
	}
}

func say(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench-e2e: "+format+"\n", args...)
}

func benchmark(ctx context.Context, o *options) error {
	var err error
	if o.repo, err = os.Getwd(); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(o.repo, "hack", "dev-up.sh")); err != nil {
		return errors.New("run from the repository's top directory (make bench-e2e)")
	}
	if o.workDir, err = filepath.Abs(o.workDir); err != nil {
		return err
	}
	if err := os.RemoveAll(o.workDir); err != nil {
		return err
	}
	if err := os.MkdirAll(o.workDir, 0o755); err != nil {
		return err
	}
	f := &figures{CPUs: runtime.NumCPU(), LoadStart: loadAverage(), QuietLatency: o.quietLatency, BatchLatency: o.batchLatency}
	phases := map[string]func(context.Context, *options, *figures) error{"quiet": quietPhase, "batch": batchPhase, "template": templatePhase}
	for i, name := range strings.Split(o.phases, ",") {
		run, ok := phases[name]
		if !ok {
			return fmt.Errorf("-phases: unknown phase %q (quiet, batch, template)", name)
		}
		if i > 0 {
			f.LoadMiddle = append(f.LoadMiddle, loadAverage())
		}
		if err := run(ctx, o, f); err != nil {
			return err
		}
	}
	f.LoadEnd = loadAverage()
	if err := f.print(os.Stdout); err != nil {
		return err
	}
	if o.jsonOut != "" {
		data, err := json.MarshalIndent(f, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(o.jsonOut, append(data, '\n'), 0o644)
	}
	return nil
}

// quietPhase: Bottles one at a time against the same work by hand, then
// the exec figures.
func quietPhase(ctx context.Context, o *options, f *figures) error {
	d, err := startDev(ctx, o, "quiet", o.quietLatency)
	if err != nil {
		return err
	}
	defer d.stop()
	o.plugin = filepath.Join(o.repo, "bin", "kubectl-bottle")
	w, err := watchBottles(ctx, d.client)
	if err != nil {
		return err
	}
	defer w.stop()
	handLog := filepath.Join(o.workDir, "by-hand-quiet.jsonl")
	hand, err := newByHand(d, o.workDir, handLog)
	if err != nil {
		return err
	}
	say("%d Bottles one at a time, each followed by the same work by hand", o.singles)
	type handRun struct {
		name       string
		start, end time.Time
		calls      float64
	}
	var names []string
	var hands []handRun
	// The agent's own account of its smolvm calls, per single Bottle.
	agentCalls := map[string]float64{}
	for i := 0; i < o.singles; i++ {
		name := fmt.Sprintf("single-%d", i)
		before, err := d.agentSmolvmSeconds(ctx)
		if err != nil {
			return err
		}
		start := time.Now()
		w.created(name, start)
		if err := d.client.Create(ctx, benchBottle(name, d.node)); err != nil {
			return err
		}
		if _, err := w.waitReady(ctx, d.client, []string{name}, 5*time.Minute); err != nil {
			return err
		}
		after, err := d.agentSmolvmSeconds(ctx)
		if err != nil {
			return err
		}
		agentCalls[name] = after - before
		names = append(names, name)
		handBefore, err := handSmolvmSeconds()
		if err != nil {
			return err
		}
		h := handRun{name: "hand-" + name, start: time.Now()}
		if err := hand.run(ctx, h.name); err != nil {
			return fmt.Errorf("by hand: %w", err)
		}
		h.end = time.Now()
		handAfter, err := handSmolvmSeconds()
		if err != nil {
			return err
		}
		h.calls = handAfter - handBefore
		hands = append(hands, h)
	}
	times, err := w.waitReady(ctx, d.client, names, time.Minute)
	if err != nil {
		return err
	}
	agentInvs, err := readInvocations(d.simLog)
	if err != nil {
		return err
	}
	handInvs, err := readInvocations(handLog)
	if err != nil {
		return err
	}
	for _, n := range names {
		t := times[n]
		work := workOf(agentInvs, t.machine, t.created, t.ready)
		f.Single.Controller = append(f.Single.Controller, bottleRun{
			Seconds: t.ready.Sub(t.created).Seconds(), AgentSeconds: t.ready.Sub(t.scheduled).Seconds(),
			SmolvmSeconds: work.seconds, CallerSmolvmSeconds: agentCalls[n], Processes: work.processes, ByVerb: work.byVerb,
		})
	}
	for _, h := range hands {
		work := workOf(handInvs, h.name, h.start, h.end)
		f.Single.ByHand = append(f.Single.ByHand, bottleRun{
			Seconds: h.end.Sub(h.start).Seconds(), SmolvmSeconds: work.seconds, CallerSmolvmSeconds: h.calls,
			Processes: work.processes, ByVerb: work.byVerb,
		})
	}
	first := times[names[0]]
	f.Single.NodeWide = workOf(agentInvs, "", first.created, times[names[len(names)-1]].ready).processes

	say("kubectl-bottle exec %s -- true, %d times, and the agent's smolvm command directly as often", names[0], o.execRuns)
	viaPlugin, direct, err := d.execOverhead(ctx, o.plugin, names[0], first.machine, o.execRuns)
	if err != nil {
		return err
	}
	f.Exec.PluginMs, f.Exec.DirectMs = millis(viaPlugin), millis(direct)
	say("streaming %d MiB out of the guest, %d times each way", o.streamMiB, o.streamRuns)
	f.Exec.StreamMiB = o.streamMiB
	f.Exec.PluginMBps, f.Exec.DirectMBps, err = d.execStream(ctx, o.plugin, names[0], first.machine, int64(o.streamMiB)<<20, o.streamRuns)
	return err
}

// batchPhase: the same work for many Bottles, by hand one after the other
// and by the controller all at once; then the cost of the Ready Bottles
// idling.
func batchPhase(ctx context.Context, o *options, f *figures) error {
	d, err := startDev(ctx, o, "batch", o.batchLatency)
	if err != nil {
		return err
	}
	defer d.stop()
	handLog := filepath.Join(o.workDir, "by-hand-batch.jsonl")
	hand, err := newByHand(d, o.workDir, handLog)
	if err != nil {
		return err
	}

	idleFor := time.Duration(o.resyncs) * o.resyncPeriod
	say("the environment idling with no Bottle for %s: its own CPU rate, not counted against the Bottles below", idleFor)
	emptyBefore, emptyBusy, emptyStart := d.cpu(), machineBusy(), time.Now()
	if err := sleep(ctx, idleFor); err != nil {
		return err
	}
	ownRate := d.cpu().since(emptyBefore).perSecond(time.Since(emptyStart))
	// The whole machine's rate with the environment idle: its processes
	// and anything else running here.
	machineRate := (machineBusy() - emptyBusy) / time.Since(emptyStart).Seconds()
	busySince := func(busy0 float64, start time.Time) float64 {
		return max(machineBusy()-busy0-machineRate*time.Since(start).Seconds(), 0)
	}

	say("%d Bottles by hand, one after the other", o.handBatch)
	var handNames []string
	cpu0, busy0, start := childrenCPU(), machineBusy(), time.Now()
	for i := 0; i < o.handBatch; i++ {
		name := fmt.Sprintf("hand-batch-%d", i)
		if err := hand.run(ctx, name); err != nil {
			return fmt.Errorf("by hand: %w", err)
		}
		handNames = append(handNames, name)
		f.Batch.ByHandDone = append(f.Batch.ByHandDone, time.Since(start).Seconds())
	}
	f.Batch.ByHandSeconds = time.Since(start).Seconds()
	f.Batch.ByHandCPU = (childrenCPU() - cpu0) / float64(o.handBatch)
	f.Batch.ByHandMachineCPU = busySince(busy0, start) / float64(o.handBatch)
	hand.remove(ctx, handNames)

	say("%d Bottles at once", o.batch)
	w, err := watchBottles(ctx, d.client)
	if err != nil {
		return err
	}
	defer w.stop()
	var names []string
	before, busy0 := d.cpu(), machineBusy()
	start = time.Now()
	for i := 0; i < o.batch; i++ {
		name := fmt.Sprintf("batch-%d", i)
		w.created(name, time.Now())
		if err := d.client.Create(ctx, benchBottle(name, d.node)); err != nil {
			return err
		}
		names = append(names, name)
	}
	times, err := w.waitReady(ctx, d.client, names, 15*time.Minute)
	if err != nil {
		return err
	}
	used := d.cpu().since(before).beyond(ownRate, time.Since(start))
	f.Batch.MachineCPU = busySince(busy0, start) / float64(o.batch)
	var last time.Time
	invs, err := readInvocations(d.simLog)
	if err != nil {
		return err
	}
	for _, n := range names {
		t := times[n]
		if t.ready.After(last) {
			last = t.ready
		}
		work := workOf(invs, t.machine, t.created, t.ready)
		f.Batch.Controller = append(f.Batch.Controller, bottleRun{
			Seconds: t.ready.Sub(t.created).Seconds(), AgentSeconds: t.ready.Sub(t.scheduled).Seconds(),
			SmolvmSeconds: work.seconds, Processes: work.processes, ByVerb: work.byVerb,
		})
	}
	f.Batch.ControllerSeconds = last.Sub(start).Seconds()
	n := float64(o.batch)
	f.Batch.CPU = cpuPerBottle{Agent: used.agent / n, Smolvm: used.smolvm / n, ControlPlane: used.controlPlane / n}

	say("%d Ready Bottles idling for %d resync periods of %s", o.batch, o.resyncs, o.resyncPeriod)
	// Let the last status writes and their watch events settle.
	if err := sleep(ctx, 2*time.Second); err != nil {
		return err
	}
	idleBefore, idleStart := d.cpu(), time.Now()
	if err := sleep(ctx, idleFor); err != nil {
		return err
	}
	idleEnd := time.Now()
	idle := d.cpu().since(idleBefore).beyond(ownRate, idleEnd.Sub(idleStart))
	if invs, err = readInvocations(d.simLog); err != nil {
		return err
	}
	var idleWork smolvmWork
	for _, inv := range invs {
		if !inv.Start.Before(idleStart) && !inv.Start.After(idleEnd) {
			idleWork.add(inv)
		}
	}
	periods := idleEnd.Sub(idleStart).Seconds() / o.resyncPeriod.Seconds()
	f.Idle = idleFigures{
		Bottles: o.batch, Periods: periods,
		CPUPerResync:       cpuPerBottle{Agent: idle.agent / periods, Smolvm: idle.smolvm / periods, ControlPlane: idle.controlPlane / periods},
		ProcessesPerResync: float64(idleWork.processes) / periods,
		ByVerb:             idleWork.byVerb,
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func millis(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = float64(d.Microseconds()) / 1e3
	}
	return out
}
