package smolvm

import (
	"context"
	"io"
	"strings"
	"sync"
	"time"
)

// ExecMode says how a command is run as ExecRequest.User.
type ExecMode int

const (
	// ModeLogin: `runuser -l USER -c SCRIPT` — a login shell with the user's
	// HOME, USER and profile. Env becomes `export` lines in the script.
	ModeLogin ExecMode = iota
	// ModeDirect: `runuser -u USER -- ARGV...` with HOME/USER/LOGNAME and Env
	// passed by smolvm's -e. No login shell, hence no PAM/profile hang.
	ModeDirect
)

// EnvVar is one guest environment variable. Name must be a shell identifier.
type EnvVar struct{ Name, Value string }

// ExecRequest describes one command in a machine. Exactly one of Script and
// Argv must be set.
type ExecRequest struct {
	Machine string
	// User to run as; "" runs as smolvm's default (root, or the image USER)
	// without runuser.
	User string
	// Script is a POSIX shell script (run by the login shell in ModeLogin,
	// by /bin/sh -c otherwise).
	Script string
	// Argv is run as-is; in ModeLogin it is quoted into `exec ARGV`.
	Argv    []string
	Env     []EnvVar
	Workdir string
	// Home is HOME for ModeDirect; "" means /root for root, /home/USER else.
	Home string
	// Timeout is passed to smolvm (--timeout) and enforced by the driver a
	// few seconds later. Zero means CLI.DefaultExecTimeout for Exec and none
	// for ExecInteractive.
	Timeout time.Duration
	Mode    ExecMode
	// Stdin, when set, is forwarded to the guest (smolvm -i).
	Stdin io.Reader
	// OutputLimit is how many bytes of each stream Exec keeps (the tail);
	// zero means CLI.OutputLimit.
	OutputLimit int
	// Output, when set, receives stdout and stderr interleaved in the order
	// they arrive, while the command runs (Exec asks smolvm to --stream).
	// Its errors are ignored: whoever keeps the log must not fail the step.
	Output io.Writer

	// Set by withSecretEnv for a login shell: carriers runuser keeps, and
	// the script lines exporting the real names from them.
	loginWhitelist []string
	loginPrelude   string
}

// ExecResult is what a guest command did. Stdout/Stderr are the last
// OutputLimit bytes of each stream; the *Bytes fields count everything.
type ExecResult struct {
	ExitCode                 int
	Stdout, Stderr           string
	StdoutBytes, StderrBytes int64
	Truncated                bool
	Duration                 time.Duration
}

// Exec runs a command in a machine and captures bounded output. The guest's
// exit code is a result, not an error: err is non-nil only when smolvm itself
// failed (classified, e.g. ClassNotRunning), the request was invalid, or the
// command timed out (ClassTimeout; smolvm's exit 124 or the context deadline).
// On error the result still holds whatever was captured.
func (c *CLI) Exec(ctx context.Context, req ExecRequest) (res ExecResult, err error) {
	start := time.Now()
	defer func() { observe(verbExec, time.Since(start), err) }()

	timeout := req.Timeout
	if timeout == 0 {
		timeout = c.DefaultExecTimeout
	}
	argv, payload, err := execArgv(verbExec, req, timeout, false)
	if err != nil {
		return ExecResult{ExitCode: -1}, err
	}
	release, err := c.connection(ctx, verbExec, req.Machine, false)
	if err != nil {
		return ExecResult{ExitCode: -1}, err
	}
	defer release()
	runCtx, cancel := withExecTimeout(ctx, timeout)
	defer cancel()

	limit := req.OutputLimit
	if limit <= 0 {
		limit = c.outputLimit()
	}
	stdout, stderr := newTailBuffer(limit), newTailBuffer(limit)
	cmd := c.command(runCtx, argv)
	cmd.Stdin = execStdin(payload, req.Stdin)
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	if req.Output != nil {
		out := &lockedWriter{w: req.Output}
		cmd.Stdout = io.MultiWriter(stdout, out)
		cmd.Stderr = io.MultiWriter(stderr, out)
	}
	o := runCmd(runCtx, cmd, stderr)

	res = ExecResult{
		ExitCode:    o.exitCode,
		Stdout:      stdout.Tail(),
		Stderr:      stderr.Tail(),
		StdoutBytes: stdout.Total(),
		StderrBytes: stderr.Total(),
		Truncated:   stdout.Truncated() || stderr.Truncated(),
		Duration:    time.Since(start),
	}
	if e := c.execFailure(verbExec, ctx, req.Machine, o, timeout); e != nil {
		return res, e
	}
	return res, nil
}

