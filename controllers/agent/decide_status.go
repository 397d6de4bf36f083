package agent

import (
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

// verdict is a condition reason and message; the zero value means none.
type verdict struct{ Reason, Message string }

func (v verdict) set() bool { return v.Reason != "" }

// summaryInput is what the summary is computed from: plain values a pass
// collected, so summarize is a pure function (table-tested).
type summaryInput struct {
	Deleting                              bool
	RunState                              v1.RunState
	MachineName, MachineState             string
	MachineReady, FilesReady, Provisioned bool
	// FilesWaitForSteps: the files not in place wait for an owner a step
	// may create, so the Bottle is provisioning, not copying.
	FilesWaitForSteps bool
	// Stalled: a phase cannot make progress without a change from a human.
	Stalled verdict
	// Waiting: why the Bottle is not Ready yet while progress is expected.
	Waiting verdict
	// NotApplied: spec fields the machine does not have (recreatePolicy
	// Never). It does not stop work, but a Bottle whose spec is not applied
	// is never Ready: once nothing else is pending it is Stalled.
	NotApplied verdict
	// Err is the pass's error, if any.
	Err string
	// Pending: the pass is about to act (a progress write), so whatever
	// the conditions still say from before, the Bottle is not Ready yet.
	Pending bool
	// Unreserved: no machine yet, and none is made until the Bottle's
	// reservation Pod is bound to this node.
	Unreserved bool
	// IdleStopped: RunState is Stopped because the machine was stopped for
	// idleness (spec.lifecycle.stopAfterIdle), not by the spec.
	IdleStopped bool
}

// summary is the phase and the three kstatus conditions.
type summary struct {
	Phase v1.Phase
	// Ready is True when ReadyTrue, else False, with Ready's reason.
	ReadyTrue bool
	Ready     verdict
	// Reconciling and Stalled are True when set and absent otherwise.
	Reconciling, Stalled verdict
}

// summarize keeps kstatus' invariant: a Bottle is Ready (running and
// provisioned, or stopped as asked), or Reconciling (work pending), or
// Stalled (needs a human) -- never Current while work is pending or its spec
// is not applied.
func summarize(in summaryInput) summary {
	stalled := in.Stalled
	ok := !in.Deleting && !stalled.set() && in.Err == "" && !in.Pending
	ready := ok && in.RunState == v1.RunStateRunning && in.MachineReady && in.FilesReady && in.Provisioned
	stopped := ok && in.RunState == v1.RunStateStopped &&
		(in.MachineState == smolvm.StateStopped || in.MachineState == smolvm.StateCreated)
	if (ready || stopped) && in.NotApplied.set() {
		stalled, ready, stopped = in.NotApplied, false, false
	}

	var out summary
	switch {
	case in.Deleting:
		out.Phase = v1.PhaseDeleting
	case stalled.set():
		out.Phase = v1.PhaseFailed
	case ready:
		out.Phase = v1.PhaseReady
	case stopped:
		out.Phase = v1.PhaseStopped
	case in.MachineState == "":
		if in.MachineName == "" || in.Unreserved {
			out.Phase = v1.PhasePending
		} else {
			out.Phase = v1.PhaseCreating
		}
	case !in.MachineReady:
		out.Phase = v1.PhaseStarting
	case !in.FilesReady && !in.FilesWaitForSteps:
		out.Phase = v1.PhaseCopyingFiles
	default:
		out.Phase = v1.PhaseProvisioning
	}

	switch {
	case ready:
		out.ReadyTrue = true
		out.Ready = verdict{v1.ReasonReady, "machine running, files in place, provisioning done"}
	case stalled.set() && !in.Deleting:
		out.Ready, out.Stalled = stalled, stalled
	case stopped:
		// Stopped on purpose is the desired state: Ready, so GitOps health
		// checks (kstatus) call it Current. The phase says Stopped.
		out.ReadyTrue = true
		out.Ready = verdict{v1.ReasonMachineStopped, "machine stopped as runState asks; its disk is kept"}
		if in.IdleStopped {
			out.Ready = verdict{v1.ReasonIdleStopped, "machine stopped after spec.lifecycle.stopAfterIdle without a session, step or run; " +
				"its disk is kept, and a session or run starts it again"}
		}
	default:
		v := in.Waiting
		switch {
		case !v.set() && in.Err != "":
			v = verdict{v1.ReasonReconcileError, in.Err}
		case !v.set():
			v = verdict{v1.ReasonProgressing, "phase " + string(out.Phase)}
		}
		out.Ready, out.Reconciling = v, v
	}
	return out
}

// phaseEventWanted: a Bottle becoming Ready, Failed or Stopped, and leaving
// Ready or Failed. The phases on the way (Creating, Starting, CopyingFiles,
// Provisioning) each come with their action's own event (MachineCreated,
// MachineStarting, FilesCopied, Step*), and Pending with the cluster
// controller's Scheduled: an event for those too would double every write
// to the API server for the same story.
func phaseEventWanted(from, to v1.Phase) bool {
	if from == to {
		return false
	}
	switch {
	case to == v1.PhaseReady, to == v1.PhaseFailed, to == v1.PhaseStopped:
		return true
	case from == v1.PhaseReady, from == v1.PhaseFailed:
		return true
	}
	return false
}

// isTooLarge recognises both refusals: the API server's request limit (413)
// and etcd's ("etcdserver: request is too large").
func isTooLarge(err error) bool {
	return apierrors.IsRequestEntityTooLargeError(err) || strings.Contains(err.Error(), "request is too large")
}

func trimTails(st *v1.BottleStatus) {
	for i := range st.ExecResults {
		r := &st.ExecResults[i]
		if r.Stdout != "" || r.Stderr != "" {
			r.Stdout, r.Stderr, r.Truncated = "", "", true
		}
	}
}

// clusterSpeaks reports whether the object's Ready is the cluster
// controller's word rather than an agent's.
func clusterSpeaks(b *v1.Bottle) bool {
	c := meta.FindStatusCondition(b.Status.Conditions, v1.ConditionReady)
	return c != nil && v1.ClusterReason(c.Reason)
}

// mergeForeign is mine plus the conditions of theirs that other writers own.
func mergeForeign(mine, theirs []metav1.Condition) []metav1.Condition {
	out := make([]metav1.Condition, 0, len(mine)+1)
	for _, c := range mine {
		if v1.IsAgentCondition(c.Type) {
			out = append(out, c)
		}
	}
	for _, c := range theirs {
		if !v1.IsAgentCondition(c.Type) {
			out = append(out, c)
		}
	}
	return out
}
