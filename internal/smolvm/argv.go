package smolvm

import (
	"fmt"
	"math"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Every smolvm spelling the driver uses lives in this file. smolvm releases
// every few days; when a flag moves, this file and argv_test.go change and
// nothing else does. The builders are pure: they validate and return argv
// (without the binary), never run anything.

const (
	cmdMachine = "machine"

	subCreate = "create"
	subStart  = "start"
	subStop   = "stop"
	subDelete = "delete"
	subStatus = "status"
	subList   = "ls"
	subExec   = "exec"
	subCopy   = "cp"

	flagVersion   = "--version"
	flagName      = "--name"
	flagImage     = "--image"
	flagCPUs      = "--cpus"
	flagMem       = "--mem"
	flagNet       = "--net"
	flagAllowHost = "--allow-host"
	flagAllowCIDR = "--allow-cidr"
	flagEnv       = "-e" // no long form in smolvm
	flagWorkdir   = "-w"
	flagLabel     = "--label"
	flagForce     = "-f"
	flagJSON      = "--json"
	flagTimeout   = "--timeout"
	flagStdin     = "-i"
	flagTTY       = "-t"
	flagMode      = "--mode"
	flagUID       = "--uid"
	flagGID       = "--gid"
	endOfFlags    = "--"

	// Guest-side user switching (util-linux runuser in the image).
	guestRunuser      = "runuser"
	runuserLogin      = "-l"
	runuserCommand    = "-c"
	runuserUser       = "-u"
	guestShell        = "/bin/sh"
	guestShellCommand = "-c"
)

// Driver verbs: the `verb` label of the metrics and Error.Verb.
const (
	verbVersion     = "version"
	verbCreate      = "create"
	verbStart       = "start"
	verbStop        = "stop"
	verbDelete      = "delete"
	verbStatus      = "status"
	verbList        = "list"
	verbExec        = "exec"
	verbInteractive = "exec_interactive"
	verbCopyIn      = "copy_in"
	verbCopyOut     = "copy_out"
)

func versionArgv() []string { return []string{flagVersion} }

func createArgv(spec MachineSpec) ([]string, error) {
	if err := checkName(verbCreate, spec.Name); err != nil {
		return nil, err
	}
	if err := checkValue("image", spec.Image, true); err != nil {
		return nil, err
	}
	if spec.CPUs < 0 || spec.CPUs > 255 {
		return nil, newUsageError(verbCreate, "cpus out of range")
	}
	if spec.MemoryMiB < 0 || int64(spec.MemoryMiB) > math.MaxUint32 {
		return nil, newUsageError(verbCreate, "memory_mib out of range")
	}
	argv := []string{cmdMachine, subCreate, flagName, spec.Name, flagImage, spec.Image}
	if spec.CPUs > 0 {
		argv = append(argv, flagCPUs, strconv.Itoa(spec.CPUs))
	}
	if spec.MemoryMiB > 0 {
		argv = append(argv, flagMem, strconv.Itoa(spec.MemoryMiB))
	}
	if spec.Network && len(spec.AllowHosts) == 0 && len(spec.AllowCIDRs) == 0 {
		argv = append(argv, flagNet)
	}
	for _, h := range spec.AllowHosts {
		if err := checkValue("allow-host", h, true); err != nil {
			return nil, err
		}
		argv = append(argv, flagAllowHost, h)
	}
	for _, c := range spec.AllowCIDRs {
		if err := checkValue("allow-cidr", c, true); err != nil {
			return nil, err
		}
		argv = append(argv, flagAllowCIDR, c)
	}
	envArgs, err := envFlags(verbCreate, spec.Env)
	if err != nil {
		return nil, err
	}
	argv = append(argv, envArgs...)
	if spec.Workdir != "" {
		if err := checkGuestPath(verbCreate, "workdir", spec.Workdir); err != nil {
			return nil, err
		}
		argv = append(argv, flagWorkdir, spec.Workdir)
	}
	keys := make([]string, 0, len(spec.Labels))
	for k := range spec.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := checkValue("label key", k, true); err != nil {
			return nil, err
		}
		if strings.ContainsRune(k, '=') {
			return nil, newUsageError(verbCreate, "label key contains '='")
		}
		if err := checkValue("label value", spec.Labels[k], false); err != nil {
			return nil, err
		}
		argv = append(argv, flagLabel, k+"="+spec.Labels[k])
	}
	return argv, nil
}

func startArgv(name string) ([]string, error) {
	return nameOnlyArgv(verbStart, subStart, name)
}

func stopArgv(name string) ([]string, error) {
	return nameOnlyArgv(verbStop, subStop, name)
}

// deleteArgv always passes -f: without it smolvm prompts [y/N] on stdin and,
// reading nothing, prints "Cancelled" and exits 0 having deleted nothing.
func deleteArgv(name string) ([]string, error) {
	argv, err := nameOnlyArgv(verbDelete, subDelete, name)
	if err != nil {
		return nil, err
	}
	return append(argv, flagForce), nil
}

