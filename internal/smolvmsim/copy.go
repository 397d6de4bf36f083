package smolvmsim

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// maxCopySize is smolvm's single-file limit for `machine cp`.
const maxCopySize = 4 << 30

// Helper modes of the binary mounted as runuser: the file is written or read
// inside the sandbox, so the guest path resolves in the guest's view (a guest
// symlink cannot point the simulator at a host file).
const (
	helperCopyIn  = "--smolvm-sim-copy-in"
	helperCopyOut = "--smolvm-sim-copy-out"
)

var cpSpec = &cmdSpec{
	usage:       "smolvm machine cp [OPTIONS] <SOURCE> <DEST>",
	help:        "Copy a file into (HOST NAME:/path) or out of (NAME:/path HOST) a running machine",
	positionals: []string{"<SOURCE>", "<DEST>"},
	flags: []flagSpec{
		{long: "--mode", meta: "<MODE>"},
		{long: "--uid", meta: "<UID>"},
		{long: "--gid", meta: "<GID>"},
	},
}

// splitMachinePath reads "NAME:/path"; any ':' makes an argument a guest path.
func splitMachinePath(arg string) (machine, p string, ok bool) {
	return strings.Cut(arg, ":")
}

func cmdCopy(args []string) error {
	p, err := cpSpec.parse(args)
	if err != nil {
		return err
	}
	src, dst := p.pos[0], p.pos[1]
	mode, uid, gid := int64(-1), int64(-1), int64(-1)
	if p.has("--mode") {
		v := strings.TrimPrefix(p.one("--mode"), "0o")
		m, err := strconv.ParseUint(v, 8, 32)
		if err != nil || m > 0o7777 {
			// smolvm parses the mode itself, after clap
			// (smolvm:src/cli/machine.rs:4909-4920): exit 1, not 2.
			return fail("config operation failed: cp: invalid octal mode '%s' (expected e.g. 644)", p.one("--mode"))
		}
		mode = int64(m)
	}
	for _, f := range []struct {
		flag string
		dst  *int64
	}{{"--uid", &uid}, {"--gid", &gid}} {
		if p.has(f.flag) {
			n, err := strconv.ParseUint(p.one(f.flag), 10, 32)
			if err != nil {
				return cpSpec.usageErr("invalid value '%s' for '%s <%s>': %v", p.one(f.flag), f.flag,
					strings.ToUpper(f.flag[2:]), err.(*strconv.NumError).Err)
			}
			*f.dst = int64(n)
		}
	}
	srcM, srcP, srcGuest := splitMachinePath(src)
	dstM, dstP, dstGuest := splitMachinePath(dst)
	if srcGuest == dstGuest {
		return fail("copy failed: exactly one of SOURCE and DEST must be a machine path (NAME:/path)")
	}
	machine, guestPath := dstM, dstP
	if srcGuest {
		machine, guestPath = srcM, srcP
	}
	if err := applyFaults("cp", machine); err != nil {
		return err
	}
	s, r, release, err := runningMachine(machine)
	if err != nil {
		return err
	}
	defer release()
	if !path.IsAbs(guestPath) {
		return fail("agent operation failed: file transfer: guest path must be absolute: %s", guestPath)
	}
	if srcGuest {
		return copyOut(s, r, guestPath, dst)
	}
	return copyIn(s, r, src, guestPath, mode, uid, gid)
}

// defaultCopyMode is a copied file's mode without --mode: the creation
// default under the agent's umask 022.
const defaultCopyMode = 0o644

func copyIn(s *store, r *record, hostPath, guestPath string, mode, uid, gid int64) error {
	f, err := os.Open(hostPath)
	if err != nil {
		return fail("copy failed: %v", err)
	}
	defer func() { _ = f.Close() }()
	fi, err := f.Stat()
	if err != nil {
		return fail("copy failed: %v", err)
	}
	if !fi.Mode().IsRegular() {
		return fail("copy failed: %s is not a regular file (only single files can be copied)", hostPath)
	}
	if fi.Size() > maxCopySize {
		return fail("copy failed: %s is larger than 4 GiB", hostPath)
	}
	if mode < 0 {
		// smolvm's agent creates the file with the default mode, whatever
		// the source's (crates/smolvm-agent/src/nsfile.rs:158-212).
		mode = defaultCopyMode
	}
	if !hostIsRoot() {
		// One uid mapping: ownership cannot be given away (docs/smolvm.md).
		uid, gid = -1, -1
	}
	cmd, err := helperCommand(s, r, helperCopyIn, guestPath,
		strconv.FormatInt(mode, 8), strconv.FormatInt(uid, 10), strconv.FormatInt(gid, 10))
	if err != nil {
		return err
	}
	cmd.Stdin = f
	return runHelper(cmd)
}

