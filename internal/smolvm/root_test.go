package smolvm

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bot-bottle/bottle-controller/internal/testutil"
)

// standInPath is where the stand-in smolvm lives inside a test root. It must
// not exist in the test's own filesystem, so that running it at all shows
// the chroot happened.
const standInPath = "/opt/bottle-root-test/bin/smolvm"

// standIn answers each verb as smolvm would (enough for the driver to
// parse) and appends one line per call to /var/log/smolvm-calls: its
// working directory, the marker file only the root holds, its data dir and
// its argv. It is a /bin/sh script, and /bin/sh is a dynamically linked
// binary: each call goes through the root's own ELF interpreter and libc.
const standIn = `#!/bin/sh
read -r marker < /etc/bottle-root-marker
cwd=$(pwd -P)
echo "$cwd|$marker|$SMOLVM_DATA_DIR|$*" >> /var/log/smolvm-calls
case "$1 $2" in
"--version "*) echo "smolvm 1.9.3 ($marker)" ;;
"machine status") echo '{"name":"m1","state":"stopped","cpus":2,"memory_mib":1024}' ;;
"machine ls") echo '[{"name":"m1","state":"stopped"}]' ;;
"machine egress-events") echo '[{"timestamp":"2026-08-13T02:31:01Z","operation":"resolve","dest":"pypi.org"}]' ;;
"machine cp") read -r content < "$3"; echo "$content" > /var/log/copied-in ;;
"machine exec")
  echo "exec in $marker"
  case " $* " in *" -i "*) read -r line; echo "read $line" ;; esac ;;
esac
exit 0
`

// dynamicRoot builds a minimal root filesystem: /bin/sh with exactly the
// libraries ldd lists for it (and its ELF interpreter), the stand-in smolvm
// and a marker file. skip names files to leave out (to break the root).
func dynamicRoot(t *testing.T, skip ...string) (root, marker string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIP: chroot(2) needs root (CAP_SYS_CHROOT); run the tests as root to check --smolvm-root")
	}
	if _, err := os.Stat(standInPath); err == nil {
		t.Skipf("SKIP: %s exists on this machine, so running it would not show the chroot", standInPath)
	}
	sh, err := filepath.EvalSymlinks("/bin/sh")
	if err != nil {
		t.Skipf("SKIP: no /bin/sh to copy into the root: %v", err)
	}
	interp := elfInterpreter(t, sh)
	if interp == "" {
		t.Skipf("SKIP: %s is statically linked; this test needs a dynamically linked stand-in", sh)
	}
	out, err := exec.Command("ldd", sh).Output()
	if err != nil {
		t.Skipf("SKIP: ldd %s: %v", sh, err)
	}
	libs := lddPaths(string(out))
	if !slices.Contains(libs, interp) {
		libs = append(libs, interp)
	}
	root = t.TempDir()
	marker = fmt.Sprintf("root-%d", time.Now().UnixNano())
	files := map[string][]byte{"/etc/bottle-root-marker": []byte(marker + "\n"), standInPath: []byte(standIn)}
	for _, p := range append(libs, "/bin/sh") {
		src := p
		if p == "/bin/sh" {
			src = sh
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		files[p] = b
	}
	for p, b := range files {
		if slices.Contains(skip, p) {
			continue
		}
		writeInRoot(t, root, p, b, 0o755)
	}
	for _, d := range []string{"/var/log", "/var/lib/smolvm", "/run/files"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return root, marker
}

func writeInRoot(t *testing.T, root, p string, b []byte, mode os.FileMode) {
	t.Helper()
	dst := filepath.Join(root, p)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, mode); err != nil {
		t.Fatal(err)
	}
}

func elfInterpreter(t *testing.T, path string) string {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Skipf("SKIP: %s is not an ELF file: %v", path, err)
	}
	defer func() { _ = f.Close() }()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err != nil {
				t.Fatal(err)
			}
			return string(bytes.TrimRight(b, "\x00"))
		}
	}
	return ""
}

// lddPaths picks the absolute paths out of ldd's output ("libc.so.6 =>
// /lib/.../libc.so.6 (0x...)", "/lib64/ld-linux-x86-64.so.2 (0x...)").
func lddPaths(out string) []string {
	var paths []string
	for line := range strings.Lines(out) {
		for f := range strings.FieldsSeq(line) {
			if strings.HasPrefix(f, "/") {
				paths = append(paths, f)
				break
			}
		}
	}
	return paths
}