func statusArgv(name string) ([]string, error) {
	argv, err := nameOnlyArgv(verbStatus, subStatus, name)
	if err != nil {
		return nil, err
	}
	return append(argv, flagJSON), nil
}

func listArgv() []string { return []string{cmdMachine, subList, flagJSON} }

func nameOnlyArgv(verb, sub, name string) ([]string, error) {
	if err := checkName(verb, name); err != nil {
		return nil, err
	}
	return []string{cmdMachine, sub, flagName, name}, nil
}

// execArgv builds `machine exec`. timeout > 0 adds --timeout; stdin adds -i
// (smolvm forwards stdin only then); tty adds -t.
func execArgv(verb string, req ExecRequest, timeout time.Duration, stdin, tty bool) ([]string, error) {
	if err := checkName(verb, req.Machine); err != nil {
		return nil, err
	}
	envs, guest, workdir, err := guestCommand(verb, req)
	if err != nil {
		return nil, err
	}
	argv := []string{cmdMachine, subExec, flagName, req.Machine}
	envArgs, err := envFlags(verb, envs)
	if err != nil {
		return nil, err
	}
	argv = append(argv, envArgs...)
	if workdir != "" {
		argv = append(argv, flagWorkdir, workdir)
	}
	if timeout < 0 {
		return nil, newUsageError(verb, "negative timeout")
	}
	if timeout > 0 {
		argv = append(argv, flagTimeout, formatTimeout(timeout))
	}
	if stdin {
		argv = append(argv, flagStdin)
	}
	if tty {
		argv = append(argv, flagTTY)
	}
	argv = append(argv, endOfFlags)
	return append(argv, guest...), nil
}

// formatTimeout renders d as whole seconds ("600s"), rounded up so smolvm
// never fires before the caller's own deadline would.
func formatTimeout(d time.Duration) string {
	s := int64(math.Ceil(d.Seconds()))
	if s < 1 {
		s = 1
	}
	return strconv.FormatInt(s, 10) + "s"
}

// guestCommand turns an ExecRequest into the env passed with -e, the guest
// argv after "--", and the -w directory.
//
//   - User "": argv as given (Script runs under /bin/sh -c), env via -e.
//   - ModeLogin: `runuser -l USER -c SCRIPT`. A login shell resets the
//     environment and changes to $HOME, so env becomes `export` lines and the
//     workdir a `cd` line at the top of the script; Argv becomes `exec ARGV`.
//   - ModeDirect: `runuser -u USER -- ARGV` (Script runs under /bin/sh -c);
//     runuser keeps the environment, so HOME/USER/LOGNAME and env go via -e.
func guestCommand(verb string, req ExecRequest) (env []EnvVar, argv []string, workdir string, err error) {
	hasScript, hasArgv := req.Script != "", len(req.Argv) > 0
	if hasScript == hasArgv {
		return nil, nil, "", newUsageError(verb, "exec request needs exactly one of Script or Argv")
	}
	if err := checkNoNUL(verb, "script", req.Script); err != nil {
		return nil, nil, "", err
	}
	for i, a := range req.Argv {
		if err := checkNoNUL(verb, fmt.Sprintf("argv[%d]", i), a); err != nil {
			return nil, nil, "", err
		}
	}
	if hasArgv && req.Argv[0] == "" {
		return nil, nil, "", newUsageError(verb, "argv[0] is empty")
	}
	for _, e := range req.Env {
		if err := checkEnvVar(verb, e); err != nil {
			return nil, nil, "", err
		}
	}
	if req.Workdir != "" {
		if err := checkGuestPath(verb, "workdir", req.Workdir); err != nil {
			return nil, nil, "", err
		}
	}
	if req.User == "" {
		if hasScript {
			return req.Env, []string{guestShell, guestShellCommand, req.Script}, req.Workdir, nil
		}
		return req.Env, req.Argv, req.Workdir, nil
	}
	if !validUserName(req.User) {
		return nil, nil, "", newUsageError(verb, "invalid guest user name")
	}
	switch req.Mode {
	case ModeLogin:
		var b strings.Builder
		for _, e := range req.Env {
			b.WriteString("export " + e.Name + "=" + Quote(e.Value) + "\n")
		}
		if req.Workdir != "" {
			b.WriteString("cd " + Quote(req.Workdir) + " || exit 1\n")
		}
		if hasScript {
			b.WriteString(req.Script)
		} else {
			b.WriteString("exec " + quoteArgv(req.Argv))
		}
		return nil, []string{guestRunuser, runuserLogin, req.User, runuserCommand, b.String()}, "", nil
	case ModeDirect:
		home := req.Home
		if home == "" {
			home = defaultHome(req.User)
		}
		if err := checkGuestPath(verb, "home", home); err != nil {
			return nil, nil, "", err
		}
		env = append([]EnvVar{{"HOME", home}, {"USER", req.User}, {"LOGNAME", req.User}}, req.Env...)
		argv = []string{guestRunuser, runuserUser, req.User, endOfFlags}
		if hasScript {
			argv = append(argv, guestShell, guestShellCommand, req.Script)
		} else {
			argv = append(argv, req.Argv...)
		}
		return env, argv, req.Workdir, nil
	}
	return nil, nil, "", newUsageError(verb, "unknown exec mode %d", int(req.Mode))
}

