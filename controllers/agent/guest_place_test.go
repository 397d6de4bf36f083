package agent

import (
	"context"
	"os"
	"path"
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

func TestMain(m *testing.M) { testutil.MainWithSimDir(m, "controllers-test-", &simDir) }

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
	r := &BottleReconciler{Machines: cli}
	return r, &scope{machineName: "links"}, guest
}

// land runs copyInSafely for files given as (path, owner, mode) with the
// same content, failing the test on a smolvm error.
func land(t *testing.T, r *BottleReconciler, s *scope, files ...desiredFile) []placeResult {
	t.Helper()
	dir := t.TempDir()
	copies := make([]hostCopy, len(files))
	for i, f := range files {
		host := filepath.Join(dir, strconv.Itoa(i))
		if err := os.WriteFile(host, []byte(`{"a":1}`), 0o600); err != nil {
			t.Fatal(err)
		}
		f.content = content{data: []byte(`{"a":1}`)}
		copies[i] = hostCopy{host: host, f: f}
	}
	res, err := r.copyInSafely(context.Background(), s, copies)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(files) {
		t.Fatalf("%d results for %d files", len(res), len(files))
	}
	return res
}

// noStagedCopies is the guest command that counts staged copies left over:
// it prints nothing and fails, rather than "0", when the staging directory
// cannot be read.
const noStagedCopies = "cd " + stagingDir + " && find . -maxdepth 1 -name '.bottle-staged*' | wc -l"

func TestCopyInSafelyNeverFollowsAGuestUsersLink(t *testing.T) {
	r, s, guest := placeOnSimulator(t)
	settings := desiredFile{path: "/home/node/.claude/settings.json", mode: 0o600, owner: "node"}

	// A fresh path: the missing directory is made for node, the file lands.
	if res := land(t, r, s, settings); res[0].outcome != placed {
		t.Fatalf("first copy: %+v", res[0])
	}
	if got := guest("stat -c '%U %a' /home/node/.claude /home/node/.claude/settings.json; cat /home/node/.claude/settings.json"); got != "node 755\nnode 600\n{\"a\":1}" {
		t.Fatalf("after the first copy: %q", got)
	}

	// The exec user swaps ~/.claude for a link to /etc.
	guest(`runuser -u node -- sh -c 'rm -rf /home/node/.claude && ln -s /etc /home/node/.claude'`)
	res := land(t, r, s, settings)
	if res[0].outcome != refused || !strings.Contains(res[0].msg, "/home/node/.claude is a symbolic link a non-root user could have made") {
		t.Fatalf("copy through ~/.claude -> /etc = %+v, want a refusal naming the link", res[0])
	}
	if got := guest("ls /etc/settings.json 2>&1 || true; " + noStagedCopies); !strings.Contains(got, "No such file") || !strings.HasSuffix(got, "0\n") {
		t.Fatalf("the refused copy left something behind: %q", got)
	}

	// A link at the file's own name is replaced, not written through.
	guest(`rm /home/node/.claude && runuser -u node -- sh -c 'ln -s /etc/passwd /home/node/notes'`)
	passwd := guest("cat /etc/passwd")
	if res := land(t, r, s, desiredFile{path: "/home/node/notes", mode: 0o644, owner: "node"}); res[0].outcome != placed {
		t.Fatalf("copy over a link: %+v", res[0])
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
	if res := land(t, r, s, desiredFile{path: "/opt/alias/tool.json", mode: 0o644}); res[0].outcome != placed {
		t.Fatalf("copy through root's link: %+v", res[0])
	}
	if got := guest("stat -c '%U %a' /opt/real/tool.json"); got != "root 644\n" {
		t.Fatalf("/opt/real/tool.json: %q", got)
	}
}

func TestCopyInSafelyPlacesABatchInOneGuestCall(t *testing.T) {
	r, s, guest := placeOnSimulator(t)
	guest(`runuser -u node -- sh -c 'ln -s /etc /home/node/evil'`)
	res := land(t, r, s,
		desiredFile{path: "/home/node/a/b/one", mode: 0o640, owner: "node"},
		desiredFile{path: "/home/node/evil/two", mode: 0o644, owner: "node"},
		desiredFile{path: "/home/ghost/three", mode: 0o644, owner: "ghost"},
		desiredFile{path: "/etc/four", mode: 0o600},
	)
	want := []placeOutcome{placed, refused, ownerMissing, placed}
	for i, w := range want {
		if res[i].outcome != w {
			t.Errorf("file %d: %+v, want outcome %d", i, res[i], w)
		}
	}
	if !strings.Contains(res[1].msg, "/home/node/evil is a symbolic link") {
		t.Errorf("refusal: %q", res[1].msg)
	}
	got := guest("stat -c '%U:%G %a' /home/node/a /home/node/a/b /home/node/a/b/one /etc/four; ls /etc/two /home/ghost 2>&1 | wc -l; " + noStagedCopies)
	if got != "node:node 755\nnode:node 755\nnode:node 640\nroot:root 600\n2\n0\n" {
		t.Fatalf("guest after the batch: %q", got)
	}
}

func TestCopyInSafelyRefusesAStagingDirOthersCanWrite(t *testing.T) {
	r, s, guest := placeOnSimulator(t)
	guest("chmod 0777 " + stagingDir)
	res := land(t, r, s, desiredFile{path: "/home/node/f", mode: 0o644, owner: "node"})
	guest("chmod 0755 " + stagingDir)
	if res[0].outcome != refused || !strings.Contains(res[0].msg, stagingDir+", where copies are staged, is a link or writable by a non-root user") {
		t.Fatalf("placing from a world-writable staging dir: %+v", res[0])
	}
	if got := guest("ls /home/node/f 2>&1 | grep -c 'No such'; " + noStagedCopies); got != "1\n0\n" {
		t.Fatalf("guest after the refusal: %q", got)
	}
}

// An owner is resolved with one `id`, whose line names a group only when
// the group exists: a user whose primary group has no entry still gets
// its numeric gid.
func TestCopyInSafelyResolvesAnOwnerWithoutAGroupName(t *testing.T) {
	r, s, guest := placeOnSimulator(t)
	guest(`echo 'loner:x:1234:4321::/home/loner:/bin/sh' >> /etc/passwd && mkdir /home/loner && chown 1234 /home/loner`)
	if got := guest("LC_ALL=C id loner"); !strings.HasPrefix(got, "uid=1234(loner) gid=4321 ") {
		t.Fatalf("id loner = %q, want a gid without a name", got)
	}
	if res := land(t, r, s, desiredFile{path: "/home/loner/f", mode: 0o600, owner: "loner"}); res[0].outcome != placed {
		t.Fatalf("copy for loner: %+v", res[0])
	}
	if got := guest("stat -c '%u:%g %a' /home/loner/f"); got != "1234:4321 600\n" {
		t.Fatalf("/home/loner/f: %q", got)
	}
}

// A staged copy with a second name (a hard link someone made to keep the
// content) is not placed.
func TestCopyInSafelyRefusesAStagedCopyWithAnotherName(t *testing.T) {
	r, s, guest := placeOnSimulator(t)
	staged := stageCopy(t, r, s)
	guest("ln " + staged + " " + stagingDir + "/kept")
	defer guest("rm -f " + stagingDir + "/kept")
	res, err := r.placeStaged(context.Background(), s, []string{staged, "/home/node/f", "node", "644"})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].outcome != refused || !strings.Contains(res[0].msg, "is not root's own file") {
		t.Fatalf("placing a staged copy with two links: %+v", res[0])
	}
	if got := guest("ls /home/node/f 2>&1 | grep -c 'No such'; " + noStagedCopies); got != "1\n0\n" {
		t.Fatalf("guest after the refusal: %q", got)
	}
}