// rootCLI is a driver whose smolvm is the stand-in inside root.
func rootCLI(root string) *CLI {
	c := New(standInPath, "SMOLVM_DATA_DIR=/var/lib/smolvm")
	c.Root = root
	return c
}

type recordLauncher struct{ reqs []LaunchRequest }

func (l *recordLauncher) Launch(_ context.Context, req LaunchRequest) error {
	l.reqs = append(l.reqs, req)
	return nil
}

// Every verb of the driver runs smolvm inside the root: the dynamically
// linked stand-in is found and loaded there, runs with / as its working
// directory, reads the root's marker, and is given paths as they are in the
// root. The list of verbs is checked against the driver's methods, so a new
// verb cannot skip this test.
func TestEveryVerbRunsInRoot(t *testing.T) {
	root, marker := dynamicRoot(t)
	ctx := testContext(t)
	c := rootCLI(root)
	src := filepath.Join(root, "run/files/0")
	if err := os.WriteFile(src, []byte("file content\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	verbs := map[string]struct {
		call func() error
		// argv is how the call starts in the log (after the common fields).
		argv string
	}{
		"Version": {func() error {
			v, err := c.Version(ctx)
			if err == nil && v != "1.9.3" {
				err = fmt.Errorf("version %q", v)
			}
			return err
		}, "--version"},
		"CheckVersion": {func() error { _, err := c.CheckVersion(ctx); return err }, "--version"},
		"Create":       {func() error { return c.Create(ctx, MachineSpec{Name: "m1", Image: "node:22"}) }, "machine create --name m1"},
		"Start":        {func() error { return c.Start(ctx, "m1") }, "machine start --name m1"},
		"Stop":         {func() error { return c.Stop(ctx, "m1") }, "machine stop --name m1"},
		"Update":       {func() error { return c.Update(ctx, "m1", 2, 0) }, "machine update --name m1"},
		"Delete":       {func() error { return c.Delete(ctx, "m1") }, "machine delete --name m1"},
		// The stand-in answers every verb alike: the fork verbs are here
		// for where they run, not for what they do.
		"StartForkable": {func() error { return c.StartForkable(ctx, "m1") }, "machine start --name m1 --forkable"},
		"Fork":          {func() error { return c.Fork(ctx, ForkRequest{Golden: "m1", Name: "c1"}) }, "machine fork --golden m1 --name c1"},
		"ForkRelease":   {func() error { return c.ForkRelease(ctx, "c1", nil) }, "machine fork-release --name c1"},
		"DeleteCascade": {func() error { return c.DeleteCascade(ctx, "m1") }, "machine delete --name m1 --cascade"},
		"Status": {func() error {
			m, err := c.Status(ctx, "m1")
			if err == nil && m.State != StateStopped {
				err = fmt.Errorf("status %+v", m)
			}
			return err
		}, "machine status --name m1"},
		"List": {func() error {
			ms, err := c.List(ctx)
			if err == nil && len(ms) != 1 {
				err = fmt.Errorf("list %+v", ms)
			}
			return err
		}, "machine ls"},
		"EgressEvents": {func() error {
			es, err := c.EgressEvents(ctx, "m1", 5)
			if err == nil && (len(es) != 1 || es[0].Dest != "pypi.org") {
				err = fmt.Errorf("egress events %+v", es)
			}
			return err
		}, "machine egress-events --name m1 --limit 5 --json"},
		"Exec": {func() error {
			res, err := c.Exec(ctx, ExecRequest{Machine: "m1", Argv: []string{"true"}})
			// Exec always passes -i: the stand-in reads an empty stdin.
			if err == nil && res.Stdout != "exec in "+marker+"\nread \n" {
				err = fmt.Errorf("exec stdout %q", res.Stdout)
			}
			return err
		}, "machine exec --name m1"},
		"ExecInteractive": {func() error {
			// Both ways a session starts smolvm: a process group with
			// pipes, and a session leader on a pty.
			for _, tty := range []bool{false, true} {
				var out bytes.Buffer
				in := strings.NewReader("hello\n")
				code, err := c.ExecInteractive(ctx, ExecRequest{Machine: "m1", Argv: []string{"cat"}},
					Streams{Stdin: in, Stdout: &out, TTY: tty})
				if err != nil || code != 0 {
					return fmt.Errorf("tty=%v: exit %d, %v", tty, code, err)
				}
				if got := strings.ReplaceAll(out.String(), "\r", ""); !strings.Contains(got, "exec in "+marker+"\n") || !strings.Contains(got, "read hello\n") {
					return fmt.Errorf("tty=%v: session output %q", tty, out.String())
				}
			}
			return nil
		}, "machine exec --name m1"},
		"CopyIn": {func() error {
			if err := c.CopyIn(ctx, "m1", src, "/tmp/f", 0o600, -1, -1); err != nil {
				return err
			}
			if b, err := os.ReadFile(filepath.Join(root, "var/log/copied-in")); err != nil || string(b) != "file content\n" {
				return fmt.Errorf("smolvm read %q (%v) from the copy source", b, err)
			}
			return nil
		}, "machine cp /run/files/0 m1:/tmp/f"},
	}

	ctxType := reflect.TypeFor[context.Context]()
	ct := reflect.TypeFor[*CLI]()
	for i := range ct.NumMethod() {
		m := ct.Method(i)
		if m.Type.NumIn() > 1 && m.Type.In(1) == ctxType {
			if _, ok := verbs[m.Name]; !ok {
				t.Errorf("(*CLI).%s starts smolvm but is not in this test: add it", m.Name)
			}
		}
	}

	logPath := filepath.Join(root, "var/log/smolvm-calls")
	for name, v := range verbs {
		t.Run(name, func(t *testing.T) {
			_ = os.Remove(logPath)
			if err := v.call(); err != nil {
				t.Fatalf("%s in the root: %v", name, err)
			}
			b, err := os.ReadFile(logPath)
			if err != nil {
				t.Fatalf("%s: the stand-in recorded no call in the root: %v", name, err)
			}
			for line := range strings.Lines(string(b)) {
				want := "/|" + marker + "|/var/lib/smolvm|" + v.argv
				if !strings.HasPrefix(line, want) {
					t.Errorf("%s: call %q, want it to start with %q (cwd | root marker | data dir | argv)", name, line, want)
				}
			}
		})
	}

	t.Run("StartThroughALauncher", func(t *testing.T) {
		// The status check runs in the root; the launcher is handed the
		// paths smolvm sees there (host paths), never the agent's view.
		l := &recordLauncher{}
		lc := rootCLI(root)
		lc.Launcher = l
		_ = os.Remove(logPath)
		if err := lc.Start(ctx, "m1"); err != nil {
			t.Fatal(err)
		}
		want := LaunchRequest{Machine: "m1", State: StateStopped, Argv: []string{standInPath, "machine", "start", "--name", "m1"},
			Env: []string{"SMOLVM_DATA_DIR=/var/lib/smolvm"}, CPUs: 2, MemoryMiB: 1024, StartTimeout: DefaultTimeouts().Start}
		if len(l.reqs) != 1 || !reflect.DeepEqual(l.reqs[0], want) {
			t.Fatalf("launch requests %+v, want %+v", l.reqs, want)
		}
		if b, err := os.ReadFile(logPath); err != nil || !strings.HasPrefix(string(b), "/|"+marker+"|/var/lib/smolvm|machine status --name m1") {
			t.Fatalf("status before the launch did not run in the root: %q %v", b, err)
		}
	})
}

// A copy source outside the root is refused before smolvm runs: smolvm
// would not see it (or would see another file at that path).
func TestCopyOutsideRootRefused(t *testing.T) {
	c := &CLI{Path: "/nonexistent/smolvm", Root: t.TempDir()}
	ctx := testContext(t)
	outside := filepath.Join(t.TempDir(), "f")
	err := c.CopyIn(ctx, "m1", outside, "/tmp/f", 0, -1, -1)
	var e *Error
	if !errors.As(err, &e) || e.Class != ClassUsage || !strings.Contains(e.Message, "outside the smolvm root") {
		t.Errorf("copy outside the root: %v, want a usage error naming the root", err)
	}
}

func TestInRoot(t *testing.T) {
	for _, tc := range []struct {
		root, p, want string
		ok            bool
	}{
		{"", "/tmp/x", "/tmp/x", true},
		{"/host", "/host/run/files/0", "/run/files/0", true},
		{"/host", "/host", "/", true},
		{"/host/", "/host/a", "/a", true},
		{"/host", "/hostile/a", "", false},
		{"/host", "/tmp/x", "", false},
		{"/host", "/host/../etc/passwd", "", false},
	} {
		got, ok := inRoot(tc.root, tc.p)
		if got != tc.want || ok != tc.ok {
			t.Errorf("InRoot(%q, %q) = %q, %v; want %q, %v", tc.root, tc.p, got, ok, tc.want, tc.ok)
		}
	}
}

func TestCheckRoot(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ root, wantErr string }{
		{"", ""},
		{dir, ""},
		{"host", "not an absolute path"},
		{filepath.Join(dir, "missing"), "no such file or directory"},
		{file, "not a directory"},
	} {
		err := CheckRoot(tc.root)
		if (tc.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("CheckRoot(%q) = %v, want %q", tc.root, err, tc.wantErr)
		}
	}
}

