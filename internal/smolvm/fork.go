package smolvm

import "context"

// Live fork (smolvm `machine start --forkable`, `machine fork`,
// `machine fork-release`, `machine delete --cascade`).
//
// A golden is a machine started forkable. The first fork freezes it: its
// guest is paused for good (smolvm keeps its RAM checkpoint for later
// forks), it reports StateFrozen, exec cannot reach it, and start, stop and
// a delete without --cascade refuse while clones exist (Delete's -f would
// break them instead: use DeleteCascade, or delete the clones first). A
// clone is a new machine with the golden's record (image, resources,
// network, env, labels) and a copy-on-write copy of its disks, booted from
// its memory. A held slot (ForkRequest.Hold) is a booted clone parked at
// the golden's forkpoint until ForkRelease hands it out, once.
//
// smolvm's status and ls do not say which golden a clone came from:
// callers keep that themselves (the clone's labels are its golden's).

// ForkRequest asks for one clone (Name) or a batch (Count > 1 clones named
// NamePrefix-0 … NamePrefix-(Count-1), forked from one snapshot).
type ForkRequest struct {
	Golden string
	Name   string
	// Count > 1 makes a batch named by NamePrefix; 0 and 1 mean one clone.
	Count      int
	NamePrefix string
	// Hold parks the clones as held slots. smolvm then first waits for
	// the golden's forkpoint (a guest process ran smolvm-fork-ready)
	// unless the golden is frozen already.
	Hold bool
	// Env are fork parameters: smolvm writes them to the clone's
	// /etc/smolvm/fork-env and adds them to its environment for later
	// execs. They are on smolvm's argv and in its database: never
	// secrets. (smolvm's --secret-env on fork records a reference that
	// every later exec resolves again from its own environment, so it
	// cannot hand a clone a value once; give secrets to each Exec.)
	Env []EnvVar
}

// StartForkable boots a machine as a fork base (`machine start
// --forkable`): smolvm backs its memory so that Fork can clone it. Starting
// a running machine succeeds without making it forkable.
func (c *CLI) StartForkable(ctx context.Context, name string) error {
	argv, err := startForkableArgv(name)
	return c.start(ctx, name, argv, err)
}

// Fork clones a running forkable golden. A taken clone name is
// ClassAlreadyExists, a missing golden ClassNotFound; a golden that is not
// running forkable is ClassOther with smolvm's text. A failed fork leaves no
// clone behind (smolvm removes what it made).
func (c *CLI) Fork(ctx context.Context, req ForkRequest) error {
	argv, err := forkArgv(req)
	if err != nil {
		return precheckFailed(verbFork, err)
	}
	_, err = c.run(ctx, verbFork, argv)
	return err
}

// ForkRelease hands out a held slot, once, with parameters that override
// the slot's own (-e, on argv: never secrets). A slot whose activation
// failed is claimed anyway and must be deleted.
func (c *CLI) ForkRelease(ctx context.Context, name string, env []EnvVar) error {
	argv, err := forkReleaseArgv(name, env)
	if err != nil {
		return precheckFailed(verbForkRelease, err)
	}
	_, err = c.run(ctx, verbForkRelease, argv)
	return err
}

// DeleteCascade deletes a machine and, first, every clone forked from it.
// A missing machine is an ClassNotFound error.
func (c *CLI) DeleteCascade(ctx context.Context, name string) error {
	argv, err := deleteCascadeArgv(name)
	if err != nil {
		return precheckFailed(verbDelete, err)
	}
	_, err = c.run(ctx, verbDelete, argv)
	return err
}
