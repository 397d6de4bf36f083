package smolvm

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Machine states as smolvm reports them in `state`.
const (
	StateCreated     = "created"
	StateRunning     = "running"
	StateStopped     = "stopped"
	StateFailed      = "failed"
	StateUnreachable = "unreachable" // process alive, guest agent silent
	StateFrozen      = "frozen"      // fork base
)

// MachineSpec is what `machine create` records. Zero CPUs/MemoryMiB leave
// smolvm's defaults (4 CPUs, 8192 MiB). AllowHosts/AllowCIDRs imply network.
type MachineSpec struct {
	Name, Image string
	CPUs        int
	MemoryMiB   int
	AllowHosts  []string
	AllowCIDRs  []string
	Labels      map[string]string
	// Network turns on guest networking without an allow-list (--net).
	Network bool
	// Env and Workdir are the machine's defaults for every exec.
	Env     []EnvVar
	Workdir string
}

// Machine is one object of `machine status --json` / `machine ls --json`.
type Machine struct {
	Name      string
	State     string
	Image     string
	CPUs      int
	MemoryMiB int
	// PID of the VM process; 0 when smolvm reports none (null).
	PID       int
	CreatedAt string
	Labels    map[string]string
	Network   bool
	// Forkable: started as a fork base (StartForkable). ForkpointHeld: a
	// held fork slot not yet released (ForkRelease). smolvm reports no
	// field naming a clone's golden.
	Forkable      bool
	ForkpointHeld bool
}

// machineJSON is the wire shape (snake_case, nullable fields). Unknown keys
// are ignored: smolvm adds fields often.
type machineJSON struct {
	Name      string            `json:"name"`
	State     string            `json:"state"`
	Image     *string           `json:"image"`
	CPUs      int               `json:"cpus"`
	MemoryMiB int               `json:"memory_mib"`
	PID       *int              `json:"pid"`
	CreatedAt json.RawMessage   `json:"created_at"`
	Labels    map[string]string `json:"labels"`
	Network   bool              `json:"network"`
	Forkable  bool              `json:"forkable"`
	Held      bool              `json:"forkpoint_held"`
}

func (w machineJSON) machine() Machine {
	m := Machine{Name: w.Name, State: w.State, CPUs: w.CPUs, MemoryMiB: w.MemoryMiB,
		Labels: w.Labels, Network: w.Network, Forkable: w.Forkable, ForkpointHeld: w.Held}
	if w.Image != nil {
		m.Image = *w.Image
	}
	if w.PID != nil {
		m.PID = *w.PID
	}
	m.CreatedAt = rawScalar(w.CreatedAt)
	return m
}

// rawScalar renders a JSON string or number as text; created_at has been
// both an RFC 3339 string and a Unix timestamp across smolvm versions.
func rawScalar(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// parseMachine parses the output of `machine status --json`.
func parseMachine(data []byte) (*Machine, error) {
	var w machineJSON
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, fmt.Errorf("parse machine status JSON: %w", err)
	}
	if w.Name == "" || w.State == "" {
		return nil, fmt.Errorf("parse machine status JSON: missing name or state")
	}
	m := w.machine()
	return &m, nil
}

// parseMachineList parses the output of `machine ls --json`. An entry
// without a name or a state fails the whole list, as it fails status: a
// caller reading every machine's state from one listing must never take a
// machine it cannot read for one that does not exist.
func parseMachineList(data []byte) ([]Machine, error) {
	var ws []machineJSON
	if err := json.Unmarshal(data, &ws); err != nil {
		return nil, fmt.Errorf("parse machine list JSON: %w", err)
	}
	out := make([]Machine, 0, len(ws))
	for i, w := range ws {
		if w.Name == "" || w.State == "" {
			return nil, fmt.Errorf("parse machine list JSON: entry %d: missing name or state", i)
		}
		out = append(out, w.machine())
	}
	return out, nil
}
