package smolvm

import (
	"context"
	"os"
	"path/filepath"
)

// CopyIn copies one host file into a running machine (`machine cp`); smolvm
// lands it atomically. mode 0 keeps smolvm's default; uid/gid < 0 are
// omitted. hostPath is made absolute and must not contain ':' (smolvm reads
// such a source as a guest path). hostPath names the file in the agent's
// filesystem; with a Root it must be inside it and smolvm is given the
// path it has there.
func (c *CLI) CopyIn(ctx context.Context, machine, hostPath, guestPath string, mode os.FileMode, uid, gid int) error {
	abs, err := filepath.Abs(hostPath)
	if err != nil {
		return precheckFailed(verbCopyIn, newUsageError(verbCopyIn, "cannot make host path absolute"))
	}
	seen, err := c.copyPath(verbCopyIn, abs)
	if err != nil {
		return precheckFailed(verbCopyIn, err)
	}
	argv, err := copyInArgv(machine, seen, guestPath, mode, uid, gid)
	if err != nil {
		return precheckFailed(verbCopyIn, err)
	}
	release, err := c.connection(ctx, verbCopyIn, machine, false)
	if err != nil {
		return precheckFailed(verbCopyIn, err)
	}
	defer release()
	_, err = c.runSized(ctx, verbCopyIn, argv, fileSize(abs))
	return err
}
