package agent

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

func TestOwnerOf(t *testing.T) {
	cases := []struct {
		name string
		m    *smolvm.Machine
		want ownership
	}{
		{"missing", nil, machineMissing},
		{"ours", &smolvm.Machine{Labels: map[string]string{v1.LabelUID: "u1"}}, machineOurs},
		{"another Bottle's", &smolvm.Machine{Labels: map[string]string{v1.LabelUID: "u2"}}, machineForeign},
		{"made by hand", &smolvm.Machine{Labels: map[string]string{"owner": "someone"}}, machineForeign},
		{"no labels", &smolvm.Machine{}, machineForeign},
	}
	for _, tc := range cases {
		if got := ownerOf(tc.m, "u1"); got != tc.want {
			t.Errorf("%s: ownerOf = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestDecidePower(t *testing.T) {
	cases := []struct {
		want            v1.RunState
		state, lastSeen string
		action          powerAction
		unexpected      bool
	}{
		{v1.RunStateRunning, smolvm.StateRunning, smolvm.StateRunning, powerNone, false},
		{v1.RunStateRunning, smolvm.StateCreated, "", powerStart, false},
		{v1.RunStateRunning, smolvm.StateCreated, smolvm.StateCreated, powerStart, false},
		{v1.RunStateRunning, smolvm.StateStopped, smolvm.StateStopped, powerStart, false},
		{v1.RunStateRunning, smolvm.StateStopped, smolvm.StateRunning, powerStart, true},
		{v1.RunStateRunning, smolvm.StateFailed, smolvm.StateRunning, powerStart, true},
		{v1.RunStateRunning, smolvm.StateUnreachable, smolvm.StateRunning, powerWait, false},
		{v1.RunStateStopped, smolvm.StateRunning, smolvm.StateRunning, powerStop, false},
		{v1.RunStateStopped, smolvm.StateUnreachable, smolvm.StateRunning, powerStop, false},
		{v1.RunStateStopped, smolvm.StateStopped, smolvm.StateRunning, powerNone, false},
		{v1.RunStateStopped, smolvm.StateCreated, "", powerNone, false},
	}
	for _, tc := range cases {
		action, unexpected := decidePower(tc.want, tc.state, tc.lastSeen, 0, time.Minute)
		if action != tc.action || unexpected != tc.unexpected {
			t.Errorf("decidePower(%s, %s, %q) = %v, %t; want %v, %t", tc.want, tc.state, tc.lastSeen, action, unexpected, tc.action, tc.unexpected)
		}
	}
	// A transient unreachable is waited out; a lasting one restarts.
	for _, tc := range []struct {
		since  time.Duration
		action powerAction
	}{{0, powerWait}, {59 * time.Second, powerWait}, {time.Minute, powerRestart}, {time.Hour, powerRestart}} {
		action, unexpected := decidePower(v1.RunStateRunning, smolvm.StateUnreachable, smolvm.StateUnreachable, tc.since, time.Minute)
		if action != tc.action || unexpected != (action == powerRestart) {
			t.Errorf("unreachable for %s: %v, %t; want %v, a restart unexpected", tc.since, action, unexpected, tc.action)
		}
	}
}

func TestMachineDiffsAndDrift(t *testing.T) {
	spec := &v1.BottleSpec{
		MachineSpec: v1.MachineSpec{
			Image:     "node:22",
			Resources: v1.Resources{CPUs: 2, MemoryMiB: 4096},
			Network:   v1.Network{AllowHosts: []string{"api.anthropic.com", "github.com"}},
		},
	}
	machine := func(mut func(*smolvm.Machine)) *smolvm.Machine {
		m := &smolvm.Machine{Image: "node:22", CPUs: 2, MemoryMiB: 4096, Network: true,
			Labels: map[string]string{v1.LabelNetwork: networkDigest(spec.Network)}}
		if mut != nil {
			mut(m)
		}
		return m
	}
	cases := []struct {
		name string
		m    *smolvm.Machine
		want []string // substrings, one per diff
	}{
		{"up to date", machine(nil), nil},
		{"allowlist in another order is the same", machine(func(m *smolvm.Machine) {
			m.Labels[v1.LabelNetwork] = networkDigest(v1.Network{AllowHosts: []string{"github.com", "api.anthropic.com"}})
		}), nil},
		{"image", machine(func(m *smolvm.Machine) { m.Image = "node:20" }), []string{`spec.image "node:22" (machine: "node:20")`}},
		{"cpus and memory", machine(func(m *smolvm.Machine) { m.CPUs, m.MemoryMiB = 4, 8192 }),
			[]string{"spec.resources.cpus 2 (machine: 4)", "spec.resources.memoryMiB 4096 (machine: 8192)"}},
		{"unreported fields are not drift", machine(func(m *smolvm.Machine) { m.Image, m.CPUs, m.MemoryMiB = "", 0, 0 }), nil},
		{"allowlist changed", machine(func(m *smolvm.Machine) { m.Labels[v1.LabelNetwork] = networkDigest(v1.Network{}) }),
			[]string{"spec.network (allowHosts [api.anthropic.com github.com], allowCIDRs [])"}},
		{"older machine without the label, network off", machine(func(m *smolvm.Machine) { m.Labels, m.Network = nil, false }),
			[]string{"differs from the machine's (network false)"}},
		{"older machine without the label, network on", machine(func(m *smolvm.Machine) { m.Labels = nil }), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			diffs := machineDiffs(&spec.MachineSpec, tc.m)
			if len(diffs) != len(tc.want) {
				t.Fatalf("diffs = %q, want %d", diffs, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.Contains(diffs[i], w) {
					t.Errorf("diff %q lacks %q", diffs[i], w)
				}
			}
		})
	}

	if a, msg := decideDrift(nil, v1.RecreateOnChange); a != driftNone || msg != "" {
		t.Errorf("no diffs: %v %q", a, msg)
	}
	if a, msg := decideDrift([]string{"spec.image x"}, ""); a != driftReport || !strings.Contains(msg, "recreatePolicy: OnChange") {
		t.Errorf("default policy: %v %q", a, msg)
	}
	if a, msg := decideDrift([]string{"spec.image x"}, v1.RecreateNever); a != driftReport || !strings.Contains(msg, "not applied") {
		t.Errorf("Never: %v %q", a, msg)
	}
	if a, msg := decideDrift([]string{"spec.image x"}, v1.RecreateOnChange); a != driftRecreate || !strings.Contains(msg, "disk is lost") {
		t.Errorf("OnChange: %v %q", a, msg)
	}
}

func TestDecideFailure(t *testing.T) {
	cases := []struct {
		class smolvm.ErrorClass
		want  failurePolicy
	}{
		{smolvm.ClassKVMUnavailable, failurePolicy{Reason: v1.ReasonKVMUnavailable, Stall: true}},
		{smolvm.ClassInvalidName, failurePolicy{Reason: v1.ReasonInvalidName, Stall: true}},
		{smolvm.ClassUnresolvableHost, failurePolicy{Reason: v1.ReasonAllowHostUnresolvable, Stall: true}},
		{smolvm.ClassTimeout, failurePolicy{Reason: v1.ReasonSmolvmTimeout}},
		{smolvm.ClassNotRunning, failurePolicy{Reason: v1.ReasonSmolvmError}},
		{smolvm.ClassOther, failurePolicy{Reason: v1.ReasonSmolvmError}},
	}
	for _, tc := range cases {
		if got := decideFailure(tc.class); got != tc.want {
			t.Errorf("decideFailure(%s) = %+v, want %+v", tc.class, got, tc.want)
		}
	}
}

func TestDecideResize(t *testing.T) {
	spec := &v1.BottleSpec{MachineSpec: v1.MachineSpec{Image: "node:22", Resources: v1.Resources{CPUs: 4, MemoryMiB: 8192}}}
	machine := func(mut func(*smolvm.Machine)) *smolvm.Machine {
		m := &smolvm.Machine{Image: "node:22", CPUs: 4, MemoryMiB: 8192,
			Labels: map[string]string{v1.LabelNetwork: networkDigest(spec.Network)}}
		if mut != nil {
			mut(m)
		}
		return m
	}
	for _, tc := range []struct {
		name      string
		m         *smolvm.Machine
		cpus, mem int
		ok        bool
	}{
		{"as the spec", machine(nil), 0, 0, false},
		{"fewer cpus", machine(func(m *smolvm.Machine) { m.CPUs = 2 }), 4, 0, true},
		{"less memory", machine(func(m *smolvm.Machine) { m.MemoryMiB = 4096 }), 0, 8192, true},
		{"both", machine(func(m *smolvm.Machine) { m.CPUs, m.MemoryMiB = 8, 16384 }), 4, 8192, true},
		{"size and image: a new machine", machine(func(m *smolvm.Machine) { m.CPUs, m.Image = 2, "node:20" }), 0, 0, false},
		{"size and network: a new machine", machine(func(m *smolvm.Machine) { m.CPUs, m.Labels[v1.LabelNetwork] = 2, "other" }), 0, 0, false},
		{"image only", machine(func(m *smolvm.Machine) { m.Image = "node:20" }), 0, 0, false},
	} {
		cpus, mem, ok := decideResize(spec, tc.m)
		if cpus != tc.cpus || mem != tc.mem || ok != tc.ok {
			t.Errorf("%s: decideResize = %d, %d, %t; want %d, %d, %t", tc.name, cpus, mem, ok, tc.cpus, tc.mem, tc.ok)
		}
	}
	// The API server does not default spec.resources: an unset size is
	// Resources.OrDefault's, so raising only the memory resizes the
	// default-sized machine instead of making a new one.
	def := v1.Resources{}.OrDefault()
	memOnly := &v1.BottleSpec{MachineSpec: v1.MachineSpec{Image: "node:22", Resources: v1.Resources{MemoryMiB: 8192}}}
	m := &smolvm.Machine{Image: "node:22", CPUs: int(def.CPUs), MemoryMiB: int(def.MemoryMiB),
		Labels: map[string]string{v1.LabelNetwork: networkDigest(memOnly.Network)}}
	if cpus, mem, ok := decideResize(memOnly, m); cpus != 0 || mem != 8192 || !ok {
		t.Errorf("memory raised, cpus unset: decideResize = %d, %d, %t; want 0, 8192, true", cpus, mem, ok)
	}
}

func TestHoldStall(t *testing.T) {
	now := time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC)
	stalled := func(reason string, ago time.Duration, gen int64) *v1.BottleStatus {
		return &v1.BottleStatus{ObservedGeneration: gen, Conditions: []metav1.Condition{{
			Type: v1.ConditionStalled, Status: metav1.ConditionTrue, Reason: reason, Message: "m",
			LastTransitionTime: metav1.NewTime(now.Add(-ago)),
		}}}
	}
	cases := []struct {
		name  string
		st    *v1.BottleStatus
		retry retryRequest
		hold  time.Duration
	}{
		{"no KVM, just stalled: hold for the rest of the period", stalled(v1.ReasonKVMUnavailable, 30*time.Second, 1), retryRequest{}, 90 * time.Second},
		{"a refused name holds too", stalled(v1.ReasonInvalidName, time.Minute, 1), retryRequest{}, time.Minute},
		{"the period is over: ask smolvm again", stalled(v1.ReasonKVMUnavailable, 3*time.Minute, 1), retryRequest{}, 0},
		{"a new generation: ask again", stalled(v1.ReasonKVMUnavailable, time.Second, 0), retryRequest{}, 0},
		{"a retry asked for: ask again", stalled(v1.ReasonKVMUnavailable, time.Second, 1), retryRequest{Token: "1"}, 0},
		{"a failed step is not a smolvm stall", stalled(v1.ReasonStepFailed, time.Second, 1), retryRequest{}, 0},
		{"not stalled", &v1.BottleStatus{ObservedGeneration: 1}, retryRequest{}, 0},
	}
	for _, tc := range cases {
		c, left := holdStall(tc.st, 1, tc.retry, now, 2*time.Minute)
		if left != tc.hold || (c != nil) != (tc.hold > 0) {
			t.Errorf("%s: hold %v (condition %v), want %v", tc.name, left, c != nil, tc.hold)
		}
	}
}
