package placement

import (
	"context"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// desiredStatus is the cluster controller's part of b's status: Scheduled
// always, and the overlay's Ready, Reconciling or Stalled, phase and
// observedGeneration while no agent speaks for the Bottle. Transition times
// are kept when a condition's status does not change.
func desiredStatus(b *v1.Bottle, sched conditionVerdict, ov *overlay) *v1.BottleStatus {
	conds := append([]metav1.Condition(nil), b.Status.Conditions...)
	set := func(typ string, v conditionVerdict) metav1.Condition {
		meta.SetStatusCondition(&conds, metav1.Condition{Type: typ, Status: v.Status, Reason: v.Reason,
			Message: v.Message, ObservedGeneration: b.Generation})
		return *meta.FindStatusCondition(conds, typ)
	}
	st := &v1.BottleStatus{Conditions: []metav1.Condition{set(v1.ConditionScheduled, sched)}}
	if ov == nil {
		return st
	}
	st.ObservedGeneration = b.Generation
	st.Phase = ov.Phase
	st.Conditions = append(st.Conditions, set(v1.ConditionReady, ov.Ready))
	other := v1.ConditionReconciling
	if ov.Stalled {
		other = v1.ConditionStalled
	}
	st.Conditions = append(st.Conditions, set(other, conditionVerdict{metav1.ConditionTrue, ov.Ready.Reason, ov.Ready.Message}))
	return st
}

// upToDate reports whether b already shows want and holds nothing of an
// overlay the controller no longer wants.
func upToDate(b *v1.Bottle, want *v1.BottleStatus, ov *overlay) bool {
	for _, c := range want.Conditions {
		have := meta.FindStatusCondition(b.Status.Conditions, c.Type)
		if have == nil || have.Status != c.Status || have.Reason != c.Reason || have.Message != c.Message ||
			have.ObservedGeneration != c.ObservedGeneration {
			return false
		}
	}
	if ov == nil {
		return !holdsOverlay(b)
	}
	// Reconciling and Stalled take turns: the one not wanted must be gone.
	other := v1.ConditionStalled
	if ov.Stalled {
		other = v1.ConditionReconciling
	}
	return b.Status.ObservedGeneration == want.ObservedGeneration && b.Status.Phase == want.Phase &&
		!ownsCondition(b, other)
}

// holdsOverlay reports whether this controller's field manager still owns
// Ready: an apply without the overlay must then release it.
func holdsOverlay(b *v1.Bottle) bool { return ownsCondition(b, v1.ConditionReady) }

func ownsCondition(b *v1.Bottle, typ string) bool {
	key := `"k:{\"type\":\"` + typ + `\"}"`
	for _, mf := range b.ManagedFields {
		if mf.Manager == v1.FieldManagerCluster && mf.Subresource == "status" && mf.FieldsV1 != nil &&
			strings.Contains(mf.FieldsV1.GetRawString(), key) {
			return true
		}
	}
	return false
}

// guarded reports whether the apply must carry b's resourceVersion: when it
// writes the overlay, or releases one, it depends on what the agent last
// said.
func guarded(b *v1.Bottle, ov *overlay) bool { return ov != nil || holdsOverlay(b) }

// applyStatus server-side applies st as the cluster controller's fields.
// With guarded, it applies on the version of b it was computed from: if the
// agent wrote meanwhile, the API server refuses (409) and the next pass
// decides again, so a stale overlay never covers what the agent just said.
// Scheduled alone needs no guard: no other writer has it, and a refusal
// there would only cost the API server a second write.
func applyStatus(ctx context.Context, c client.Client, b *v1.Bottle, st *v1.BottleStatus, guarded bool) error {
	u, err := b.StatusApplyObject(st)
	if err != nil {
		return err
	}
	if guarded {
		u.SetResourceVersion(b.ResourceVersion)
	}
	return c.Status().Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(v1.FieldManagerCluster), client.ForceOwnership)
}
