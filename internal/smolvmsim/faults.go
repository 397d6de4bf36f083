package smolvmsim

import (
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Fault and latency injection (documented in docs/smolvm.md):
//
//	SMOLVM_SIM_LATENCY="start=300ms,exec=20ms"  sleep before doing a verb
//	SMOLVM_SIM_FAIL="start=2,cp=1"              fail the next N calls of a verb
//	SMOLVM_SIM_HANG="exec,stop"                 hang in a verb until killed
//	SMOLVM_SIM_HANG="status=hang-*"             ... only for machines matching the glob
//	SMOLVM_SIM_NO_KVM=1                         every start fails like a host without KVM
//
// Verbs: version, create, start, stop, delete, status, ls, exec, cp, fork,
// fork-release. smolvm's own fork figure is a 73 ms clone boot
// (SMOLVM_SIM_LATENCY="fork=73ms"); one fork invocation sleeps once,
// whatever its --count.

// faultMessages are realistic smolvm errors for SMOLVM_SIM_FAIL.
var faultMessages = map[string]string{
	"version": "config operation failed: load config: database is locked (simulated fault)",
	"create":  "config operation failed: create machine: database is locked (simulated fault)",
	"start":   "agent operation failed: start machine: guest agent did not become ready (simulated fault)",
	"stop":    "agent operation failed: stop machine: vm process did not exit (simulated fault)",
	"delete":  "config operation failed: delete machine: database is locked (simulated fault)",
	"status":  "config operation failed: machine status: database is locked (simulated fault)",
	"ls":      "config operation failed: list machines: database is locked (simulated fault)",
	"exec":    "agent operation failed: exec: connection reset by peer (simulated fault)",
	"cp":      "agent operation failed: file transfer: connection reset by peer (simulated fault)",
	"fork":    "agent operation failed: fork: golden FORK failed: ERR snapshot (simulated fault)",
	// Before the claim: the slot stays held.
	"fork-release": "database operation failed: open: database is locked (simulated fault)",
}

var verbAliases = map[string]string{"rm": "delete", "list": "ls", "copy": "cp"}

// parseVerbList reads "verb=value,verb=value" (value may be empty).
func parseVerbList(s string) map[string]string {
	out := map[string]string{}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		k, v, _ := strings.Cut(item, "=")
		k = strings.TrimSpace(k)
		if a, ok := verbAliases[k]; ok {
			k = a
		}
		out[k] = strings.TrimSpace(v)
	}
	return out
}

// applyFaults injects the configured faults into one call of verb on
// machine ("" for verbs that name none).
func applyFaults(verb, machine string) error {
	if d, ok := parseVerbList(os.Getenv("SMOLVM_SIM_LATENCY"))[verb]; ok {
		if dur, err := time.ParseDuration(d); err == nil && dur > 0 {
			time.Sleep(dur)
		}
	}
	if glob, ok := parseVerbList(os.Getenv("SMOLVM_SIM_HANG"))[verb]; ok && hangs(glob, machine) {
		// Hang like a wedged VMM: only a signal ends this process.
		for {
			time.Sleep(time.Hour)
		}
	}
	if n, ok := parseVerbList(os.Getenv("SMOLVM_SIM_FAIL"))[verb]; ok {
		budget, err := strconv.Atoi(n)
		if err == nil && budget > 0 && takeFailure(verb, budget) {
			return fail("%s", faultMessages[verb])
		}
	}
	return nil
}

// hangs says whether a hang configured with glob (a path.Match pattern;
// empty matches every machine) applies to machine.
func hangs(glob, machine string) bool {
	if glob == "" {
		return true
	}
	ok, err := path.Match(glob, machine)
	return err == nil && ok
}

type faultCounter struct {
	Budget int `json:"budget"`
	Used   int `json:"used"`
}

// takeFailure consumes one of the verb's N injected failures. The counters
// live in the data dir so "the next N calls" spans processes; changing N
// re-arms the verb.
func takeFailure(verb string, budget int) bool {
	dir := dataDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false
	}
	unlock, err := flock(filepath.Join(dir, "faults.lock"), true)
	if err != nil {
		return false
	}
	defer unlock()
	counterFile := filepath.Join(dir, "faults.json")
	counters := map[string]faultCounter{}
	if data, err := os.ReadFile(counterFile); err == nil {
		_ = json.Unmarshal(data, &counters)
	}
	c := counters[verb]
	if c.Budget != budget {
		c = faultCounter{Budget: budget}
	}
	if c.Used >= c.Budget {
		return false
	}
	c.Used++
	counters[verb] = c
	return writeJSONAtomic(counterFile, counters) == nil
}
