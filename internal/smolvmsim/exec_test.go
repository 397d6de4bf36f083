package smolvmsim

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestExecPassesGuestExitCode(t *testing.T) {
	s := newSim(t)
	s.running("e")
	for script, code := range map[string]int{"exit 0": 0, "exit 1": 1, "exit 42": 42, "kill -TERM $$": 143} {
		if r := s.run("machine", "exec", "--name", "e", "--", "sh", "-c", script); r.code != code {
			t.Errorf("%q: exit %d, want %d (%q)", script, r.code, code, r.stderr)
		}
	}
	expect(t, "streams", s.run("machine", "exec", "--name", "e", "--", "sh", "-c", "echo out; echo err >&2"), "out\n", "err\n", 0)
	// Without -w the guest starts in /, and the command may be given without "--".
	expect(t, "default cwd", s.run("machine", "exec", "--name", "e", "pwd"), "/\n", "", 0)
	expect(t, "-w", s.run("machine", "exec", "--name", "e", "-w", "/workspace", "--", "pwd"), "/workspace\n", "", 0)
	// 2 s for the sandbox to start and print "before" even on a loaded
	// machine; the bound below is still far under the 100 s sleep, so the
	// timeout really killed it.
	start := time.Now()
	r := s.run("machine", "exec", "--name", "e", "--timeout", "2s", "--", "sh", "-c", "echo before; exec sleep 100")
	expect(t, "--timeout", r, "before\n", "", 124)
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("timeout took %v", d)
	}
}

func TestExecUsersAndEnvironment(t *testing.T) {
	s := newSim(t)
	s.running("u")
	// -e reaches `runuser -u` (environment kept, identity variables set).
	out := s.ok("machine", "exec", "--name", "u", "-e", "TOKEN=a b'c", "--",
		"runuser", "-u", "node", "--", "sh", "-c", `id -u; id -g; id -un; echo "$HOME|$USER|$LOGNAME|$SHELL|$TOKEN"; pwd`)
	if out != "1000\n1000\nnode\n/home/node|node|node|/bin/bash|a b'c\n/\n" {
		t.Fatalf("runuser -u: %q", out)
	}
	// A login shell starts from a fresh environment in $HOME.
	out = s.ok("machine", "exec", "--name", "u", "-e", "TOKEN=x", "--",
		"runuser", "-l", "node", "-c", `id -un; echo "$HOME|$USER|$LOGNAME|$SHELL|${TOKEN-unset}|$PATH"; pwd`)
	if out != "node\n/home/node|node|node|/bin/bash|unset|/usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games\n/home/node\n" {
		t.Fatalf("runuser -l: %q", out)
	}
	// Ownership is real: node's file is node's in the next exec, root's is root's.
	s.ok("machine", "exec", "--name", "u", "--", "runuser", "-l", "node", "-c", "echo x > ~/mine; mkdir -p /workspace/d")
	s.ok("machine", "exec", "--name", "u", "--", "sh", "-c", "echo y > /root/rootfile")
	out = s.ok("machine", "exec", "--name", "u", "--", "stat", "-c", "%U:%G %a", "/home/node/mine", "/workspace/d", "/root/rootfile")
	if out != "node:node 644\nnode:node 755\nroot:root 644\n" {
		t.Fatalf("ownership: %q", out)
	}
	r := s.run("machine", "exec", "--name", "u", "--", "runuser", "-u", "node", "--", "cat", "/root/rootfile")
	if r.code == 0 || !strings.Contains(r.stderr, "Permission denied") {
		t.Fatalf("node read root's 0700 home: %+v", r)
	}
	r = s.run("machine", "exec", "--name", "u", "--", "runuser", "-u", "ghost", "--", "true")
	if r.code != 1 || !strings.Contains(r.stderr, "runuser: user ghost does not exist") {
		t.Fatalf("unknown user: %+v", r)
	}
	// Machine-level env and workdir from create are exec defaults.
	s.ok("machine", "create", "--name", "u2", "-e", "LANG=C.UTF-8", "-w", "/workspace")
	s.ok("machine", "start", "--name", "u2")
	if out := s.ok("machine", "exec", "--name", "u2", "--", "sh", "-c", `echo "$LANG"; pwd`); out != "C.UTF-8\n/workspace\n" {
		t.Fatalf("machine defaults: %q", out)
	}
}

