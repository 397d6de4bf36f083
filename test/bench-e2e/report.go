package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
)

// figures is everything one run measured (-json writes it).
type figures struct {
	CPUs               int
	LoadStart, LoadEnd string
	// LoadMiddle is the load average between phases.
	LoadMiddle                 []string
	QuietLatency, BatchLatency string
	Single                     singleFigures
	Batch                      batchFigures
	Idle                       idleFigures
	Exec                       execFigures
	Template                   *templateFigures `json:",omitempty"`
}

// bottleRun is one Bottle's way to Ready: by the controller (from create
// to Ready as the benchmark's watch saw them; AgentSeconds from Scheduled)
// or by hand (the calls' own time).
type bottleRun struct {
	Seconds, AgentSeconds float64 `json:",omitempty"`
	// SmolvmSeconds is the simulator's own time (from its main function to
	// its exit), CallerSmolvmSeconds the calls' as their caller saw them
	// (the process's start and exit included; singles only).
	SmolvmSeconds       float64
	CallerSmolvmSeconds float64 `json:",omitempty"`
	Processes           int
	ByVerb              map[string]int
	// Milestones are the seconds from create to each step the benchmark
	// saw (milestoneOrder), for the steps it saw.
	Milestones map[string]float64 `json:",omitempty"`
}

// overhead is the time not spent in the simulator's own code.
func (r bottleRun) overhead() float64 { return r.Seconds - r.SmolvmSeconds }

// callerOverhead is the time not spent in smolvm calls: what a person
// timing each command would call the controller's own.
func (r bottleRun) callerOverhead() float64 { return r.Seconds - r.CallerSmolvmSeconds }

// placement is the time from create to Scheduled.
func (r bottleRun) placement() float64 { return r.Seconds - r.AgentSeconds }

type singleFigures struct {
	Controller, ByHand []bottleRun
	// NodeWide counts the agent's smolvm processes that name no machine
	// (ls, --version) while the single Bottles were made.
	NodeWide int
}

type batchFigures struct {
	Controller        []bottleRun
	ControllerSeconds float64
	ByHandSeconds     float64
	// ByHandDone is when each Bottle made by hand was done, from the start.
	ByHandDone []float64
	CPU        cpuPerBottle
	ByHandCPU  float64
	// MachineCPU and ByHandMachineCPU are the whole machine's busy CPU
	// seconds per Bottle during each (see machineBusy), beyond the rate
	// measured while the environment idled.
	MachineCPU, ByHandMachineCPU float64
}

type cpuPerBottle struct{ Agent, Smolvm, ControlPlane float64 }

func (c cpuPerBottle) total() float64 { return c.Agent + c.Smolvm + c.ControlPlane }

type idleFigures struct {
	Bottles            int
	Periods            float64
	CPUPerResync       cpuPerBottle
	ProcessesPerResync float64
	ByVerb             map[string]int
}

type execFigures struct {
	PluginMs, DirectMs     []float64
	StreamMiB              int
	PluginMBps, DirectMBps []float64
}

func median(xs []float64) float64 { return percentile(xs, 50) }

func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	i := int(float64(len(s)-1)*p/100 + 0.5)
	return s[i]
}

func pick(runs []bottleRun, f func(bottleRun) float64) []float64 {
	out := make([]float64, len(runs))
	for i, r := range runs {
		out[i] = f(r)
	}
	return out
}

// verbs renders a process count per verb: "status×4 create exec×4".
func verbs(byVerb map[string]int) string {
	var parts []string
	for _, v := range slices.Sorted(maps.Keys(byVerb)) {
		if n := byVerb[v]; n > 1 {
			parts = append(parts, fmt.Sprintf("%s×%d", v, n))
		} else {
			parts = append(parts, v)
		}
	}
	return strings.Join(parts, " ")
}

func ms(s float64) string { return fmt.Sprintf("%.1f ms", s*1e3) }

// figure is one block of the report: the controller's number, its
// baseline from the same run, how they compare, and the goal set for it.
type figure struct{ name, controller, baseline, comparison, goal, who string }

