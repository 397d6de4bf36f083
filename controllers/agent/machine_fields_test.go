package agent

import (
	"strings"
	"testing"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

// Each row of machineFields agrees with itself: the machine a create of the
// spec makes shows no drift from that spec, and a spec changed in one field
// shows exactly one drift, naming that field.
func TestMachineFieldsRoundTrip(t *testing.T) {
	base := v1.MachineSpec{
		Image:     "node:22",
		Resources: v1.Resources{CPUs: 2, MemoryMiB: 4096},
		Network:   v1.Network{AllowHosts: []string{"github.com"}, AllowCIDRs: []string{"10.0.0.0/8"}},
	}
	labels := map[string]string{v1.LabelUID: "u1", v1.LabelName: "b"}
	specs := map[string]v1.MachineSpec{
		"full":          base,
		"defaults":      {Image: "node:22"},
		"no network":    {Image: "alpine:3", Resources: v1.Resources{CPUs: 1, MemoryMiB: 512}},
		"hosts only":    {Image: "alpine:3", Network: v1.Network{AllowHosts: []string{"a.example"}}},
		"default cpus":  {Image: "alpine:3", Resources: v1.Resources{MemoryMiB: 1024}},
		"default mem":   {Image: "alpine:3", Resources: v1.Resources{CPUs: 3}},
		"cidrs reorder": {Image: "alpine:3", Network: v1.Network{AllowCIDRs: []string{"10.0.0.0/8", "192.168.0.0/16"}}},
	}
	for name, spec := range specs {
		t.Run(name, func(t *testing.T) {
			req := createRequest("m", &spec, labels)
			if req.Name != "m" || req.Labels[v1.LabelUID] != "u1" || req.Labels[v1.LabelName] != "b" {
				t.Errorf("request lost its name or identity labels: %+v", req)
			}
			m := madeMachine(req)
			if m.State != smolvm.StateCreated || m.Name != "m" || m.Labels[v1.LabelUID] != "u1" {
				t.Errorf("made machine %+v", m)
			}
			if d := machineDiffs(&spec, m); len(d) != 0 {
				t.Errorf("a machine just made from the spec drifts: %q", d)
			}
		})
	}
	if labels[v1.LabelNetwork] != "" {
		t.Errorf("createRequest wrote into the caller's labels: %v", labels)
	}

	changes := []struct {
		field  string
		change func(*v1.MachineSpec)
	}{
		{"spec.image", func(s *v1.MachineSpec) { s.Image = "node:24" }},
		{"spec.resources.cpus", func(s *v1.MachineSpec) { s.Resources.CPUs = 8 }},
		{"spec.resources.memoryMiB", func(s *v1.MachineSpec) { s.Resources.MemoryMiB = 8192 }},
		{"spec.network", func(s *v1.MachineSpec) { s.Network.AllowHosts = []string{"gitlab.com"} }},
		{"spec.network", func(s *v1.MachineSpec) { s.Network = v1.Network{} }},
	}
	if len(changes) < len(machineFields) {
		t.Fatalf("%d machine fields, %d changes tested: add a row here", len(machineFields), len(changes))
	}
	made := madeMachine(createRequest("m", &base, nil))
	for _, c := range changes {
		spec := base
		spec.Network = v1.Network{AllowHosts: append([]string(nil), base.Network.AllowHosts...), AllowCIDRs: base.Network.AllowCIDRs}
		c.change(&spec)
		d := machineDiffs(&spec, made)
		if len(d) != 1 || !strings.HasPrefix(d[0], c.field+" ") {
			t.Errorf("%s changed: diffs %q, want one naming it", c.field, d)
		}
	}
}
