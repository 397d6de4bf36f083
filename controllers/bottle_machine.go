package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

// kvmRetryPeriod: a host without KVM needs a human; look again now and then
// rather than hammering smolvm.
const kvmRetryPeriod = 2 * time.Minute

func (r *BottleReconciler) setCondition(s *scope, typ string, status metav1.ConditionStatus, reason, message string) {
	meta.SetStatusCondition(&s.status().Conditions, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: message,
		ObservedGeneration: s.bottle.Generation,
	})
}

func (r *BottleReconciler) event(s *scope, eventType, reason, action, note string, args ...any) {
	if r.Recorder != nil {
		r.Recorder.Eventf(s.bottle, nil, eventType, reason, action, note, args...)
	}
}

// smolvmFailure records a driver error on the condition it blocks and says
// whether to stall (needs a human) or retry with backoff.
func (r *BottleReconciler) smolvmFailure(s *scope, cond, action string, err error) (bool, ctrl.Result, error) {
	switch smolvm.ClassOf(err) {
	case smolvm.ErrKVMUnavailable:
		msg := fmt.Sprintf("%s: %v", action, err)
		r.setCondition(s, cond, metav1.ConditionFalse, v1.ReasonKVMUnavailable, msg)
		s.stall(v1.ReasonKVMUnavailable, msg)
		r.event(s, corev1.EventTypeWarning, v1.ReasonKVMUnavailable, action, "%v", err)
		return false, ctrl.Result{RequeueAfter: kvmRetryPeriod}, nil
	case smolvm.ErrInvalidName:
		msg := fmt.Sprintf("%s: %v", action, err)
		r.setCondition(s, cond, metav1.ConditionFalse, v1.ReasonInvalidName, msg)
		s.stall(v1.ReasonInvalidName, msg)
		return false, ctrl.Result{}, nil
	}
	r.setCondition(s, cond, metav1.ConditionFalse, v1.ReasonSmolvmError, fmt.Sprintf("%s: %v", action, err))
	s.wait(v1.ReasonSmolvmError, fmt.Sprintf("%s failed; retrying", action))
	return false, ctrl.Result{}, fmt.Errorf("%s machine %s: %w", action, s.machineName, err)
}

// reconcileMachine makes sure a machine of ours exists: adopt it when it
// carries this Bottle's UID, create it when missing, and never touch a
// machine of that name that belongs to something else.
func (r *BottleReconciler) reconcileMachine(ctx context.Context, s *scope) (bool, ctrl.Result, error) {
	st := s.status()
	st.NodeName = r.NodeName
	st.MachineName = s.machineName

	m, err := r.Machines.Status(ctx, s.machineName)
	switch {
	case err == nil:
		if m.Labels[v1.LabelUID] != string(s.bottle.UID) {
			msg := fmt.Sprintf("a smolvm machine named %q already exists and does not belong to this Bottle; "+
				"delete it or choose another spec.machineName", s.machineName)
			r.setCondition(s, v1.ConditionMachineReady, metav1.ConditionFalse, v1.ReasonNameConflict, msg)
			s.stall(v1.ReasonNameConflict, msg)
			st.MachineState = ""
			if s.before.MachineName == "" || !meta.IsStatusConditionPresentAndEqual(s.before.Conditions, v1.ConditionMachineReady, metav1.ConditionFalse) {
				r.event(s, corev1.EventTypeWarning, v1.ReasonNameConflict, "Create", "%s", msg)
			}
			return false, ctrl.Result{}, nil
		}
		s.machine = m
		st.MachineState = m.State
		r.checkUpToDate(s, m)
		return true, ctrl.Result{}, nil
	case !smolvm.IsNotFound(err):
		return r.smolvmFailure(s, v1.ConditionMachineReady, "status", err)
	}

	// The machine is missing. If we had one, it went behind our back: its
	// disk went with it, so every file and step must be done again.
	recreated := st.MachineState != ""
	if err := r.Machines.Create(ctx, r.machineSpec(s)); err != nil && !smolvm.IsAlreadyExists(err) {
		return r.smolvmFailure(s, v1.ConditionMachineReady, "create", err)
	}
	st.Files = nil
	st.ExecResults = nil
	if recreated {
		r.event(s, corev1.EventTypeWarning, v1.ReasonMachineRecreated, "Create",
			"machine %s was gone (last seen %s); created it again and will copy files and provision from scratch", s.machineName, st.MachineState)
	} else {
		r.event(s, corev1.EventTypeNormal, v1.ReasonMachineCreated, "Create", "created machine %s", s.machineName)
	}
	m, err = r.Machines.Status(ctx, s.machineName)
	if err != nil {
		return r.smolvmFailure(s, v1.ConditionMachineReady, "status", err)
	}
	if m.Labels[v1.LabelUID] != string(s.bottle.UID) {
		// Lost a race with someone else creating the same name.
		return r.reconcileMachine(ctx, s)
	}
	s.machine = m
	st.MachineState = m.State
	reason := v1.ReasonMachineCreated
	if recreated {
		reason = v1.ReasonMachineRecreated
	}
	r.setCondition(s, v1.ConditionMachineReady, metav1.ConditionFalse, reason, "machine created, not started yet")
	return true, ctrl.Result{}, nil
}

