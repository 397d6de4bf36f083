package smolvm

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

func TestExecExitCodesAndUsers(t *testing.T) {
	c := newSim(t)
	runningMachine(t, c, "codes")
	for _, tt := range []struct {
		script string
		code   int
	}{
		{"exit 0", 0}, {"exit 3", 3}, {"kill -9 $$", 137},
		// A guest printing smolvm-looking text is still the guest's result.
		{"echo 'Error: Cannot find module x' >&2; exit 1", 1},
		{"echo 'Error: vm not found: codes' >&2; exit 2", 2},
		{"exit 124", 124}, // the guest's 124, with --timeout given, is indistinguishable: see below
	} {
		res, err := c.Exec(testContext(t), ExecRequest{Machine: "codes", User: "node", Script: tt.script, Timeout: time.Minute})
		if tt.code == 124 {
			if !IsTimeout(err) {
				t.Fatalf("exit 124 with --timeout must read as a timeout: %v", err)
			}
			continue
		}
		if err != nil || res.ExitCode != tt.code {
			t.Fatalf("%q: code %d err %v, want %d", tt.script, res.ExitCode, err, tt.code)
		}
	}
	c.DefaultExecTimeout = 0
	if res, err := c.Exec(testContext(t), ExecRequest{Machine: "codes", Script: "exit 124"}); err != nil || res.ExitCode != 124 {
		t.Fatalf("without --timeout 124 is the guest's: %+v %v", res, err)
	}
	res := mustExec(t, c, ExecRequest{Machine: "codes", Argv: []string{"id", "-un"}})
	if res.Stdout != "root\n" {
		t.Fatalf("default user: %q", res.Stdout)
	}
	res = mustExec(t, c, ExecRequest{Machine: "codes", User: "root", Script: `echo "$HOME $USER"`})
	if res.Stdout != "/root root\n" {
		t.Fatalf("root login: %q", res.Stdout)
	}
}

// Values with every shell metacharacter reach the guest byte for byte, in
// both modes and as argv.
func TestExecEnvAndArgvQuoting(t *testing.T) {
	c := newSim(t)
	runningMachine(t, c, "quoting")
	nasty := "it's \"$HOME\" `id` $(id) \\n\nline2 ; rm -rf / #-- é"
	env := []EnvVar{{"NASTY", nasty}, {"EMPTY", ""}}
	for _, mode := range []ExecMode{ModeLogin, ModeDirect} {
		res := mustExec(t, c, ExecRequest{Machine: "quoting", User: "node", Mode: mode, Env: env,
			Argv: []string{"printf", "%s|%s|%s", nasty, "-n", "$EMPTY"}})
		if want := nasty + "|-n|$EMPTY"; res.Stdout != want {
			t.Fatalf("mode %d argv: %q, want %q", mode, res.Stdout, want)
		}
		res = mustExec(t, c, ExecRequest{Machine: "quoting", User: "node", Mode: mode, Env: env,
			Script: `printf '%s|%s|' "$NASTY" "${EMPTY-unset}"; id -un`})
		if want := nasty + "||node\n"; res.Stdout != want {
			t.Fatalf("mode %d env: %q, want %q", mode, res.Stdout, want)
		}
	}
	res := mustExec(t, c, ExecRequest{Machine: "quoting", Env: env, Script: `printf %s "$NASTY"`})
	if res.Stdout != nasty {
		t.Fatalf("root -e env: %q", res.Stdout)
	}
}

func TestExecWorkdirAndStdin(t *testing.T) {
	c := newSim(t)
	runningMachine(t, c, "wd")
	for _, mode := range []ExecMode{ModeLogin, ModeDirect} {
		res := mustExec(t, c, ExecRequest{Machine: "wd", User: "node", Mode: mode, Workdir: "/workspace", Argv: []string{"pwd"}})
		if res.Stdout != "/workspace\n" {
			t.Fatalf("mode %d workdir: %q", mode, res.Stdout)
		}
	}
	res := mustExec(t, c, ExecRequest{Machine: "wd", User: "node", Script: "tr a-z A-Z", Stdin: strings.NewReader("hello\n")})
	if res.Stdout != "HELLO\n" {
		t.Fatalf("stdin: %q", res.Stdout)
	}
	res, err := c.Exec(testContext(t), ExecRequest{Machine: "wd", User: "node", Script: "cd /nonexistent"})
	if err != nil || res.ExitCode == 0 || !strings.Contains(res.Stderr, "nonexistent") {
		t.Fatalf("failing cd: %+v %v", res, err)
	}
}

