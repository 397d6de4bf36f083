package placement

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// FreshRunReconciler gives a BottleRun with spec.templateRef its own Bottle,
// forked from the template, and deletes that Bottle once the run ended.
// The Bottle names no node: it is placed like any other (reservation Pod,
// kube-scheduler), and the agent of the node it lands on runs the run there.
// It runs in the cluster controller because no node agent may pick a node.
type FreshRunReconciler struct {
	client.Client
}

// LabelRun marks the Bottle made for a run, with the run's name.
const LabelRun = "agents.bot-bottle.dev/bottlerun"

// +kubebuilder:rbac:groups=agents.bot-bottle.dev,resources=bottleruns,verbs=get;list;watch
// +kubebuilder:rbac:groups=agents.bot-bottle.dev,resources=bottleruns/status,verbs=patch
// +kubebuilder:rbac:groups=agents.bot-bottle.dev,resources=bottles,verbs=create;delete

// (RetentionReconciler deletes Bottles too: the rule above.)

// SetupWithManager registers the reconciler.
func (r *FreshRunReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("bottlerun-fresh").
		For(&v1.BottleRun{}).
		Owns(&v1.Bottle{}).
		Complete(r)
}

// Reconcile makes the run's Bottle while the run has not started, records
// it in status.bottleName, and deletes it once the run ended.
func (r *FreshRunReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	run := &v1.BottleRun{}
	if err := r.Get(ctx, req.NamespacedName, run); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if run.Spec.TemplateRef == nil {
		return ctrl.Result{}, nil
	}
	key := types.NamespacedName{Namespace: run.Namespace, Name: run.FreshBottleName()}
	b := &v1.Bottle{}
	err := r.Get(ctx, key, b)
	if err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, err
	}
	exists := err == nil
	if exists && !metav1.IsControlledBy(b, run) {
		return ctrl.Result{}, r.pending(ctx, run, "", fmt.Sprintf("Bottle %q exists and is not this run's: delete or rename it", key.Name))
	}
	if run.Finished() || !run.DeletionTimestamp.IsZero() {
		// The run is over: its outputs are in its status; the Bottle goes.
		if exists && b.DeletionTimestamp.IsZero() {
			return ctrl.Result{}, client.IgnoreNotFound(r.Delete(ctx, b, client.Preconditions{UID: &b.UID}))
		}
		return ctrl.Result{}, nil
	}
	if !exists && run.Status.StartedAt == nil {
		b = &v1.Bottle{
			ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace, Labels: map[string]string{LabelRun: run.Name}},
			Spec:       v1.BottleSpec{TemplateRef: run.Spec.TemplateRef.DeepCopy()},
		}
		if err := controllerutil.SetControllerReference(run, b, r.Scheme()); err != nil {
			return ctrl.Result{}, err
		}
		if err := r.Create(ctx, b); err != nil && !apierrors.IsAlreadyExists(err) {
			return ctrl.Result{}, err
		}
	}
	if run.Status.BottleName == "" {
		return ctrl.Result{}, r.pending(ctx, run, key.Name,
			fmt.Sprintf("waiting for Bottle %q, forked from BottleTemplate %q, to be placed and Ready", key.Name, run.Spec.TemplateRef.Name))
	}
	return ctrl.Result{}, nil
}

// pending records the run's Bottle (when named) and why it waits; the
// agent takes over once the Bottle is on its node.
func (r *FreshRunReconciler) pending(ctx context.Context, run *v1.BottleRun, bottle, why string) error {
	next := run.DeepCopy()
	st := &next.Status
	if bottle != "" {
		st.BottleName = bottle
	}
	st.Phase, st.Reason, st.Message, st.ObservedGeneration = v1.RunPhasePending, v1.ReasonRunWaiting, why, run.Generation
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{
		Type: v1.ConditionReconciling, Status: metav1.ConditionTrue, Reason: v1.ReasonRunWaiting, Message: why, ObservedGeneration: run.Generation,
	})
	return client.IgnoreNotFound(r.Status().Patch(ctx, next, client.MergeFromWithOptions(run, client.MergeFromWithOptimisticLock{})))
}
