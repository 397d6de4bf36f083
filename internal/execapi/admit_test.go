package execapi

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	agentsv1alpha1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

func TestSessionRefusal(t *testing.T) {
	now := metav1.Now()
	bottle := func(phase agentsv1alpha1.Phase, mutate ...func(*agentsv1alpha1.Bottle)) *agentsv1alpha1.Bottle {
		b := &agentsv1alpha1.Bottle{ObjectMeta: metav1.ObjectMeta{Name: "b"}}
		b.Spec.NodeName = "n1"
		b.Status.Phase = phase
		for _, m := range mutate {
			m(b)
		}
		return b
	}
	for _, tc := range []struct {
		name string
		b    *agentsv1alpha1.Bottle
		want string // "" = allowed
	}{
		{"ready", bottle(agentsv1alpha1.PhaseReady), ""},
		{"failed: debug the failed step", bottle(agentsv1alpha1.PhaseFailed), ""},
		{"provisioning: debug a hung step", bottle(agentsv1alpha1.PhaseProvisioning), ""},
		{"creating", bottle(agentsv1alpha1.PhaseCreating), ""},
		{"copying files", bottle(agentsv1alpha1.PhaseCopyingFiles), ""},
		{"no status yet", bottle(""), ""},
		{"runState Stopped, Ready condition still True", bottle(agentsv1alpha1.PhaseStopped, func(b *agentsv1alpha1.Bottle) {
			b.Spec.RunState = agentsv1alpha1.RunStateStopped
		}), "runState is Stopped: set it to Running"},
		{"runState Stopped before the agent stopped it", bottle(agentsv1alpha1.PhaseReady, func(b *agentsv1alpha1.Bottle) {
			b.Spec.RunState = agentsv1alpha1.RunStateStopped
		}), "runState is Stopped: set it to Running"},
		{"restarting", bottle(agentsv1alpha1.PhaseStopped), "(phase Stopped) while its agent starts it again"},
		{"pending", bottle(agentsv1alpha1.PhasePending, func(b *agentsv1alpha1.Bottle) {
			b.Status.Conditions = []metav1.Condition{{Type: agentsv1alpha1.ConditionReady, Message: "Secret default/key not found"}}
		}), "no machine yet (phase Pending: Secret default/key not found)"},
		{"deleting", bottle(agentsv1alpha1.PhaseReady, func(b *agentsv1alpha1.Bottle) { b.DeletionTimestamp = &now }), "is being deleted (phase Ready)"},
		{"no node", bottle(agentsv1alpha1.PhaseReady, func(b *agentsv1alpha1.Bottle) { b.Spec.NodeName = "" }), "has no node"},
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