// A command printing 100 MB keeps only the tail and counts everything.
func TestExecOutputIsBounded(t *testing.T) {
	c := newSim(t)
	runningMachine(t, c, "big")
	c.OutputLimit = 64 << 10
	const n = 100_000_000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	res := mustExec(t, c, ExecRequest{Machine: "big",
		Script: fmt.Sprintf(`head -c %d /dev/zero | tr '\0' a; echo END; head -c 3000000 /dev/zero >&2; echo ERR-END >&2`, n)})
	runtime.ReadMemStats(&after)
	if res.StdoutBytes != n+4 || res.StderrBytes != 3000000+8 || !res.Truncated {
		t.Fatalf("totals: %d %d truncated=%v", res.StdoutBytes, res.StderrBytes, res.Truncated)
	}
	if len(res.Stdout) != 64<<10 || !strings.HasSuffix(res.Stdout, "aaaaEND\n") ||
		len(res.Stderr) != 64<<10 || !strings.HasSuffix(res.Stderr, "\x00\x00ERR-END\n") {
		t.Fatalf("tails: %d bytes ...%q / %d bytes ...%q", len(res.Stdout), res.Stdout[len(res.Stdout)-10:],
			len(res.Stderr), res.Stderr[len(res.Stderr)-10:])
	}
	if grown := after.TotalAlloc - before.TotalAlloc; grown > 16<<20 {
		t.Fatalf("capturing 100 MB allocated %d bytes", grown)
	}
}

// A request's OutputLimit overrides the CLI's for that exec only.
func TestExecRequestOutputLimit(t *testing.T) {
	c := newSim(t)
	runningMachine(t, c, "limited")
	res := mustExec(t, c, ExecRequest{Machine: "limited", OutputLimit: 10, Script: "echo 0123456789abcdef; echo short >&2"})
	if res.Stdout != "789abcdef\n" {
		t.Fatalf("stdout tail %q", res.Stdout)
	}
	if res.Stderr != "short\n" || res.StdoutBytes != 17 || !res.Truncated {
		t.Fatalf("stderr %q, stdout bytes %d, truncated %v", res.Stderr, res.StdoutBytes, res.Truncated)
	}
	if res := mustExec(t, c, ExecRequest{Machine: "limited", Script: "echo 0123456789abcdef"}); res.Stdout != "0123456789abcdef\n" || res.Truncated {
		t.Fatalf("without a request limit the CLI's applies: %q truncated=%v", res.Stdout, res.Truncated)
	}
}

// A hung smolvm (SMOLVM_SIM_HANG) and a hung guest (sleep) are both killed
// by the context within a second of its deadline, children included.
func TestExecKilledAtDeadline(t *testing.T) {
	t.Run("hung smolvm", func(t *testing.T) {
		c := newSim(t, "SMOLVM_SIM_HANG=exec")
		runningMachine(t, c, "hang-sim-7f3a")
		assertKilledAtDeadline(t, c, ExecRequest{Machine: "hang-sim-7f3a", Argv: []string{"true"}}, "hang-sim-7f3a")
	})
	t.Run("hung guest", func(t *testing.T) {
		c := newSim(t)
		runningMachine(t, c, "hang-guest")
		marker := "hang-marker-91c2"
		// One foreground and one background sleep, both tagged via argv[0].
		script := fmt.Sprintf(`(exec -a %[1]s-bg sleep 1000) & exec -a %[1]s-fg sleep 1000`, marker)
		assertKilledAtDeadline(t, c, ExecRequest{Machine: "hang-guest", User: "node", Argv: []string{"bash", "-c", script}}, marker)
	})
	t.Run("hung interactive", func(t *testing.T) {
		c := newSim(t)
		runningMachine(t, c, "hang-tty")
		marker := "hang-marker-tty-5d1e"
		ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
		defer cancel()
		deadline, _ := ctx.Deadline()
		_, err := c.ExecInteractive(ctx, ExecRequest{Machine: "hang-tty", User: "node",
			Argv: []string{"bash", "-c", "exec -a " + marker + " sleep 1000"}}, Streams{TTY: true, Stdout: io.Discard})
		if late := time.Since(deadline); !IsTimeout(err) || late > time.Second {
			t.Fatalf("err %v, returned %v after the deadline", err, late)
		}
		waitNoProcesses(t, marker, 2*time.Second)
	})
}

