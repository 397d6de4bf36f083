package smolvmsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// Layout under the data dir:
//
//	locks/global.lock          create/delete/list
//	locks/<name>.lock          one machine's state (kept forever: removing a
//	                           flock file others wait on breaks mutual exclusion)
//	machines/<name>/machine.json
//	machines/<name>/rootfs/    the machine's private directories
//	machines/<name>/execs/<pid> running exec invocations, killed by stop
//	faults.json (+ faults.lock) SMOLVM_SIM_FAIL counters
type store struct{ dir string }

// dataDir is absolute: its paths become bwrap bind sources.
func dataDir() string {
	if d := os.Getenv("SMOLVM_DATA_DIR"); d != "" {
		if abs, err := filepath.Abs(d); err == nil {
			return abs
		}
		return d
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "smolvm")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = "/root"
	}
	return filepath.Join(home, ".local", "share", "smolvm")
}

func openStore() (*store, error) {
	s := &store{dir: dataDir()}
	for _, d := range []string{"locks", "machines", "trash"} {
		if err := os.MkdirAll(filepath.Join(s.dir, d), 0o700); err != nil {
			return nil, fail("config operation failed: open database: %v", err)
		}
	}
	return s, nil
}

func (s *store) machineDir(name string) string { return filepath.Join(s.dir, "machines", name) }
func (s *store) recordPath(name string) string {
	return filepath.Join(s.machineDir(name), "machine.json")
}
func (s *store) rootfs(name string) string  { return filepath.Join(s.machineDir(name), "rootfs") }
func (s *store) execDir(name string) string { return filepath.Join(s.machineDir(name), "execs") }

// flock takes an advisory lock on path; the returned func releases it.
func flock(path string, exclusive bool) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fail("config operation failed: lock: %v", err)
	}
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	for {
		err = syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		_ = f.Close()
		return nil, fail("config operation failed: lock: %v", err)
	}
	return func() { _ = f.Close() }, nil
}

func (s *store) lockGlobal(exclusive bool) (func(), error) {
	return flock(filepath.Join(s.dir, "locks", "global.lock"), exclusive)
}

func (s *store) lockMachine(name string, exclusive bool) (func(), error) {
	return flock(filepath.Join(s.dir, "locks", name+".lock"), exclusive)
}

// record is one machine as persisted. The JSON of `status`/`ls` is a
// separate view (statusJSON) so internal fields stay private.
type record struct {
	Name        string            `json:"name"`
	State       string            `json:"state"`
	CPUs        int               `json:"cpus"`
	MemoryMiB   int               `json:"memory_mib"`
	PID         *int              `json:"pid"`
	CreatedAt   string            `json:"created_at"`
	Image       *string           `json:"image"`
	Labels      map[string]string `json:"labels"`
	Network     bool              `json:"network"`
	AllowHosts  []string          `json:"allow_hosts,omitempty"`
	AllowCIDRs  []string          `json:"allowed_cidrs,omitempty"`
	Env         []string          `json:"env,omitempty"`
	Workdir     string            `json:"workdir,omitempty"`
	PulledImage string            `json:"pulled_image,omitempty"`
	PulledAt    string            `json:"pulled_at,omitempty"`

	// GuestNet is the running machine's own network (egress_net.go): the
	// path of the namespace its VMM enforces the allowlist in, or
	// guestNetNone; empty without an allowlist.
	GuestNet string `json:"guest_net,omitempty"`

	forkRecord
}

func (s *store) load(name string) (*record, error) {
	data, err := os.ReadFile(s.recordPath(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fail("config operation failed: read machine: %v", err)
	}
	var r record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fail("config operation failed: decode machine '%s': %v", name, err)
	}
	// A running machine whose VMM is gone (killed, host rebooted) is
	// stopped, whatever the record last said.
	if r.State == "running" && (r.PID == nil || !vmmAlive(*r.PID, r.Name)) {
		r.State, r.PID, r.GuestNet = "stopped", nil, ""
		r.Frozen, r.Forkable = false, false
	}
	return &r, nil
}

