package agentlease

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

func TestName(t *testing.T) {
	long := strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 61)
	other := long[:len(long)-1] + "e"
	for _, c := range []struct{ node, want string }{
		{"node-a", "bottle-agent-node-a"},
		{"ip-10-0-0-1.ec2.internal", "bottle-agent-ip-10-0-0-1.ec2.internal"},
	} {
		if got := Name(c.node); got != c.want {
			t.Errorf("Name(%q) = %q, want %q", c.node, got, c.want)
		}
	}
	dotAtCut := strings.Repeat("a", 222) + "." + strings.Repeat("b", 30)
	for _, n := range []string{long, other, dotAtCut} {
		got := Name(n)
		if errs := validation.IsDNS1123Subdomain(got); len(errs) > 0 {
			t.Errorf("Name of a 253-character node is not a valid name: %v", errs)
		}
		if !strings.HasPrefix(got, NamePrefix) {
			t.Errorf("Name(%q) = %q lost its prefix", n, got)
		}
	}
	if Name(long) == Name(other) {
		t.Error("two long node names share a Lease")
	}
}
