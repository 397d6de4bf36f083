package smolvmsim

import (
	"strings"
	"testing"
)

// A golden, its clones and their filesystems, with smolvm's texts
// (src/cli/vm_common.rs fork_vm, start_vm_named_with_db, stop_vm_named,
// delete_vm; src/agent/fork.rs prepare_forks_reusing).
func TestForkGoldenAndClones(t *testing.T) {
	s := newSim(t)
	s.ok("machine", "create", "--name", "g", "--image", "node:22", "--label", "role=golden", "-e", "FROM=golden")
	s.ok("machine", "start", "--name", "g", "--forkable")
	if st := status(t, s, "g"); st["state"] != "running" || st["forkable"] != true || st["forkpoint_held"] != false {
		t.Fatalf("golden before fork: %v", st)
	}
	s.ok("machine", "exec", "--name", "g", "--", "sh", "-c", "echo provisioned > /workspace/state; chown node /workspace/state")
	s.running("plain")

	freezing := "Freezing golden 'g' as fork base...\n"
	expect(t, "fork", s.run("machine", "fork", "--golden", "g", "--name", "c1"), "",
		freezing+"Booting clone 'c1' from snapshot...\n"+
			"Forked 'g' -> 'c1'. Golden stays frozen as the fork base (do not start it again while clones exist).\n", 0)
	s.ok("machine", "fork", "--golden", "g", "-n", "c2")

	if st := status(t, s, "g"); st["state"] != "frozen" {
		t.Fatalf("golden after fork: %v", st)
	}
	c1 := status(t, s, "c1")
	if c1["state"] != "running" || c1["forkable"] != false || c1["forkpoint_held"] != false ||
		c1["image"] != "node:22" || c1["labels"].(map[string]any)["role"] != "golden" {
		t.Fatalf("clone status: %v", c1)
	}
	// The clone has the golden's files (and owners) and env; what one
	// clone writes, the others do not see.
	if out := s.ok("machine", "exec", "--name", "c1", "--", "sh", "-c",
		`cat /workspace/state; stat -c %U /workspace/state; echo "$FROM"; echo mine > /workspace/c1`); out != "provisioned\nnode\ngolden\n" {
		t.Fatalf("clone sees %q", out)
	}
	if r := s.run("machine", "exec", "--name", "c2", "--", "test", "-e", "/workspace/c1"); r.code != 1 {
		t.Fatalf("c2 sees c1's file: %+v", r)
	}

	notRunning := "Error: agent operation failed: connect: machine 'g' is not running. Use 'smolvm machine start --name g' first.\n"
	expect(t, "exec frozen", s.run("machine", "exec", "--name", "g", "--", "true"), "", notRunning, 1)
	expect(t, "start frozen", s.run("machine", "start", "--name", "g"), "",
		"Error: agent operation failed: start: 'g' is frozen because it is the fork base for 2 live clone(s) (c1, c2); "+
			"their disks are copy-on-write overlays backed by its disks, so it cannot be re-launched while they exist — delete the clones first\n", 1)
	expect(t, "stop frozen", s.run("machine", "stop", "--name", "g"), "",
		"Error: agent operation failed: stop: machine 'g' is the fork base for 2 live clone(s) (c1, c2); stop or delete the clones first\n", 1)

	expect(t, "fork taken name", s.run("machine", "fork", "--golden", "g", "--name", "c1"), "",
		freezing+"Error: agent operation failed: fork: machine 'c1' already exists\n", 1)
	expect(t, "fork missing golden", s.run("machine", "fork", "--golden", "nope", "--name", "x"), "",
		"Freezing golden 'nope' as fork base...\nError: vm not found: nope\n", 1)
	expect(t, "fork unforkable", s.run("machine", "fork", "--golden", "plain", "--name", "x"), "",
		"Freezing golden 'plain' as fork base...\nError: agent operation failed: fork: golden 'plain' is not running forkable; "+
			"start it with `machine start --forkable --name plain`\n", 1)
	expect(t, "fork no name", s.run("machine", "fork", "--golden", "g"), "",
		"Error: config operation failed: fork: --name is required for one clone; use --name-prefix with --count for a batch\n", 1)
	expect(t, "fork name and prefix", s.run("machine", "fork", "--golden", "g", "--name", "a", "--name-prefix", "p"), "",
		"Error: config operation failed: fork: use either --name or --name-prefix, not both\n", 1)
	expect(t, "batch with name", s.run("machine", "fork", "--golden", "g", "--count", "2", "--name", "a"), "",
		"Error: config operation failed: fork: --name cannot be used with --count greater than 1; use --name-prefix\n", 1)
	expect(t, "bad fork env", s.run("machine", "fork", "--golden", "g", "--name", "x", "-e", "1A=b"), "",
		freezing+"Error: config operation failed: fork env: invalid key '1A': must match [A-Za-z_][A-Za-z0-9_]*\n", 1)
	for _, n := range []string{"x", "p-0"} {
		if st := s.run("machine", "status", "--name", n, "--json"); st.code != 1 {
			t.Fatalf("a failed fork left %s: %+v", n, st)
		}
	}

	// Without -f or --cascade a golden with clones is refused, before the
	// confirmation prompt; --cascade deletes the clones first.
	expect(t, "delete golden", s.runIn("y\n", "machine", "delete", "--name", "g"), "",
		"Error: agent operation failed: delete: machine 'g' is the fork base for 2 clone(s) (c1, c2); "+
			"delete the clones first, use --cascade to remove them too, or --force to break them\n", 1)
	r := s.run("machine", "delete", "--name", "g", "--cascade")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "Deleting dependent clone 'c1' (cascade)...\n") ||
		!strings.Contains(r.stdout, "Deleting dependent clone 'c2' (cascade)...\n") || !strings.HasSuffix(r.stdout, "Deleted machine: g\n") {
		t.Fatalf("delete --cascade: %+v", r)
	}
	if out := s.ok("machine", "ls", "--json"); strings.Contains(out, `"c1"`) || strings.Contains(out, `"g"`) {
		t.Fatalf("left after cascade: %s", out)
	}
}