// A root that cannot run smolvm says why, in the error the version check at
// start turns into SmolvmUnavailable.
func TestBrokenRootIsExplained(t *testing.T) {
	root, _ := dynamicRoot(t)
	interp := elfInterpreter(t, "/bin/sh")
	ctx := testContext(t)
	for _, tc := range []struct {
		name    string
		cli     func(t *testing.T) *CLI
		wantMsg string
	}{
		{"missing root", func(t *testing.T) *CLI { return rootCLI(filepath.Join(root, "missing")) }, "smolvm root: stat"},
		{"missing smolvm", func(t *testing.T) *CLI {
			c := rootCLI(root)
			c.Path = "/opt/none/smolvm"
			return c
		}, `smolvm not found at "/opt/none/smolvm" in the root`},
		{"relative path", func(t *testing.T) *CLI {
			c := rootCLI(root)
			c.Path = "smolvm"
			return c
		}, "must be absolute"},
		{"no ELF interpreter", func(t *testing.T) *CLI {
			r, _ := dynamicRoot(t, interp)
			return rootCLI(r)
		}, "or its ELF interpreter is missing there"},
		{"no libc", func(t *testing.T) *CLI {
			r, _ := dynamicRoot(t, libcPath(t))
			return rootCLI(r)
		}, "smolvm cannot start: error while loading shared libraries: libc.so"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.cli(t).CheckVersion(ctx)
			var e *Error
			if !errors.As(err, &e) || e.Class != ClassNotInstalled || !strings.Contains(e.Message, tc.wantMsg) {
				t.Fatalf("CheckVersion: %v, want not_installed with %q", err, tc.wantMsg)
			}
		})
	}
}

