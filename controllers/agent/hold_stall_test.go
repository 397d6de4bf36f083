package agent

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

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