// A golden with no clones left stays frozen until it is stopped (smolvm
// retains its checkpoint), then starts again as an ordinary machine.
func TestFrozenGoldenWithoutClones(t *testing.T) {
	s := newSim(t)
	s.ok("machine", "create", "--name", "g", "--image", "node:22")
	s.ok("machine", "start", "--name", "g", "--forkable")
	s.ok("machine", "fork", "--golden", "g", "--name", "c")
	s.ok("machine", "delete", "--name", "c", "-f")
	if st := status(t, s, "g"); st["state"] != "frozen" {
		t.Fatalf("golden without clones: %v", st)
	}
	expect(t, "start", s.run("machine", "start", "--name", "g"), "",
		"Error: agent operation failed: start: 'g' is frozen because it retains a reusable fork checkpoint; stop it before restarting, or fork it again\n", 1)
	s.ok("machine", "stop", "--name", "g")
	s.ok("machine", "start", "--name", "g")
	if st := status(t, s, "g"); st["state"] != "running" || st["forkable"] != false {
		t.Fatalf("golden restarted: %v", st)
	}
	s.ok("machine", "exec", "--name", "g", "--", "true")
}

// Held slots wait for the golden's forkpoint, are handed out once, and
// carry their fork parameters (src/cli/vm_common.rs release_held_fork,
// src/agent/fork.rs activate_held_fork, render_indexed_fork_env).
func TestHeldSlots(t *testing.T) {
	s := newSim(t)
	s.ok("machine", "create", "--name", "g", "--image", "node:22")
	s.ok("machine", "start", "--name", "g", "--forkable")

	waiting := "Waiting for golden 'g' to reach its forkpoint...\n"
	expect(t, "hold before forkpoint", s.run("machine", "fork", "--golden", "g", "--name", "s", "--hold", "--ready-timeout", "200ms"), "",
		waiting+"Error: agent operation failed: wait for forkpoint: golden 'g' did not become ready within 0.2s: timed out\n", 1)
	// The workload marks its forkpoint with smolvm's helper, which
	// blocks until a release.
	r := s.run("machine", "exec", "--name", "g", "--timeout", "1s", "--", "smolvm-fork-ready")
	if r.code != 124 || r.stdout != "smolvm forkpoint ready; waiting for clone release\n" {
		t.Fatalf("smolvm-fork-ready: %+v", r)
	}

	expect(t, "batch hold", s.run("machine", "fork", "--golden", "g", "--count", "2", "--name-prefix", "slot", "--hold", "-e", "A=1", "-e", "WHO={name}"), "",
		waiting+"Freezing golden 'g' as fork base...\nBooting clone 'slot-0' from snapshot...\nBooting clone 'slot-1' from snapshot...\n"+
			"Provisioned 2 held slots from 'g' with one snapshot.\n", 0)
	if st := status(t, s, "slot-1"); st["state"] != "running" || st["forkpoint_held"] != true {
		t.Fatalf("held slot: %v", st)
	}
	// A frozen golden is past its forkpoint: no wait.
	expect(t, "single hold", s.run("machine", "fork", "--golden", "g", "--name", "slot-x", "--hold", "--ready-timeout", "1ms"), "",
		waiting+"Freezing golden 'g' as fork base...\nBooting clone 'slot-x' from snapshot...\n"+
			"Forked 'g' -> held slot 'slot-x'. Release it with `smolvm machine fork-release --name slot-x`.\n", 0)

	expect(t, "release", s.run("machine", "fork-release", "--name", "slot-0", "-e", "B=2", "-e", "A=3"), "",
		"Released held slot 'slot-0'. Replace it from 'g' after the workload completes.\n", 0)
	if st := status(t, s, "slot-0"); st["forkpoint_held"] != false {
		t.Fatalf("released slot: %v", st)
	}
	out := s.ok("machine", "exec", "--name", "slot-0", "--", "sh", "-c", `cat /etc/smolvm/fork-env; echo "$A $B $WHO $SMOLVM_FORK_INDEX"`)
	if want := "WHO=slot-0\nSMOLVM_FORK_INDEX=0\nSMOLVM_FORK_NAME=slot-0\nB=2\nA=3\n3 2 slot-0 0\n"; out != want {
		t.Fatalf("released slot's parameters:\n got %q\nwant %q", out, want)
	}
	expect(t, "release twice", s.run("machine", "fork-release", "--name", "slot-0"), "",
		"Error: agent operation failed: release held fork: clone 'slot-0' is not a held pool slot\n", 1)
	expect(t, "release golden", s.run("machine", "fork-release", "--name", "g"), "",
		"Error: agent operation failed: release held fork: machine 'g' is not a fork clone\n", 1)
	expect(t, "release missing", s.run("machine", "fork-release", "--name", "nope"), "", "Error: vm not found: nope\n", 1)
	expect(t, "release bad env", s.run("machine", "fork-release", "--name", "slot-1", "-e", "A-B=1"), "",
		"Error: config operation failed: fork env: invalid key 'A-B': must match [A-Za-z_][A-Za-z0-9_]*\n", 1)
	if st := status(t, s, "slot-1"); st["forkpoint_held"] != true {
		t.Fatalf("a refused release claimed the slot: %v", st)
	}
}

