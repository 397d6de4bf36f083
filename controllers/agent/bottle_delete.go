package agent

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// reconcileDelete removes the machine, then the finalizer. A smolvm failure
// keeps the finalizer (the Bottle stays, saying why) and retries with
// backoff: a machine is never leaked silently. A step still running was
// cancelled by the watch (see inflight) before this pass could start.
func (r *BottleReconciler) reconcileDelete(ctx context.Context, s *scope) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(s.bottle, v1.Finalizer) {
		s.finalized = true
		r.forget(s.bottle.UID, client.ObjectKeyFromObject(s.bottle))
		return ctrl.Result{}, nil
	}
	if err := r.progress(ctx, s, v1.ReasonProgressing, "deleting machine "+s.machineName); err != nil {
		return ctrl.Result{}, err
	}

	m, err := r.view.lookup(ctx, s.machineName)
	if err != nil {
		return r.blockDeletion(s, "status", err)
	}
	switch machineOwner(s, m) {
	case machineForeign:
		// Someone else's machine under our name: never ours to delete.
		s.log.Info("leaving machine that belongs to something else", "machine", s.machineName)
	case machineOurs:
		if verb, err := r.destroyMachine(ctx, s.machineName, m); err != nil {
			return r.blockDeletion(s, verb, err)
		}
		r.event(s, corev1.EventTypeNormal, v1.ReasonMachineDeleted, "Delete", "deleted machine %s", s.machineName)
	}

	r.removeStepLogs(s)
	if err := r.removeFinalizer(ctx, s.bottle); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	s.finalized = true
	r.forget(s.bottle.UID, client.ObjectKeyFromObject(s.bottle))
	return ctrl.Result{}, nil
}

func (r *BottleReconciler) blockDeletion(s *scope, action string, err error) (ctrl.Result, error) {
	r.view.unsettled(s.machineName)
	msg := fmt.Sprintf("cannot %s machine %s: %v; the finalizer stays until the machine is gone", action, s.machineName, err)
	s.setCondition(v1.ConditionReady, metav1.ConditionFalse, v1.ReasonDeletionBlocked, msg)
	s.wait(v1.ReasonDeletionBlocked, msg)
	r.event(s, corev1.EventTypeWarning, v1.ReasonDeletionBlocked, "Delete", "%s", msg)
	return ctrl.Result{}, fmt.Errorf("deleting machine %s: %w", s.machineName, err)
}