// print writes the report to w in one write.
func (f *figures) print(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "\nbench-e2e: %d CPUs; load average %s at the start, %s between the phases, %s at the end\n",
		f.CPUs, f.LoadStart, strings.Join(f.LoadMiddle, "; "), f.LoadEnd)
	fmt.Fprintf(&b, "single Bottles and exec: SMOLVM_SIM_LATENCY=%s; batch and idle: %s\n", f.QuietLatency, f.BatchLatency)
	for _, fig := range f.rows() {
		fmt.Fprintf(&b, "\n%s\n", fig.name)
		tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		who := fig.who
		if who == "" {
			who = "controller"
		}
		for _, kv := range [][2]string{{who, fig.controller}, {"baseline", fig.baseline}, {"comparison", fig.comparison}, {"goal", fig.goal}} {
			if kv[1] != "" {
				_, _ = fmt.Fprintf(tw, "  %s\t%s\n", kv[0], kv[1])
			}
		}
		_ = tw.Flush()
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func (f *figures) rows() []figure {
	var out []figure
	sc, sh, b, cpus := f.Single.Controller, f.Single.ByHand, f.Batch, max(f.CPUs, 1)
	if len(sc) > 0 && len(sh) > 0 {
		procs := median(pick(sc, func(r bottleRun) float64 { return float64(r.Processes) }))
		handProcs := median(pick(sh, func(r bottleRun) float64 { return float64(r.Processes) }))
		out = append(out, figure{"smolvm processes per Bottle to Ready",
			fmt.Sprintf("%.0f (%s), plus %d node-wide (ls, version) while %d Bottles were made", procs, verbs(sc[0].ByVerb), f.Single.NodeWide, len(sc)),
			fmt.Sprintf("by hand: %.0f (%s)", handProcs, verbs(sh[0].ByVerb)),
			fmt.Sprintf("%+.0f", procs-handProcs), "at most by hand + 1", ""})
		ctl, agent, hand := median(pick(sc, func(r bottleRun) float64 { return r.Seconds })),
			median(pick(sc, func(r bottleRun) float64 { return r.AgentSeconds })),
			median(pick(sh, func(r bottleRun) float64 { return r.Seconds }))
		out = append(out, figure{fmt.Sprintf("one Bottle, controller ÷ by hand (p50 of %d each)", len(sc)),
			fmt.Sprintf("create→Ready %s (the agent's part, Scheduled→Ready: %s)", ms(ctl), ms(agent)),
			"by hand: " + ms(hand),
			fmt.Sprintf("%.2f× (the agent's part: %.2f×)", ctl/hand, agent/hand), "≤ 1.10×", ""})
	}
	if len(b.Controller) > 0 && len(b.ByHandDone) > 0 {
		perHand := b.ByHandSeconds / float64(len(b.ByHandDone))
		out = append(out, figure{fmt.Sprintf("%d Bottles at once, by hand ÷ controller", len(b.Controller)),
			fmt.Sprintf("%.1f s from the first create to the last Ready", b.ControllerSeconds),
			fmt.Sprintf("by hand, one after the other: %.1f s for %d, %.2f s each", b.ByHandSeconds, len(b.ByHandDone), perHand),
			fmt.Sprintf("%.1f× (by hand for %d: %.1f s)", perHand*float64(len(b.Controller))/b.ControllerSeconds, len(b.Controller), perHand*float64(len(b.Controller))),
			"≥ 10×", ""})
		out = append(out, figure{"CPU per Bottle (the batch)",
			fmt.Sprintf("%.3f CPU-s: agent %.3f, smolvm and guest %.3f, control plane %.3f (beyond its idle rate)", b.CPU.total(), b.CPU.Agent, b.CPU.Smolvm, b.CPU.ControlPlane),
			fmt.Sprintf("by hand: %.3f CPU-s", b.ByHandCPU),
			fmt.Sprintf("%.2f×", b.CPU.total()/b.ByHandCPU), "", ""})
		if b.MachineCPU > 0 {
			n := float64(len(b.Controller))
			out = append(out, figure{"whole machine busy per Bottle (the batch)",
				fmt.Sprintf("%.3f CPU-s beyond the idle rate, so %d Bottles need %.1f s of %d CPUs at the least", b.MachineCPU, len(b.Controller), b.MachineCPU*n/float64(cpus), cpus),
				fmt.Sprintf("by hand: %.3f CPU-s", b.ByHandMachineCPU),
				fmt.Sprintf("the batch took %.1f× that floor", b.ControllerSeconds/(b.MachineCPU*n/float64(cpus))), "", ""})
		}
		lat := pick(b.Controller, func(r bottleRun) float64 { return r.Seconds })
		out = append(out, figure{"latency inside the batch (create→Ready)",
			fmt.Sprintf("p50 %.1f s, p90 %.1f s, of a %.1f s batch", median(lat), percentile(lat, 90), b.ControllerSeconds),
			fmt.Sprintf("by hand: the median Bottle is done after %.1f s of %.1f s", median(b.ByHandDone), b.ByHandSeconds), "", "", ""})
	}
	if len(sc) > 0 && len(sh) > 0 {
		loaded := "-"
		if len(b.Controller) > 0 {
			loaded = ms(median(pick(b.Controller, bottleRun.overhead)))
		}
		out = append(out, figure{"controller overhead per Bottle (create→Ready − smolvm time), p50",
			fmt.Sprintf("%s one at a time, of which placement (create→Scheduled) %s; against the simulator's own times (process starts and exits count as overhead): %s one at a time, %s in the batch",
				ms(median(pick(sc, bottleRun.callerOverhead))), ms(median(pick(sc, bottleRun.placement))), ms(median(pick(sc, bottleRun.overhead))), loaded),
			fmt.Sprintf("by hand: %s; against the simulator's own times: %s", ms(median(pick(sh, bottleRun.callerOverhead))), ms(median(pick(sh, bottleRun.overhead)))),
			"", "≤ 25 ms p50", ""})
	}
	if i := f.Idle; i.Bottles > 0 {
		c := i.CPUPerResync
		out = append(out, figure{fmt.Sprintf("idle cost of %d Ready Bottles, per resync", i.Bottles),
			fmt.Sprintf("%.1f ms CPU, %.2f ms per Bottle (agent %.1f, smolvm %.1f, control plane %.1f, beyond their idle rates); %.1f smolvm processes (%s in %.1f periods)",
				c.total()*1e3, c.total()*1e3/float64(i.Bottles), c.Agent*1e3, c.Smolvm*1e3, c.ControlPlane*1e3, i.ProcessesPerResync, verbs(i.ByVerb), i.Periods),
			"", "", "one smolvm process per node per resync", ""})
	}
	out = append(out, f.Template.rows()...)
	e := f.Exec
	if len(e.PluginMs) > 0 {
		p, d := median(e.PluginMs), median(e.DirectMs)
		out = append(out, figure{fmt.Sprintf("kubectl-bottle exec B -- true (p50 of %d each)", len(e.PluginMs)),
			fmt.Sprintf("%.1f ms", p), fmt.Sprintf("the agent's smolvm exec argv, run directly: %.1f ms", d),
			fmt.Sprintf("overhead %.1f ms", p-d), "overhead ≤ 60 ms (kubectl's plugin dispatch not counted)", "kubectl-bottle"})
	}
	if len(e.PluginMBps) > 0 {
		p, d := median(e.PluginMBps), median(e.DirectMBps)
		out = append(out, figure{fmt.Sprintf("exec stream through the API server, %d MiB (median of %d each)", e.StreamMiB, len(e.PluginMBps)),
			fmt.Sprintf("%.0f MB/s", p), fmt.Sprintf("the agent's smolvm exec argv, run directly: %.0f MB/s", d),
			fmt.Sprintf("%.2f of direct", p/d), "≥ 300 MB/s", "kubectl-bottle"})
	}
	return out
}
