package smolvmsim

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCopyInAndOut(t *testing.T) {
	s := newSim(t)
	s.running("c")
	src := filepath.Join(t.TempDir(), "src.txt")
	if err := os.WriteFile(src, []byte("payload\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	expect(t, "cp in", s.run("machine", "cp", src, "c:/home/node/p.txt", "--mode", "0600", "--uid", "1000", "--gid", "1000"), "", "", 0)
	out := s.ok("machine", "exec", "--name", "c", "--", "sh", "-c",
		"stat -c '%a %U %G %s' /home/node/p.txt; cat /home/node/p.txt; ls -a /home/node | grep -c smolvm || true")
	if out != "600 node node 8\npayload\n0\n" {
		t.Fatalf("after cp: %q", out)
	}
	// Defaults: 0644 whatever the source's mode, owned by root; overwriting
	// replaces.
	s.ok("machine", "cp", src, "c:/home/node/p.txt")
	if out := s.ok("machine", "exec", "--name", "c", "--", "stat", "-c", "%a %U", "/home/node/p.txt"); out != "644 root\n" {
		t.Fatalf("default mode/owner: %q", out)
	}
	// Missing parents are created, root's 0755, as smolvm's agent does.
	s.ok("machine", "cp", src, "c:/opt/new/dir/x")
	if out := s.ok("machine", "exec", "--name", "c", "--", "stat", "-c", "%a %U", "/opt/new/dir", "/opt/new/dir/x"); out != "755 root\n644 root\n" {
		t.Fatalf("created parents: %q", out)
	}
	// chown comes after chmod, and clears set-id bits.
	s.ok("machine", "cp", src, "c:/tmp/g", "--mode", "2755", "--uid", "1000", "--gid", "1000")
	if out := s.ok("machine", "exec", "--name", "c", "--", "stat", "-c", "%a %U", "/tmp/g"); out != "755 node\n" {
		t.Fatalf("chmod then chown: %q", out)
	}
	s.ok("machine", "cp", src, "c:/tmp/s", "--mode", "4755")
	if out := s.ok("machine", "exec", "--name", "c", "--", "stat", "-c", "%a", "/tmp/s"); out != "4755\n" {
		t.Fatalf("setuid mode: %q", out)
	}

	dst := filepath.Join(t.TempDir(), "out.txt")
	s.ok("machine", "cp", "c:/home/node/p.txt", dst)
	if b, err := os.ReadFile(dst); err != nil || string(b) != "payload\n" {
		t.Fatalf("copy out: %q %v", b, err)
	}

	for _, tc := range []struct {
		args   []string
		stderr string
	}{
		{[]string{src, "c:/home/node"}, "Error: agent operation failed: file transfer: /home/node: is a directory"},
		{[]string{src, "c:/usr/bin/x"}, "Error: agent operation failed: file transfer: "},
		{[]string{filepath.Dir(src), "c:/tmp/x"}, "Error: copy failed: "},
		{[]string{"/nonexistent", "c:/tmp/x"}, "Error: copy failed: "},
		{[]string{src, "c:relative"}, "Error: agent operation failed: file transfer: guest path must be absolute"},
		{[]string{src, dst}, "Error: copy failed: exactly one of SOURCE and DEST"},
		{[]string{src, "ghost:/tmp/x"}, "Error: vm not found: ghost"},
		{[]string{"c:/etc/nonexistent", dst}, "Error: agent operation failed: file transfer: "},
	} {
		r := s.run(append([]string{"machine", "cp"}, tc.args...)...)
		if r.code != 1 || !strings.HasPrefix(r.stderr, tc.stderr) {
			t.Errorf("cp %q: %+v, want stderr prefix %q", tc.args, r, tc.stderr)
		}
	}
	if b, _ := os.ReadFile(dst); string(b) != "payload\n" {
		t.Fatalf("failed copy out clobbered the destination: %q", b)
	}
	// A guest symlink resolves inside the guest, never on the host.
	hostFile := filepath.Join(t.TempDir(), "host-only")
	if err := os.WriteFile(hostFile, []byte("host"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.ok("machine", "exec", "--name", "c", "--", "ln", "-s", hostFile, "/tmp/link")
	s.ok("machine", "cp", src, "c:/tmp/link")
	if b, _ := os.ReadFile(hostFile); string(b) != "host" {
		t.Fatalf("copy through a guest symlink wrote the host file: %q", b)
	}
}
