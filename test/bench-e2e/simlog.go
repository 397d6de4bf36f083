package main

import (
	"errors"
	"os"
	"time"

	"github.com/bot-bottle/bottle-controller/internal/smolvmsim"
)

// readInvocations reads a simulator invocation log (SMOLVM_SIM_LOG). A
// missing log is an empty one: nothing ran smolvm yet.
func readInvocations(path string) ([]smolvmsim.Invocation, error) {
	invs, err := smolvmsim.ReadLog(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return invs, err
}

// smolvmWork is the smolvm processes of one machine, or of the node.
type smolvmWork struct {
	processes int
	// byVerb counts the processes per verb.
	byVerb map[string]int
	// seconds is their wall time added up; cpu their CPU time.
	seconds, cpu float64
	// begin is when the first began, end when the last ended (each the
	// simulator's own: from its main function to its exit).
	begin, end time.Time
}

func (w *smolvmWork) add(inv smolvmsim.Invocation) {
	if w.byVerb == nil {
		w.byVerb = map[string]int{}
		w.begin = inv.Start
	}
	w.end = inv.Start.Add(time.Duration(inv.Seconds * float64(time.Second)))
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
		if inv.Start.Before(from) || inv.Start.After(to) || inv.Machine() != machine {
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
		if invs[i].Verb() == "exec" && invs[i].Machine() == machine {
			return invs[i].Argv
		}
	}
	return nil
}