func TestExecStdinOnlyWithI(t *testing.T) {
	s := newSim(t)
	s.running("i")
	expect(t, "-i", s.runIn("hello\n", "machine", "exec", "--name", "i", "-i", "--", "cat"), "hello\n", "", 0)
	expect(t, "no -i", s.runIn("hello\n", "machine", "exec", "--name", "i", "--", "cat"), "", "", 0)
}

// The sandbox: private writable dirs per machine, read-only /usr, no network
// unless created with it.
func TestSandboxIsolation(t *testing.T) {
	s := newSim(t)
	s.running("iso-a")
	s.ok("machine", "create", "--name", "iso-b", "--net")
	s.ok("machine", "start", "--name", "iso-b")
	s.ok("machine", "exec", "--name", "iso-a", "--", "sh", "-c", "echo a > /tmp/f; echo a > /opt/f; echo a > /etc/f")
	r := s.run("machine", "exec", "--name", "iso-b", "--", "cat", "/tmp/f", "/opt/f", "/etc/f")
	if r.code == 0 || strings.Contains(r.stdout, "a") {
		t.Fatalf("machine b sees a's files: %+v", r)
	}
	if r := s.run("machine", "exec", "--name", "iso-a", "--", "touch", "/usr/x"); r.code == 0 {
		t.Fatal("/usr is writable")
	}
	ifaces := func(m string) int {
		out := s.ok("machine", "exec", "--name", m, "--", "cat", "/proc/net/dev")
		return strings.Count(out, "\n") - 2
	}
	if n := ifaces("iso-a"); n != 1 {
		t.Errorf("machine without --net has %d interfaces, want only lo", n)
	}
	// --net alone is the host's network: the same namespace (compared by
	// identity, not by interfaces, which other tests' namespaces add to).
	hostNet, _ := os.Readlink("/proc/self/ns/net")
	if got := strings.TrimSpace(s.ok("machine", "exec", "--name", "iso-b", "--", "readlink", "/proc/self/ns/net")); got != hostNet {
		t.Errorf("machine with --net is in network namespace %s, the host in %s", got, hostNet)
	}
	if out := s.ok("machine", "exec", "--name", "iso-a", "--", "sh", "-c", "echo $$; hostname; awk 'BEGIN{print 1}'"); out != "2\niso-a\n1\n" {
		t.Errorf("pid namespace, hostname or /etc/alternatives: %q", out)
	}
}

// stop ends the machine's running execs; nothing of the sandbox survives.
func TestStopEndsRunningExecs(t *testing.T) {
	s := newSim(t)
	s.running("st")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	marker := "stop-marker-3b9d"
	cmd := s.command(ctx, "machine", "exec", "--name", "st", "--stream", "--", "bash", "-c", "echo up; exec -a "+marker+" sleep 1000")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 3)
	if _, err := stdout.Read(buf); err != nil || string(buf) != "up\n" {
		t.Fatalf("read %q %v", buf, err)
	}
	s.ok("machine", "stop", "--name", "st")
	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 ||
		stderr.String() != "error: io operation failed: connection closed\n" {
		t.Fatalf("exec after stop: %v %q", err, stderr.String())
	}
	waitGone(t, marker)
}

// waitGone polls until no host process mentions marker (a killed sandbox is
// reaped by its pid namespace asynchronously).
func waitGone(t *testing.T, marker string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		found := ""
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			b, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
			if bytes.Contains(b, []byte(marker)) {
				found = string(b)
			}
		}
		if found == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process survived: %q", found)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