func defaultHome(user string) string {
	if user == "root" {
		return "/root"
	}
	return "/home/" + user
}

// copyInArgv: `machine cp HOST N:/guest [--mode 0600] [--uid U] [--gid G]`.
// hostPath must be absolute (so it cannot read as a flag) and free of ':'
// (smolvm reads a SOURCE containing ':' as a guest path).
func copyInArgv(machine, hostPath, guestPath string, mode os.FileMode, uid, gid int) ([]string, error) {
	verb := verbCopyIn
	if err := checkName(verb, machine); err != nil {
		return nil, err
	}
	if err := checkHostPath(verb, hostPath); err != nil {
		return nil, err
	}
	if err := checkGuestPath(verb, "guest path", guestPath); err != nil {
		return nil, err
	}
	argv := []string{cmdMachine, subCopy, hostPath, machine + ":" + guestPath}
	if mode != 0 {
		argv = append(argv, flagMode, fmt.Sprintf("%04o", uint32(mode.Perm())|modeSpecial(mode)))
	}
	if uid >= 0 {
		argv = append(argv, flagUID, strconv.Itoa(uid))
	}
	if gid >= 0 {
		argv = append(argv, flagGID, strconv.Itoa(gid))
	}
	return argv, nil
}

// copyOutArgv: `machine cp N:/guest HOST`.
func copyOutArgv(machine, guestPath, hostPath string) ([]string, error) {
	verb := verbCopyOut
	if err := checkName(verb, machine); err != nil {
		return nil, err
	}
	if err := checkGuestPath(verb, "guest path", guestPath); err != nil {
		return nil, err
	}
	if err := checkHostPath(verb, hostPath); err != nil {
		return nil, err
	}
	return []string{cmdMachine, subCopy, machine + ":" + guestPath, hostPath}, nil
}

// modeSpecial maps Go's setuid/setgid/sticky bits to their octal values.
func modeSpecial(m os.FileMode) uint32 {
	var s uint32
	if m&os.ModeSetuid != 0 {
		s |= 0o4000
	}
	if m&os.ModeSetgid != 0 {
		s |= 0o2000
	}
	if m&os.ModeSticky != 0 {
		s |= 0o1000
	}
	return s
}

func envFlags(verb string, env []EnvVar) ([]string, error) {
	out := make([]string, 0, 2*len(env))
	for _, e := range env {
		if err := checkEnvVar(verb, e); err != nil {
			return nil, err
		}
		out = append(out, flagEnv, e.Name+"="+e.Value)
	}
	return out, nil
}

func checkName(verb, name string) error {
	if err := ValidateMachineName(name); err != nil {
		err.(*Error).Verb = verb
		return err
	}
	return nil
}

func checkNoNUL(verb, field, v string) error {
	if strings.IndexByte(v, 0) >= 0 {
		return newUsageError(verb, "%s contains a NUL byte", field)
	}
	return nil
}

// checkValue rejects create values that argv cannot carry or smolvm would
// read as a flag. Messages name the field, never the value.
func checkValue(field, v string, nonEmpty bool) error {
	const verb = verbCreate
	if nonEmpty && v == "" {
		return newUsageError(verb, "%s is empty", field)
	}
	if strings.HasPrefix(v, "-") {
		return newUsageError(verb, "%s starts with '-'", field)
	}
	return checkNoNUL(verb, field, v)
}

// checkEnvVar: names must be shell identifiers, because in login mode they
// are spliced unquoted into `export NAME=...` lines.
func checkEnvVar(verb string, e EnvVar) error {
	if !validEnvName(e.Name) {
		return newUsageError(verb, "invalid environment variable name")
	}
	return checkNoNUL(verb, "environment value of "+e.Name, e.Value)
}

func validEnvName(n string) bool {
	if n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return true
}

// validUserName follows the shadow-utils rule (NAME_REGEX) so the name can
// never be read as a runuser option.
func validUserName(u string) bool {
	if u == "" || len(u) > 32 {
		return false
	}
	for i := 0; i < len(u); i++ {
		c := u[i]
		switch {
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '-' || c == '.'):
		case i == len(u)-1 && i > 0 && c == '$':
		default:
			return false
		}
	}
	return true
}

func checkGuestPath(verb, field, p string) error {
	if !path.IsAbs(p) {
		return newUsageError(verb, "%s must be an absolute path", field)
	}
	return checkNoNUL(verb, field, p)
}

func checkHostPath(verb, p string) error {
	if !path.IsAbs(p) {
		return newUsageError(verb, "host path must be absolute")
	}
	if strings.ContainsRune(p, ':') {
		return newUsageError(verb, "host path contains ':' (smolvm would read it as a guest path)")
	}
	return checkNoNUL(verb, "host path", p)
}