func copyOut(s *store, r *record, guestPath, hostPath string) error {
	if fi, err := os.Stat(hostPath); err == nil && fi.IsDir() {
		hostPath = filepath.Join(hostPath, path.Base(guestPath))
	}
	tmp, err := os.CreateTemp(filepath.Dir(hostPath), "."+filepath.Base(hostPath)+".smolvm-*")
	if err != nil {
		return fail("copy failed: %v", err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	cmd, err := helperCommand(s, r, helperCopyOut, guestPath)
	if err != nil {
		_ = tmp.Close()
		return err
	}
	cmd.Stdout = tmp
	if err := runHelper(cmd); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return fail("copy failed: %v", err)
	}
	if err := os.Rename(tmp.Name(), hostPath); err != nil {
		return fail("copy failed: %v", err)
	}
	return nil
}

func helperCommand(s *store, r *record, args ...string) (*exec.Cmd, error) {
	bwrap, err := bwrapPath()
	if err != nil {
		return nil, err
	}
	runuser := guestRunuser
	if _, err := os.Stat(guestRunuser); err != nil {
		runuser = "/usr/local/sbin/runuser"
	}
	argv, err := sandboxArgv(s, r, sandboxOpts{workdir: "/", command: append([]string{runuser}, args...)})
	if err != nil {
		return nil, err
	}
	cmd := sandboxCommand(r, bwrap, argv)
	cmd.Env = guestEnv(r, nil, nil, "")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd, nil
}

func runHelper(cmd *exec.Cmd) error {
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return fail("agent operation failed: file transfer: %s", msg)
	}
	return nil
}

// copyInHelper runs inside the sandbox: stdin → temp file next to the target
// → chown, chmod, fsync → rename. The rename makes the file appear whole.
func copyInHelper(args []string) int {
	if len(args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: "+helperCopyIn+" PATH MODE UID GID")
		return 2
	}
	target := args[0]
	mode, err1 := strconv.ParseUint(args[1], 8, 32)
	uid, err2 := strconv.Atoi(args[2])
	gid, err3 := strconv.Atoi(args[3])
	if err1 != nil || err2 != nil || err3 != nil {
		fmt.Fprintln(os.Stderr, "bad helper arguments")
		return 2
	}
	if fi, err := os.Stat(target); err == nil && fi.IsDir() {
		fmt.Fprintf(os.Stderr, "%s: is a directory\n", target)
		return 1
	}
	// smolvm's agent creates missing parent directories (root's, 0755:
	// crates/smolvm-agent/src/nsfile.rs:164-168, main.rs:2729).
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	tmp, err := os.CreateTemp(filepath.Dir(target), "."+filepath.Base(target)+".smolvm-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ok := false
	defer func() {
		if !ok {
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err := io.Copy(tmp, os.Stdin); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// chmod, then chown, as smolvm's agent does (nsfile.rs:158-212): a
	// chown after the chmod clears set-id bits.
	if err := syscall.Fchmod(int(tmp.Fd()), uint32(mode)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if uid >= 0 || gid >= 0 {
		if err := tmp.Chown(uid, gid); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	if err := tmp.Sync(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := tmp.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := os.Rename(tmp.Name(), target); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ok = true
	return 0
}

func copyOutHelper(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: "+helperCopyOut+" PATH")
		return 2
	}
	f, err := os.Open(args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = f.Close() }()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		fmt.Fprintf(os.Stderr, "%s: not a regular file\n", args[0])
		return 1
	}
	if _, err := io.Copy(os.Stdout, f); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
