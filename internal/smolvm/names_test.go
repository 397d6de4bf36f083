package smolvm

import (
	"strings"
	"testing"
)

func TestValidateMachineName(t *testing.T) {
	valid := []string{"a", "A", "0", "a-b", "a_b", "a_", "ab-c_d-9", strings.Repeat("x", 128), "a-b-c"}
	invalid := []string{"", "-a", "_a", "a-", "a--b", "a.b", "a b", "a/b", "é", strings.Repeat("x", 129), "a\x00", "--name"}
	for _, n := range valid {
		if err := ValidateMachineName(n); err != nil {
			t.Errorf("ValidateMachineName(%q) = %v, want nil", n, err)
		}
	}
	for _, n := range invalid {
		err := ValidateMachineName(n)
		if err == nil {
			t.Errorf("ValidateMachineName(%q) = nil, want error", n)
			continue
		}
		if ClassOf(err) != ErrInvalidName {
			t.Errorf("class of %q = %q", n, ClassOf(err))
		}
	}
}

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
		got := MachineNameFor(c.ns, c.name, c.uid)
		if err := ValidateMachineName(got); err != nil {
			t.Errorf("MachineNameFor(%q,%q,%q) = %q is invalid: %v", c.ns, c.name, c.uid, got, err)
		}
		if !strings.HasPrefix(got, c.prefix) {
			t.Errorf("MachineNameFor(%q,%q,%q) = %q, want prefix %q", c.ns, c.name, c.uid, got, c.prefix)
		}
		if got != MachineNameFor(c.ns, c.name, c.uid) {
			t.Errorf("not deterministic")
		}
		if len(got) > 71 {
			t.Errorf("%q is longer than needed", got)
		}
	}
	if MachineNameFor("ns", "a", "uid-1") == MachineNameFor("ns", "a", "uid-2") {
		t.Error("different uids (re-created object) must give different names")
	}
	if MachineNameFor("ns", "a.b", "u") == MachineNameFor("ns", "a-b", "u2") {
		t.Error("sanitised-equal names with different uids collide")
	}
}

func FuzzMachineNameFor(f *testing.F) {
	f.Add("default", "a.b", "uid")
	f.Add("", "", "")
	f.Add("-", "é--ü", "\x00")
	f.Fuzz(func(t *testing.T, ns, name, uid string) {
		if got := MachineNameFor(ns, name, uid); ValidateMachineName(got) != nil {
			t.Fatalf("MachineNameFor(%q,%q,%q) = %q is invalid", ns, name, uid, got)
		}
	})
}
