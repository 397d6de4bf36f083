package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// The template figures (docs/templates.md, docs/benchmarks.md): a
// template whose one step takes stepSeconds, provisioned once into a
// golden with a pool of held slots; templated Bottles from a held slot and
// forked on demand, one at a time and a pool's worth at once; and a plain
// Bottle whose one step is the template's, the baseline.
const benchTemplate = "bench-template"

type templateFigures struct {
	Latency     string
	StepSeconds float64
	Pool        int
	// GoldenSeconds is from creating the template to its node's entry
	// reporting every held slot free.
	GoldenSeconds float64
	Plain         bottleRun
	HeldSlot      []bottleRun
	OnDemand      []bottleRun
	// Batch is a pool's worth of templated Bottles created at once;
	// BatchSeconds from the first create to the last Ready.
	Batch        []bottleRun
	BatchSeconds float64
	// CreateSeconds is how long the batch's create calls took, together.
	CreateSeconds float64
	// BatchCPU is the CPU seconds the environment spent on the batch, in
	// all (not per Bottle); BatchMachineCPU the whole machine's, its own
	// idle rate and anything else running on it included.
	BatchCPU        cpuPerBottle
	BatchMachineCPU float64
	// BatchProcesses counts every smolvm process of the node that began
	// during the batch, by verb (the golden's replenishing included).
	BatchProcesses map[string]int
	// BatchWrites counts the API server's write requests during the
	// batch, by "VERB resource[/subresource]" (every client's).
	BatchWrites map[string]int
	// HeldSlotWriteMillis is the API server's mean time per write request
	// while the held-slot Bottles were made one at a time, by
	// "VERB resource[/subresource]" (every client's), in milliseconds.
	HeldSlotWriteMillis map[string]float64
}

// msByKey lists per-key milliseconds, in key order.
func msByKey(m map[string]float64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %.1f ms", k, m[k])
	}
	return strings.Join(parts, ", ")
}

func benchTemplateObject(step time.Duration, pool int) *v1.BottleTemplate {
	return &v1.BottleTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: benchTemplate, Namespace: benchNamespace},
		Spec: v1.BottleTemplateSpec{
			MachineSpec: v1.MachineSpec{Image: benchImage, ExecUser: benchUser, Provision: templateSteps(step)},
			Pool: v1.TemplatePool{
				NodeSelector: map[string]string{v1.LabelKVMNode: "true"},
				HeldSlots:    int32(pool),
			},
		},
	}
}

// templateSteps is the template's provisioning: one step of the given
// length (a stand-in for `npm install -g @anthropic-ai/claude-code`).
func templateSteps(step time.Duration) []v1.ProvisionStep {
	return []v1.ProvisionStep{{Name: "install", Script: fmt.Sprintf("sleep %.3f", step.Seconds()), TimeoutSeconds: int32(step.Seconds()) + 600}}
}

// templated is a Bottle of the bench template; a machineName makes it a
// fork on demand even with a free held slot.
func templated(name, node, machineName string) *v1.Bottle {
	return &v1.Bottle{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: benchNamespace},
		Spec: v1.BottleSpec{
			NodeName: node, TemplateRef: &v1.TemplateReference{Name: benchTemplate}, MachineName: machineName,
			MachineSpec: v1.MachineSpec{ExecUser: benchUser},
		},
	}
}

