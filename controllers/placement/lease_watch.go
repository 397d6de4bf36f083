package placement

import (
	"context"

	coordinationv1 "k8s.io/api/coordination/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// leaseReconciler feeds every version of an agent Lease to the heartbeats.
type leaseReconciler struct {
	client.Client
	heartbeats *Heartbeats
}

func (l *leaseReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	lease := &coordinationv1.Lease{}
	if err := l.Get(ctx, req.NamespacedName, lease); err != nil {
		if client.IgnoreNotFound(err) != nil {
			return ctrl.Result{}, err
		}
		l.heartbeats.ForgetLease(req.Name)
		return ctrl.Result{}, nil
	}
	l.heartbeats.Observe(lease)
	return ctrl.Result{}, nil
}
