package smolvmsim

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// Every invocation, failed ones included, is one line with its argv, exit
// code and times; without the knob nothing is written.
func TestInvocationLog(t *testing.T) {
	log := filepath.Join(t.TempDir(), "invocations.jsonl")
	s := newSim(t, InvocationLogEnv+"="+log)
	s.ok("machine", "create", "--name", "inv")
	s.ok("machine", "start", "--name", "inv")
	s.ok("machine", "exec", "--name", "inv", "--", "true")
	if r := s.run("machine", "exec", "--name", "inv", "--", "sh", "-c", "exit 3"); r.code != 3 {
		t.Fatalf("exec exit 3: %+v", r)
	}
	f, err := os.Open(log)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	var got []Invocation
	for sc := bufio.NewScanner(f); sc.Scan(); {
		var inv Invocation
		if err := json.Unmarshal(sc.Bytes(), &inv); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		got = append(got, inv)
	}
	var verbs []string
	for _, inv := range got {
		verbs = append(verbs, inv.Verb())
	}
	if want := []string{"create", "start", "exec", "exec"}; !slices.Equal(verbs, want) {
		t.Fatalf("verbs %v, want %v", verbs, want)
	}
	last := got[3]
	if last.Exit != 3 || !slices.Equal(last.Argv, []string{"machine", "exec", "--name", "inv", "--", "sh", "-c", "exit 3"}) {
		t.Fatalf("last line: %+v", last)
	}
	// The exec waited for bwrap and the guest command: that is work.
	if last.Seconds <= 0 || last.CPUSeconds <= 0 || last.Start.IsZero() {
		t.Fatalf("times not recorded: %+v", last)
	}

	quiet := newSim(t)
	quiet.ok("machine", "create", "--name", "q")
	if _, err := os.Stat(filepath.Join(quiet.data, "invocations.jsonl")); !os.IsNotExist(err) {
		t.Fatalf("a log without the knob: %v", err)
	}
}
