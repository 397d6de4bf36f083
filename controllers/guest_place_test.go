package controllers

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bot-bottle/bottle-controller/internal/smolvm"
	"github.com/bot-bottle/bottle-controller/internal/testutil"
)

// simDir holds the simulator testutil.Simulator builds for this test binary
// (the Ginkgo suite shares it): it must outlive every test.
var simDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "controllers-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	simDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// placeOnSimulator runs copyInSafely against a machine of the smolvm
// simulator (no API server needed): the guest-side walk as the agent runs it.
func placeOnSimulator(t *testing.T) (*BottleReconciler, *scope, func(script string) string) {
	t.Helper()
	testutil.RequireBwrap(t)
	sim, err := testutil.Simulator(simDir)
	if err != nil {
		t.Fatal(err)
	}
	cli := smolvm.New(sim, "SMOLVM_DATA_DIR="+filepath.Join(t.TempDir(), "data"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	if err := cli.Create(ctx, smolvm.MachineSpec{Name: "links", Image: "node:22-bookworm"}); err != nil {
		t.Fatal(err)
	}
	if err := cli.Start(ctx, "links"); err != nil {
		t.Fatal(err)
	}
	guest := func(script string) string {
		t.Helper()
		res, err := cli.Exec(ctx, smolvm.ExecRequest{Machine: "links", Argv: []string{"sh", "-c", script}, Timeout: time.Minute})
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("guest %q: %v, exit %d, %s", script, err, res.ExitCode, res.Stderr)
		}
		return res.Stdout
	}
	return &BottleReconciler{Machines: cli}, &scope{machineName: "links"}, guest
}

func TestCopyInSafelyNeverFollowsAGuestUsersLink(t *testing.T) {
	r, s, guest := placeOnSimulator(t)
	ctx := context.Background()
	host := filepath.Join(t.TempDir(), "content")
	if err := os.WriteFile(host, []byte(`{"a":1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	ids := strings.Fields(guest("id -u node; id -g node"))
	uid, err1 := strconv.Atoi(ids[0])
	gid, err2 := strconv.Atoi(ids[1])
	if err1 != nil || err2 != nil {
		t.Fatalf("id output %q", ids)
	}
	settings := desiredFile{path: "/home/node/.claude/settings.json", mode: 0o600, owner: "node"}

	// A fresh path: the missing directory is made for node, the file lands.
	if err := r.copyInSafely(ctx, s, host, 0, settings, uid, gid); err != nil {
		t.Fatal(err)
	}
	if got := guest("stat -c '%U %a' /home/node/.claude /home/node/.claude/settings.json; cat /home/node/.claude/settings.json"); got != "node 755\nnode 600\n{\"a\":1}" {
		t.Fatalf("after the first copy: %q", got)
	}

	// The exec user swaps ~/.claude for a link to /etc.
	guest(`runuser -u node -- sh -c 'rm -rf /home/node/.claude && ln -s /etc /home/node/.claude'`)
	err := r.copyInSafely(ctx, s, host, 1, settings, uid, gid)
	var refused *guestRefusal
	if !errors.As(err, &refused) || !strings.Contains(err.Error(), "/home/node/.claude is a symbolic link a non-root user could have made") {
		t.Fatalf("copy through ~/.claude -> /etc = %v, want a refusal naming the link", err)
	}
	if got := guest("ls /etc/settings.json 2>&1 || true; ls -A " + stagingDir + " | wc -l"); !strings.Contains(got, "No such file") || !strings.HasSuffix(got, "0\n") {
		t.Fatalf("the refused copy left something behind: %q", got)
	}

	// A link at the file's own name is replaced, not written through.
	guest(`rm /home/node/.claude && runuser -u node -- sh -c 'ln -s /etc/passwd /home/node/notes'`)
	passwd := guest("cat /etc/passwd")
	if err := r.copyInSafely(ctx, s, host, 2, desiredFile{path: "/home/node/notes", mode: 0o644, owner: "node"}, uid, gid); err != nil {
		t.Fatal(err)
	}
	if got := guest("cat /etc/passwd"); got != passwd {
		t.Fatal("/etc/passwd changed")
	}
	if got := guest("stat -c '%F %U' /home/node/notes"); got != "regular file node\n" {
		t.Fatalf("/home/node/notes: %q", got)
	}

	// A link only root could have made (root's, in a root-only directory)
	// is followed.
	guest("mkdir -p /opt/real && ln -s /opt/real /opt/alias")
	if err := r.copyInSafely(ctx, s, host, 3, desiredFile{path: "/opt/alias/tool.json", mode: 0o644}, 0, 0); err != nil {
		t.Fatal(err)
	}
	if got := guest("stat -c '%U %a' /opt/real/tool.json"); got != "root 644\n" {
		t.Fatalf("/opt/real/tool.json: %q", got)
	}
}
