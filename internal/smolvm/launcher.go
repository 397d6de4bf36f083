package smolvm

import (
	"context"
	"errors"
	"time"
)

// Launcher runs `machine start`, the one verb that leaves a process (the
// VMM) running after smolvm exits. A nil CLI.Launcher runs it as the agent's
// own child ("direct"): the VMM then lives in the agent's PID namespace and
// cgroup and dies with the agent's container. A Launcher puts it elsewhere
// (internal/vmlauncher: a transient systemd unit per machine).
type Launcher interface {
	Launch(ctx context.Context, req LaunchRequest) error
}

// LaunchRequest is one `machine start`: the complete argv (smolvm's path
// first), the extra environment of every smolvm call, and the size smolvm
// recorded for the machine, which a launcher turns into limits. Paths in
// Argv and Env are as smolvm sees them: with CLI.Root set to the host's root
// they are host paths, ready for a launcher that runs smolvm on the host.
type LaunchRequest struct {
	Machine string
	// State is the machine's state before the start (never running).
	State     string
	Argv      []string
	Env       []string
	CPUs      int
	MemoryMiB int
	// StartTimeout is the start's deadline (Timeouts.Start): how long the
	// launcher lets smolvm run before it gives up. The first start pulls
	// the image inside it (smolvm:src/cli/vm_common.rs:1497-1520), so a
	// launcher must not impose a shorter one of its own (systemd's 90 s
	// default TimeoutStartSec).
	StartTimeout time.Duration
}

// launchGrace is how long after the start deadline the driver stops
// waiting for the launcher, so the launcher's own timeout (which knows what
// it killed) is the one reported.
const launchGrace = 10 * time.Second

// startWithLauncher asks smolvm for the machine first: starting a running
// machine succeeds without launching anything (a second unit for a running
// machine would fail or, worse, replace it), and the recorded size gives the
// limits.
func (c *CLI) startWithLauncher(ctx context.Context, name string, argv []string) (err error) {
	m, err := c.Status(ctx, name)
	if err != nil {
		return err
	}
	if m.State == StateRunning {
		return nil
	}
	start := time.Now()
	defer func() { observe(verbStart, time.Since(start), err) }()
	limit := c.Timeouts.deadline(verbStart, 0)
	req := LaunchRequest{Machine: name, State: m.State, Argv: append([]string{c.path()}, argv...),
		Env: append([]string(nil), c.Env...), CPUs: m.CPUs, MemoryMiB: m.MemoryMiB, StartTimeout: limit}
	launchCtx, cancel := context.WithTimeout(ctx, limit+launchGrace)
	defer cancel()
	if lerr := c.Launcher.Launch(launchCtx, req); lerr != nil {
		var e *Error
		if errors.As(lerr, &e) {
			return lerr
		}
		class := ClassOther
		switch {
		case errors.Is(lerr, context.DeadlineExceeded):
			class = ClassTimeout
		case errors.Is(lerr, context.Canceled):
			class = ClassCanceled
		}
		return &Error{Verb: verbStart, Class: class, ExitCode: -1, Message: lerr.Error(), Err: lerr}
	}
	return nil
}
