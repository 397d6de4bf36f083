package templatesummary

import (
	"context"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/controllers/placement"
)

// Reconciler applies each BottleTemplate's summary under
// v1.FieldManagerCluster. Its apply always carries every summary field,
// so a condition it no longer wants (Reconciling, Stalled) is removed by
// the apply itself: no other writer owns them.
type Reconciler struct {
	Client client.Client
	// Heartbeats says which nodes have a live agent (the placement
	// controller's, fed from the agents' Leases in AgentNamespace); nil:
	// every node has.
	Heartbeats     *placement.Heartbeats
	AgentNamespace string
}

// live reports whether node's agent is live, and until when it stays so
// without a renewal.
func (r *Reconciler) live(node string) (bool, time.Time) {
	if r.Heartbeats == nil {
		return true, time.Time{}
	}
	l := r.Heartbeats.Of(node, r.AgentNamespace)
	return l.Live, l.Until
}

// SetupWithManager registers the reconciler for BottleTemplates.
func (r *Reconciler) SetupWithManager(mgr manager.Manager) error {
	return builder.ControllerManagedBy(mgr).For(&v1.BottleTemplate{}).Named("bottletemplate-summary").Complete(r)
}

// Reconcile writes t's summary when it differs from what status shows.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	t := &v1.BottleTemplate{}
	if err := r.Client.Get(ctx, req.NamespacedName, t); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if !t.DeletionTimestamp.IsZero() {
		return reconcile.Result{}, nil
	}
	// Look again when the first live node would turn unavailable without
	// a renewal: its golden must stop counting then.
	var recheck time.Time
	live := func(node string) bool {
		ok, until := r.live(node)
		if ok && !until.IsZero() && (recheck.IsZero() || until.Before(recheck)) {
			recheck = until
		}
		return ok
	}
	want := desiredStatus(t, Summarize(t, live))
	res := reconcile.Result{}
	if !recheck.IsZero() {
		res.RequeueAfter = time.Until(recheck) + time.Second
	}
	if upToDate(t, want) {
		return res, nil
	}
	raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(want)
	if err != nil {
		return reconcile.Result{}, err
	}
	// A zero count is left out, and so released: the field then reads 0.
	u := t.ApplyObject()
	u.Object["status"] = raw
	err = r.Client.Status().Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(v1.FieldManagerCluster), client.ForceOwnership)
	if apierrors.IsNotFound(err) {
		return reconcile.Result{}, nil
	}
	return res, err
}

// StatusFor is the summary part of t's status the reconciler applies when
// every node's agent is live.
func StatusFor(t *v1.BottleTemplate) *v1.BottleTemplateStatus {
	return desiredStatus(t, Summarize(t, nil))
}

// desiredStatus is the summary part of t's status, with each condition's
// transition time kept while its status does not change.
func desiredStatus(t *v1.BottleTemplate, s Summary) *v1.BottleTemplateStatus {
	conds := append([]metav1.Condition(nil), t.Status.Conditions...)
	set := func(typ string, v verdict) metav1.Condition {
		meta.SetStatusCondition(&conds, metav1.Condition{Type: typ, Status: v.Status, Reason: v.Reason,
			Message: v.Message, ObservedGeneration: t.Generation})
		return *meta.FindStatusCondition(conds, typ)
	}
	st := &v1.BottleTemplateStatus{ObservedGeneration: t.Generation, GoldenNodes: s.GoldenNodes, FreeSlots: s.FreeSlots,
		Conditions: []metav1.Condition{set(v1.ConditionReady, s.Ready)}}
	if s.Reconciling != nil {
		st.Conditions = append(st.Conditions, set(v1.ConditionReconciling, *s.Reconciling))
	}
	if s.Stalled != nil {
		st.Conditions = append(st.Conditions, set(v1.ConditionStalled, *s.Stalled))
	}
	return st
}

// upToDate reports whether t's status already is want: the same counts,
// generation and conditions, and no condition want drops.
func upToDate(t *v1.BottleTemplate, want *v1.BottleTemplateStatus) bool {
	have := t.Status
	if have.ObservedGeneration != want.ObservedGeneration || have.GoldenNodes != want.GoldenNodes ||
		have.FreeSlots != want.FreeSlots || len(have.Conditions) != len(want.Conditions) {
		return false
	}
	for _, c := range want.Conditions {
		h := meta.FindStatusCondition(have.Conditions, c.Type)
		if h == nil || h.Status != c.Status || h.Reason != c.Reason || h.Message != c.Message || h.ObservedGeneration != c.ObservedGeneration {
			return false
		}
	}
	return true
}