func libcPath(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("ldd", "/bin/sh").Output()
	if err != nil {
		t.Skip(err)
	}
	for _, p := range lddPaths(string(out)) {
		if strings.HasPrefix(filepath.Base(p), "libc.so") {
			return p
		}
	}
	t.Skip("SKIP: /bin/sh does not link libc.so")
	return ""
}

// Without CAP_SYS_CHROOT (an agent not running as root) the chroot fails
// before smolvm runs; the version check names the capability. The
// capability is dropped on one locked thread only, which is never handed
// back to the Go scheduler.
func TestChrootWithoutCapability(t *testing.T) {
	root, _ := dynamicRoot(t)
	ctx := testContext(t)
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		if err := testutil.DropEffectiveCap(testutil.CapSysChroot); err != nil {
			errc <- fmt.Errorf("setup: %w", err)
			return
		}
		_, err := rootCLI(root).CheckVersion(ctx)
		errc <- err
	}()
	err := <-errc
	var e *Error
	if !errors.As(err, &e) || e.Class != ClassNotInstalled || !strings.Contains(e.Message, "needs CAP_SYS_CHROOT") ||
		!errors.Is(err, syscall.EPERM) {
		t.Fatalf("CheckVersion without CAP_SYS_CHROOT: %v", err)
	}
}
