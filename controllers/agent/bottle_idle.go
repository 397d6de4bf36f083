package agent

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/source"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// Idle stop (spec.lifecycle.stopAfterIdle). The agent stops a Bottle's
// machine once its activity tracker saw no session, step or run for that
// long, and records it in status.lifecycle.idleStoppedAt; spec.runState is
// not touched. While that is set the pass treats the Bottle as runState
// Stopped, until a session or run asks the tracker to wake it.

// applyIdleStop makes an idle-stopped Bottle's pass act as runState Stopped,
// unless a wake was asked for (or stopAfterIdle was removed): then the
// record is cleared and the machine starts again.
func (r *BottleReconciler) applyIdleStop(s *scope) {
	st := s.status()
	if st.Lifecycle == nil || st.Lifecycle.IdleStoppedAt == nil {
		return
	}
	lc := s.spec().Lifecycle
	woken := r.Activity != nil && r.Activity.WakeRequested(s.bottle.UID, st.Lifecycle.IdleStoppedAt.Time)
	if lc == nil || lc.StopAfterIdle == nil || woken || s.spec().RunState == v1.RunStateStopped {
		st.Lifecycle = nil
		if woken {
			r.event(s, corev1.EventTypeNormal, v1.ReasonMachineStarting, "Wake", "a session or run uses the idle-stopped Bottle: starting machine %s", s.machineName)
		}
		return
	}
	s.idleStopped = true
	// In memory only: the spec in the API server keeps runState Running.
	s.bottle.Spec.RunState = v1.RunStateStopped
}

// idleCheck runs once everything is in place: it stops the Bottle when it
// has been idle for stopAfterIdle, or says when to look again.
func (r *BottleReconciler) idleCheck(s *scope) ctrl.Result {
	lc := s.spec().Lifecycle
	if r.Activity == nil || lc == nil || lc.StopAfterIdle == nil || s.idleStopped || s.spec().RunState != v1.RunStateRunning {
		return ctrl.Result{}
	}
	since := r.startedAt
	if c := meta.FindStatusCondition(s.status().Conditions, v1.ConditionReady); c != nil && c.Status == metav1.ConditionTrue && c.LastTransitionTime.After(since) {
		since = c.LastTransitionTime.Time
	}
	limit := lc.StopAfterIdle.Duration
	idle, from := r.Activity.Idle(s.bottle.UID, since)
	if !idle {
		return ctrl.Result{RequeueAfter: limit}
	}
	if left := limit - time.Since(from); left > 0 {
		return ctrl.Result{RequeueAfter: left}
	}
	now := metav1.Now()
	s.status().Lifecycle = &v1.LifecycleStatus{IdleStoppedAt: &now}
	r.event(s, corev1.EventTypeNormal, v1.ReasonIdleStopped, "Stop",
		"no session, step or run for %s: stopping machine %s (disk kept)", limit, s.machineName)
	// The next pass stops the machine (applyIdleStop).
	return ctrl.Result{RequeueAfter: immediateRequeue}
}

// idleStopMessage is MachineReady's message while stopped.
func (s *scope) stoppedMessage() string {
	if s.idleStopped {
		return fmt.Sprintf("stopped after %s idle (spec.lifecycle.stopAfterIdle)", s.spec().Lifecycle.StopAfterIdle.Duration)
	}
	return "runState is Stopped"
}

// wakeSource reconciles a Bottle at once when a session or run asks the
// tracker to wake it.
func (r *BottleReconciler) wakeSource(mgr manager.Manager) (source.Source, error) {
	ch := make(chan event.GenericEvent, 64)
	err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		for {
			select {
			case <-ctx.Done():
				return nil
			case key := <-r.Activity.Woken():
				b := &v1.Bottle{}
				b.Namespace, b.Name = key.Namespace, key.Name
				select {
				case ch <- event.GenericEvent{Object: b}:
				case <-ctx.Done():
					return nil
				}
			}
		}
	}))
	return source.Channel(ch, &handler.EnqueueRequestForObject{}), err
}

var _ client.Object = (*v1.Bottle)(nil)
