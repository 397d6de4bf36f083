package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

// smolvmTimeouts are the per-verb deadlines of smolvm calls: the flags set
// smolvm.Timeouts, the agent's one table of them (docs/smolvm.md#deadlines).
type smolvmTimeouts struct {
	smolvm.Timeouts
	exec time.Duration
}

func (t *smolvmTimeouts) bindFlags(fs *flag.FlagSet) {
	t.Timeouts = smolvm.DefaultTimeouts()
	for _, f := range []struct {
		name string
		d    *time.Duration
		what string
	}{
		{"smolvm-status-timeout", &t.Status, "Deadline of machine status and machine egress-events."},
		{"smolvm-list-timeout", &t.List, "Deadline of machine ls."},
		{"smolvm-stop-timeout", &t.Stop, "Deadline of machine stop."},
		{"smolvm-delete-timeout", &t.Delete, "Deadline of machine delete (it stops a running machine first)."},
		{"smolvm-create-timeout", &t.Create, "Deadline of machine create (plus 10s per allowHost) and machine update."},
		{"smolvm-start-timeout", &t.Start, "Deadline of machine start (the first start pulls the image), machine fork and a fork's release."},
		{"smolvm-copy-timeout", &t.Copy, "Deadline of machine cp of an empty file; --smolvm-copy-timeout-per-mib is added per MiB."},
		{"smolvm-copy-timeout-per-mib", &t.CopyPerMiB, "Added to --smolvm-copy-timeout per MiB copied."},
		{"smolvm-version-timeout", &t.Version, "Deadline of smolvm --version at start."},
	} {
		fs.DurationVar(f.d, f.name, *f.d, f.what+" A call that reaches its deadline is killed with its process group and reported with its verb.")
	}
	fs.DurationVar(&t.exec, "smolvm-exec-timeout", smolvm.DefaultExecTimeout, "Deadline of an exec that has none of its own (provisioning steps use their timeoutSeconds).")
}

func (t *smolvmTimeouts) validate() error {
	for name, d := range map[string]time.Duration{
		"status": t.Status, "list": t.List, "stop": t.Stop, "delete": t.Delete, "create": t.Create,
		"start": t.Start, "copy": t.Copy, "version": t.Version, "exec": t.exec,
	} {
		if d < 100*time.Millisecond {
			return fmt.Errorf("--smolvm-%s-timeout must be at least 100ms, not %s", name, d)
		}
	}
	if t.CopyPerMiB < 0 {
		return fmt.Errorf("--smolvm-copy-timeout-per-mib must not be negative, not %s", t.CopyPerMiB)
	}
	return nil
}

// smolvmRootOptions say where smolvm runs: chrooted into the node's root
// filesystem mounted into the pod, so that a dynamically linked smolvm
// finds the host's loader and libraries (docs/deploy.md), or in the agent's
// own filesystem.
type smolvmRootOptions struct {
	root    string
	copyDir string
}

func (r *smolvmRootOptions) bindFlags(fs *flag.FlagSet) {
	fs.StringVar(&r.root, "smolvm-root", "", "Run every smolvm process chrooted into this directory, the node's root filesystem as mounted in the pod (e.g. /host), so that smolvm uses the host's dynamic loader and libraries. --smolvm-path, --smolvm-data-dir and --copy-source-dir are then paths on the host. Empty runs smolvm in the agent's own filesystem (make dev, tests).")
	fs.StringVar(&r.copyDir, "copy-source-dir", "", "Directory where the agent writes each file's content for `smolvm machine cp` to read (a private subdirectory, removed after the copy). A path as smolvm sees it: on the host with --smolvm-root, which requires it. Empty without --smolvm-root: the agent's temp dir.")
}

// validate checks the flags' syntax; prepare checks the machine.
func (r *smolvmRootOptions) validate(smolvmPath, dataDir string) error {
	switch {
	case r.root == "" && r.copyDir != "" && !filepath.IsAbs(r.copyDir):
		return fmt.Errorf("--copy-source-dir must be an absolute path, not %q", r.copyDir)
	case r.root == "":
		return nil
	case !filepath.IsAbs(r.root):
		return fmt.Errorf("--smolvm-root must be an absolute path, not %q", r.root)
	case !filepath.IsAbs(smolvmPath):
		return fmt.Errorf("--smolvm-root needs an absolute --smolvm-path on the host (nothing is looked up in PATH inside the root), not %q", smolvmPath)
	case dataDir != "" && !filepath.IsAbs(dataDir):
		return fmt.Errorf("--smolvm-root needs an absolute --smolvm-data-dir on the host, not %q", dataDir)
	case r.copyDir == "":
		return errors.New("--smolvm-root needs --copy-source-dir: a host directory smolvm can read the copied files from (e.g. /run/bottle-controller/files)")
	case !filepath.IsAbs(r.copyDir):
		return fmt.Errorf("--copy-source-dir must be an absolute path on the host, not %q", r.copyDir)
	}
	return nil
}

// prepare checks that the root is a directory and makes the copy source
// directory, returning it as the agent reaches it (under the root): the
// agent writes there, smolvm reads the same file at the host path.
func (r *smolvmRootOptions) prepare() (string, error) {
	if err := smolvm.CheckRoot(r.root); err != nil {
		return "", fmt.Errorf("--smolvm-root: %w", err)
	}
	if r.copyDir == "" {
		return "", nil
	}
	dir := filepath.Join(r.root, r.copyDir)
	// Root-only: it holds Secret content while a copy runs. A hostPath
	// volume's directory arrives 0755.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("--copy-source-dir: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return "", fmt.Errorf("--copy-source-dir: %w", err)
	}
	return dir, nil
}

// where names smolvm for messages: its path, and the root it runs in.
func (r *smolvmRootOptions) where(smolvmPath string) string {
	if r.root == "" {
		return fmt.Sprintf("%q", smolvmPath)
	}
	return fmt.Sprintf("%q (in --smolvm-root %s)", smolvmPath, r.root)
}