func assertKilledAtDeadline(t *testing.T, c *CLI, req ExecRequest, marker string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	deadline, _ := ctx.Deadline()
	_, err := c.Exec(ctx, req)
	late := time.Since(deadline)
	if !IsTimeout(err) {
		t.Fatalf("err = %v, want ClassTimeout", err)
	}
	if late > time.Second {
		t.Fatalf("returned %v after the deadline", late)
	}
	waitNoProcesses(t, marker, 2*time.Second)
}

// Request.Timeout goes to smolvm as --timeout; smolvm's exit 124 is ClassTimeout.
func TestExecRequestTimeout(t *testing.T) {
	c := newSim(t)
	runningMachine(t, c, "tmo")
	start := time.Now()
	res, err := c.Exec(testContext(t), ExecRequest{Machine: "tmo", Script: "echo started; exec sleep 1000", Timeout: time.Second})
	if !IsTimeout(err) || res.ExitCode != 124 || res.Stdout != "started\n" {
		t.Fatalf("res %+v err %v", res, err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("took %v", d)
	}
}

func TestFaultInjectionThroughDriver(t *testing.T) {
	ctx := testContext(t)
	c := newSim(t, "SMOLVM_SIM_FAIL=start=2,exec=1")
	if err := c.Create(ctx, MachineSpec{Name: "flaky", Image: "i"}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		err := c.Start(ctx, "flaky")
		var se *Error
		if !asError(err, &se) || se.Class != ClassOther || se.ExitCode != 1 || !strings.Contains(se.Message, "simulated fault") {
			t.Fatalf("start %d: %v", i, err)
		}
	}
	if err := c.Start(ctx, "flaky"); err != nil {
		t.Fatalf("third start: %v", err)
	}
	// An agent failure in a machine that still runs cannot be told from a
	// guest printing the same line (confirmExecFailure): it is the
	// command's exit 1.
	if res, err := c.Exec(ctx, ExecRequest{Machine: "flaky", Argv: []string{"true"}}); err != nil || res.ExitCode != 1 ||
		!strings.Contains(res.Stderr, "simulated fault") {
		t.Fatalf("first exec: %+v %v", res, err)
	}
	mustExec(t, c, ExecRequest{Machine: "flaky", Argv: []string{"true"}})

	nokvm := newSim(t, "SMOLVM_SIM_NO_KVM=1")
	if err := nokvm.Create(ctx, MachineSpec{Name: "nokvm", Image: "i"}); err != nil {
		t.Fatal(err)
	}
	if err := nokvm.Start(ctx, "nokvm"); ClassOf(err) != ClassKVMUnavailable {
		t.Fatalf("start without KVM: %v", err)
	}
	if m, err := nokvm.Status(ctx, "nokvm"); err != nil || m.State != StateCreated {
		t.Fatalf("status without KVM: %+v %v", m, err)
	}
	if err := nokvm.Delete(ctx, "nokvm"); err != nil {
		t.Fatal(err)
	}
}

// An interactive TTY exec sees the size the driver sets on its host pty,
// and a resize sent before input is in effect when the input arrives.
func TestExecInteractiveTTYResize(t *testing.T) {
	c := newSim(t)
	runningMachine(t, c, "tty")
	stdinR, stdinW := io.Pipe()
	out := newWatchBuffer()
	resize := make(chan TermSize)
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		code, err := c.ExecInteractive(testContext(t), ExecRequest{Machine: "tty", User: "node",
			Script: `stty size; [ -t 0 ] && echo is-a-tty; IFS= read -r line; stty size; echo "got-$line"; exit 7`},
			Streams{Stdin: stdinR, Stdout: out, TTY: true, Resize: resize, InitialSize: TermSize{Width: 90, Height: 30}})
		done <- result{code, err}
	}()
	out.waitFor(t, "30 90")
	out.waitFor(t, "is-a-tty")
	resize <- TermSize{Width: 132, Height: 43}
	if _, err := stdinW.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.code != 7 {
		t.Fatalf("code %d err %v; output %q", r.code, r.err, out.String())
	}
	if !strings.Contains(out.String(), "43 132") || !strings.Contains(out.String(), "got-go") {
		t.Fatalf("output %q", out.String())
	}
}

