package placement

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

func TestAppliesCoverTheCachesLag(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	b := &v1.Bottle{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "b", UID: "u1"}}
	scheduled := &v1.BottleStatus{Conditions: []metav1.Condition{{Type: v1.ConditionScheduled, Status: metav1.ConditionTrue, Reason: v1.ReasonScheduled}}}
	other := &v1.BottleStatus{Conditions: []metav1.Condition{{Type: v1.ConditionScheduled, Status: metav1.ConditionFalse, Reason: v1.ReasonWaitingForScheduler}}}
	again := &v1.Bottle{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "b", UID: "u2"}}

	var a applies
	if a.justApplied(b, scheduled, now) {
		t.Fatal("justApplied before any apply")
	}
	a.remember(b, scheduled, now)
	for _, c := range []struct {
		name string
		b    *v1.Bottle
		st   *v1.BottleStatus
		at   time.Time
		want bool
	}{
		{"the same status a moment later", b, scheduled, now.Add(time.Second), true},
		{"another status", b, other, now.Add(time.Second), false},
		{"a new Bottle of the same name", again, scheduled, now.Add(time.Second), false},
		{"long enough for the cache to have caught up", b, scheduled, now.Add(appliedFresh), false},
	} {
		if got := a.justApplied(c.b, c.st, c.at); got != c.want {
			t.Errorf("%s: justApplied = %v, want %v", c.name, got, c.want)
		}
	}
	a.forget(types.NamespacedName{Namespace: "ns", Name: "b"})
	if a.justApplied(b, scheduled, now) {
		t.Fatal("justApplied after forget")
	}
}