// templatePhase measures the template figures on a dev environment of
// their own.
func templatePhase(ctx context.Context, o *options, f *figures) error {
	d, err := startDev(ctx, o, "template", o.templateLatency)
	if err != nil {
		return err
	}
	defer d.stop()
	tf := &templateFigures{Latency: o.templateLatency, StepSeconds: o.templateStep.Seconds(), Pool: o.pool}
	f.Template = tf
	w, err := watchBottles(ctx, d.client)
	if err != nil {
		return err
	}
	defer w.stop()
	// one creates a Bottle and waits for it; the next starts with the
	// pool full again (a quiet machine: no slot being replaced).
	one := func(b *v1.Bottle) (bottleRun, error) {
		if err := waitFreeSlots(ctx, d.client, d.node, o.pool, 5*time.Minute); err != nil {
			return bottleRun{}, err
		}
		time.Sleep(o.singleGap)
		w.created(b.Name, time.Now())
		if err := d.client.Create(ctx, b); err != nil {
			return bottleRun{}, err
		}
		times, err := w.waitReady(ctx, d.client, []string{b.Name}, 5*time.Minute+o.templateStep)
		if err != nil {
			return bottleRun{}, err
		}
		return runOf(d, times[b.Name])
	}

	say("a plain Bottle whose one step is the template's (%s)", o.templateStep)
	plain := benchBottle("plain", d.node)
	plain.Spec.Files, plain.Spec.Provision = nil, templateSteps(o.templateStep)
	w.created(plain.Name, time.Now())
	if err := d.client.Create(ctx, plain); err != nil {
		return err
	}
	times, err := w.waitReady(ctx, d.client, []string{plain.Name}, 5*time.Minute+o.templateStep)
	if err != nil {
		return err
	}
	if tf.Plain, err = runOf(d, times[plain.Name]); err != nil {
		return err
	}

	say("the template's golden on %s, with %d held slots (SMOLVM_SIM_LATENCY=%s)", d.node, o.pool, o.templateLatency)
	start := time.Now()
	if err := d.client.Create(ctx, benchTemplateObject(o.templateStep, o.pool)); err != nil {
		return err
	}
	if err := waitFreeSlots(ctx, d.client, d.node, o.pool, 10*time.Minute+o.templateStep); err != nil {
		return err
	}
	tf.GoldenSeconds = time.Since(start).Seconds()

	say("%d templated Bottles one at a time from a held slot, and %d forked on demand", o.singles, o.singles)
	api0, err := apiRequestCounts(ctx, d.cfg)
	if err != nil {
		return err
	}
	for i := range o.singles {
		r, err := one(templated(fmt.Sprintf("slot-%d", i), d.node, ""))
		if err != nil {
			return err
		}
		tf.HeldSlot = append(tf.HeldSlot, r)
	}
	api1, err := apiRequestCounts(ctx, d.cfg)
	if err != nil {
		return err
	}
	tf.HeldSlotWriteMillis = api1.writeMillis(api0)
	for i := range o.singles {
		name := fmt.Sprintf("fork-%d", i)
		r, err := one(templated(name, d.node, "bench-"+name))
		if err != nil {
			return err
		}
		tf.OnDemand = append(tf.OnDemand, r)
	}

	say("%d templated Bottles at once against a pool of %d", o.pool, o.pool)
	if err := waitFreeSlots(ctx, d.client, d.node, o.pool, 5*time.Minute); err != nil {
		return err
	}
	// At once: one create call each, all in flight together (as a
	// pipeline's parallel jobs would), not one after the other.
	names := make([]string, o.pool)
	errs := make(chan error, o.pool)
	cpu0, busy0 := d.cpu(), machineBusy()
	if api0, err = apiRequestCounts(ctx, d.cfg); err != nil {
		return err
	}
	start = time.Now()
	for i := range o.pool {
		names[i] = fmt.Sprintf("pool-%d", i)
		go func(name string) {
			w.created(name, time.Now())
			errs <- d.client.Create(ctx, templated(name, d.node, ""))
		}(names[i])
	}
	for range o.pool {
		if err := <-errs; err != nil {
			return err
		}
	}
	tf.CreateSeconds = time.Since(start).Seconds()
	if times, err = w.waitReady(ctx, d.client, names, 5*time.Minute); err != nil {
		return err
	}
	used, busy := d.cpu().since(cpu0), machineBusy()-busy0 // busy: everything the machine did meanwhile
	if api1, err = apiRequestCounts(ctx, d.cfg); err != nil {
		return err
	}
	tf.BatchWrites = api1.requests.writesSince(api0.requests)
	var last time.Time
	for _, n := range names {
		t := times[n]
		last = maxTime(last, t.ready)
		r, err := runOf(d, t)
		if err != nil {
			return err
		}
		tf.Batch = append(tf.Batch, r)
	}
	tf.BatchSeconds = last.Sub(start).Seconds()
	tf.BatchCPU = cpuPerBottle{Agent: used.agent, Smolvm: used.smolvm, ControlPlane: used.controlPlane}
	tf.BatchMachineCPU = busy
	invs, err := readInvocations(d.simLog)
	if err != nil {
		return err
	}
	tf.BatchProcesses = map[string]int{}
	for _, inv := range invs {
		if !inv.Start.Before(start) && !inv.Start.After(last) {
			tf.BatchProcesses[inv.Verb()]++
		}
	}
	return nil
}

// runOf is one Bottle's way to Ready with the simulator's own time on its
// machine (for a held slot: the fork-release that hands it out).
func runOf(d *devEnv, t bottleTimes) (bottleRun, error) {
	invs, err := readInvocations(d.simLog)
	if err != nil {
		return bottleRun{}, err
	}
	work := workOf(invs, t.machine, t.created, t.ready)
	return bottleRun{
		Seconds: t.ready.Sub(t.created).Seconds(), AgentSeconds: t.ready.Sub(t.scheduled).Seconds(),
		SmolvmSeconds: work.seconds, Processes: work.processes, ByVerb: work.byVerb,
		Milestones: milestones(t, work),
	}, nil
}

// milestoneOrder names a Bottle's milestones in the order of its usual way
// to Ready.
var milestoneOrder = []string{"Bottle seen", "Pod created", "Pod bound", "finalizer", "Scheduled", "claim", "smolvm begins", "smolvm ends", "Ready"}