func TestExecInteractivePipes(t *testing.T) {
	c := newSim(t)
	runningMachine(t, c, "pipes")
	var stdout, stderr bytes.Buffer
	code, err := c.ExecInteractive(testContext(t), ExecRequest{Machine: "pipes", User: "node", Mode: ModeDirect,
		Argv: []string{"sh", "-c", "tr a-z A-Z; echo oops >&2; exit 5"}},
		Streams{Stdin: strings.NewReader("abc\n"), Stdout: &stdout, Stderr: &stderr})
	if err != nil || code != 5 || stdout.String() != "ABC\n" || stderr.String() != "oops\n" {
		t.Fatalf("code %d err %v stdout %q stderr %q", code, err, stdout.String(), stderr.String())
	}
	if err := c.Stop(testContext(t), "pipes"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ExecInteractive(testContext(t), ExecRequest{Machine: "pipes", Argv: []string{"true"}}, Streams{TTY: true}); !IsNotRunning(err) {
		t.Fatalf("tty exec on a stopped machine: %v", err)
	}
}

func TestMetricsRecorded(t *testing.T) {
	c := newSim(t)
	ctx := testContext(t)
	_ = c.Delete(ctx, "absent")
	_, _ = c.List(ctx)
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sawDuration, sawFailure bool
	for _, f := range families {
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			switch f.GetName() {
			case "smolvm_command_duration_seconds":
				sawDuration = sawDuration || (labels["verb"] == "list" && m.GetHistogram().GetSampleCount() > 0)
			case "smolvm_command_failures_total":
				sawFailure = sawFailure || (labels["verb"] == "delete" && labels["class"] == "not_found" && m.GetCounter().GetValue() > 0)
			}
		}
	}
	if !sawDuration || !sawFailure {
		t.Fatalf("metrics missing: duration=%v failure=%v", sawDuration, sawFailure)
	}
}

func asError(err error, target **Error) bool {
	e, ok := err.(*Error)
	if ok {
		*target = e
	}
	return ok
}

// watchBuffer is an io.Writer whose content tests can wait on.
type watchBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func newWatchBuffer() *watchBuffer { return &watchBuffer{changed: make(chan struct{})} }

func (w *watchBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	close(w.changed)
	w.changed = make(chan struct{})
	return len(p), nil
}

func (w *watchBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func (w *watchBuffer) waitFor(t *testing.T, s string) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		w.mu.Lock()
		ok, ch := strings.Contains(w.buf.String(), s), w.changed
		w.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-timeout:
			t.Fatalf("output never contained %q: %q", s, w.String())
		}
	}
}

// A client that never closes stdin must not keep a finished session open:
// os/exec would wait for its stdin copier forever.
func TestExecInteractiveEndsWithOpenStdin(t *testing.T) {
	c := newSim(t)
	runningMachine(t, c, "openstdin")
	stdin, keepOpen := io.Pipe()
	defer func() { _ = keepOpen.Close() }()
	done := make(chan error, 1)
	go func() {
		code, err := c.ExecInteractive(testContext(t), ExecRequest{Machine: "openstdin", Argv: []string{"sh", "-c", "exit 3"}},
			Streams{Stdin: stdin, Stdout: io.Discard})
		if err == nil && code != 3 {
			err = fmt.Errorf("exit code %d, want 3", code)
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("ExecInteractive still waits for stdin after the command exited")
	}
}

// A cancelled exec (the step was deleted or edited) returns what the command
// printed so far, classified ClassCanceled, and kills the command.
func TestExecCancelledKeepsOutput(t *testing.T) {
	c := newSim(t)
	runningMachine(t, c, "cancel")
	// A unique sleep to find the guest process by (the script is not on
	// any command line).
	sleep := fmt.Sprintf("sleep 1000.%09d", time.Now().Nanosecond())
	ctx, cancel := context.WithCancel(testContext(t))
	done := make(chan struct{})
	var res ExecResult
	var err error
	go func() {
		defer close(done)
		res, err = c.Exec(ctx, ExecRequest{Machine: "cancel", User: "node",
			Script: "echo one; echo two >&2; exec " + sleep})
	}()
	// Wait until the guest runs, then cancel.
	deadline := time.Now().Add(30 * time.Second)
	for len(processesMatching(sleep)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the command never started")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	if ClassOf(err) != ClassCanceled || res.Stdout != "one\n" || res.Stderr != "two\n" || res.ExitCode != -1 {
		t.Fatalf("res %+v err %v", res, err)
	}
	waitNoProcesses(t, sleep, 2*time.Second)
}
