package agent

import (
	"fmt"
	"maps"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

// machineField is one spec field a machine is made with. smolvm cannot
// change any of them on a running machine: the size (CPUs, memory) only on
// a stopped one (`machine update`, see decideResize), the rest only with a
// new machine (recreatePolicy).
//
// machineFields is the one list of them: the create request
// (createRequest), the machine a create is known to have made (madeMachine,
// the agent's sighting without asking smolvm) and the drift check
// (machineDiffs) all read it, so a new VM field is one row here, besides
// its API field, its driver flag (internal/smolvm) and the simulator.
type machineField struct {
	// create puts the field into the create request.
	create func(spec *v1.MachineSpec, req *smolvm.MachineSpec)
	// made puts into m what smolvm reports of the field on a machine
	// created from req.
	made func(req *smolvm.MachineSpec, m *smolvm.Machine)
	// diff says how m differs from spec in the field; "" when it does not,
	// or when m does not report the field (zero, or a machine made by an
	// older agent).
	diff func(spec *v1.MachineSpec, m *smolvm.Machine) string
}

var machineFields = []machineField{
	{ // spec.image
		create: func(spec *v1.MachineSpec, req *smolvm.MachineSpec) { req.Image = spec.Image },
		made:   func(req *smolvm.MachineSpec, m *smolvm.Machine) { m.Image = req.Image },
		diff: func(spec *v1.MachineSpec, m *smolvm.Machine) string {
			if m.Image != "" && m.Image != spec.Image {
				return fmt.Sprintf("spec.image %q (machine: %q)", spec.Image, m.Image)
			}
			return ""
		},
	},
	{ // spec.resources.cpus
		create: func(spec *v1.MachineSpec, req *smolvm.MachineSpec) { req.CPUs = int(spec.Resources.OrDefault().CPUs) },
		made:   func(req *smolvm.MachineSpec, m *smolvm.Machine) { m.CPUs = req.CPUs },
		diff: func(spec *v1.MachineSpec, m *smolvm.Machine) string {
			if want := spec.Resources.OrDefault().CPUs; m.CPUs != 0 && m.CPUs != int(want) {
				return fmt.Sprintf("spec.resources.cpus %d (machine: %d)", want, m.CPUs)
			}
			return ""
		},
	},
	{ // spec.resources.memoryMiB
		create: func(spec *v1.MachineSpec, req *smolvm.MachineSpec) {
			req.MemoryMiB = int(spec.Resources.OrDefault().MemoryMiB)
		},
		made: func(req *smolvm.MachineSpec, m *smolvm.Machine) { m.MemoryMiB = req.MemoryMiB },
		diff: func(spec *v1.MachineSpec, m *smolvm.Machine) string {
			if want := spec.Resources.OrDefault().MemoryMiB; m.MemoryMiB != 0 && m.MemoryMiB != int(want) {
				return fmt.Sprintf("spec.resources.memoryMiB %d (machine: %d)", want, m.MemoryMiB)
			}
			return ""
		},
	},
	{ // spec.network: smolvm does not report the allowlist, so the machine
		// carries its digest as a label (v1.LabelNetwork).
		create: func(spec *v1.MachineSpec, req *smolvm.MachineSpec) {
			req.AllowHosts, req.AllowCIDRs = spec.Network.AllowHosts, spec.Network.AllowCIDRs
			req.Labels[v1.LabelNetwork] = networkDigest(spec.Network)
		},
		made: func(req *smolvm.MachineSpec, m *smolvm.Machine) {
			m.Labels[v1.LabelNetwork] = req.Labels[v1.LabelNetwork]
			m.Network = req.Network || len(req.AllowHosts)+len(req.AllowCIDRs) > 0
		},
		diff: func(spec *v1.MachineSpec, m *smolvm.Machine) string {
			if got, ok := m.Labels[v1.LabelNetwork]; ok {
				if got != networkDigest(spec.Network) {
					return fmt.Sprintf("spec.network (%s) differs from the machine's allowlist", describeNetwork(spec.Network))
				}
				return ""
			}
			if wantNet := len(spec.Network.AllowHosts)+len(spec.Network.AllowCIDRs) > 0; m.Network != wantNet {
				return fmt.Sprintf("spec.network (%s) differs from the machine's (network %t)", describeNetwork(spec.Network), m.Network)
			}
			return ""
		},
	},
}

// createRequest is the `machine create` request for a machine named name
// made from spec, carrying labels (the owner's identity) besides what the
// fields add.
func createRequest(name string, spec *v1.MachineSpec, labels map[string]string) smolvm.MachineSpec {
	req := smolvm.MachineSpec{Name: name, Labels: maps.Clone(labels)}
	if req.Labels == nil {
		req.Labels = map[string]string{}
	}
	for _, f := range machineFields {
		f.create(spec, &req)
	}
	return req
}

// madeMachine is the machine a successful create of req made, as smolvm
// would report it: created, not started.
func madeMachine(req smolvm.MachineSpec) *smolvm.Machine {
	m := &smolvm.Machine{Name: req.Name, State: smolvm.StateCreated, Labels: maps.Clone(req.Labels)}
	for _, f := range machineFields {
		f.made(&req, m)
	}
	return m
}

// machineDiffs lists the spec fields an existing machine does not have.
// Fields the machine does not report are compared as far as they can be.
func machineDiffs(spec *v1.MachineSpec, m *smolvm.Machine) []string {
	var diffs []string
	for _, f := range machineFields {
		if d := f.diff(spec, m); d != "" {
			diffs = append(diffs, d)
		}
	}
	return diffs
}
