package v1alpha1_test

import (
	"strings"
	"testing"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

func TestMachineNameFor(t *testing.T) {
	cases := []struct{ ns, name, uid, prefix string }{
		{"default", "my.bottle", "8d4f7b8e-1", "default-my-bottle-"},
		{"team-a", "x", "u1", "team-a-x-"},
		{"", "", "u2", "m-"},
		{"...", "---", "u3", "m-"},
		{"a", "b--c..d", "u4", "a-b-c-d-"},
		{"ns", "UPPER_case", "u5", "ns-UPPER_case-"},
		{"ns", "trailing_", "u6", "ns-trailing-"},
		{strings.Repeat("n", 63), strings.Repeat("b", 253), "u7", strings.Repeat("n", 60)},
	}
	for _, c := range cases {
		got := v1.MachineNameFor(c.ns, c.name, c.uid)
		if err := smolvm.ValidateMachineName(got); err != nil {
			t.Errorf("v1.MachineNameFor(%q,%q,%q) = %q is invalid: %v", c.ns, c.name, c.uid, got, err)
		}
		if !strings.HasPrefix(got, c.prefix) {
			t.Errorf("v1.MachineNameFor(%q,%q,%q) = %q, want prefix %q", c.ns, c.name, c.uid, got, c.prefix)
		}
		if got != v1.MachineNameFor(c.ns, c.name, c.uid) {
			t.Errorf("not deterministic")
		}
		if len(got) > 71 {
			t.Errorf("%q is longer than needed", got)
		}
	}
	if v1.MachineNameFor("ns", "a", "uid-1") == v1.MachineNameFor("ns", "a", "uid-2") {
		t.Error("different uids (re-created object) must give different names")
	}
	if v1.MachineNameFor("ns", "a.b", "u") == v1.MachineNameFor("ns", "a-b", "u2") {
		t.Error("sanitised-equal names with different uids collide")
	}
}

func FuzzMachineNameFor(f *testing.F) {
	f.Add("default", "a.b", "uid")
	f.Add("", "", "")
	f.Add("-", "é--ü", "\x00")
	f.Fuzz(func(t *testing.T, ns, name, uid string) {
		if got := v1.MachineNameFor(ns, name, uid); smolvm.ValidateMachineName(got) != nil {
			t.Fatalf("v1.MachineNameFor(%q,%q,%q) = %q is invalid", ns, name, uid, got)
		}
	})
}

func TestBottleNames(t *testing.T) {
	b := &v1.Bottle{}
	b.Namespace, b.Name, b.UID = "ns", "b", "uid"
	b.Spec.NodeName = "spec-node"
	if got, want := b.MachineName(), v1.MachineNameFor("ns", "b", "uid"); got != want {
		t.Errorf("derived MachineName() = %q, want %q", got, want)
	}
	if got := b.ExecUser(); got != v1.DefaultExecUser {
		t.Errorf("ExecUser() without spec.execUser = %q, want %q", got, v1.DefaultExecUser)
	}
	if got := b.NodeName(); got != "spec-node" {
		t.Errorf("NodeName() = %q, want spec's", got)
	}
	b.Spec.MachineName, b.Spec.ExecUser = "asked", "dev"
	if got := b.MachineName(); got != "asked" {
		t.Errorf("MachineName() = %q, want spec's", got)
	}
	if got := b.ExecUser(); got != "dev" {
		t.Errorf("ExecUser() = %q, want spec's", got)
	}
	b.Status.MachineName, b.Status.NodeName = "recorded", "status-node"
	if got := b.MachineName(); got != "recorded" {
		t.Errorf("MachineName() = %q, want the recorded one", got)
	}
	if got := b.NodeName(); got != "spec-node" {
		t.Errorf("NodeName() = %q: a status write must not move a Bottle's sessions", got)
	}
}
