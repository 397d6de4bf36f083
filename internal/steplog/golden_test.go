package steplog

import (
	"strings"
	"testing"
	"time"
)

// A golden's key is a store key for any machine name, and tells apart the
// goldens of one template (one per node and machine spec).
func TestGoldenKeyNamesOneGoldenOfATemplate(t *testing.T) {
	s := newStore(t, 100)
	long := strings.Repeat("team-claude-code-with-a-long-name-g", 2)[:60] + "-0123456789"
	a, b := GoldenKey(uid, long), GoldenKey(uid, long+"x")
	if a == b {
		t.Fatalf("two goldens share the key %q", a)
	}
	if !strings.HasPrefix(a, uid+"-") {
		t.Errorf("key %q does not start with the template's UID", a)
	}
	write(t, s, a, "install", 10, time.Now())
	if !s.Has(a, "install") || s.Has(b, "install") {
		t.Errorf("Has(golden a)=%v Has(golden b)=%v; want true false", s.Has(a, "install"), s.Has(b, "install"))
	}
	if GoldenKey(uid, long) != a {
		t.Error("the key of a golden is not stable")
	}
}
