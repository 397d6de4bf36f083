package smolvmsim

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"
)

// InvocationLogEnv names a file that gets one JSON line (an Invocation) per
// smolvm invocation, appended when it ends. Benchmarks count and time the
// smolvm processes a Bottle costs with it (make bench-e2e), and replay the
// controller's argv by hand. argv is logged as given: the driver keeps
// secrets and scripts off smolvm's command line (stdin, --secret-env).
const InvocationLogEnv = "SMOLVM_SIM_LOG"

// Invocation is one line of the invocation log.
type Invocation struct {
	// Argv is the arguments after the program name.
	Argv []string `json:"argv"`
	// Start is when the process began; Seconds its wall time.
	Start   time.Time `json:"start"`
	Seconds float64   `json:"seconds"`
	// CPUSeconds is user+system time of the process and the children it
	// waited for (bwrap and the guest command), not of a started VMM.
	CPUSeconds float64 `json:"cpuSeconds"`
	Exit       int     `json:"exit"`
}

// Verb is the machine subcommand with its aliases folded as the fault
// knobs spell them ("create", "delete" for rm), "version", or argv[0] for
// the rest ("data-dir").
func (inv Invocation) Verb() string {
	verb, _ := invocationOf(inv.Argv)
	return verb
}

// Machine is the machine the invocation works on (--name, or the NAME: of a
// cp path), "" for node-wide ones (ls, version).
func (inv Invocation) Machine() string {
	if _, m := invocationOf(inv.Argv); m != "-" {
		return m
	}
	return ""
}

// logInvocation runs one smolvm invocation and, when InvocationLogEnv is
// set, appends its line. The log never changes the outcome.
func logInvocation(args []string, run func() int) int {
	path := os.Getenv(InvocationLogEnv)
	if path == "" {
		return run()
	}
	start := time.Now()
	code := run()
	inv := Invocation{Argv: args, Start: start, Seconds: time.Since(start).Seconds(), CPUSeconds: cpuSeconds(), Exit: code}
	line, err := json.Marshal(inv)
	if err != nil {
		return code
	}
	// One write of O_APPEND: concurrent invocations never interleave lines.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return code
	}
	_, _ = f.Write(append(line, '\n'))
	_ = f.Close()
	return code
}

func cpuSeconds() float64 {
	var total float64
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if syscall.Getrusage(who, &ru) == nil {
			total += tvSeconds(ru.Utime) + tvSeconds(ru.Stime)
		}
	}
	return total
}

func tvSeconds(tv syscall.Timeval) float64 {
	return float64(tv.Sec) + float64(tv.Usec)/1e6
}

// Key is "VERB MACHINE" with the verb's aliases folded as the fault knobs
// spell them ("rm" is "delete") and "-" for a machine the argv names none
// of: what tests count smolvm processes by.
func (inv Invocation) Key() string {
	verb, machine := invocationOf(inv.Argv)
	return verb + " " + machine
}

// ReadLog reads an invocation log.
func ReadLog(path string) ([]Invocation, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []Invocation
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if line == "" {
			continue
		}
		var inv Invocation
		if err := json.Unmarshal([]byte(line), &inv); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, inv)
	}
	return out, nil
}

// invocationOf names the verb and the machine of an argv.
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
		case verb == "cp" && !strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "/"):
			// NAME:PATH; a host path is absolute, and may hold a colon.
			if m, _, ok := strings.Cut(a, ":"); ok {
				return verb, m
			}
		}
	}
	return verb, machine
}
