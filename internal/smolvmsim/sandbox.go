package smolvmsim

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// guestRunuser is where the simulator binary is mounted in every sandbox: the
// host's runuser needs PAM configuration the private /etc does not have, and
// the driver's forms (`runuser -l U -c S`, `runuser -u U -- ARGV`) are all a
// guest needs.
const guestRunuser = "/usr/sbin/runuser"

const guestPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

func bwrapPath() (string, error) {
	if p := os.Getenv("SMOLVM_SIM_BWRAP"); p != "" {
		return p, nil
	}
	p, err := exec.LookPath("bwrap")
	if err != nil {
		return "", fail("simulator: bubblewrap (bwrap) not found in PATH; install it (apt-get install bubblewrap)")
	}
	return p, nil
}

// sandboxOpts describe one process in a machine.
type sandboxOpts struct {
	workdir string
	// uid/gid of the sandbox's first process when the simulator is not
	// root (user namespace with one mapping). As root they are 0 and users
	// are switched inside by runuser.
	uid, gid int
	command  []string
}

// sandboxArgv builds bwrap's arguments. As root there is no user namespace:
// real uids, so runuser can setuid and chown is real. Every machine gets its
// own pid, ipc and uts namespaces; the network namespace is private unless
// the machine was created with networking.
func sandboxArgv(s *store, r *record, o sandboxOpts) ([]string, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fail("simulator: cannot find own executable: %v", err)
	}
	root := s.rootfs(r.Name)
	a := []string{
		"--die-with-parent",
		"--unshare-pid", "--unshare-ipc", "--unshare-uts",
		"--hostname", sandboxHostname(r.Name),
	}
	if !r.Network || r.GuestNet == guestNetNone {
		a = append(a, "--unshare-net")
	}
	if !hostIsRoot() {
		a = append(a, "--unshare-user", "--uid", strconv.Itoa(o.uid), "--gid", strconv.Itoa(o.gid))
	}
	a = append(a, "--ro-bind", "/usr", "/usr")
	// Debian's merged /usr: /bin, /lib... are symlinks into /usr.
	for _, d := range []string{"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"} {
		fi, err := os.Lstat(d)
		switch {
		case err != nil:
		case fi.Mode()&os.ModeSymlink != 0:
			t, err := os.Readlink(d)
			if err == nil {
				a = append(a, "--symlink", t, d)
			}
		case fi.IsDir():
			a = append(a, "--ro-bind", d, d)
		}
	}
	for _, d := range privateDirs {
		a = append(a, "--bind", filepath.Join(root, d), "/"+d)
	}
	for _, name := range hostEtcBinds {
		host := filepath.Join("/etc", name)
		if fi, err := os.Stat(host); err == nil && fi.IsDir() {
			a = append(a, "--ro-bind", host, host)
		}
	}
	a = append(a, "--proc", "/proc", "--dev", "/dev")
	_, err = os.Stat(guestRunuser)
	hostRunuser := err == nil
	if hostRunuser {
		a = append(a, "--ro-bind", exe, guestRunuser)
	}
	if !hostRunuser || r.Forkable {
		// Commands the host's read-only /usr has no file to mount over go
		// in /usr/local/sbin, early in PATH: runuser when the host has
		// none, and smolvm's forkpoint helper in a forkable machine
		// (smolvm installs it as /usr/local/bin/smolvm-fork-ready).
		a = append(a, "--tmpfs", "/usr/local/sbin")
		if !hostRunuser {
			a = append(a, "--ro-bind", exe, "/usr/local/sbin/runuser")
		}
		if r.Forkable {
			a = append(a, "--ro-bind", exe, "/usr/local/sbin/"+forkReadyName)
		}
	}
	a = append(a, "--chdir", o.workdir, "--")
	return append(a, o.command...), nil
}

// sandboxCommand runs bwrap with argv, inside the machine's own network
// namespace when its VMM enforces an allowlist (egress_net.go).
func sandboxCommand(r *record, bwrap string, argv []string) *exec.Cmd {
	if r.GuestNet != "" && r.GuestNet != guestNetNone {
		return exec.Command("nsenter", append([]string{"--net=" + r.GuestNet, "--", bwrap}, argv...)...)
	}
	return exec.Command(bwrap, argv...)
}

// guestEnv is the environment of a sandbox's first process: a fresh one (a
// VM does not inherit the host's), then the machine's and the exec's -e.
func guestEnv(r *record, imageEnv, extra []string, term string) []string {
	env := []string{"PATH=" + guestPath, "HOME=/root", "HOSTNAME=" + sandboxHostname(r.Name)}
	if term != "" {
		env = append(env, "TERM="+term)
	}
	return mergeEnv(mergeEnv(mergeEnv(env, imageEnv), r.Env), extra)
}

// mergeEnv overrides or appends K=V entries, keeping first-seen order.
func mergeEnv(env, add []string) []string {
	out := append([]string(nil), env...)
	for _, kv := range add {
		k, _, _ := strings.Cut(kv, "=")
		replaced := false
		for i, old := range out {
			if ok, _, _ := strings.Cut(old, "="); ok == k {
				out[i] = kv
				replaced = true
				break
			}
		}
		if !replaced {
			out = append(out, kv)
		}
	}
	return out
}

// sandboxIdentity picks the uid/gid the sandbox starts with when the
// simulator is not root: there is a single uid mapping, so runuser cannot
// switch later; instead the target of a leading runuser is used up front.
func sandboxIdentity(s *store, r *record, command []string) (int, int) {
	if hostIsRoot() || len(command) == 0 || filepath.Base(command[0]) != "runuser" {
		return 0, 0
	}
	user := runuserTarget(command[1:])
	if user == "" {
		return 0, 0
	}
	pw, err := lookupUser(filepath.Join(s.rootfs(r.Name), "etc", "passwd"), user)
	if err != nil {
		return 0, 0
	}
	return pw.uid, pw.gid
}
