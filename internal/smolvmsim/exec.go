package smolvmsim

import (
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/creack/pty"
	"golang.org/x/term"
)

// stopSignal is what `machine stop` sends to running execs of the machine.
const stopSignal = syscall.SIGUSR1

// timeoutExitCode is smolvm's exit code for an exec that hit --timeout.
const timeoutExitCode = 124

var execSpec = &cmdSpec{
	usage: "smolvm machine exec [OPTIONS] --name <NAME> -- <COMMAND>...",
	help:  "Run a command in a running machine",
	flags: []flagSpec{
		nameFlag,
		{long: "--env", short: "-e", meta: "<KEY=VALUE>", multi: true},
		{long: "--workdir", short: "-w", meta: "<DIR>"},
		{long: "--timeout", meta: "<DURATION>"},
		{long: "--interactive", short: "-i"},
		{long: "--tty", short: "-t"},
		{long: "--secret-env", meta: "<GUEST_VAR=HOST_VAR>", multi: true},
		{long: "--stream"},
	},
	command:     true,
	commandMeta: "<COMMAND>...",
}

// parseTimeout accepts smolvm's humantime forms that matter here ("30s",
// "5m", "1h", "1h30m", "500ms").
func parseTimeout(v string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.ReplaceAll(v, " ", ""))
	if err != nil || d <= 0 {
		return 0, execSpec.usageErr("invalid value '%s' for '--timeout <DURATION>': expected a duration like 30s or 5m", v)
	}
	return d, nil
}

func cmdExec(e *env, args []string) error {
	p, err := execSpec.parse(args)
	if err != nil {
		return err
	}
	name := p.one("--name")
	var timeout time.Duration
	if p.has("--timeout") {
		if timeout, err = parseTimeout(p.one("--timeout")); err != nil {
			return err
		}
	}
	// smolvm's -e: KEY=VALUE; a bare KEY forwards smolvm's own KEY, or is
	// dropped when unset; an empty key is dropped (smolvm:src/util.rs:81-106).
	var envs []string
	for _, kv := range p.values["--env"] {
		k, _, ok := strings.Cut(kv, "=")
		switch {
		case k == "":
		case ok:
			envs = append(envs, kv)
		default:
			if v, set := os.LookupEnv(k); set {
				envs = append(envs, k+"="+v)
			}
		}
	}
	secrets, err := secretEnv(p.values["--secret-env"])
	if err != nil {
		return err
	}
	if err := applyFaults("exec", name); err != nil {
		return err
	}
	s, r, release, err := runningMachine(name)
	if err != nil {
		return err
	}
	defer release()

	bwrap, err := bwrapPath()
	if err != nil {
		return err
	}
	image := imageConfigOf(r.Image)
	workdir := p.one("--workdir")
	if workdir == "" {
		workdir = r.Workdir
	}
	if workdir == "" {
		workdir = image.Workdir
	}
	if workdir == "" {
		workdir = "/"
	}
	command := asImageUser(r, p.command)
	uid, gid := sandboxIdentity(s, r, command)
	argv, err := sandboxArgv(s, r, sandboxOpts{workdir: workdir, uid: uid, gid: gid, command: command})
	if err != nil {
		return err
	}
	tty := p.bools["--tty"]
	termName := ""
	if tty {
		if termName = os.Getenv("TERM"); termName == "" {
			termName = "xterm-256color" // smolvm:src/agent/client.rs:716-721
		}
	}
	cmd := sandboxCommand(r, bwrap, argv)
	// A clone's --secret-env references (fork) resolve at every exec, as
	// the exec's own; -e overrides a secret of the same name
	// (smolvm:src/cli/machine.rs:2713-2745, merge_env_overrides).
	refs, err := secretRefEnv(r)
	if err != nil {
		return err
	}
	cmd.Env = guestEnv(r, image.Env, append(append(refs, secrets...), envs...), termName)

	// Pdeathsig is tied to the thread that forks; keep this goroutine on
	// one thread so the sandbox dies exactly when this process does.
	runtime.LockOSThread()
	run := &sandboxRun{cmd: cmd, machine: name, stderr: e.stderr,
		streamOnly: p.bools["--stream"] && !p.bools["--interactive"] && !tty}
	if tty {
		return run.withPty(e, p.bools["--interactive"], timeout)
	}
	if p.bools["--interactive"] {
		cmd.Stdin = e.stdin
	}
	cmd.Stdout, cmd.Stderr = e.stdout, e.stderr
	// Same process group as this process, so a caller killing our group
	// kills the sandbox too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if p.bools["--interactive"] || p.bools["--stream"] {
		return run.wait(timeout, nil)
	}
	// smolvm buffers a plain exec's output until the command exits; only
	// --stream (or an interactive exec) prints it as it arrives. Unlinked
	// files, not pipes: os/exec would wait for a pipe's last writer, which
	// can be a guest process the killed sandbox leaves for a moment.
	out, err := bufferFile()
	if err != nil {
		return err
	}
	defer func() { _ = out.Close() }()
	errOut, err := bufferFile()
	if err != nil {
		return err
	}
	defer func() { _ = errOut.Close() }()
	cmd.Stdout, cmd.Stderr = out, errOut
	err = run.wait(timeout, nil)
	for _, f := range []struct {
		buf *os.File
		w   io.Writer
	}{{out, e.stdout}, {errOut, e.stderr}} {
		if _, serr := f.buf.Seek(0, io.SeekStart); serr == nil {
			_, _ = io.Copy(f.w, f.buf)
		}
	}
	return err
}

