package smolvm

import (
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Every smolvm spelling the driver uses lives in this file (and the copy
// builders in argv_copy.go, the fork ones in argv_fork.go). smolvm releases every few days; when a flag
// moves, these files and argv_test.go change and nothing else does. The
// builders are pure: they validate (validate.go) and return argv (without the
// binary), never run anything.

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
	// subEgressEvents lists refused egress (smolvm:src/cli/machine.rs:350-351).
	subEgressEvents = "egress-events"

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
	flagStream    = "--stream"
	flagTTY       = "-t"
	// flagSecretEnv GUEST=HOST injects HOST's value from smolvm's own
	// environment (secret_env.go).
	flagSecretEnv = "--secret-env"
	flagMode      = "--mode"
	flagUID       = "--uid"
	flagGID       = "--gid"
	flagLimit     = "--limit"
	endOfFlags    = "--"
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
)

// verbEgressEvents lists a machine's refused egress.
const verbEgressEvents = "egress_events"

func versionArgv() []string { return []string{flagVersion} }

func createArgv(spec MachineSpec) ([]string, error) {
	if err := checkName(verbCreate, spec.Name); err != nil {
		return nil, err
	}
	if err := checkImage(spec.Image); err != nil {
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

// egressEventsArgv: the newest limit denials as JSON.
func egressEventsArgv(name string, limit int) ([]string, error) {
	argv, err := nameOnlyArgv(verbEgressEvents, subEgressEvents, name)
	if err != nil {
		return nil, err
	}
	if limit < 0 {
		return nil, newUsageError(verbEgressEvents, "limit is negative")
	}
	return append(argv, flagLimit, strconv.Itoa(limit), flagJSON), nil
}

func listArgv() []string { return []string{cmdMachine, subList, flagJSON} }

func nameOnlyArgv(verb, sub, name string) ([]string, error) {
	if err := checkName(verb, name); err != nil {
		return nil, err
	}
	return []string{cmdMachine, sub, flagName, name}, nil
}

// execArgv builds `machine exec` and the payload to write on its stdin (see
// guestCommand). timeout > 0 adds --timeout; tty adds -t. -i is always
// there: without it `--stream` caps output at 11 MiB and gives the command a
// stdin that never reaches EOF (smolvm:src/agent/client.rs:2536,2597-2601,
// crates/smolvm-agent/src/main.rs:2037-2046); with it smolvm forwards stdin,
// and its EOF, and relays output uncapped (client.rs:1379-1535), whether or
// not the caller has stdin of its own.
func execArgv(verb string, req ExecRequest, timeout time.Duration, tty bool) (argv []string, payload string, err error) {
	if err := checkName(verb, req.Machine); err != nil {
		return nil, "", err
	}
	envs, guest, workdir, payload, err := guestCommand(verb, req)
	if err != nil {
		return nil, "", err
	}
	argv = []string{cmdMachine, subExec, flagName, req.Machine}
	envArgs, err := envFlags(verb, envs)
	if err != nil {
		return nil, "", err
	}
	argv = append(argv, envArgs...)
	if workdir != "" {
		argv = append(argv, flagWorkdir, workdir)
	}
	if timeout < 0 {
		return nil, "", newUsageError(verb, "negative timeout")
	}
	if timeout > 0 {
		argv = append(argv, flagTimeout, formatTimeout(timeout))
	}
	if !tty {
		// Output as it arrives, so a killed exec still has it.
		argv = append(argv, flagStream)
	}
	argv = append(argv, flagStdin)
	if tty {
		argv = append(argv, flagTTY)
	}
	argv = append(argv, endOfFlags)
	return append(argv, guest...), payload, nil
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
