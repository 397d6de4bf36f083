package smolvmsim

import (
	"os"
	"strings"
)

// SMOLVM_SIM_LOG=/path appends one line per smolvm invocation, "VERB
// MACHINE" (MACHINE is "-" for verbs that name none), so tests and
// benchmarks can count the processes a caller spends. Only the verb and the
// machine name are written: never the rest of argv (exec commands, -e
// values).
const logEnv = "SMOLVM_SIM_LOG"

// logInvocation records one invocation; failures to log are ignored (the
// log is a measuring aid, never a reason to fail a call).
func logInvocation(args []string) {
	p := os.Getenv(logEnv)
	if p == "" {
		return
	}
	verb, machine := invocationOf(args)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return
	}
	// One write of a short line with O_APPEND: concurrent invocations never
	// interleave within a line.
	_, _ = f.WriteString(verb + " " + machine + "\n")
	_ = f.Close()
}

// invocationOf names the verb (aliases folded, as the fault knobs spell
// them) and the machine of an argv.
func invocationOf(args []string) (verb, machine string) {
	verb, machine = "-", "-"
	switch {
	case len(args) == 0:
		return verb, machine
	case args[0] == "--version" || args[0] == "-V":
		return "version", machine
	case args[0] != "machine" || len(args) < 2:
		return args[0], machine
	}
	verb = args[1]
	if a, ok := verbAliases[verb]; ok {
		verb = a
	}
	for i, a := range args[2:] {
		switch {
		case a == "--":
			return verb, machine
		case a == "--name" && i+3 < len(args):
			return verb, args[i+3]
		case strings.HasPrefix(a, "--name="):
			return verb, strings.TrimPrefix(a, "--name=")
		case verb == "cp" && !strings.HasPrefix(a, "-"):
			if m, _, ok := strings.Cut(a, ":"); ok {
				return verb, m
			}
		}
	}
	return verb, machine
}