// bufferFile is an anonymous temporary file.
func bufferFile() (*os.File, error) {
	f, err := os.CreateTemp("", "smolvm-sim-output-")
	if err != nil {
		return nil, fail("agent operation failed: exec: %v", err)
	}
	_ = os.Remove(f.Name())
	return f, nil
}

// secretEnv resolves --secret-env GUEST=HOST from this process's
// environment into GUEST=value entries for the guest.
func secretEnv(pairs []string) ([]string, error) {
	var out []string
	for _, kv := range pairs {
		guest, host, ok := strings.Cut(kv, "=")
		if !ok || guest == "" || host == "" {
			return nil, execSpec.usageErr("invalid value '%s' for '--secret-env <GUEST_VAR=HOST_VAR>': expected GUEST_VAR=HOST_VAR", kv)
		}
		v, ok := os.LookupEnv(host)
		if !ok {
			// smolvm:src/secrets.rs:397-453 (also for a non-UTF-8 value).
			return nil, fail("config operation failed: resolve secret '%s': env_unset", guest)
		}
		out = append(out, guest+"="+v)
	}
	return out, nil
}

// runningMachine finds a machine that must be running (exec, cp) and
// registers the caller as one of its execs, under the machine lock so that a
// concurrent stop either sees the registration or wins before it.
func runningMachine(name string) (*store, *record, func(), error) {
	s, r, unlock, err := lockedMachine(name, false)
	if err != nil {
		return nil, nil, nil, err
	}
	defer unlock()
	// A frozen golden's paused guest never answers.
	if r.State != "running" || r.Frozen {
		return nil, nil, nil, fail("%s", msgNotRunning(name))
	}
	release, err := s.registerExec(name)
	if err != nil {
		return nil, nil, nil, err
	}
	return s, r, release, nil
}

// sandboxRun is one bwrap process with timeout and signal handling.
type sandboxRun struct {
	cmd     *exec.Cmd
	machine string
	// streamOnly: --stream without -i/-t, which reports errors as events.
	streamOnly bool
	stderr     io.Writer
	timedOut   atomic.Bool
	stopped    atomic.Bool
	signaled   atomic.Int32
}

// kill ends the sandbox: bwrap dies, --die-with-parent takes its init, and
// the pid namespace takes everything else.
func (r *sandboxRun) kill() {
	if p := r.cmd.Process; p != nil {
		_ = syscall.Kill(-p.Pid, syscall.SIGKILL) // its own session in tty mode
		_ = p.Kill()
	}
}

