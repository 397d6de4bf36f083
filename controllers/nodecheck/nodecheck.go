// Package nodecheck keeps an agent whose node cannot run machines (smolvm
// missing, unusable or older than smolvm.MinVersion) up and saying so,
// instead of crash-looping: /readyz fails with the reason, and every Bottle
// of the node gets Ready=False and Stalled=True (reason SmolvmUnavailable),
// phase Failed, and a Warning event. The Bottle controller is not started
// on such a node; when smolvm becomes usable the agent exits so that the
// kubelet restarts it with the Bottle controller.
package nodecheck

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// Reason of the conditions and the event.
const Reason = v1.ReasonSmolvmUnavailable

// ErrRecovered is returned by Watch when smolvm has become usable.
var ErrRecovered = errors.New("smolvm is usable now; restarting to run the Bottle controller")

// State holds the last check's failure; nil means smolvm is usable.
type State struct {
	mu  sync.RWMutex
	err error
}

// NewState starts with the startup check's result.
func NewState(err error) *State { return &State{err: err} }

// Err is the current failure.
func (s *State) Err() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.err
}

func (s *State) set(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

// Readyz is a healthz.Checker: it fails with the reason while smolvm is
// unusable.
func (s *State) Readyz(_ *http.Request) error {
	if err := s.Err(); err != nil {
		return fmt.Errorf("%s: %w", Reason, err)
	}
	return nil
}

// Watch re-runs check every period until it succeeds (returns ErrRecovered)
// or ctx ends (returns nil).
func (s *State) Watch(ctx context.Context, period time.Duration, check func(context.Context) error) error {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			err := check(ctx)
			s.set(err)
			if err == nil {
				return ErrRecovered
			}
		}
	}
}

// Reconciler marks this node's Bottles while smolvm is unusable. It never
// touches machines, finalizers or anything but status.
type Reconciler struct {
	Client   client.Client
	Recorder recorder.EventRecorder
	State    *State
}

// SetupWithManager registers it for the Bottles in the manager's cache
// (this node's, with agent.NodeCacheOptions).
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("bottle-smolvm-unavailable").
		For(&v1.Bottle{}).
		WithOptions(controller.Options{MaxConcurrentReconciles: 1}).
		Complete(r)
}

// Reconcile sets the conditions once per change of the message.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	failure := r.State.Err()
	if failure == nil {
		return reconcile.Result{}, nil
	}
	var b v1.Bottle
	if err := r.Client.Get(ctx, req.NamespacedName, &b); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	msg := "this node cannot run machines: " + failure.Error()
	if c := meta.FindStatusCondition(b.Status.Conditions, v1.ConditionStalled); c != nil &&
		c.Status == metav1.ConditionTrue && c.Reason == Reason && c.Message == msg &&
		b.Status.ObservedGeneration == b.Generation {
		return reconcile.Result{}, nil
	}
	Mark(&b, msg)
	if err := r.applyStatus(ctx, &b); err != nil {
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			// Gone, or read stale: the newer version's event brings it
			// back with a fresh read.
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, err
	}
	if r.Recorder != nil {
		r.Recorder.Eventf(&b, nil, corev1.EventTypeWarning, Reason, "CheckSmolvm", "%s", msg)
	}
	return reconcile.Result{}, nil
}

// applyStatus server-side applies b's status the way the Bottle
// controller's status writer does: the agent's whole status
// (v1.Bottle.AgentStatusApplyObject) as v1.FieldManagerAgent, so one field
// manager owns the agent's fields whichever of the two wrote last. The
// apply carries every field the agent owns (step results, files...) as
// read, because an apply under the same manager that left one out would
// remove it; and it carries the resourceVersion read, so a cache that
// lagged behind the last write gets a conflict and a fresh read instead of
// putting an older status back.
func (r *Reconciler) applyStatus(ctx context.Context, b *v1.Bottle) error {
	u, err := b.AgentStatusApplyObject(&b.Status)
	if err != nil {
		return err
	}
	u.SetResourceVersion(b.ResourceVersion)
	return r.Client.Status().Apply(ctx, client.ApplyConfigurationFromUnstructured(u),
		client.FieldOwner(v1.FieldManagerAgent), client.ForceOwnership)
}

// Mark writes what the agent concludes about a Bottle it cannot run:
// Ready=False and Stalled=True (kstatus Failed, Argo CD Degraded), phase
// Failed, Reconciling removed. The Bottle controller rewrites all three
// once it runs.
func Mark(b *v1.Bottle, msg string) {
	st := &b.Status
	for _, typ := range []string{v1.ConditionReady, v1.ConditionStalled} {
		status := metav1.ConditionFalse
		if typ == v1.ConditionStalled {
			status = metav1.ConditionTrue
		}
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{
			Type: typ, Status: status, Reason: Reason, Message: msg, ObservedGeneration: b.Generation,
		})
	}
	meta.RemoveStatusCondition(&st.Conditions, v1.ConditionReconciling)
	st.Phase = v1.PhaseFailed
	st.ObservedGeneration = b.Generation
}