// milestones are the seconds from t's create to each milestone seen; the
// smolvm ones are the simulator's own (from its main function to its exit)
// on the Bottle's machine.
func milestones(t bottleTimes, work smolvmWork) map[string]float64 {
	out := map[string]float64{}
	for name, at := range map[string]time.Time{
		"Bottle seen": t.seen, "Pod created": t.podCreated, "Pod bound": t.podBound, "finalizer": t.finalized,
		"Scheduled": t.scheduled, "claim": t.claimed, "smolvm begins": work.begin, "smolvm ends": work.end, "Ready": t.ready,
	} {
		if !at.IsZero() {
			out[name] = at.Sub(t.created).Seconds()
		}
	}
	return out
}

// timeline is the p50 of each milestone over runs, in milestoneOrder.
func timeline(runs []bottleRun) string {
	var parts []string
	for _, m := range milestoneOrder {
		var xs []float64
		for _, r := range runs {
			if x, ok := r.Milestones[m]; ok {
				xs = append(xs, x)
			}
		}
		if len(xs) > 0 {
			parts = append(parts, fmt.Sprintf("%s %s", m, ms(median(xs))))
		}
	}
	return strings.Join(parts, ", ")
}

// waitFreeSlots waits for node's entry of the bench template to be Ready
// at the template's generation with want free held slots.
func waitFreeSlots(ctx context.Context, c client.Client, node string, want int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	last := "no entry yet"
	for time.Now().Before(deadline) {
		t := &v1.BottleTemplate{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: benchNamespace, Name: benchTemplate}, t); err != nil {
			return err
		}
		for _, n := range t.Status.Nodes {
			if n.NodeName != node {
				continue
			}
			if n.TemplateGeneration == t.Generation && n.Phase == v1.PhaseReady && int(n.FreeSlots) >= want {
				return nil
			}
			last = fmt.Sprintf("%s (%s: %s), %d of %d held slots free", n.Phase, n.Reason, n.Message, n.FreeSlots, want)
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("template %s on %s not Ready with %d free held slots after %s: %s", benchTemplate, node, want, timeout, last)
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// templateRows are the template figures of the report.
func (tf *templateFigures) rows() []figure {
	if tf == nil || len(tf.HeldSlot) == 0 {
		return nil
	}
	secs := func(r bottleRun) float64 { return r.Seconds }
	slot, fork := median(pick(tf.HeldSlot, secs)), median(pick(tf.OnDemand, secs))
	out := []figure{
		{fmt.Sprintf("templated Bottle create→Ready (p50 of %d each; SMOLVM_SIM_LATENCY=%s)", len(tf.HeldSlot), tf.Latency),
			fmt.Sprintf("from a held slot %s; forked on demand %s", ms(slot), ms(fork)),
			fmt.Sprintf("a plain Bottle whose one step is the template's (%.0f s): %.1f s", tf.StepSeconds, tf.Plain.Seconds),
			fmt.Sprintf("%.0f× faster from a held slot, %.0f× forked on demand", tf.Plain.Seconds/slot, tf.Plain.Seconds/fork),
			"≥ 50×", ""},
		{"templated Bottle controller overhead (create→Ready − the simulator's own time on its machine), p50",
			fmt.Sprintf("from a held slot %s (%s); forked on demand %s (%s)",
				ms(median(pick(tf.HeldSlot, bottleRun.overhead))), verbs(tf.HeldSlot[0].ByVerb),
				ms(median(pick(tf.OnDemand, bottleRun.overhead))), verbs(tf.OnDemand[0].ByVerb)),
			"", fmt.Sprintf("of which placement (create→Scheduled): %s from a held slot", ms(median(pick(tf.HeldSlot, bottleRun.placement)))),
			"≤ 50 ms p50 from a held slot", ""},
		{"templated Bottle from a held slot, each step as the benchmark's watches saw it, p50 from create",
			timeline(tf.HeldSlot), "", "API server's own time per write over those Bottles (mean, every client's): " + msByKey(tf.HeldSlotWriteMillis), "", ""},
	}
	if len(tf.Batch) > 0 {
		lat := pick(tf.Batch, secs)
		out = append(out, figure{fmt.Sprintf("%d templated Bottles at once against a pool of %d", len(tf.Batch), tf.Pool),
			fmt.Sprintf("%.2f s from the first create to the last Ready (p50 %.2f s, p90 %.2f s each; the %d create calls, in flight together, took %.2f s)", tf.BatchSeconds, median(lat), percentile(lat, 90), len(tf.Batch), tf.CreateSeconds),
			fmt.Sprintf("the golden: %.1f s from the template's create to %d free held slots", tf.GoldenSeconds, tf.Pool),
			fmt.Sprintf("CPU over the batch: agent %.2f s, smolvm %.2f s, control plane and cluster controller %.2f s; the machine %.2f s; smolvm processes %s; API writes %s",
				tf.BatchCPU.Agent, tf.BatchCPU.Smolvm, tf.BatchCPU.ControlPlane, tf.BatchMachineCPU, verbs(tf.BatchProcesses), verbs(tf.BatchWrites)),
			"< 2 s", ""})
	}
	return out
}