// checkUpToDate reports spec changes smolvm cannot apply to an existing
// machine (image, CPUs, memory). The machine and its disk are kept -- never
// recreated behind the user's back -- and the Bottle says what to do.
func (r *BottleReconciler) checkUpToDate(s *scope, m *smolvm.Machine) {
	spec := s.spec()
	var diffs []string
	if m.Image != "" && m.Image != spec.Image {
		diffs = append(diffs, fmt.Sprintf("spec.image %q (machine: %q)", spec.Image, m.Image))
	}
	if m.CPUs != 0 && m.CPUs != int(spec.Resources.CPUs) {
		diffs = append(diffs, fmt.Sprintf("spec.resources.cpus %d (machine: %d)", spec.Resources.CPUs, m.CPUs))
	}
	if m.MemoryMiB != 0 && m.MemoryMiB != int(spec.Resources.MemoryMiB) {
		diffs = append(diffs, fmt.Sprintf("spec.resources.memoryMiB %d (machine: %d)", spec.Resources.MemoryMiB, m.MemoryMiB))
	}
	if len(diffs) == 0 {
		meta.RemoveStatusCondition(&s.status().Conditions, v1.ConditionMachineUpToDate)
		return
	}
	msg := fmt.Sprintf("%s: smolvm cannot change an existing machine; delete and re-create the Bottle to apply (its disk is kept until then)",
		strings.Join(diffs, ", "))
	prev := meta.FindStatusCondition(s.before.Conditions, v1.ConditionMachineUpToDate)
	if prev == nil || prev.Message != msg {
		r.event(s, corev1.EventTypeWarning, v1.ReasonRecreateRequired, "Update", "%s", msg)
	}
	r.setCondition(s, v1.ConditionMachineUpToDate, metav1.ConditionFalse, v1.ReasonRecreateRequired, msg)
}

func (r *BottleReconciler) machineSpec(s *scope) smolvm.MachineSpec {
	spec := s.spec()
	return smolvm.MachineSpec{
		Name:       s.machineName,
		Image:      spec.Image,
		CPUs:       int(spec.Resources.CPUs),
		MemoryMiB:  int(spec.Resources.MemoryMiB),
		AllowHosts: spec.Network.AllowHosts,
		AllowCIDRs: spec.Network.AllowCIDRs,
		Labels: map[string]string{
			v1.LabelUID:       string(s.bottle.UID),
			v1.LabelNamespace: s.bottle.Namespace,
			v1.LabelName:      s.bottle.Name,
		},
	}
}

// reconcilePower starts or stops the machine as runState asks. Starting
// again never re-runs provisioning: completed steps stay in status.
func (r *BottleReconciler) reconcilePower(ctx context.Context, s *scope) (bool, ctrl.Result, error) {
	st := s.status()
	state := s.machine.State

	if s.spec().RunState == v1.RunStateStopped {
		if state == smolvm.StateRunning || state == smolvm.StateUnreachable {
			if err := r.Machines.Stop(ctx, s.machineName); err != nil && !smolvm.IsNotRunning(err) {
				return r.smolvmFailure(s, v1.ConditionMachineReady, "stop", err)
			}
			r.event(s, corev1.EventTypeNormal, v1.ReasonMachineStopped, "Stop", "stopped machine %s (disk kept)", s.machineName)
			st.MachineState = smolvm.StateStopped
		}
		r.setCondition(s, v1.ConditionMachineReady, metav1.ConditionFalse, v1.ReasonMachineStopped, "runState is Stopped")
		return false, ctrl.Result{}, nil
	}

	if state == smolvm.StateRunning {
		r.setCondition(s, v1.ConditionMachineReady, metav1.ConditionTrue, v1.ReasonMachineRunning, "machine is running")
		return true, ctrl.Result{}, nil
	}

	// A machine we saw running that is now stopped or failed went down on
	// its own; say so, then start it (failures back off via the workqueue).
	unexpected := s.before.MachineState == smolvm.StateRunning && s.spec().RunState == v1.RunStateRunning
	if state == smolvm.StateUnreachable {
		// The guest agent is silent: a stop/start cycle is the only cure.
		if err := r.Machines.Stop(ctx, s.machineName); err != nil && !smolvm.IsNotRunning(err) {
			return r.smolvmFailure(s, v1.ConditionMachineReady, "stop", err)
		}
	}
	if err := r.Machines.Start(ctx, s.machineName); err != nil {
		return r.smolvmFailure(s, v1.ConditionMachineReady, "start", err)
	}
	if unexpected {
		r.event(s, corev1.EventTypeWarning, v1.ReasonMachineRestarted, "Start", "machine %s was %s; started it again", s.machineName, state)
	} else {
		r.event(s, corev1.EventTypeNormal, v1.ReasonMachineStarting, "Start", "started machine %s", s.machineName)
	}
	m, err := r.Machines.Status(ctx, s.machineName)
	if err != nil {
		return r.smolvmFailure(s, v1.ConditionMachineReady, "status", err)
	}
	s.machine = m
	st.MachineState = m.State
	if m.State != smolvm.StateRunning {
		msg := fmt.Sprintf("machine is %s after start", m.State)
		r.setCondition(s, v1.ConditionMachineReady, metav1.ConditionFalse, v1.ReasonNotRunning, msg)
		s.wait(v1.ReasonNotRunning, msg)
		return false, ctrl.Result{}, errors.New(msg)
	}
	r.setCondition(s, v1.ConditionMachineReady, metav1.ConditionTrue, v1.ReasonMachineRunning, "machine is running")
	return true, ctrl.Result{}, nil
}
