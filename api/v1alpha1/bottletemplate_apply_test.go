package v1alpha1_test

import (
	"strings"
	"testing"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

func TestFieldManagerAgentOn(t *testing.T) {
	if got := v1.FieldManagerAgentOn("node-a"); got != "bottle-agent/node-a" {
		t.Errorf("short node: %q", got)
	}
	// Two long names that share the part that fits: still two managers.
	long := strings.Repeat("n", 200)
	a, b := v1.FieldManagerAgentOn(long+"a"), v1.FieldManagerAgentOn(long+"b")
	if a == b {
		t.Errorf("two nodes, one field manager %q", a)
	}
	for _, m := range []string{a, b} {
		if len(m) > 128 {
			t.Errorf("%q: %d characters, the API server allows 128", m, len(m))
		}
		if !strings.HasPrefix(m, v1.FieldManagerAgent+"/") {
			t.Errorf("%q does not say it is the agent's", m)
		}
	}
	if v1.FieldManagerAgentOn(long+"a") != a {
		t.Error("not deterministic")
	}
}
