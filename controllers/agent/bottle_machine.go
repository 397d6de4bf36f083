package agent

import (
	"context"
	"fmt"
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

// smolvmFailure records a driver error on the condition it blocks, naming
// the verb, and stalls (needs a human) or retries with the Bottle's
// exponential backoff as decideFailure says.
func (r *BottleReconciler) smolvmFailure(s *scope, cond, action string, err error) (bool, ctrl.Result, error) {
	// Whatever failed, the machine may not be as last seen: the next pass
	// asks smolvm.
	r.view.unsettled(s.machineName)
	policy := decideFailure(smolvm.ClassOf(err))
	msg := fmt.Sprintf("%s: %v", action, err)
	if policy.Reason == v1.ReasonSmolvmTimeout {
		msg = fmt.Sprintf("%s: smolvm did not answer in time (%v); retrying", action, err)
	}
	s.setCondition(cond, metav1.ConditionFalse, policy.Reason, msg)
	if policy.Stall {
		s.stall(policy.Reason, msg)
		if policy.Reason == v1.ReasonKVMUnavailable || policy.Reason == v1.ReasonAllowHostUnresolvable {
			// Both can clear without a spec change (a module loaded, a
			// DNS record added): look again after the period.
			r.event(s, corev1.EventTypeWarning, policy.Reason, action, "%v", err)
			return false, ctrl.Result{RequeueAfter: kvmRetryPeriod}, nil
		}
		return false, ctrl.Result{}, nil
	}
	s.wait(policy.Reason, msg)
	// Not an error for the workqueue: its backoff would not hold against
	// the watch event of this pass's own status write (see backoffs).
	delay := r.backoff.failed(s.bottle.UID, s.bottle.Generation, time.Now())
	s.log.Info("smolvm failed; retrying with backoff", "action", action, "machine", s.machineName,
		"retryIn", delay.String(), "error", err.Error())
	return false, ctrl.Result{RequeueAfter: delay}, nil
}

// reconcileMachine makes sure a machine of ours exists: adopt it when it
// carries this Bottle's UID, create it when missing, and never touch a
// machine of that name that belongs to something else.
func (r *BottleReconciler) reconcileMachine(ctx context.Context, s *scope) (bool, ctrl.Result, error) {
	if s.bottle.Spec.TemplateRef != nil {
		return r.reconcileForkedMachine(ctx, s)
	}
	st := s.status()
	m, err := r.machineOf(ctx, s)
	if err != nil {
		return r.smolvmFailure(s, v1.ConditionMachineReady, "status", err)
	}
	switch ownerOf(m, string(s.bottle.UID)) {
	case machineForeign:
		msg := fmt.Sprintf("a smolvm machine named %q already exists and does not belong to this Bottle; "+
			"delete it or choose another spec.machineName", s.machineName)
		s.setCondition(v1.ConditionMachineReady, metav1.ConditionFalse, v1.ReasonNameConflict, msg)
		s.stall(v1.ReasonNameConflict, msg)
		st.MachineState = ""
		if s.before.MachineName == "" || !meta.IsStatusConditionPresentAndEqual(s.before.Conditions, v1.ConditionMachineReady, metav1.ConditionFalse) {
			r.event(s, corev1.EventTypeWarning, v1.ReasonNameConflict, "Create", "%s", msg)
		}
		return false, ctrl.Result{}, nil
	case machineOurs:
		s.machine = m
		st.MachineState = m.State
		return r.reconcileDrift(ctx, s, m)
	}
	return r.createMachine(ctx, s, false)
}

// machineOf is smolvm's view of the Bottle's machine (nil: there is none),
// read from the node's machineView. A Bottle that never had a machine asks
// nothing: create says so when the name is taken.
func (r *BottleReconciler) machineOf(ctx context.Context, s *scope) (*smolvm.Machine, error) {
	if m, ok := r.view.known(s.machineName); ok {
		return m, nil
	}
	st := s.status()
	neverCreated := st.MachineState == "" && meta.FindStatusCondition(st.Conditions, v1.ConditionMachineReady) == nil
	if neverCreated && !r.view.touched(s.machineName) {
		return nil, nil
	}
	return r.view.lookup(ctx, s.machineName)
}

// createMachine creates the missing machine. If we had one, it went behind
// our back (or was deleted on purpose: deliberate): its disk went with it,
// so every file and step is done again. Losing a create race to someone else is a
// name conflict, found by the next pass.
func (r *BottleReconciler) createMachine(ctx context.Context, s *scope, deliberate bool) (bool, ctrl.Result, error) {
	st := s.status()
	recreated := st.MachineState != "" && !deliberate
	if err := r.retryProgress(ctx, s, v1.ConditionMachineReady, v1.ReasonProgressing, creatingMessage(s)); err != nil {
		return false, ctrl.Result{}, err
	}
	// The driver bounds the call (--smolvm-create-timeout), with 10 s more
	// per allowHost: smolvm resolves each at create.
	err := r.Machines.Create(ctx, r.machineSpec(s))
	if smolvm.IsAlreadyExists(err) {
		// The name is taken (by our own machine an agent created before
		// it could say so, or by someone else's): look, adopting it if it
		// is ours and reporting a conflict if not.
		r.view.unsettled(s.machineName)
		return false, ctrl.Result{RequeueAfter: immediateRequeue}, nil
	}
	if err != nil {
		return r.smolvmFailure(s, v1.ConditionMachineReady, "create", err)
	}
	st.Files = nil
	st.ExecResults = nil
	r.owners.forget(s.bottle.UID)
	reason := v1.ReasonMachineCreated
	if recreated {
		reason = v1.ReasonMachineRecreated
		r.event(s, corev1.EventTypeWarning, reason, "Create",
			"machine %s was gone (last seen %s); created it again and will copy files and provision from scratch", s.machineName, st.MachineState)
	} else {
		r.event(s, corev1.EventTypeNormal, reason, "Create", "created machine %s", s.machineName)
	}
	// What create made is known: no need to ask smolvm again.
	s.machine = madeMachine(r.machineSpec(s))
	r.view.saw(s.machineName, s.machine)
	st.MachineState = smolvm.StateCreated
	s.setCondition(v1.ConditionMachineReady, metav1.ConditionFalse, reason, "machine created, not started yet")
	meta.RemoveStatusCondition(&st.Conditions, v1.ConditionMachineUpToDate)
	s.notApplied = verdict{}
	return true, ctrl.Result{}, nil
}

func creatingMessage(s *scope) string { return "creating machine " + s.machineName }

// reconcileDrift compares the machine with the spec. What smolvm cannot
// change is reported (spec not applied: the Bottle is never Ready), or, with
// recreatePolicy OnChange, the machine is deleted and created again.
func (r *BottleReconciler) reconcileDrift(ctx context.Context, s *scope, m *smolvm.Machine) (bool, ctrl.Result, error) {
	if cpus, memMiB, ok := decideResize(s.spec(), m); ok {
		return r.resizeMachine(ctx, s, m, cpus, memMiB)
	}
	action, msg := decideDrift(machineDiffs(&s.spec().MachineSpec, m), s.spec().RecreatePolicy)
	prev := meta.FindStatusCondition(s.before.Conditions, v1.ConditionMachineUpToDate)
	switch action {
	case driftNone:
		meta.RemoveStatusCondition(&s.status().Conditions, v1.ConditionMachineUpToDate)
		return true, ctrl.Result{}, nil
	case driftReport:
		if prev == nil || prev.Message != msg {
			r.event(s, corev1.EventTypeWarning, v1.ReasonRecreateRequired, "Update", "%s", msg)
		}
		s.setCondition(v1.ConditionMachineUpToDate, metav1.ConditionFalse, v1.ReasonRecreateRequired, msg)
		s.notApplied = verdict{v1.ReasonRecreateRequired, msg}
		return true, ctrl.Result{}, nil
	}
	r.event(s, corev1.EventTypeWarning, v1.ReasonMachineRecreating, "Recreate", "%s", msg)
	s.setCondition(v1.ConditionMachineUpToDate, metav1.ConditionFalse, v1.ReasonMachineRecreating, msg)
	if err := r.progress(ctx, s, v1.ReasonMachineRecreating, msg); err != nil {
		return false, ctrl.Result{}, err
	}
	if ok, res, err := r.removeMachine(ctx, s, m); !ok {
		return false, res, err
	}
	return r.createMachine(ctx, s, true)
}

// resizeMachine applies a new size: stop, `machine update`, and leave the
// start to reconcilePower. The disk, and so everything provisioned, stays.
func (r *BottleReconciler) resizeMachine(ctx context.Context, s *scope, m *smolvm.Machine, cpus, memMiB int) (bool, ctrl.Result, error) {
	msg := fmt.Sprintf("resizing machine %s to %d vCPUs and %d MiB: stop, update, start (its disk is kept)",
		s.machineName, s.spec().Resources.OrDefault().CPUs, s.spec().Resources.OrDefault().MemoryMiB)
	s.setCondition(v1.ConditionMachineUpToDate, metav1.ConditionFalse, v1.ReasonMachineResized, msg)
	if err := r.retryProgress(ctx, s, v1.ConditionMachineUpToDate, v1.ReasonMachineResized, msg); err != nil {
		return false, ctrl.Result{}, err
	}
	if m.State == smolvm.StateRunning || m.State == smolvm.StateUnreachable {
		if err := r.stop(ctx, s.machineName); err != nil && !smolvm.IsNotRunning(err) {
			return r.smolvmFailure(s, v1.ConditionMachineReady, "stop", err)
		}
	}
	err := r.Machines.Update(ctx, s.machineName, cpus, memMiB)
	if err != nil {
		return r.smolvmFailure(s, v1.ConditionMachineReady, "update", err)
	}
	r.event(s, corev1.EventTypeNormal, v1.ReasonMachineResized, "Update", "%s", msg)
	resized := *m
	resized.State = smolvm.StateStopped
	if cpus > 0 {
		resized.CPUs = cpus
	}
	if memMiB > 0 {
		resized.MemoryMiB = memMiB
	}
	s.machine = &resized
	r.view.saw(s.machineName, s.machine)
	s.status().MachineState = smolvm.StateStopped
	meta.RemoveStatusCondition(&s.status().Conditions, v1.ConditionMachineUpToDate)
	s.notApplied = verdict{}
	return true, ctrl.Result{}, nil
}

// removeMachine stops and deletes a machine of ours.
func (r *BottleReconciler) removeMachine(ctx context.Context, s *scope, m *smolvm.Machine) (bool, ctrl.Result, error) {
	if verb, err := r.destroyMachine(ctx, s.machineName, m); err != nil {
		return r.smolvmFailure(s, v1.ConditionMachineReady, verb, err)
	}
	return true, ctrl.Result{}, nil
}

// destroyMachine stops a machine of ours if it runs, deletes it, and
// records it gone in the view; on failure it returns the verb that failed
// ("stop" or "delete") for the caller to report its own way. A machine
// already stopped or gone is no failure. smolvm's delete stops a running
// machine itself, but the agent stops it first with a call of its own:
// each call then has its own deadline (--smolvm-stop-timeout,
// --smolvm-delete-timeout), and a machine that will not stop is reported
// as that, not as a failed delete.
func (r *BottleReconciler) destroyMachine(ctx context.Context, name string, m *smolvm.Machine) (verb string, err error) {
	if m.State == smolvm.StateRunning || m.State == smolvm.StateUnreachable {
		if err := r.stop(ctx, name); err != nil && !smolvm.IsNotRunning(err) && !smolvm.IsNotFound(err) {
			return "stop", err
		}
	}
	if err := r.Machines.Delete(ctx, name); err != nil && !smolvm.IsNotFound(err) {
		return "delete", err
	}
	r.view.saw(name, nil)
	return "", nil
}

// machineSpec is the create request of the Bottle's machine: its fields
// (machineFields) and the labels that make it the Bottle's.
func (r *BottleReconciler) machineSpec(s *scope) smolvm.MachineSpec {
	return createRequest(s.machineName, &s.spec().MachineSpec, map[string]string{
		v1.LabelUID:       string(s.bottle.UID),
		v1.LabelNamespace: s.bottle.Namespace,
		v1.LabelName:      s.bottle.Name,
	})
}

// reconcilePower starts or stops the machine as runState asks. Starting
// again never re-runs provisioning: completed steps stay in status.
func (r *BottleReconciler) reconcilePower(ctx context.Context, s *scope) (bool, ctrl.Result, error) {
	st := s.status()
	unreachableFor := r.unreachable.observe(s.machineName, s.machine.State)
	action, unexpected := decidePower(s.spec().RunState, s.machine.State, s.before.MachineState, unreachableFor, r.UnreachableGrace)
	switch action {
	case powerWait:
		// Ask smolvm again, not the view, when the wait is over.
		r.view.unsettled(s.machineName)
		left := r.UnreachableGrace - unreachableFor
		s.setCondition(v1.ConditionMachineReady, metav1.ConditionFalse, v1.ReasonMachineUnreachable,
			fmt.Sprintf("smolvm reports the machine unreachable (its guest agent did not answer a ping); "+
				"restarting it if that lasts %s more", left.Round(time.Second)))
		return false, ctrl.Result{RequeueAfter: left}, nil
	case powerNone:
		if s.spec().RunState == v1.RunStateStopped {
			s.setCondition(v1.ConditionMachineReady, metav1.ConditionFalse, v1.ReasonMachineStopped, s.stoppedMessage())
			return false, ctrl.Result{}, nil
		}
		s.setCondition(v1.ConditionMachineReady, metav1.ConditionTrue, v1.ReasonMachineRunning, "machine is running")
		return true, ctrl.Result{}, nil
	case powerStop:
		s.setCondition(v1.ConditionMachineReady, metav1.ConditionFalse, v1.ReasonMachineStopped, s.stoppedMessage())
		if err := r.retryProgress(ctx, s, v1.ConditionMachineReady, v1.ReasonMachineStopped, "stopping machine "+s.machineName); err != nil {
			return false, ctrl.Result{}, err
		}
		if err := r.stop(ctx, s.machineName); err != nil && !smolvm.IsNotRunning(err) {
			return r.smolvmFailure(s, v1.ConditionMachineReady, "stop", err)
		}
		r.event(s, corev1.EventTypeNormal, v1.ReasonMachineStopped, "Stop", "stopped machine %s (disk kept)", s.machineName)
		s.machine.State = smolvm.StateStopped
		r.view.saw(s.machineName, s.machine)
		st.MachineState = smolvm.StateStopped
		return false, ctrl.Result{}, nil
	}

	// A machine we saw running that is now stopped or failed went down on
	// its own; say so, then start it (failures back off via the workqueue).
	s.setCondition(v1.ConditionMachineReady, metav1.ConditionFalse, v1.ReasonMachineStarting, "starting machine")
	if err := r.retryProgress(ctx, s, v1.ConditionMachineReady, v1.ReasonMachineStarting, "starting machine "+s.machineName); err != nil {
		return false, ctrl.Result{}, err
	}
	if action == powerRestart {
		// The guest agent is silent: a stop/start cycle is the only cure.
		if err := r.stop(ctx, s.machineName); err != nil && !smolvm.IsNotRunning(err) {
			return r.smolvmFailure(s, v1.ConditionMachineReady, "stop", err)
		}
	}
	err := r.Machines.Start(ctx, s.machineName)
	if err != nil {
		return r.smolvmFailure(s, v1.ConditionMachineReady, "start", err)
	}
	if unexpected {
		r.event(s, corev1.EventTypeWarning, v1.ReasonMachineRestarted, "Start", "machine %s was %s; started it again", s.machineName, s.machine.State)
	} else {
		r.event(s, corev1.EventTypeNormal, v1.ReasonMachineStarting, "Start", "started machine %s", s.machineName)
	}
	// smolvm's start exits 0 only once the machine runs: no need to ask
	// its status again (the next pass's status would see otherwise).
	s.machine.State = smolvm.StateRunning
	r.view.saw(s.machineName, s.machine)
	st.MachineState = smolvm.StateRunning
	s.setCondition(v1.ConditionMachineReady, metav1.ConditionTrue, v1.ReasonMachineRunning, "machine is running")
	return true, ctrl.Result{}, nil
}

func (r *BottleReconciler) stop(ctx context.Context, name string) error {
	return r.Machines.Stop(ctx, name)
}
