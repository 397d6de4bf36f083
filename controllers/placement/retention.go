package placement

import (
	"context"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// RetentionReconciler deletes Bottles whose spec.lifecycle.deleteAfter has
// passed. It runs in the cluster controller: node agents may not delete
// Bottles (config/policy), and a retention must hold while a node's agent
// is down.
type RetentionReconciler struct {
	client.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// SetupWithManager registers the reconciler for Bottles with a deleteAfter.
func (r *RetentionReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Now == nil {
		r.Now = time.Now
	}
	withRetention := predicate.NewPredicateFuncs(func(o client.Object) bool {
		b, ok := o.(*v1.Bottle)
		return ok && b.Spec.Lifecycle != nil && b.Spec.Lifecycle.DeleteAfter != nil
	})
	return ctrl.NewControllerManagedBy(mgr).
		Named("bottle-retention").
		For(&v1.Bottle{}, builder.WithPredicates(withRetention)).
		Complete(r)
}

// Reconcile deletes the Bottle once due, or looks again when it will be.
func (r *RetentionReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	b := &v1.Bottle{}
	if err := r.Get(ctx, req.NamespacedName, b); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	due, ok := RetentionDue(b)
	if !ok || !b.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	if left := due.Sub(r.Now()); left > 0 {
		return ctrl.Result{RequeueAfter: left}, nil
	}
	ctrl.LoggerFrom(ctx).Info("deleting Bottle: spec.lifecycle.deleteAfter has passed", "due", due)
	err := r.Delete(ctx, b, client.Preconditions{UID: &b.UID}, client.PropagationPolicy(metav1.DeletePropagationBackground))
	return ctrl.Result{}, client.IgnoreNotFound(err)
}

// RetentionDue is when the Bottle is to be deleted: deleteAfter after its
// idle stop (with stopAfterIdle; none while it is not idle-stopped), or
// after its creation (without).
func RetentionDue(b *v1.Bottle) (time.Time, bool) {
	lc := b.Spec.Lifecycle
	if lc == nil || lc.DeleteAfter == nil {
		return time.Time{}, false
	}
	if lc.StopAfterIdle == nil {
		return b.CreationTimestamp.Add(lc.DeleteAfter.Duration), true
	}
	if st := b.Status.Lifecycle; st != nil && st.IdleStoppedAt != nil {
		return st.IdleStoppedAt.Add(lc.DeleteAfter.Duration), true
	}
	return time.Time{}, false
}
