package smolvmsim

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Every status line and error text of the CLI contract, byte for byte.
func TestContractTexts(t *testing.T) {
	s := newSim(t)
	expect(t, "version", s.run("--version"), "smolvm 1.9.0 (bottle-controller simulator; not a VM)\n", "", 0)
	expect(t, "ls empty", s.run("machine", "ls", "--json"), "[]\n", "", 0)

	s.ok("machine", "create", "--name", "m1", "--image", "node:22")
	expect(t, "create existing", s.run("machine", "create", "--name", "m1", "--image", "node:22"), "",
		"Error: config operation failed: create machine: machine 'm1' already exists or is being created\n", 1)

	notRunning := "Error: agent operation failed: connect: machine 'm1' is not running. Use 'smolvm machine start --name m1' first.\n"
	expect(t, "exec not running", s.run("machine", "exec", "--name", "m1", "--", "true"), "", notRunning, 1)
	expect(t, "cp not running", s.run("machine", "cp", "/etc/hostname", "m1:/tmp/x"), "", notRunning, 1)
	expect(t, "stop created", s.run("machine", "stop", "--name", "m1"), "Machine 'm1' is not running (state: created)\n", "", 0)

	start := s.run("machine", "start", "--name", "m1")
	m := regexp.MustCompile(`(?m)^Machine 'm1' running \(PID: (\d+)\)\n\z`).FindStringSubmatch(start.stdout)
	if start.code != 0 || m == nil {
		t.Fatalf("start: %+v", start)
	}
	pid := m[1]
	expect(t, "start running", s.run("machine", "start", "--name", "m1"), "Machine 'm1' already running (PID: "+pid+")\n", "", 0)
	st := status(t, s, "m1")
	if fmt.Sprint(st["pid"]) != pid || st["state"] != "running" {
		t.Fatalf("status pid %v state %v, start said %s", st["pid"], st["state"], pid)
	}

	s.ok("machine", "stop", "--name", "m1")
	expect(t, "stop stopped", s.run("machine", "stop", "--name", "m1"), "Machine 'm1' is not running (state: stopped)\n", "", 0)

	expect(t, "delete missing", s.run("machine", "delete", "--name", "nope", "-f"), "", "Error: vm not found: nope\n", 1)
	expect(t, "rm missing", s.run("machine", "rm", "--name", "nope", "-f"), "", "Error: vm not found: nope\n", 1)
	expect(t, "status missing", s.run("machine", "status", "--name", "nope", "--json"), "",
		"Error: config operation failed: machine status: machine 'nope' not found\n", 1)

	expect(t, "start without kvm", s.runWith([]string{"SMOLVM_SIM_NO_KVM=1"}, "machine", "start", "--name", "m1"), "",
		"Starting machine 'm1'...\nError: agent operation failed: start machine: kvm not available: KVM not available. Ensure KVM kernel module is loaded.\n"+
			"Try: sudo modprobe kvm && sudo modprobe kvm_intel  # (or kvm_amd)\n", 1)
}

func (s *sim) runWith(env []string, args ...string) result {
	s.t.Helper()
	saved := s.env
	s.env = append(append([]string(nil), s.env...), env...)
	defer func() { s.env = saved }()
	return s.run(args...)
}

