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
		if ClassOf(err) != ClassInvalidName {
			t.Errorf("class of %q = %q", n, ClassOf(err))
		}
	}
}
