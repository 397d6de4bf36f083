package agent

import (
	"fmt"
	"sort"
	"time"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// Pure decisions about BottleRuns; table tests in decide_run_test.go.

type runAction int

const (
	// runWait: not now (the Bottle is not Ready, another run is ahead).
	runWait runAction = iota
	// runStart: record the start, then run.
	runStart
	// runLost: started by an agent that did not record the end.
	runLost
	// runForbidden: concurrencyPolicy Forbid and another run is active.
	runForbidden
	// runFinished: nothing to run; only the TTL is left.
	runFinished
	// runWake: the Bottle was stopped for idleness: wake it, then wait.
	runWake
)

// runPlan is decideRun's verdict.
type runPlan struct {
	Action runAction
	// Why says it in words (the Pending or Failed message).
	Why string
}

// decideRun says what the agent does with a run of one of its Bottles.
// active is the run this agent is running in the Bottle ("" for none),
// mine whether that is this very run; queue is the Bottle's runs not yet
// started, oldest first.
func decideRun(run *v1.BottleRun, b *v1.Bottle, active string, mine bool, queue []string) runPlan {
	switch {
	case run.Finished():
		return runPlan{Action: runFinished}
	case run.Status.StartedAt != nil && !mine:
		// The ledger says started and this agent is not running it: the
		// agent that started it stopped before recording the end. It may
		// have run to completion, or not at all: never run it again.
		return runPlan{Action: runLost, Why: "the run was started and its agent stopped before recording how it ended; " +
			"it is never started again by itself: create a new BottleRun to run it again"}
	case run.Status.StartedAt != nil:
		return runPlan{Action: runWait, Why: "running"}
	case !b.DeletionTimestamp.IsZero():
		return runPlan{Action: runWait, Why: fmt.Sprintf("Bottle %q is being deleted", b.Name)}
	case idleStopped(b):
		return runPlan{Action: runWake, Why: fmt.Sprintf("starting Bottle %q, stopped for idleness", b.Name)}
	case b.Spec.RunState == v1.RunStateStopped:
		return runPlan{Action: runWait, Why: fmt.Sprintf("Bottle %q has runState Stopped", b.Name)}
	case b.Status.Phase != v1.PhaseReady:
		return runPlan{Action: runWait, Why: fmt.Sprintf("waiting for Bottle %q to be Ready (phase %s)", b.Name, phaseOr(b.Status.Phase))}
	case active != "":
		if run.Spec.ConcurrencyPolicy == v1.ConcurrencyForbid {
			return runPlan{Action: runForbidden, Why: fmt.Sprintf("run %q is active in Bottle %q and concurrencyPolicy is Forbid", active, b.Name)}
		}
		return runPlan{Action: runWait, Why: fmt.Sprintf("queued behind run %q in Bottle %q", active, b.Name)}
	case run.Spec.ConcurrencyPolicy != v1.ConcurrencyForbid && len(queue) > 0 && queue[0] != run.Name:
		return runPlan{Action: runWait, Why: fmt.Sprintf("queued behind run %q in Bottle %q", queue[0], b.Name)}
	}
	return runPlan{Action: runStart}
}

func phaseOr(p v1.Phase) string {
	if p == "" {
		return "none yet"
	}
	return string(p)
}

// runQueue is the names of runs not started yet, oldest first (creation
// time, then name): Queue runs start in that order.
func runQueue(runs []v1.BottleRun) []string {
	var q []v1.BottleRun
	for _, r := range runs {
		if r.Status.StartedAt == nil && !r.Finished() && r.DeletionTimestamp.IsZero() &&
			r.Spec.ConcurrencyPolicy != v1.ConcurrencyForbid {
			q = append(q, r)
		}
	}
	sort.Slice(q, func(i, j int) bool {
		a, b := q[i].CreationTimestamp, q[j].CreationTimestamp
		if !a.Equal(&b) {
			return a.Before(&b)
		}
		return q[i].Name < q[j].Name
	})
	names := make([]string, len(q))
	for i, r := range q {
		names[i] = r.Name
	}
	return names
}

// ttlLeft is how long a finished run has left before it is deleted; ok is
// false when it has no TTL.
func ttlLeft(run *v1.BottleRun, now time.Time) (left time.Duration, ok bool) {
	if run.Spec.TTLSecondsAfterFinished == nil || run.Status.FinishedAt == nil {
		return 0, false
	}
	end := run.Status.FinishedAt.Add(time.Duration(*run.Spec.TTLSecondsAfterFinished) * time.Second)
	return max(end.Sub(now), 0), true
}

// runEnv is the Bottle's env with the run's on top (a name set in the run
// wins), in the Bottle's order then the run's new names.
func runEnv(bottle, run []v1.EnvVar) []v1.EnvVar {
	over := make(map[string]v1.EnvVar, len(run))
	for _, e := range run {
		over[e.Name] = e
	}
	out := make([]v1.EnvVar, 0, len(bottle)+len(run))
	seen := map[string]bool{}
	for _, e := range bottle {
		if o, ok := over[e.Name]; ok {
			e = o
		}
		out = append(out, e)
		seen[e.Name] = true
	}
	for _, e := range run {
		if !seen[e.Name] {
			out = append(out, e)
		}
	}
	return out
}

// runUser is the user a run runs as.
func runUser(run *v1.BottleRun, b *v1.Bottle) string {
	if run.Spec.User != "" {
		return run.Spec.User
	}
	return b.ExecUser()
}

// idleStopped says whether the agent stopped the Bottle for idleness.
func idleStopped(b *v1.Bottle) bool {
	return b.Status.Lifecycle != nil && b.Status.Lifecycle.IdleStoppedAt != nil
}
