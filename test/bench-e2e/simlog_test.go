package main

import (
	"testing"
	"time"

	"github.com/bot-bottle/bottle-controller/internal/smolvmsim"
)

// Invocations are attributed to their machine by the argv shapes the
// driver builds (internal/smolvm); node-wide ones to none.
func TestInvocationMachine(t *testing.T) {
	for _, tc := range []struct {
		argv []string
		want string
	}{
		{[]string{"machine", "create", "--name", "m1", "--image", "node:22", "--cpus", "2"}, "m1"},
		{[]string{"machine", "start", "--name", "m1"}, "m1"},
		{[]string{"machine", "status", "--name", "m1", "--json"}, "m1"},
		{[]string{"machine", "exec", "--name", "m1", "--stream", "-i", "--", "runuser", "-l", "node", "-c", "exec 'echo' '--name' 'x'"}, "m1"},
		{[]string{"machine", "cp", "/tmp/staged/f", "m1:/home/node/f", "--mode", "0644", "--uid", "1000"}, "m1"},
		{[]string{"machine", "cp", "m1:/etc/hosts", "/tmp/out"}, "m1"},
		{[]string{"machine", "cp", "/tmp/a:b", "m1:/x"}, "m1"},
		{[]string{"machine", "ls", "--json"}, ""},
		{[]string{"--version"}, ""},
	} {
		if got := (smolvmsim.Invocation{Argv: tc.argv}).Machine(); got != tc.want {
			t.Errorf("Machine() of %q = %q, want %q", tc.argv, got, tc.want)
		}
	}
}

func TestWorkOfCountsOneMachineInAWindow(t *testing.T) {
	t0 := time.Now()
	inv := func(at time.Duration, secs float64, argv ...string) smolvmsim.Invocation {
		return smolvmsim.Invocation{Argv: argv, Start: t0.Add(at), Seconds: secs, CPUSeconds: secs / 10}
	}
	invs := []smolvmsim.Invocation{
		inv(-time.Second, 1, "machine", "status", "--name", "m1"), // before the window
		inv(0, 0.5, "machine", "create", "--name", "m1"),
		inv(time.Second, 0.25, "machine", "exec", "--name", "m1", "--", "true"),
		inv(time.Second, 9, "machine", "exec", "--name", "m2", "--", "true"), // another machine
		inv(2*time.Second, 0.25, "machine", "exec", "--name", "m1", "--", "true"),
		inv(2*time.Second, 3, "machine", "ls", "--json"),
		inv(5*time.Second, 1, "machine", "delete", "--name", "m1"), // after
	}
	w := workOf(invs, "m1", t0, t0.Add(3*time.Second))
	if w.processes != 3 || w.seconds != 1 || w.byVerb["exec"] != 2 || w.byVerb["create"] != 1 {
		t.Fatalf("%+v", w)
	}
	if !w.begin.Equal(t0) || !w.end.Equal(t0.Add(2*time.Second+250*time.Millisecond)) {
		t.Fatalf("begin %v end %v, want the first's start and the last's end", w.begin.Sub(t0), w.end.Sub(t0))
	}
	if got := verbs(w.byVerb); got != "create exec×2" {
		t.Fatalf("verbs %q", got)
	}
	if node := workOf(invs, "", t0, t0.Add(3*time.Second)); node.processes != 1 || node.byVerb["ls"] != 1 {
		t.Fatalf("node-wide %+v", node)
	}
}

func TestPercentile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3}
	if median(xs) != 3 || percentile(xs, 90) != 5 || percentile(xs, 0) != 1 || median(nil) != 0 {
		t.Fatalf("median %v p90 %v", median(xs), percentile(xs, 90))
	}
}
