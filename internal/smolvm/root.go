package smolvm

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// A root (CLI.Root) is the directory every smolvm process runs chrooted in:
// in the installed agent, the node's own root filesystem mounted into the
// pod (--smolvm-root=/host). smolvm is dynamically linked (glibc, libkrun,
// libkrunfw) and the agent's image has no libc; inside the host's root,
// smolvm finds the host's loader and libraries exactly as when an operator
// runs it on the node. Every path smolvm is given (its own path, its data
// dir, copy sources) is then a host path, the same one the systemd launcher
// hands to the host's systemd.

// CheckRoot says whether root can be a CLI.Root: empty (no chroot), or an
// absolute path to an existing directory.
func CheckRoot(root string) error {
	if root == "" {
		return nil
	}
	if !filepath.IsAbs(root) {
		return fmt.Errorf("smolvm root %q is not an absolute path", root)
	}
	fi, err := os.Stat(root)
	if err != nil {
		return fmt.Errorf("smolvm root: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("smolvm root %q is not a directory", root)
	}
	return nil
}

// inRoot is the path p of the agent's filesystem as smolvm sees it inside
// root (p itself without a root). ok is false when p is outside root, where
// smolvm cannot see it.
func inRoot(root, p string) (string, bool) {
	if root == "" {
		return p, true
	}
	rel, err := filepath.Rel(root, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", false
	}
	return filepath.Join("/", rel), true
}

// copyPath turns a copy's host path (absolute, in the agent's filesystem)
// into the one smolvm is given.
func (c *CLI) copyPath(verb, abs string) (string, error) {
	p, ok := inRoot(c.Root, abs)
	if !ok {
		return "", newUsageError(verb, "host path %s is outside the smolvm root %s, where smolvm cannot see it", abs, c.Root)
	}
	return p, nil
}

// errRelativeInRoot: a bare name or relative path would be looked up in the
// agent's PATH or working directory, not in the root.
var errRelativeInRoot = errors.New("the smolvm path must be absolute when smolvm runs in a root")

// capSysChroot is CAP_SYS_CHROOT's bit in the capability sets.
const capSysChroot = 18

// startFailure explains why smolvm could not be started at all. The child
// reports only an errno, the same for a failed chroot as for a failed
// execve, so with a root the cause is looked up here: the root itself, then
// the capability chroot needs.
func (c *CLI) startFailure(verb string, err error) *Error {
	notInstalled := func(msg string) *Error {
		return &Error{Verb: verb, Class: ClassNotInstalled, ExitCode: -1, Message: msg, Err: err}
	}
	missing := errors.Is(err, fs.ErrNotExist) || errors.Is(err, exec.ErrNotFound)
	denied := errors.Is(err, fs.ErrPermission)
	switch {
	case c.Root == "" && (missing || denied):
		return notInstalled(fmt.Sprintf("smolvm not found at %q: %v", c.path(), err))
	case c.Root == "":
		return &Error{Verb: verb, Class: ClassOther, ExitCode: -1,
			Message: fmt.Sprintf("cannot run smolvm at %q: %v", c.path(), err), Err: err}
	case errors.Is(err, errRelativeInRoot):
		return notInstalled(fmt.Sprintf("cannot run smolvm at %q in the root %s: %v", c.path(), c.Root, err))
	}
	if rerr := CheckRoot(c.Root); rerr != nil {
		return notInstalled(fmt.Sprintf("cannot run smolvm at %q: %v", c.path(), rerr))
	}
	switch {
	case errors.Is(err, syscall.EPERM) && !hasEffectiveCap(capSysChroot):
		return notInstalled(fmt.Sprintf("cannot run smolvm at %q: entering the root %s needs CAP_SYS_CHROOT, which the agent does not have (run it as root): %v",
			c.path(), c.Root, err))
	case missing:
		return notInstalled(fmt.Sprintf("smolvm not found at %q in the root %s (or its ELF interpreter is missing there): %v", c.path(), c.Root, err))
	case denied:
		return notInstalled(fmt.Sprintf("cannot run smolvm at %q in the root %s: %v", c.path(), c.Root, err))
	}
	return &Error{Verb: verb, Class: ClassOther, ExitCode: -1,
		Message: fmt.Sprintf("cannot run smolvm at %q in the root %s: %v", c.path(), c.Root, err), Err: err}
}

// hasEffectiveCap reads the calling thread's effective capabilities; true
// when it cannot tell. Capabilities are per thread, but the agent's threads
// all share one set (only a test drops one, on a thread it holds).
func hasEffectiveCap(bit uint) bool {
	b, err := os.ReadFile("/proc/thread-self/status")
	if err != nil {
		return true
	}
	for line := range strings.Lines(string(b)) {
		if hex, ok := strings.CutPrefix(line, "CapEff:"); ok {
			var set uint64
			if _, err := fmt.Sscanf(strings.TrimSpace(hex), "%x", &set); err != nil {
				return true
			}
			return set&(1<<bit) != 0
		}
	}
	return true
}

// loaderErrorMessage recognises glibc's dynamic loader refusing to start
// smolvm ("smolvm: error while loading shared libraries: libkrun.so.1:
// cannot open shared object file: ...", exit 127): a library missing from
// the host (or the root) is an install problem, not a smolvm failure.
func loaderErrorMessage(stderr string) (string, bool) {
	const marker = "error while loading shared libraries: "
	line, _, _ := strings.Cut(stderr, "\n")
	i := strings.Index(line, marker)
	if i < 0 {
		return "", false
	}
	return "smolvm cannot start: " + line[i:], true
}

// CheckRootPIDNamespace says whether root's /proc shows this process's own
// PID namespace. smolvm runs chrooted into root and reads root/proc (the
// node's procfs in the installed agent) while it lives in the agent's PID
// namespace: with a container's own PID namespace, every pid smolvm records,
// probes or signals belongs to the other namespace (a machine is "not
// running" for ever, a stop gets ESRCH, bwrap cannot open /proc/PID/ns), so
// the agent needs hostPID. A root without a procfs has nothing to disagree
// with and passes.
func CheckRootPIDNamespace(root string) error {
	if root == "" {
		return nil
	}
	proc := filepath.Join(root, "proc")
	self, err := os.Readlink(filepath.Join(proc, "self"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %s/self: %w", proc, err)
	}
	if pid := strconv.Itoa(os.Getpid()); self != pid {
		return fmt.Errorf("the agent's PID namespace is not the one %s shows (the agent is pid %s here, %s there), so smolvm would see and signal the wrong processes: run the agent with hostPID: true (dist/install.yaml does)", proc, pid, self)
	}
	return nil
}