// execStdin is what smolvm reads with -i: the payload, then the caller's
// stdin; nil (no -i) when there is neither.
func execStdin(payload string, stdin io.Reader) io.Reader {
	switch {
	case payload == "":
		return stdin
	case stdin == nil:
		return strings.NewReader(payload)
	}
	return io.MultiReader(strings.NewReader(payload), stdin)
}

// withExecTimeout gives smolvm's --timeout a head start over the driver's own
// kill, so a well-behaved smolvm reports 124 itself.
func withExecTimeout(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	if timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, timeout+execGrace)
}

// execFailure classifies an exec outcome. exec passes the guest's code
// through (smolvm:src/cli/machine.rs:2771,2785), so only these are smolvm's:
// 124 when we asked for --timeout, clap's usage error (2), and exit 1 whose
// stderr ends with smolvm's own error line (src/main.rs:212-216) -- which
// a guest can imitate byte for byte, since its stderr is relayed to the same
// stream. So such a line is believed only when smolvm confirms it:
// confirmExecFailure. Anything else is the guest's result.
func (c *CLI) execFailure(verb string, parent context.Context, machine string, o outcome, timeout time.Duration) *Error {
	if o.startErr != nil {
		return c.failure(verb, o)
	}
	if o.ctxErr != nil {
		if parent.Err() == nil {
			// Our own timeout backstop fired, not the caller's context.
			o.ctxErr = context.DeadlineExceeded
		}
		return c.failure(verb, o)
	}
	switch {
	case o.exitCode < 0:
		return &Error{Verb: verb, Class: ClassOther, ExitCode: -1, Message: "smolvm was killed by a signal"}
	case o.exitCode == 124 && timeout > 0:
		return &Error{Verb: verb, Class: ClassTimeout, ExitCode: 124,
			Message: "command exceeded its timeout of " + formatTimeout(timeout)}
	case o.exitCode == 2 && isUsageOutput(o.stderrHead):
		return c.failure(verb, o)
	case o.exitCode == 1:
		if msg, ok := execErrorLine(o.stderrTail); ok {
			return c.confirmExecFailure(parent, verb, machine, msg)
		}
	}
	return nil
}

// execErrorLine returns the message of stderr's last line when it has the
// form of smolvm's own exec failure: "Error: " and one of the families exec
// produces. smolvm prints it after relaying every byte of the guest's, so a
// line that is not the last is the guest's. (The driver always passes -i:
// the lowercase "error: " lines of --stream alone,
// src/cli/machine.rs:2862-2865, never come.)
func execErrorLine(stderrTail string) (string, bool) {
	msg, ok := strings.CutPrefix(lastLine(stderrTail), smolvmErrorPrefix)
	if !ok {
		return "", false
	}
	msg = trimMessage(msg)
	return msg, knownSmolvmFailure(msg)
}

// confirmExecFailure decides whether an exec that ended with what looks like
// smolvm's error failed in smolvm or in the guest, by asking smolvm about
// the machine. Every family exec reports concerns a machine that is
// missing, stopped, unreachable, or whose connection was lost with the VM
// (src/agent/client.rs:1468-1506): a guest that printed the line itself was
// running in a machine that still runs, so a running machine makes the
// line the guest's. A missing or stopped machine makes it smolvm's, with
// the class the machine's state says (a VM lost mid-command is
// ClassNotRunning, not the command's exit 1). When smolvm cannot answer, the
// line stands on its own text.
//
// The price: a failed connection to a VM that still runs, which smolvm's
// source does not show happening without the VM dying, would be reported
// as the command's exit 1.
func (c *CLI) confirmExecFailure(ctx context.Context, verb, machine, msg string) *Error {
	m, err := c.Status(ctx, machine)
	switch {
	case err == nil && m.State == StateRunning:
		return nil
	case err == nil:
		return &Error{Verb: verb, Class: ClassNotRunning, ExitCode: 1,
			Message: msg + " (machine is " + m.State + ")"}
	case IsNotFound(err):
		return &Error{Verb: verb, Class: ClassNotFound, ExitCode: 1, Message: msg}
	}
	return &Error{Verb: verb, Class: classifyMessage(msg), ExitCode: 1, Message: msg}
}

// lockedWriter serialises the stdout and stderr copies into one writer and
// never reports its errors (which would stop os/exec's copying).
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = l.w.Write(p)
	return len(p), nil
}
