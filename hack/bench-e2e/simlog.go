package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"time"

	"github.com/bot-bottle/bottle-controller/internal/smolvmsim"
)

// readInvocations reads a simulator invocation log (SMOLVM_SIM_LOG). A
// missing log is an empty one.
func readInvocations(path string) ([]smolvmsim.Invocation, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	var out []smolvmsim.Invocation
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var inv smolvmsim.Invocation
		if err := json.Unmarshal(sc.Bytes(), &inv); err != nil {
			return nil, err
		}
		out = append(out, inv)
	}
	return out, sc.Err()
}

// machineOf is the machine an invocation works on: --name NAME, or the
// NAME: of a cp path. "" for node-wide ones (ls, --version).
func machineOf(inv smolvmsim.Invocation) string {
	for i, a := range inv.Argv {
		if a == "--" {
			break
		}
		if a == "--name" && i+1 < len(inv.Argv) {
			return inv.Argv[i+1]
		}
	}
	if inv.Verb() == "cp" {
		for _, a := range inv.Argv[2:] {
			if name, _, ok := strings.Cut(a, ":"); ok && !strings.HasPrefix(a, "/") {
				return name
			}
		}
	}
	return ""
}

// smolvmWork is the smolvm processes of one machine, or of the node.
type smolvmWork struct {
	processes int
	// byVerb counts the processes per verb.
	byVerb map[string]int
	// seconds is their wall time added up; cpu their CPU time.
	seconds, cpu float64
}

func (w *smolvmWork) add(inv smolvmsim.Invocation) {
	if w.byVerb == nil {
		w.byVerb = map[string]int{}
	}
	w.processes++
	w.byVerb[inv.Verb()]++
	w.seconds += inv.Seconds
	w.cpu += inv.CPUSeconds
}

// workOf adds up the invocations on machine that started within [from, to].
// machine "" selects the node-wide ones.
func workOf(invs []smolvmsim.Invocation, machine string, from, to time.Time) smolvmWork {
	var w smolvmWork
	for _, inv := range invs {
		if inv.Start.Before(from) || inv.Start.After(to) || machineOf(inv) != machine {
			continue
		}
		w.add(inv)
	}
	return w
}

// lastExec is the last exec invocation on machine: the argv the agent ran
// for a session, to run the same by hand.
func lastExec(invs []smolvmsim.Invocation, machine string) []string {
	for i := len(invs) - 1; i >= 0; i-- {
		if invs[i].Verb() == "exec" && machineOf(invs[i]) == machine {
			return invs[i].Argv
		}
	}
	return nil
}
