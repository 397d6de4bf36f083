package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

// reconcileDelete removes the machine, then the finalizer. A smolvm failure
// keeps the finalizer (the Bottle stays, saying why) and retries with
// backoff: a machine is never leaked silently.
func (r *BottleReconciler) reconcileDelete(ctx context.Context, s *scope) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(s.bottle, v1.Finalizer) {
		s.finalized = true
		return ctrl.Result{}, nil
	}
	s.status().Phase = v1.PhaseDeleting

	m, err := r.Machines.Status(ctx, s.machineName)
	switch {
	case smolvm.IsNotFound(err):
	case err != nil:
		return r.blockDeletion(s, "status", err)
	case m.Labels[v1.LabelUID] != string(s.bottle.UID):
		// Someone else's machine under our name: never ours to delete.
		s.log.Info("leaving machine that belongs to something else", "machine", s.machineName)
	default:
		if m.State == smolvm.StateRunning || m.State == smolvm.StateUnreachable {
			if err := r.Machines.Stop(ctx, s.machineName); err != nil && !smolvm.IsNotRunning(err) && !smolvm.IsNotFound(err) {
				return r.blockDeletion(s, "stop", err)
			}
		}
		if err := r.Machines.Delete(ctx, s.machineName); err != nil && !smolvm.IsNotFound(err) {
			return r.blockDeletion(s, "delete", err)
		}
		r.event(s, corev1.EventTypeNormal, v1.ReasonMachineDeleted, "Delete", "deleted machine %s", s.machineName)
	}

	orig := s.bottle.DeepCopy()
	controllerutil.RemoveFinalizer(s.bottle, v1.Finalizer)
	if err := r.Patch(ctx, s.bottle, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	s.finalized = true
	r.metrics.forget(client.ObjectKeyFromObject(s.bottle))
	return ctrl.Result{}, nil
}

func (r *BottleReconciler) blockDeletion(s *scope, action string, err error) (ctrl.Result, error) {
	msg := fmt.Sprintf("cannot %s machine %s: %v; the finalizer stays until the machine is gone", action, s.machineName, err)
	r.setCondition(s, v1.ConditionReady, metav1.ConditionFalse, v1.ReasonDeletionBlocked, msg)
	s.wait(v1.ReasonDeletionBlocked, msg)
	r.event(s, corev1.EventTypeWarning, v1.ReasonDeletionBlocked, "Delete", "%s", msg)
	return ctrl.Result{}, fmt.Errorf("deleting machine %s: %w", s.machineName, err)
}
