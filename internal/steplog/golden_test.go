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

// Goldens' logs and Bottles' share the node limit: the oldest finished log
// goes first, whoever's it is.
func TestGoldenLogsShareTheNodeLimit(t *testing.T) {
	s := newStore(t, 100)
	s.SetNodeLimit(250)
	golden := GoldenKey(otherUID, "tools-g-0123456789")
	t0 := time.Now().Add(-time.Hour)
	write(t, s, golden, "install", 100, t0)
	write(t, s, uid, "bottle-step", 100, t0.Add(time.Minute))
	write(t, s, golden, "second", 100, t0.Add(2*time.Minute))
	if s.Has(golden, "install") {
		t.Error("the golden's oldest finished log was kept past the node limit")
	}
	if !s.Has(uid, "bottle-step") || !s.Has(golden, "second") {
		t.Error("a newer log was removed")
	}
	write(t, s, uid, "another", 100, t0.Add(3*time.Minute))
	if s.Has(uid, "bottle-step") || !s.Has(golden, "second") {
		t.Errorf("a Bottle's step: the oldest (the Bottle's) must go, the golden's newer one stay: bottle-step=%v second=%v",
			s.Has(uid, "bottle-step"), s.Has(golden, "second"))
	}
}