// wait runs until the sandbox exits and maps the outcome to smolvm's:
// the guest's code, 124 on timeout, 128+n when the guest died of signal n.
func (r *sandboxRun) wait(timeout time.Duration, afterStart func()) error {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, stopSignal)
	defer signal.Stop(sigs)
	if r.cmd.Process == nil {
		if err := r.cmd.Start(); err != nil {
			return fail("agent operation failed: exec: %v", err)
		}
	}
	if afterStart != nil {
		afterStart()
	}
	if timeout > 0 {
		t := time.AfterFunc(timeout, func() { r.timedOut.Store(true); r.kill() })
		defer t.Stop()
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case sig := <-sigs:
				if sig == stopSignal {
					r.stopped.Store(true)
				} else {
					r.signaled.Store(int32(sig.(syscall.Signal)))
				}
				r.kill()
			case <-done:
				return
			}
		}
	}()
	_ = r.cmd.Wait()
	switch {
	case r.stopped.Load():
		// The VM went away under the command: the host reads EOF on the
		// vsock (smolvm:src/agent/client.rs:1468-1499, src/data/errors.rs:219);
		// --stream without -i prints it as an event (machine.rs:2862-2865).
		if r.streamOnly {
			_, _ = io.WriteString(r.stderr, "error: io operation failed: connection closed\n")
			return exitStatus(1)
		}
		return fail("io operation failed: connection closed")
	case r.timedOut.Load():
		return exitStatus(timeoutExitCode)
	case r.signaled.Load() != 0:
		return exitStatus(128 + int(r.signaled.Load()))
	}
	ws, _ := r.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return exitStatus(128 + int(ws.Signal()))
	}
	if code := ws.ExitStatus(); code != 0 {
		return exitStatus(code)
	}
	return nil
}

// withPty runs the sandbox on a new pty (smolvm -t): the guest gets a real
// terminal; our stdin/stdout are bridged to it; our own terminal size, when
// stdin is a terminal, is propagated on start, on SIGWINCH and before each
// chunk of input (so "resize, then type" is seen in that order).
func (r *sandboxRun) withPty(e *env, interactive bool, timeout time.Duration) error {
	ptmx, tty, err := pty.Open()
	if err != nil {
		return fail("agent operation failed: exec: allocate pty: %v", err)
	}
	defer func() { _ = ptmx.Close() }()

	stdinFd := int(e.stdin.Fd())
	stdinTerm := term.IsTerminal(stdinFd)
	var mu sync.Mutex
	last := pty.Winsize{Rows: 24, Cols: 80}
	if stdinTerm {
		if ws, err := pty.GetsizeFull(e.stdin); err == nil && ws.Rows > 0 && ws.Cols > 0 {
			last = *ws
		}
	}
	_ = pty.Setsize(ptmx, &last)
	syncSize := func() {
		if !stdinTerm {
			return
		}
		ws, err := pty.GetsizeFull(e.stdin)
		if err != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if ws.Rows != last.Rows || ws.Cols != last.Cols {
			last = *ws
			_ = pty.Setsize(ptmx, ws)
		}
	}

	// Raw before the guest runs: the guest's pty does the line discipline,
	// ours must pass bytes through untouched (no double echo).
	if stdinTerm {
		if old, err := term.MakeRaw(stdinFd); err == nil {
			defer func() { _ = term.Restore(stdinFd, old) }()
		}
	}
	r.cmd.Stdin, r.cmd.Stdout, r.cmd.Stderr = tty, tty, tty
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0, Pdeathsig: syscall.SIGKILL}
	if err := r.cmd.Start(); err != nil {
		_ = tty.Close()
		return fail("agent operation failed: exec: %v", err)
	}
	_ = tty.Close()

	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	defer signal.Stop(winch)
	go func() {
		for range winch {
			syncSize()
		}
	}()
	if interactive {
		go func() {
			buf := make([]byte, 32<<10)
			for {
				n, err := e.stdin.Read(buf)
				if n > 0 {
					syncSize()
					if _, werr := ptmx.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					if err == io.EOF && !stdinTerm {
						_, _ = ptmx.Write([]byte{4}) // the guest reads EOF
					}
					return
				}
			}
		}()
	}
	outDone := make(chan struct{})
	go func() {
		defer close(outDone)
		_, _ = io.Copy(e.stdout, ptmx) // ends with EIO when the sandbox is gone
	}()
	err = r.wait(timeout, nil)
	select {
	case <-outDone:
	case <-time.After(2 * time.Second):
	}
	return err
}
