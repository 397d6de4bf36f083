// Package smolvmsim is the smolvm simulator behind cmd/smolvm-sim: it behaves
// like the smolvm CLI (see docs/smolvm.md) without KVM. Machines are
// bubblewrap sandboxes that share the host's /usr and keep a private /etc,
// /home, /root, /tmp, /workspace, /opt, /run and /var under SMOLVM_DATA_DIR.
//
// Inside a sandbox the same binary is mounted over /usr/sbin/runuser and,
// invoked by that name, switches users for real (see runuser.go).
package smolvmsim

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// simVersion is what `smolvm --version` reports (SMOLVM_SIM_VERSION
// overrides it, to test the driver's minimum-version check).
const simVersion = "1.9.0"

// Main runs the simulator as the process's argv[0] names it: runuser inside
// a sandbox, smolvm otherwise. It returns the exit code.
func Main() int {
	switch filepath.Base(os.Args[0]) {
	case "runuser":
		return runuserMain(os.Args[1:])
	case VMMName:
		return vmmMain(os.Args[1:])
	case forkReadyName:
		return forkReadyMain()
	}
	return logInvocation(os.Args[1:], func() int { return smolvmMain(os.Args[1:], os.Stdin, os.Stdout, os.Stderr) })
}

// failure is smolvm's own error: "Error: <msg>" on stderr, exit 1.
type failure struct{ msg string }

func (f *failure) Error() string { return f.msg }

func fail(format string, args ...any) error { return &failure{msg: fmt.Sprintf(format, args...)} }

// exitStatus ends the process with a code and no message (exec passes the
// guest's code through).
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

type env struct {
	stdin          *os.File
	stdout, stderr io.Writer
}

func smolvmMain(args []string, stdin *os.File, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	err := dispatch(e, args)
	var (
		u  *usageError
		h  *helpRequested
		f  *failure
		es exitStatus
	)
	switch {
	case err == nil:
		return 0
	case errors.As(err, &h):
		_, _ = fmt.Fprint(stdout, h.text)
		return 0
	case errors.As(err, &u):
		_, _ = fmt.Fprint(stderr, u.text)
		return 2
	case errors.As(err, &es):
		return int(es)
	case errors.As(err, &f):
		_, _ = fmt.Fprintf(stderr, "Error: %s\n", f.msg)
		return 1
	default:
		_, _ = fmt.Fprintf(stderr, "Error: %s\n", err)
		return 1
	}
}

var topSpec = &cmdSpec{
	usage: "smolvm <COMMAND>",
	help:  "smolvm (bottle-controller simulator): Linux \"machines\" as bubblewrap sandboxes.\n\nCommands:\n  machine   Manage machines\n  data-dir  Print the data directory",
	flags: []flagSpec{{long: "--version", short: "-V"}},
}

var machineSpec = &cmdSpec{
	usage: "smolvm machine <COMMAND>",
	help:  "Manage machines\n\nCommands:\n  create, start, stop, delete (rm), status, ls (list), exec, cp, update, fork, fork-release, egress-events",
}

func dispatch(e *env, args []string) error {
	if len(args) == 0 {
		return topSpec.usageErr("'smolvm' requires a subcommand but one was not provided")
	}
	switch args[0] {
	case "--version", "-V":
		v := os.Getenv("SMOLVM_SIM_VERSION")
		if v == "" {
			v = simVersion
		}
		if err := applyFaults("version", ""); err != nil {
			return err
		}
		_, _ = fmt.Fprintf(e.stdout, "smolvm %s (bottle-controller simulator; not a VM)\n", v)
		return nil
	case "-h", "--help", "help":
		return &helpRequested{text: topSpec.helpText()}
	case "data-dir":
		s, err := openStore()
		if err != nil {
			return err
		}
		_, _ = fmt.Fprintln(e.stdout, s.dir)
		return nil
	case "machine":
	default:
		if len(args[0]) > 1 && args[0][0] == '-' {
			return topSpec.usageErr("unexpected argument '%s' found", args[0])
		}
		return topSpec.usageErr("unrecognized subcommand '%s'", args[0])
	}
	if len(args) < 2 {
		return machineSpec.usageErr("'smolvm machine' requires a subcommand but one was not provided")
	}
	sub, rest := args[1], args[2:]
	switch sub {
	case "-h", "--help", "help":
		return &helpRequested{text: machineSpec.helpText()}
	case "create":
		return cmdCreate(e, rest)
	case "start":
		return cmdStart(e, rest)
	case "stop":
		return cmdStop(e, rest)
	case "delete", "rm":
		return cmdDelete(e, rest)
	case "status":
		return cmdStatus(e, rest)
	case "ls", "list":
		return cmdList(e, rest)
	case "exec":
		return cmdExec(e, rest)
	case "cp":
		return cmdCopy(rest)
	case "update":
		return cmdUpdate(e, rest)
	case "fork":
		return cmdFork(e, rest)
	case "fork-release":
		return cmdForkRelease(e, rest)
	case "egress-events":
		return cmdEgressEvents(e, rest)
	}
	return machineSpec.usageErr("unrecognized subcommand '%s'", sub)
}
