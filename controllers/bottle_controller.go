// Package controllers holds the node-local Bottle reconciler.
package controllers

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

// BottleReconciler drives the machines of the Bottles bound to one node.
type BottleReconciler struct {
	// Client reads through the manager's cache (this node's Bottles only)
	// and writes to the API server.
	client.Client
	// APIReader reads uncached: the Bottle at the start of every pass (so a
	// step recorded by the previous pass is never missed because the cache
	// lags) and referenced ConfigMaps and Secrets, on demand.
	APIReader client.Reader
	Scheme    *runtime.Scheme
	Recorder  recorder.EventRecorder
	Machines  Machines

	// NodeName is the node this agent owns.
	NodeName string
	// ExecMode is how steps switch user in the guest.
	ExecMode smolvm.ExecMode
	// ResyncPeriod is how often a Ready Bottle's machine is checked for drift.
	ResyncPeriod time.Duration
	// SourceRetryPeriod is how soon a Bottle waiting for a missing ConfigMap
	// or Secret looks again.
	SourceRetryPeriod time.Duration
	// TempDir is where file contents are materialised before `machine cp`.
	TempDir string
	// MaxConcurrentReconciles bounds parallel passes (and so parallel steps).
	MaxConcurrentReconciles int
	// DigestKey keys the digests of Secret content in status.files
	// (HMAC-SHA256). Share one key across the install (LoadDigestKey) so
	// digests survive agent restarts; without one, a random key per process
	// is used and Secret files are copied again after a restart.
	DigestKey []byte

	metrics *phaseTracker
}

// Only the verbs the agent uses (it writes with patches). ConfigMaps and
// Secrets are not here: config/source-access grants them per namespace.
// +kubebuilder:rbac:groups=agents.bot-bottle.dev,resources=bottles,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=agents.bot-bottle.dev,resources=bottles/status,verbs=patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// SetupWithManager registers the reconciler. The manager's cache must be
// restricted to this node's Bottles (see NodeCacheOptions).
func (r *BottleReconciler) SetupWithManager(mgr ctrl.Manager, name string) error {
	if r.ResyncPeriod == 0 {
		r.ResyncPeriod = time.Minute
	}
	if r.SourceRetryPeriod == 0 {
		r.SourceRetryPeriod = 30 * time.Second
	}
	if r.MaxConcurrentReconciles == 0 {
		r.MaxConcurrentReconciles = 4
	}
	r.metrics = newPhaseTracker()
	if err := r.prepareStart(mgr.GetLogger()); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named(name).
		For(&v1.Bottle{}).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.MaxConcurrentReconciles}).
		Complete(r)
}

// phase is one step of the lifecycle. It returns done=false when later
// phases must wait (the machine is not running yet, a file is missing...).
type phase func(ctx context.Context, s *scope) (done bool, res ctrl.Result, err error)

// Reconcile moves one Bottle one step towards its spec and records what
// happened in its status with a single patch.
func (r *BottleReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	logger := log.FromContext(ctx)

	bottle := &v1.Bottle{}
	if err := r.APIReader.Get(ctx, req.NamespacedName, bottle); err != nil {
		if apierrors.IsNotFound(err) {
			r.metrics.forget(req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	if bottle.Spec.NodeName != r.NodeName {
		return ctrl.Result{}, nil
	}

	// The finalizer goes on before any machine exists, so no machine can
	// outlive its Bottle.
	if bottle.DeletionTimestamp.IsZero() && !controllerutil.ContainsFinalizer(bottle, v1.Finalizer) {
		orig := bottle.DeepCopy()
		controllerutil.AddFinalizer(bottle, v1.Finalizer)
		if err := r.Patch(ctx, bottle, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
			return ctrl.Result{}, fmt.Errorf("adding finalizer: %w", err)
		}
	}

	s := &scope{
		log: logger, bottle: bottle, before: bottle.Status.DeepCopy(),
		machineName: bottle.MachineName(),
		sources:     r.newSources(bottle.Namespace),
	}

	defer func() {
		if s.finalized {
			return
		}
		result, retErr = r.patchStatus(ctx, s, result, retErr)
	}()

	if !bottle.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, s)
	}

	phases := []phase{r.reconcileMachine, r.reconcilePower, r.reconcileFiles, r.reconcileProvision}
	for _, p := range phases {
		done, res, err := p(ctx, s)
		if err != nil || !done {
			return res, err
		}
	}
	// Everything is in place: look again later for drift.
	return ctrl.Result{RequeueAfter: r.ResyncPeriod}, nil
}

// patchStatus is the one place status is written and observedGeneration is
// stamped. Nothing is written when nothing changed.
func (r *BottleReconciler) patchStatus(ctx context.Context, s *scope, res ctrl.Result, reconcileErr error) (ctrl.Result, error) {
	summarize(s, reconcileErr)
	st := s.status()
	if reconcileErr == nil {
		st.ObservedGeneration = s.bottle.Generation
	}
	r.metrics.observe(s)
	r.phaseEvent(s)
	if equality.Semantic.DeepEqual(*s.before, *st) {
		return res, reconcileErr
	}
	orig := s.bottle.DeepCopy()
	orig.Status = *s.before
	if err := r.Status().Patch(ctx, s.bottle, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		if ctx.Err() != nil {
			// Shutting down: what this pass did is not recorded, so an
			// interrupted step runs again under the next agent (at least once).
			return res, reconcileErr
		}
		if reconcileErr == nil {
			reconcileErr = fmt.Errorf("patching status: %w", err)
		}
	}
	return res, reconcileErr
}
