package execapi

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

func TestSessionRefusal(t *testing.T) {
	now := metav1.Now()
	bottle := func(phase v1.Phase, mutate ...func(*v1.Bottle)) *v1.Bottle {
		b := &v1.Bottle{ObjectMeta: metav1.ObjectMeta{Name: "b"}}
		b.Spec.NodeName = "n1"
		b.Status.Phase = phase
		for _, m := range mutate {
			m(b)
		}
		return b
	}
	for _, tc := range []struct {
		name string
		b    *v1.Bottle
		want string // "" = allowed
	}{
		{"ready", bottle(v1.PhaseReady), ""},
		{"failed: debug the failed step", bottle(v1.PhaseFailed), ""},
		{"provisioning: debug a hung step", bottle(v1.PhaseProvisioning), ""},
		{"creating", bottle(v1.PhaseCreating), ""},
		{"copying files", bottle(v1.PhaseCopyingFiles), ""},
		{"no status yet", bottle(""), ""},
		{"runState Stopped, Ready condition still True", bottle(v1.PhaseStopped, func(b *v1.Bottle) {
			b.Spec.RunState = v1.RunStateStopped
		}), "runState is Stopped: set it to Running"},
		{"runState Stopped before the agent stopped it", bottle(v1.PhaseReady, func(b *v1.Bottle) {
			b.Spec.RunState = v1.RunStateStopped
		}), "runState is Stopped: set it to Running"},
		{"restarting", bottle(v1.PhaseStopped), "(phase Stopped) while its agent starts it again"},
		{"pending", bottle(v1.PhasePending, func(b *v1.Bottle) {
			b.Status.Conditions = []metav1.Condition{{Type: v1.ConditionReady, Message: "Secret default/key not found"}}
		}), "no machine yet (phase Pending: Secret default/key not found)"},
		{"deleting", bottle(v1.PhaseReady, func(b *v1.Bottle) { b.DeletionTimestamp = &now }), "is being deleted (phase Ready)"},
		{"no node", bottle(v1.PhaseReady, func(b *v1.Bottle) { b.Spec.NodeName = "" }), "has no node"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := sessionRefusal(tc.b)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && err == nil:
				t.Errorf("allowed, want a refusal containing %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Errorf("refusal %q lacks %q", err, tc.want)
			}
		})
	}
}
