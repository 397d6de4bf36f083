package smolvm

import (
	"context"
	"time"
)

// Create records a machine (`machine create`). The image is pulled at the
// first Start. An existing name is an ClassAlreadyExists error.
func (c *CLI) Create(ctx context.Context, spec MachineSpec) error {
	argv, err := createArgv(spec)
	if err != nil {
		return precheckFailed(verbCreate, err)
	}
	limit := c.Timeouts.deadline(verbCreate, 0) + AllowHostResolution(len(spec.AllowHosts))
	_, err = c.runWithin(ctx, verbCreate, argv, limit)
	return err
}

// allowHostTimeout is how long smolvm's create may spend resolving one
// --allow-host: it resolves them one after another, each with a 10 s
// timeout (smolvm:src/cli/machine.rs:82-110, src/smolfile.rs:38-80).
const allowHostTimeout = 10 * time.Second

// AllowHostResolution is how much longer a create with n allow-hosts may
// take than one without: a caller's own deadline for Create adds it.
func AllowHostResolution(n int) time.Duration { return time.Duration(n) * allowHostTimeout }

// Start boots a machine; starting a running machine succeeds.
func (c *CLI) Start(ctx context.Context, name string) error {
	argv, err := startArgv(name)
	return c.start(ctx, name, argv, err)
}

// start runs a start's argv (plain or forkable), through the launcher
// when there is one; argvErr is the argv builder's refusal.
func (c *CLI) start(ctx context.Context, name string, argv []string, argvErr error) error {
	if argvErr != nil {
		return precheckFailed(verbStart, argvErr)
	}
	if c.Launcher != nil {
		return c.startWithLauncher(ctx, name, argv)
	}
	_, err := c.run(ctx, verbStart, argv)
	return err
}

// Stop stops a machine; stopping a machine that is not running succeeds.
func (c *CLI) Stop(ctx context.Context, name string) error {
	argv, err := stopArgv(name)
	if err != nil {
		return precheckFailed(verbStop, err)
	}
	_, err = c.run(ctx, verbStop, argv)
	return err
}

// Delete removes a machine, stopping it first (always with -f). A missing
// machine is an ClassNotFound error: use IsNotFound to treat it as done.
func (c *CLI) Delete(ctx context.Context, name string) error {
	argv, err := deleteArgv(name)
	if err != nil {
		return precheckFailed(verbDelete, err)
	}
	_, err = c.run(ctx, verbDelete, argv)
	return err
}

// Status reports one machine. A missing machine is an ClassNotFound error.
func (c *CLI) Status(ctx context.Context, name string) (*Machine, error) {
	argv, err := statusArgv(name)
	if err != nil {
		return nil, precheckFailed(verbStatus, err)
	}
	out, err := c.run(ctx, verbStatus, argv)
	if err != nil {
		return nil, err
	}
	m, perr := parseMachine([]byte(out))
	if perr != nil {
		return nil, &Error{Verb: verbStatus, Class: ClassOther, ExitCode: 0, Message: perr.Error(), Err: perr}
	}
	return m, nil
}

// List reports every machine smolvm knows.
func (c *CLI) List(ctx context.Context) ([]Machine, error) {
	out, err := c.run(ctx, verbList, listArgv())
	if err != nil {
		return nil, err
	}
	ms, perr := parseMachineList([]byte(out))
	if perr != nil {
		return nil, &Error{Verb: verbList, Class: ClassOther, ExitCode: 0, Message: perr.Error(), Err: perr}
	}
	return ms, nil
}
