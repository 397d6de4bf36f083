package smolvm

import (
	"strings"
	"testing"
	"time"
)

// The driver's fork verbs against the simulator: a golden, an on-demand
// clone, held slots handed out once, the golden frozen until its clones
// are gone, and cascade.
func TestForkAgainstSimulator(t *testing.T) {
	c := newSim(t)
	ctx := testContext(t)
	const golden = "tmpl-golden"
	if err := c.Create(ctx, MachineSpec{Name: golden, Image: "node:22", Labels: map[string]string{"template": "t1"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.StartForkable(ctx, golden); err != nil {
		t.Fatal(err)
	}
	if m, err := c.Status(ctx, golden); err != nil || m.State != StateRunning || !m.Forkable {
		t.Fatalf("golden started forkable: %+v %v", m, err)
	}
	mustExec(t, c, ExecRequest{Machine: golden, User: "node", Script: `echo tools > ~/installed`})
	// The golden's workload marks its forkpoint: held slots need it.
	if res, err := c.Exec(ctx, ExecRequest{Machine: golden, Argv: []string{"smolvm-fork-ready"}, Timeout: time.Second}); !IsTimeout(err) ||
		!strings.Contains(res.Stdout, "forkpoint ready") {
		t.Fatalf("smolvm-fork-ready: %+v %v", res, err)
	}

	if err := c.Fork(ctx, ForkRequest{Golden: golden, Count: 2, NamePrefix: "slot", Hold: true}); err != nil {
		t.Fatal(err)
	}
	if err := c.Fork(ctx, ForkRequest{Golden: golden, Name: "bottle-a", Env: []EnvVar{{"BOTTLE", "a"}}}); err != nil {
		t.Fatal(err)
	}
	ms, err := c.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Machine{}
	for _, m := range ms {
		byName[m.Name] = m
	}
	if g := byName[golden]; g.State != StateFrozen {
		t.Fatalf("golden after fork: %+v", g)
	}
	for _, n := range []string{"slot-0", "slot-1"} {
		if s := byName[n]; s.State != StateRunning || !s.ForkpointHeld || s.Forkable || s.Labels["template"] != "t1" {
			t.Fatalf("held slot %s: %+v", n, s)
		}
	}
	if a := byName["bottle-a"]; a.State != StateRunning || a.ForkpointHeld {
		t.Fatalf("on-demand clone: %+v", a)
	}
	res := mustExec(t, c, ExecRequest{Machine: "bottle-a", Script: `cat /home/node/installed; echo "$BOTTLE"`})
	if res.Stdout != "tools\na\n" {
		t.Fatalf("clone: %+v", res)
	}

	if err := c.ForkRelease(ctx, "slot-0", []EnvVar{{"BOTTLE", "b"}}); err != nil {
		t.Fatal(err)
	}
	if m, err := c.Status(ctx, "slot-0"); err != nil || m.ForkpointHeld {
		t.Fatalf("released slot: %+v %v", m, err)
	}
	res = mustExec(t, c, ExecRequest{Machine: "slot-0", Script: `cat /home/node/installed; echo "$BOTTLE"`})
	if res.Stdout != "tools\nb\n" {
		t.Fatalf("released slot: %+v", res)
	}
	if err := c.ForkRelease(ctx, "slot-0", nil); ClassOf(err) != ClassOther || !strings.Contains(err.Error(), "is not a held pool slot") {
		t.Fatalf("second release: %v", err)
	}
	if err := c.ForkRelease(ctx, "nope", nil); !IsNotFound(err) {
		t.Fatalf("release of a missing slot: %v, want ClassNotFound", err)
	}

	// Errors keep their class behind fork's progress lines.
	if err := c.Fork(ctx, ForkRequest{Golden: golden, Name: "bottle-a"}); !IsAlreadyExists(err) {
		t.Fatalf("fork to a taken name: %v, want ClassAlreadyExists", err)
	}
	if err := c.Fork(ctx, ForkRequest{Golden: "no-golden", Name: "x"}); !IsNotFound(err) {
		t.Fatalf("fork of a missing golden: %v, want ClassNotFound", err)
	}
	if _, err := c.Exec(ctx, ExecRequest{Machine: golden, Argv: []string{"true"}}); !IsNotRunning(err) {
		t.Fatalf("exec in a frozen golden: %v, want ClassNotRunning", err)
	}
	if err := c.Stop(ctx, golden); err == nil || !strings.Contains(err.Error(), "is the fork base for 3 live clone(s)") {
		t.Fatalf("stop of a golden with clones: %v", err)
	}

	if err := c.DeleteCascade(ctx, golden); err != nil {
		t.Fatal(err)
	}
	if ms, err := c.List(ctx); err != nil || len(ms) != 0 {
		t.Fatalf("after cascade: %+v %v", ms, err)
	}
	if err := c.DeleteCascade(ctx, golden); !IsNotFound(err) {
		t.Fatalf("cascade of a missing machine: %v, want ClassNotFound", err)
	}
}
