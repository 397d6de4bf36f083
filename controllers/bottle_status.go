package controllers

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

// summarize derives Ready, Reconciling, Stalled and the phase from what the
// phases recorded. It keeps kstatus' invariant: a Bottle is Ready (running
// and provisioned, or stopped as asked), or Reconciling, or Stalled.
func summarize(s *scope, reconcileErr error) {
	st := s.status()
	gen := s.bottle.Generation
	set := func(typ string, status metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: gen})
	}
	isTrue := func(typ string) bool { return meta.IsStatusConditionTrue(st.Conditions, typ) }

	deleting := !s.bottle.DeletionTimestamp.IsZero()
	stopped := !deleting && s.spec().RunState == v1.RunStateStopped && !s.stalled() && reconcileErr == nil &&
		(st.MachineState == smolvm.StateStopped || st.MachineState == smolvm.StateCreated)
	ready := !deleting && !s.stalled() && reconcileErr == nil && s.spec().RunState == v1.RunStateRunning &&
		isTrue(v1.ConditionMachineReady) && isTrue(v1.ConditionFilesReady) && isTrue(v1.ConditionProvisioned)

	switch {
	case deleting:
		st.Phase = v1.PhaseDeleting
	case s.stalled():
		st.Phase = v1.PhaseFailed
	case ready:
		st.Phase = v1.PhaseReady
	case stopped:
		st.Phase = v1.PhaseStopped
	case st.MachineState == "":
		if st.MachineName == "" {
			st.Phase = v1.PhasePending
		} else {
			st.Phase = v1.PhaseCreating
		}
	case !isTrue(v1.ConditionMachineReady):
		st.Phase = v1.PhaseStarting
	case !isTrue(v1.ConditionFilesReady):
		st.Phase = v1.PhaseCopyingFiles
	default:
		st.Phase = v1.PhaseProvisioning
	}

	switch {
	case ready:
		set(v1.ConditionReady, metav1.ConditionTrue, v1.ReasonReady, "machine running, files in place, provisioning done")
		meta.RemoveStatusCondition(&st.Conditions, v1.ConditionReconciling)
		meta.RemoveStatusCondition(&st.Conditions, v1.ConditionStalled)
	case s.stalled():
		set(v1.ConditionReady, metav1.ConditionFalse, s.stalledReason, s.stalledMessage)
		set(v1.ConditionStalled, metav1.ConditionTrue, s.stalledReason, s.stalledMessage)
		meta.RemoveStatusCondition(&st.Conditions, v1.ConditionReconciling)
	case stopped:
		// Stopped on purpose is the desired state: Ready, so GitOps health
		// checks (kstatus) call it Current. The phase says Stopped.
		set(v1.ConditionReady, metav1.ConditionTrue, v1.ReasonMachineStopped, "machine stopped as runState asks; its disk is kept")
		meta.RemoveStatusCondition(&st.Conditions, v1.ConditionReconciling)
		meta.RemoveStatusCondition(&st.Conditions, v1.ConditionStalled)
	default:
		reason, msg := s.waitingReason, s.waitingMessage
		if reason == "" {
			reason, msg = v1.ReasonProgressing, "phase "+string(st.Phase)
		}
		if reconcileErr != nil && s.waitingReason == "" {
			reason, msg = v1.ReasonReconcileError, reconcileErr.Error()
		}
		if !deleting || !meta.IsStatusConditionFalse(st.Conditions, v1.ConditionReady) {
			set(v1.ConditionReady, metav1.ConditionFalse, reason, msg)
		}
		set(v1.ConditionReconciling, metav1.ConditionTrue, reason, msg)
		meta.RemoveStatusCondition(&st.Conditions, v1.ConditionStalled)
	}
}

// phaseEvent records every phase transition, so `kubectl events` tells the
// Bottle's story even between the finer-grained machine and step events.
func (r *BottleReconciler) phaseEvent(s *scope) {
	from, to := s.before.Phase, s.status().Phase
	if from == to {
		return
	}
	if from == "" {
		from = "None"
	}
	ready := meta.FindStatusCondition(s.status().Conditions, v1.ConditionReady)
	msg := ""
	if ready != nil {
		msg = ready.Message
	}
	eventType := "Normal"
	if to == v1.PhaseFailed {
		eventType = "Warning"
	}
	r.event(s, eventType, "Phase"+string(to), "Reconcile", "phase %s -> %s: %s", from, to, msg)
}