// save replaces machine.json atomically: readers that take no lock (status,
// ls) see the old or the new record, never a torn one.
func (s *store) save(r *record) error {
	return writeJSONAtomic(s.recordPath(r.Name), r)
}

func writeJSONAtomic(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fail("config operation failed: encode: %v", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fail("config operation failed: write: %v", err)
	}
	_, werr := tmp.Write(append(data, '\n'))
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		_ = os.Remove(tmp.Name())
		return fail("config operation failed: write: %v", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		return fail("config operation failed: write: %v", err)
	}
	return nil
}

func (s *store) list() ([]*record, error) {
	ents, err := os.ReadDir(filepath.Join(s.dir, "machines"))
	if err != nil {
		return nil, fail("config operation failed: list machines: %v", err)
	}
	var out []*record
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		r, err := s.load(e.Name())
		if err != nil {
			return nil, err
		}
		if r != nil {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// registerExec records a running exec so that stop can end it; the entry
// holds the pid and its start time, which guards against pid reuse.
func (s *store) registerExec(name string) (func(), error) {
	dir := s.execDir(name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fail("agent operation failed: exec: %v", err)
	}
	pid := os.Getpid()
	path := filepath.Join(dir, strconv.Itoa(pid))
	if err := os.WriteFile(path, []byte(procStartTime(pid)), 0o600); err != nil {
		return nil, fail("agent operation failed: exec: %v", err)
	}
	return func() { _ = os.Remove(path) }, nil
}

// maxAgentConns is the guest agent's connection limit
// (MAX_CONCURRENT_CONNECTIONS, smolvm:crates/smolvm-agent/src/main.rs:1753-1756).
const maxAgentConns = 8

// UnreachableMarker is a file in a machine's directory that makes its guest
// agent "wedged" for status and ls (a knob for tests; docs/smolvm.md).
const UnreachableMarker = "unreachable"

// probe is smolvm's state probe for status and ls: a running machine whose
// guest agent does not answer a ping is `unreachable`
// (src/agent/state_probe.rs:41-79). The agent serves maxAgentConns
// connections at a time and queues the rest, so a machine with that many
// execs and copies running cannot answer; nor can one marked wedged.
func (s *store) probe(r *record) {
	if r.State != "running" {
		return
	}
	if _, err := os.Stat(filepath.Join(s.machineDir(r.Name), UnreachableMarker)); err == nil || s.liveExecs(r.Name) >= maxAgentConns {
		r.State = "unreachable"
	}
}

// liveExecs counts a machine's registered execs and copies whose process
// still runs.
func (s *store) liveExecs(name string) int {
	ents, _ := os.ReadDir(s.execDir(name))
	n := 0
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		want, _ := os.ReadFile(filepath.Join(s.execDir(name), e.Name()))
		if st := procStartTime(pid); st != "" && st == string(want) {
			n++
		}
	}
	return n
}

// stopExecs signals every registered exec of a machine; each one kills its
// sandbox and reports that the machine went away.
func (s *store) stopExecs(name string) {
	ents, _ := os.ReadDir(s.execDir(name))
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		want, _ := os.ReadFile(filepath.Join(s.execDir(name), e.Name()))
		if st := procStartTime(pid); st == "" || st != string(want) {
			_ = os.Remove(filepath.Join(s.execDir(name), e.Name()))
			continue
		}
		_ = syscall.Kill(pid, stopSignal)
	}
}

// procStartTime is field 22 of /proc/PID/stat ("" if the process is gone).
func procStartTime(pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ""
	}
	fields := strings.Fields(s[i+1:])
	// fields[0] is field 3 (state); start time is field 22.
	if len(fields) < 20 {
		return ""
	}
	return fields[19]
}
