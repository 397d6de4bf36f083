package smolvm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// DefaultExecTimeout is what New sets as CLI.DefaultExecTimeout: every
// captured exec gets a timeout, even when the caller forgot one.
const DefaultExecTimeout = 10 * time.Minute

// waitDelay bounds how long Wait may block on output pipes after the process
// group was killed (a guest grandchild could hold a pipe).
const waitDelay = 500 * time.Millisecond

// execGrace is how long after smolvm's own --timeout the driver's context
// kill fires: smolvm should exit 124 first and report normally.
const execGrace = 5 * time.Second

// maxJSONOutput bounds the stdout of status/ls; beyond it the output cannot
// be smolvm's JSON.
const maxJSONOutput = 16 << 20

// CLI runs the smolvm binary. The zero value runs "smolvm" from PATH with no
// default exec timeout; New sets the defaults.
type CLI struct {
	// Path of the smolvm binary (a name is looked up in PATH).
	Path string
	// Env is added to the controller's environment for every invocation,
	// e.g. "SMOLVM_DATA_DIR=/var/lib/smolvm".
	Env []string
	// DefaultExecTimeout applies to Exec when the request has no Timeout.
	// Zero means none.
	DefaultExecTimeout time.Duration
	// OutputLimit is how many bytes of each stream Exec keeps (the tail).
	// Zero means DefaultOutputLimit.
	OutputLimit int
	// Timeouts bound every call but Exec; zero fields take the defaults.
	Timeouts Timeouts
	// Launcher runs `machine start`; nil runs it as the agent's child.
	Launcher Launcher
	// MaxConnsPerMachine bounds the execs, sessions and copies run at once
	// in one machine (connlimit.go); zero means DefaultMaxConnsPerMachine.
	// Callers beyond it wait for a slot.
	MaxConnsPerMachine int
	conns              connLimiter

	// Root, when set, is the directory every smolvm process is chrooted
	// into (root.go): Path, the paths in Env and copy paths then name files
	// inside it. Empty runs smolvm in the agent's own filesystem.
	Root string
}

// New returns a CLI for the binary at path ("" means "smolvm" from PATH),
// with extra environment entries ("K=V") and the package defaults.
func New(path string, env ...string) *CLI {
	if path == "" {
		path = "smolvm"
	}
	return &CLI{Path: path, Env: env, DefaultExecTimeout: DefaultExecTimeout, OutputLimit: DefaultOutputLimit,
		Timeouts: DefaultTimeouts()}
}

func (c *CLI) path() string {
	if c.Path == "" {
		return "smolvm"
	}
	return c.Path
}

func (c *CLI) outputLimit() int {
	if c.OutputLimit <= 0 {
		return DefaultOutputLimit
	}
	return c.OutputLimit
}

// command prepares smolvm with argv; every smolvm process the driver starts
// is prepared here, so this is the one place that applies Root. The process
// gets its own process group, and when ctx ends the whole group is
// SIGKILLed: smolvm, and anything it started that did not leave the group,
// die together. smolvm also dies with the agent (Pdeathsig): outside a
// container nothing else would stop a step of an agent that is gone, and
// the next agent would run it again beside it. Pdeathsig follows the
// forking thread, so startLocked keeps that thread until the wait.
func (c *CLI) command(ctx context.Context, argv []string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, c.path(), argv...)
	cmd.Env = append(os.Environ(), c.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if c.Root != "" {
		// execve resolves the path inside the root after the chroot, not
		// os/exec's LookPath in the agent's PATH before it.
		cmd.Path, cmd.Err = c.path(), nil
		if !filepath.IsAbs(c.path()) {
			cmd.Err = errRelativeInRoot
		}
		cmd.SysProcAttr.Chroot = c.Root
		// chroot(2) leaves the working directory outside the root, where a
		// relative path would still reach the agent's files.
		cmd.Dir = "/"
	}
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid) }
	cmd.WaitDelay = waitDelay
	return cmd
}

// asSessionLeader makes cmd the leader of a new session whose controlling
// terminal is its stdin (a pty), keeping everything command set, the root
// included. setsid also makes it a group leader, which the context kill
// targets.
func asSessionLeader(cmd *exec.Cmd) {
	attr := *cmd.SysProcAttr
	attr.Setpgid = false
	attr.Setsid, attr.Setctty, attr.Ctty = true, true, 0
	cmd.SysProcAttr = &attr
}

// killGroup kills the process group led by pid (setpgid and setsid both make
// the child a group leader) and the process itself in case it left it.
func killGroup(pid int) error {
	gerr := syscall.Kill(-pid, syscall.SIGKILL)
	perr := syscall.Kill(pid, syscall.SIGKILL)
	if gerr != nil && perr != nil && !errors.Is(perr, syscall.ESRCH) {
		return perr
	}
	return nil
}

// outcome is what one smolvm invocation did.
type outcome struct {
	exitCode   int // -1 when killed or never started
	stderrHead string
	// stderrTail is the end of stderr, where smolvm prints its error.
	stderrTail string
	startErr   error
	ctxErr     error
}

// runCmd starts and waits for cmd, distinguishing "could not start",
// "killed by its context" and "exited".
func runCmd(ctx context.Context, cmd *exec.Cmd, stderr *tailBuffer) outcome {
	// Pdeathsig fires when the forking thread exits: keep it until the
	// wait (see command).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cmd.Start(); err != nil {
		return outcome{exitCode: -1, startErr: err}
	}
	return waitCmd(ctx, cmd, stderr)
}