// A slot forked from a golden that never reached a forkpoint (a plain fork
// froze it first) cannot be released, and is claimed anyway.
func TestReleaseWithoutForkpoint(t *testing.T) {
	s := newSim(t)
	s.ok("machine", "create", "--name", "g", "--image", "node:22")
	s.ok("machine", "start", "--name", "g", "--forkable")
	s.ok("machine", "fork", "--golden", "g", "--name", "c")
	s.ok("machine", "fork", "--golden", "g", "--name", "s", "--hold")
	expect(t, "release", s.run("machine", "fork-release", "--name", "s"), "",
		"Error: agent operation failed: release held fork: slot 's' was claimed and will not be reused after activation failed: "+
			"agent operation failed: activate held fork: clone 's' is not parked at a forkpoint\n", 1)
	if st := status(t, s, "s"); st["forkpoint_held"] != false {
		t.Fatalf("slot after a failed activation: %v", st)
	}
}

// fork --secret-env records a reference that every exec in the clone
// resolves from its own environment; the value is stored nowhere.
func TestForkSecretEnv(t *testing.T) {
	s := newSim(t)
	s.ok("machine", "create", "--name", "g", "--image", "node:22")
	s.ok("machine", "start", "--name", "g", "--forkable")
	s.ok("machine", "fork", "--golden", "g", "--name", "c", "--secret-env", "TOKEN=HOST_TOKEN")
	if out := s.runWith([]string{"HOST_TOKEN=s3cret"}, "machine", "exec", "--name", "c", "--", "sh", "-c", `echo "$TOKEN"`); out.stdout != "s3cret\n" {
		t.Fatalf("secret in clone: %+v", out)
	}
	expect(t, "unset", s.run("machine", "exec", "--name", "c", "--", "true"), "",
		"Error: secret env TOKEN: host environment variable HOST_TOKEN is not set\n", 1)
	if out := s.ok("machine", "status", "--name", "c", "--json"); strings.Contains(out, "s3cret") {
		t.Fatalf("secret in status: %s", out)
	}
}

// SMOLVM_SIM_FAIL for the fork verbs fails before anything changes: no
// clone is left, and a held slot stays held.
func TestForkFaults(t *testing.T) {
	s := newSim(t, "SMOLVM_SIM_FAIL=fork=1,fork-release=1")
	s.ok("machine", "create", "--name", "g", "--image", "node:22")
	s.ok("machine", "start", "--name", "g", "--forkable")
	expect(t, "fork fault", s.run("machine", "fork", "--golden", "g", "--name", "c"), "",
		"Error: agent operation failed: fork: golden FORK failed: ERR snapshot (simulated fault)\n", 1)
	if st := status(t, s, "g"); st["state"] != "running" {
		t.Fatalf("golden after a failed fork: %v", st)
	}
	s.ok("machine", "fork", "--golden", "g", "--name", "c")
	s.ok("machine", "fork", "--golden", "g", "--name", "s", "--hold")
	expect(t, "release fault", s.run("machine", "fork-release", "--name", "s"), "",
		"Error: database operation failed: open: database is locked (simulated fault)\n", 1)
	if st := status(t, s, "s"); st["forkpoint_held"] != true {
		t.Fatalf("slot after a failed release: %v", st)
	}
}