// stageCopy copies a one-byte file into the staging directory as the agent
// stages one (root's, stagedMode) and returns its guest path.
func stageCopy(t *testing.T, r *BottleReconciler, s *scope) string {
	t.Helper()
	host := filepath.Join(t.TempDir(), "0")
	if err := os.WriteFile(host, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	staged := path.Join(stagingDir, ".bottle-staged-0")
	if err := r.Machines.CopyIn(context.Background(), s.machineName, host, staged, stagedMode, 0, 0); err != nil {
		t.Fatal(err)
	}
	return staged
}

// TestCopyInSafelyTakesADashSegmentForADirectory: a path segment "-" is a
// directory, not cd's "previous directory" (the file was refused as
// "changed while it was checked").
func TestCopyInSafelyTakesADashSegmentForADirectory(t *testing.T) {
	r, s, guest := placeOnSimulator(t)
	res := land(t, r, s, desiredFile{path: "/home/node/-/notes.md", mode: 0o644, owner: "node"})
	if res[0].outcome != placed {
		t.Fatalf("/home/node/-/notes.md: %+v", res[0])
	}
	if got := guest(`stat -c '%U %a' /home/node/-/notes.md`); got != "node 644\n" {
		t.Fatalf("placed file: %q", got)
	}
}

// TestCopyInSafelyCatchesADirectorySwappedMidWalk: a guest user who swaps
// a directory the walk has checked for a link before the walk enters it
// is caught by the physical path compared after entering. The race is
// won every time here: the placing script runs with a `cd` that swaps
// /home/node/swap for a link to /etc just before entering it (a shell
// function shadows the cd built-in).
func TestCopyInSafelyCatchesADirectorySwappedMidWalk(t *testing.T) {
	r, s, guest := placeOnSimulator(t)
	guest(`runuser -u node -- mkdir /home/node/swap`)
	staged := stageCopy(t, r, s)
	const swapOnEntry = `cd() {
  if [ "$#" = 3 ] && [ "$3" = ./swap ] && [ "$PWD" = /home/node ]; then
    runuser -u node -- sh -c 'rm -r /home/node/swap && ln -s /etc /home/node/swap'
  fi
  command cd "$@"
}
`
	res, err := r.Machines.Exec(context.Background(), smolvm.ExecRequest{
		Machine: s.machineName, User: "root", Timeout: placeTimeout,
		Argv: []string{"sh", "-c", swapOnEntry + placeFiles, "sh", staged, "/home/node/swap/settings.json", "node", "644"},
	})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("placing: %v, exit %d, %s", err, res.ExitCode, res.Stderr)
	}
	if !strings.Contains(res.Stdout, "/home/node/swap changed while it was checked") || strings.HasPrefix(res.Stdout, "0 0 ") {
		t.Fatalf("a directory swapped for a link mid-walk was not caught: %q", res.Stdout)
	}
	if got := guest("test -L /home/node/swap && echo swapped; ls /etc/settings.json 2>&1 | grep -c 'No such'; " + noStagedCopies); got != "swapped\n1\n0\n" {
		t.Fatalf("guest after the refusal: %q", got)
	}
}
