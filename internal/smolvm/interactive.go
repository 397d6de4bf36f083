package smolvm

import (
	"context"
	"io"
	"os"
	"os/exec"
	"runtime"
	"time"

	"github.com/creack/pty"
)

// Streams connects an interactive exec to the caller.
type Streams struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// TTY runs smolvm on a host pseudo-terminal (smolvm -t); the guest's
	// stdout and stderr then both arrive on Stdout, and Stderr only receives
	// smolvm's own messages.
	TTY bool
	// Resize events set the host pty's size (TTY only). An event sent before
	// a Stdin chunk is applied before that chunk is forwarded.
	Resize <-chan TermSize
	// InitialSize of the host pty (TTY only); zero means 80x24.
	InitialSize TermSize
}

// TermSize is a terminal size in character cells.
type TermSize struct{ Width, Height uint16 }

// ptyDrainTimeout bounds the wait for the last pty output after smolvm exits.
const ptyDrainTimeout = time.Second

// ExecInteractive runs a command with the caller's streams attached
// (smolvm -i, plus -t when s.TTY) and returns the guest's exit code.
// req.Env reaches the guest through smolvm's own environment
// (--secret-env), never its argv: stdin is the caller's. err is
// set only for smolvm's own failures, invalid requests and timeouts, as in
// Exec. No default timeout applies: sessions last as long as ctx.
func (c *CLI) ExecInteractive(ctx context.Context, req ExecRequest, s Streams) (exitCode int, err error) {
	start := time.Now()
	defer func() { observe(verbInteractive, time.Since(start), err) }()

	req, secrets, err := withSecretEnv(verbInteractive, req)
	if err != nil {
		return -1, err
	}
	argv, _, err := execArgv(verbInteractive, req, req.Timeout, s.TTY)
	if err != nil {
		return -1, err
	}
	argv = withFlags(argv, secrets.flags)
	release, err := c.connection(ctx, verbInteractive, req.Machine, true)
	if err != nil {
		return -1, err
	}
	defer release()
	runCtx, cancel := withExecTimeout(ctx, req.Timeout)
	defer cancel()

	stderr := newTailBuffer(headLen)
	var errOut io.Writer = stderr
	if s.Stderr != nil {
		errOut = io.MultiWriter(stderr, s.Stderr)
	}
	cmd := c.command(runCtx, argv)
	cmd.Env = append(cmd.Env, secrets.procEnv...)
	cmd.Stderr = errOut

	var o outcome
	if s.TTY {
		o, err = runOnPty(runCtx, cmd, s, stderr)
		if err != nil {
			e := &Error{Verb: verbInteractive, Class: ClassOther, ExitCode: -1, Message: "cannot allocate a host pty: " + err.Error(), Err: err}
			return -1, e
		}
	} else {
		stdin, release, perr := stdinPipe(s.Stdin)
		if perr != nil {
			return -1, &Error{Verb: verbInteractive, Class: ClassOther, ExitCode: -1, Message: "cannot create a stdin pipe: " + perr.Error(), Err: perr}
		}
		cmd.Stdin = stdin
		cmd.Stdout = s.Stdout
		o = runCmd(runCtx, cmd, stderr)
		release()
	}
	if e := c.execFailure(verbInteractive, ctx, req.Machine, o, req.Timeout); e != nil {
		return o.exitCode, e
	}
	return o.exitCode, nil
}

// runOnPty runs cmd as the session leader of a new host pty, bridging the
// caller's streams and resize events to the pty master.
func runOnPty(ctx context.Context, cmd *exec.Cmd, s Streams, stderr *tailBuffer) (outcome, error) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		return outcome{}, err
	}
	defer func() { _ = ptmx.Close() }()
	size := s.InitialSize
	if size.Width == 0 || size.Height == 0 {
		size = TermSize{Width: 80, Height: 24}
	}
	if err := pty.Setsize(ptmx, winsize(size)); err != nil {
		_ = tty.Close()
		return outcome{}, err
	}
	cmd.Stdin, cmd.Stdout = tty, tty
	// smolvm leads the pty's session, so it gets SIGWINCH.
	asSessionLeader(cmd)
	// Pdeathsig follows the forking thread (see command).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cmd.Start(); err != nil {
		_ = tty.Close()
		return outcome{exitCode: -1, startErr: err}, nil
	}
	_ = tty.Close()

	done := make(chan struct{})
	outDone := make(chan struct{})
	go func() {
		defer close(outDone)
		out := s.Stdout
		if out == nil {
			out = io.Discard
		}
		// Ends with EIO once smolvm (the last holder of the tty) exits.
		_, _ = io.Copy(out, ptmx)
	}()
	go forwardInput(ptmx, s.Stdin, s.Resize, done)

	o := waitCmd(ctx, cmd, stderr)
	close(done)
	select {
	case <-outDone:
	case <-time.After(ptyDrainTimeout):
	}
	return o, nil
}

// forwardInput copies stdin to the pty and applies resize events. Both run in
// one loop so that a resize sent before some input reaches the pty first —
// callers (and tests) can rely on "resize, then type" ordering.
func forwardInput(ptmx *os.File, stdin io.Reader, resize <-chan TermSize, done <-chan struct{}) {
	var chunks chan []byte
	if stdin != nil {
		chunks = make(chan []byte)
		go func() {
			defer close(chunks)
			buf := make([]byte, 32<<10)
			for {
				n, err := stdin.Read(buf)
				if n > 0 {
					select {
					case chunks <- append([]byte(nil), buf[:n]...):
					case <-done:
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
	}
	applyPending := func() {
		for {
			select {
			case sz, ok := <-resize:
				if !ok {
					resize = nil
					return
				}
				_ = pty.Setsize(ptmx, winsize(sz))
			default:
				return
			}
		}
	}
	for {
		select {
		case <-done:
			return
		case sz, ok := <-resize:
			if !ok {
				resize = nil
				continue
			}
			_ = pty.Setsize(ptmx, winsize(sz))
		case b, ok := <-chunks:
			if !ok {
				chunks = nil
				// EOF on the caller's stdin: the guest reads EOF (VEOF).
				_, _ = ptmx.Write([]byte{4})
				continue
			}
			applyPending()
			if _, err := ptmx.Write(b); err != nil {
				return
			}
		}
	}
}

func winsize(s TermSize) *pty.Winsize { return &pty.Winsize{Cols: s.Width, Rows: s.Height} }

// stdinPipe hands smolvm an *os.File for stdin. With any other reader
// os/exec's Wait blocks on its copying goroutine until the reader returns,
// so a session whose client never closes stdin would outlive its command.
// release ends the copy (the goroutine exits at its next Read return).
func stdinPipe(in io.Reader) (io.Reader, func(), error) {
	if in == nil {
		return nil, func() {}, nil
	}
	if f, ok := in.(*os.File); ok {
		return f, func() {}, nil
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	go func() {
		_, _ = io.Copy(pw, in)
		_ = pw.Close()
	}()
	return pr, func() {
		_ = pr.Close()
		_ = pw.Close()
	}, nil
}
