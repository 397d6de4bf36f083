package smolvmsim

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFailKnobSpansProcesses(t *testing.T) {
	s := newSim(t, "SMOLVM_SIM_FAIL=start=2,cp=1,list=1")
	s.ok("machine", "create", "--name", "f")
	for i := 0; i < 2; i++ {
		expect(t, "injected start failure", s.run("machine", "start", "--name", "f"), "",
			"Error: agent operation failed: start machine: guest agent did not become ready (simulated fault)\n", 1)
	}
	s.ok("machine", "start", "--name", "f")
	s.ok("machine", "start", "--name", "f")
	r := s.run("machine", "cp", "/etc/hostname", "f:/tmp/h")
	if r.code != 1 || !strings.HasSuffix(r.stderr, "(simulated fault)\n") || !strings.HasPrefix(r.stderr, "Error: ") {
		t.Fatalf("cp: %+v", r)
	}
	s.ok("machine", "cp", "/etc/hostname", "f:/tmp/h")
	if r := s.run("machine", "ls", "--json"); r.code != 1 {
		t.Fatalf("ls via the 'list' alias: %+v", r)
	}
	s.ok("machine", "ls", "--json")
	// A new N re-arms the verb.
	if r := s.runWith([]string{"SMOLVM_SIM_FAIL=start=3"}, "machine", "start", "--name", "f"); r.code != 1 {
		t.Fatalf("re-armed start: %+v", r)
	}
}

func TestLatencyKnob(t *testing.T) {
	s := newSim(t, "SMOLVM_SIM_LATENCY=status=250ms,create=0s")
	s.ok("machine", "create", "--name", "l")
	start := time.Now()
	s.ok("machine", "status", "--name", "l", "--json")
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Fatalf("status took %v, want >= 250ms", d)
	}
}

func TestHangKnob(t *testing.T) {
	s := newSim(t, "SMOLVM_SIM_HANG=stop")
	s.running("h")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := s.command(ctx, "machine", "stop", "--name", "h").Run()
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) || err == nil {
		t.Fatalf("stop did not hang: %v", err)
	}
	// Only the hung verb hangs.
	if st := s.ok("machine", "status", "--name", "h", "--json"); !strings.Contains(st, `"running"`) {
		t.Fatalf("status: %s", st)
	}
}

func TestHangKnobPerMachine(t *testing.T) {
	s := newSim(t, "SMOLVM_SIM_HANG=status=hang-*")
	s.ok("machine", "create", "--name", "hang-1")
	s.ok("machine", "create", "--name", "ok-1")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := s.command(ctx, "machine", "status", "--name", "hang-1", "--json").Run()
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) || err == nil {
		t.Fatalf("status of hang-1 did not hang: %v", err)
	}
	if st := s.ok("machine", "status", "--name", "ok-1", "--json"); !strings.Contains(st, `"created"`) {
		t.Fatalf("status of ok-1: %s", st)
	}
}

func TestParseVerbList(t *testing.T) {
	got := parseVerbList(" start=300ms, exec=20ms ,rm=1,list,, cp = 2")
	want := map[string]string{"start": "300ms", "exec": "20ms", "delete": "1", "ls": "", "cp": "2"}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}

func TestLogKnobCountsInvocations(t *testing.T) {
	log := filepath.Join(t.TempDir(), "calls")
	s := newSim(t, "SMOLVM_SIM_LOG="+log)
	s.running("counted")
	s.ok("machine", "exec", "--name", "counted", "-e", "K=secret-ish", "--", "true")
	s.ok("machine", "cp", "/etc/hostname", "counted:/tmp/h", "--mode", "0600")
	s.ok("machine", "list", "--json")
	s.run("machine", "status", "--name", "missing")
	invs, err := ReadLog(log)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, inv := range invs {
		got = append(got, inv.Key())
	}
	want := []string{"create counted", "start counted", "exec counted", "cp counted", "ls -", "status missing"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("log: %q, want %q", got, want)
	}
}