func status(t *testing.T, s *sim, name string) map[string]any {
	t.Helper()
	var st map[string]any
	if err := json.Unmarshal([]byte(s.ok("machine", "status", "--name", name, "--json")), &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// Without KVM only boots fail; the database commands work.
func TestNoKVMDatabaseCommandsWork(t *testing.T) {
	s := newSim(t, "SMOLVM_SIM_NO_KVM=1")
	s.ok("machine", "create", "--name", "k", "--image", "i")
	s.ok("machine", "ls", "--json")
	if st := status(t, s, "k"); st["state"] != "created" {
		t.Fatalf("state %v", st["state"])
	}
	if r := s.run("machine", "start", "--name", "k"); r.code != 1 || !strings.Contains(r.stderr, "\nError: agent operation failed: start machine: kvm not available: ") {
		t.Fatalf("start: %+v", r)
	}
	perm := s.runWith([]string{"SMOLVM_SIM_NO_KVM=permission"}, "machine", "start", "--name", "k")
	if perm.code != 1 || !strings.Contains(perm.stderr, "\nError: agent operation failed: start machine: kvm permission denied: Cannot access /dev/kvm (permission denied)") {
		t.Fatalf("start (permission): %+v", perm)
	}
	s.ok("machine", "rm", "--name", "k", "-f")
}

func TestStatusJSONShape(t *testing.T) {
	s := newSim(t)
	s.ok("machine", "create", "--name", "shape", "--image", "alpine", "--cpus", "2", "--mem", "1024",
		"--allow-host", "example.com", "--label", "owner=ns/a", "--label", "x=y=z")
	st := status(t, s, "shape")
	for k, want := range map[string]any{"name": "shape", "state": "created", "cpus": 2.0, "memory_mib": 1024.0,
		"pid": nil, "image": "alpine", "network": true} {
		if got, ok := st[k]; !ok || got != want {
			t.Errorf("%s = %#v (present %v), want %#v", k, got, ok, want)
		}
	}
	if labels, _ := st["labels"].(map[string]any); labels["owner"] != "ns/a" || labels["x"] != "y=z" {
		t.Errorf("labels %v", st["labels"])
	}
	if n, ok := st["created_at"].(float64); !ok || n < 1.7e9 {
		t.Errorf("created_at %v", st["created_at"])
	}
	s.ok("machine", "create", "--name", "defaults")
	if st := status(t, s, "defaults"); st["cpus"] != 4.0 || st["memory_mib"] != 8192.0 || st["network"] != false || st["image"] != nil {
		t.Errorf("defaults %v", st)
	}
	var list []map[string]any
	if err := json.Unmarshal([]byte(s.ok("machine", "ls", "--json")), &list); err != nil || len(list) != 2 ||
		list[0]["name"] != "defaults" || list[1]["name"] != "shape" {
		t.Fatalf("ls: %v %v", list, err)
	}
}

// The image is pulled at the first start only, and recorded.
func TestImagePulledAtFirstStart(t *testing.T) {
	s := newSim(t)
	s.ok("machine", "create", "--name", "p", "--image", "node:22")
	if _, err := os.Stat(filepath.Join(s.data, "machines", "p", "rootfs")); !os.IsNotExist(err) {
		t.Fatalf("rootfs exists before start: %v", err)
	}
	if r := s.run("machine", "start", "--name", "p"); r.code != 0 || r.stderr != "Starting machine 'p'...\nPulling node:22...\n" {
		t.Fatalf("first start: %+v", r)
	}
	var rec record
	data, _ := os.ReadFile(filepath.Join(s.data, "machines", "p", "machine.json"))
	if err := json.Unmarshal(data, &rec); err != nil || rec.PulledImage != "node:22" || rec.PulledAt == "" {
		t.Fatalf("record %s: %v", data, err)
	}
	s.ok("machine", "stop", "--name", "p")
	if r := s.run("machine", "start", "--name", "p"); r.code != 0 || strings.Contains(r.stderr, "Pulling") {
		t.Fatalf("second start pulled again: %+v", r)
	}
}

func TestDeleteConfirmation(t *testing.T) {
	s := newSim(t)
	s.running("d")
	for _, in := range []string{"", "\n", "n\n", "no\n", "maybe\n", strings.Repeat("y", 8<<20)} {
		r := s.runIn(in, "machine", "delete", "--name", "d")
		expect(t, fmt.Sprintf("delete with input %.20q", in), r, "Cancelled\n", "Delete machine 'd'? [y/N] ", 0)
		if st := status(t, s, "d"); st["state"] != "running" {
			t.Fatalf("cancelled delete changed state to %v", st["state"])
		}
	}
	r := s.runIn("y\n", "machine", "delete", "--name", "d")
	if r.code != 0 || !strings.HasSuffix(r.stdout, "Deleted machine: d\n") || !strings.Contains(r.stdout, "Stopping machine 'd'...") {
		t.Fatalf("confirmed delete: %+v", r)
	}
	if r := s.run("machine", "status", "--name", "d", "--json"); r.code != 1 {
		t.Fatalf("status after delete: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(s.data, "machines", "d")); !os.IsNotExist(err) {
		t.Fatalf("machine dir left: %v", err)
	}
	s.ok("machine", "create", "--name", "d")
	s.ok("machine", "delete", "--name", "d", "--force")
}

func TestUsageErrors(t *testing.T) {
	s := newSim(t)
	for _, args := range [][]string{
		{},
		{"bogus"},
		{"machine"},
		{"machine", "bogus"},
		{"machine", "create", "--name", "a", "--cpus", "many"},
		{"machine", "create", "--name", "a", "--unknown"},
		{"machine", "start", "--name"},
		{"machine", "exec", "--name", "a"},
		{"machine", "exec", "--name", "a", "--timeout", "soon", "--", "true"},
		{"machine", "cp", "only-one"},
		{"machine", "status", "--name", "a", "--name", "b"},
	} {
		r := s.run(args...)
		if r.code != 2 || !strings.HasPrefix(r.stderr, "error: ") || !strings.Contains(r.stderr, "Usage: smolvm") || r.stdout != "" {
			t.Errorf("smolvm %q: %+v, want a usage error (exit 2)", args, r)
		}
	}
	// Real smolvm accepts these (a generated name, the machine "default",
	// created if missing: smolvm:src/cli/machine.rs:2923-2930,3590-3648);
	// the simulator refuses them, as docs/smolvm.md says. The driver never
	// sends them.
	for _, args := range [][]string{{"machine", "create", "--image", "x"}, {"machine", "start"}} {
		if r := s.run(args...); r.code != 2 {
			t.Errorf("smolvm %q: %+v, want the simulator's usage error", args, r)
		}
	}
	// smolvm checks cp's mode itself, after parsing: exit 1.
	expect(t, "cp --mode 999", s.run("machine", "cp", "a", "b:/c", "--mode", "999"), "",
		"Error: config operation failed: cp: invalid octal mode '999' (expected e.g. 644)\n", 1)
	if r := s.run("machine", "exec", "--help"); r.code != 0 || !strings.Contains(r.stdout, "--timeout") {
		t.Errorf("help: %+v", r)
	}
}

func TestMachineNameRules(t *testing.T) {
	s := newSim(t)
	for _, n := range []string{"a", "A-b_c", "0x", strings.Repeat("n", 128)} {
		s.ok("machine", "create", "--name", n)
	}
	for _, n := range []string{"a.b", "-a", "_a", "a-", "a--b", "a b", strings.Repeat("n", 129)} {
		r := s.run("machine", "create", "--name="+n)
		if r.code != 1 || !strings.HasPrefix(r.stderr, "Error: config operation failed: create machine: invalid machine name") {
			t.Errorf("create %q: %+v", n, r)
		}
	}
	// A long name still yields a valid hostname inside the machine.
	long := strings.Repeat("n", 128)
	s.ok("machine", "start", "--name", long)
	if out := s.ok("machine", "exec", "--name", long, "--", "hostname"); out != strings.Repeat("n", 63)+"\n" {
		t.Errorf("hostname %q", out)
	}
}