func waitCmd(ctx context.Context, cmd *exec.Cmd, stderr *tailBuffer) outcome {
	_ = cmd.Wait()
	o := outcome{exitCode: -1}
	if cmd.ProcessState != nil {
		o.exitCode = cmd.ProcessState.ExitCode()
	}
	if stderr != nil {
		o.stderrHead = stderr.Head()
		o.stderrTail = stderr.Tail()
	}
	if err := ctx.Err(); err != nil && (o.exitCode != 0 || cmd.ProcessState == nil) {
		o.ctxErr = err
	}
	return o
}

// failure turns an outcome into the driver's error, or nil on exit 0. It
// never quotes argv: values (env, scripts) stay out of errors and logs.
func (c *CLI) failure(verb string, o outcome) *Error {
	switch {
	case o.startErr != nil:
		return c.startFailure(verb, o.startErr)
	case o.ctxErr != nil:
		class, what := ClassTimeout, "deadline exceeded; smolvm and its children were killed"
		if errors.Is(o.ctxErr, context.Canceled) {
			class, what = ClassCanceled, "canceled; smolvm and its children were killed"
		}
		return &Error{Verb: verb, Class: class, ExitCode: -1, Message: what, Err: o.ctxErr}
	case o.exitCode == 0:
		return nil
	case o.exitCode == 2 && isUsageOutput(o.stderrHead):
		return &Error{Verb: verb, Class: ClassUsage, ExitCode: 2, Message: usageMessage(o.stderrHead)}
	}
	if msg, ok := smolvmErrorLine(o.stderrHead, o.stderrTail); ok {
		return &Error{Verb: verb, Class: classifyMessage(msg), ExitCode: o.exitCode, Message: msg}
	}
	if o.exitCode == 2 {
		return &Error{Verb: verb, Class: ClassUsage, ExitCode: 2, Message: "smolvm rejected the command line"}
	}
	if msg, ok := loaderErrorMessage(o.stderrHead); ok {
		return &Error{Verb: verb, Class: ClassNotInstalled, ExitCode: o.exitCode, Message: msg}
	}
	return &Error{Verb: verb, Class: ClassOther, ExitCode: o.exitCode,
		Message: fmt.Sprintf("smolvm exited with status %d without an error message", o.exitCode)}
}

// isUsageOutput recognises clap's usage error (a line starting with
// lowercase "error: " plus a Usage line), which a guest command exiting 2
// does not print. A line may precede it: smolvm notes a renamed executable
// before parsing (smolvm:src/main.rs:149-156).
func isUsageOutput(stderr string) bool {
	return (strings.HasPrefix(stderr, "error: ") || strings.Contains(stderr, "\nerror: ")) &&
		strings.Contains(stderr, "Usage: smolvm")
}

var unexpectedFlag = regexp.MustCompile(`^error: unexpected argument '(-[A-Za-z0-9-]+)' found`)

// usageMessage keeps clap's text only when it names one of our flags (the
// usual symptom of a renamed flag): other usage texts quote values.
func usageMessage(stderr string) string {
	if m := unexpectedFlag.FindStringSubmatch(stderr[max(0, strings.Index(stderr, "error: ")):]); m != nil {
		return fmt.Sprintf("smolvm rejected the command line: unexpected argument '%s'", m[1])
	}
	return "smolvm rejected the command line"
}

// run executes a non-exec verb within its deadline and returns its stdout.
func (c *CLI) run(ctx context.Context, verb string, argv []string) (string, error) {
	return c.runSized(ctx, verb, argv, 0)
}

// runSized is run for a verb whose deadline grows with bytes (a copy).
func (c *CLI) runSized(ctx context.Context, verb string, argv []string, bytes int64) (out string, err error) {
	return c.runWithin(ctx, verb, argv, c.Timeouts.deadline(verb, bytes))
}

// runWithin is run with an explicit deadline.
func (c *CLI) runWithin(ctx context.Context, verb string, argv []string, limit time.Duration) (out string, err error) {
	start := time.Now()
	defer func() { observe(verb, time.Since(start), err) }()

	runCtx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	stdout := newTailBuffer(maxJSONOutput)
	stderr := newTailBuffer(headLen)
	cmd := c.command(runCtx, argv)
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	o := runCmd(runCtx, cmd, stderr)
	if o.ctxErr != nil && ctx.Err() == nil {
		// The verb's own deadline, not the caller's context.
		return "", &Error{Verb: verb, Class: ClassTimeout, ExitCode: -1, Err: context.DeadlineExceeded,
			Message: fmt.Sprintf("no answer within its deadline of %s; smolvm and its children were killed", limit)}
	}
	if e := c.failure(verb, o); e != nil {
		return "", e
	}
	if stdout.Truncated() {
		return "", &Error{Verb: verb, Class: ClassOther, ExitCode: 0,
			Message: fmt.Sprintf("smolvm printed more than %d bytes", maxJSONOutput)}
	}
	return stdout.Tail(), nil
}

// precheckFailed records a request rejected before any process ran.
func precheckFailed(verb string, err error) error {
	observe(verb, 0, err)
	return err
}
