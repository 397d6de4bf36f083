package agent

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

// OutputTail is the budget of each stream's tail in status, counted in
// bytes once JSON-escaped (a '<' costs 6): the API's budget
// (v1.MaxTailJSONBytes, which the status size arithmetic in
// api/v1alpha1/budget.go counts on), so the two cannot drift.
const OutputTail = v1.MaxTailJSONBytes

// reconcileProvision runs the steps back to back in one pass. Status is
// written when a step starts (it shows with startedAt and no finishedAt) and
// its result is written with the next step's start, or with the end of the
// pass. A step runs again only when its agent died while it ran
// (at-least-once across agent crashes), or when asked to (an edit, a retry).
func (r *BottleReconciler) reconcileProvision(ctx context.Context, s *scope) (bool, ctrl.Result, error) {
	spec, st := s.spec(), s.status()
	total := len(spec.Provision)
	for {
		plan := planSteps(s.execUser(), spec.Provision, st.ExecResults, s.retry)
		if plan.RetryHandled {
			st.LastHandledRetry, s.retry = s.retry.Token, retryRequest{}
		}
		st.ExecResults = st.ExecResults[:plan.Keep]
		switch plan.Action {
		case stepsDone:
			if s.stalled.set() || len(s.ownerWaits) > 0 {
				// Files still wait for an owner no step created.
				return false, ctrl.Result{}, nil
			}
			s.setCondition(v1.ConditionProvisioned, metav1.ConditionTrue, v1.ReasonProvisioned, fmt.Sprintf("%d step(s) succeeded", total))
			return true, ctrl.Result{}, nil
		case stepBlocked:
			msg := blockedMessage(s.bottle.Name, plan.Index, total, st.ExecResults[plan.Index])
			s.setCondition(v1.ConditionProvisioned, metav1.ConditionFalse, v1.ReasonStepFailed, msg)
			s.stall(v1.ReasonStepFailed, msg)
			return false, ctrl.Result{}, nil
		}

		ok, res, err := r.runStep(ctx, s, plan)
		// Whatever its outcome, the step may have added users.
		r.owners.forget(s.bottle.UID)
		if !ok {
			return false, res, err
		}
		if len(s.ownerWaits) > 0 {
			// Files wait for an owner the step may have created.
			if ok, res, err := r.reconcileFiles(ctx, s); !ok {
				return false, res, err
			}
		}
		// Next step in the same pass, unless the Bottle changed meanwhile:
		// then the next pass plans from what it is now.
		if r.changed(ctx, s) {
			return false, ctrl.Result{RequeueAfter: immediateRequeue}, nil
		}
	}
}

// runStep runs one step and records its result. It returns done=true when
// the step succeeded.
func (r *BottleReconciler) runStep(ctx context.Context, s *scope, plan stepPlan) (bool, ctrl.Result, error) {
	spec, st := s.spec(), s.status()
	i, total := plan.Index, len(spec.Provision)
	step := spec.Provision[i]
	user := stepUser(s.execUser(), step)

	if !leaseHeld(r.Lease) {
		// The Lease is not renewed: start no step; the next pass waits for
		// it (awaitLease).
		return false, ctrl.Result{RequeueAfter: immediateRequeue}, nil
	}
	if s.stop != nil && stopping(s.stop) {
		// The agent is stopping: this pass drains what it ran, and starts
		// nothing new; the next agent goes on from here.
		return false, ctrl.Result{}, nil
	}
	env, err := s.sources.env(ctx, spec.Env)
	if err != nil {
		return r.sourceMissing(s, v1.ConditionProvisioned, err)
	}

	started := metav1.NowMicro()
	result := v1.ExecResult{
		Name: step.Name, User: user, ScriptSHA256: stepDigest(step.Script),
		TimeoutSeconds: step.TimeoutSeconds, StartedAt: &started,
	}
	st.ExecResults = append(st.ExecResults[:i], result)
	msg := fmt.Sprintf("running step %q (%d/%d) as %s", step.Name, i+1, total, user)
	if plan.Why != "" {
		msg += ": " + plan.Why
	}
	s.setCondition(v1.ConditionProvisioned, metav1.ConditionFalse, v1.ReasonProvisioning, msg)
	if err := r.progress(ctx, s, v1.ReasonProvisioning, msg); err != nil {
		// Nothing ran: a step starts only once status says it does.
		st.ExecResults = st.ExecResults[:i]
		return false, ctrl.Result{}, err
	}

	stepCtx, release := r.steps.start(ctx, s.bottle.UID, runningStep{
		Name: step.Name, Prefix: identities(s.execUser(), spec.Provision[:i+1]),
	})
	// An edit may have landed between this pass's read and the
	// registration; later ones reach the registry through the watch.
	latest := &v1.Bottle{}
	if err := r.Get(ctx, client.ObjectKeyFromObject(s.bottle), latest); err == nil {
		r.steps.observe(s.bottle.UID, latest)
	}
	out, endLog := r.stepLog(s, step.Name)
	if r.Activity != nil {
		// A step is use: the Bottle is not idle while it runs.
		defer r.Activity.Begin(s.bottle.UID)()
	}
	res, execErr := r.Machines.Exec(stepCtx, smolvm.ExecRequest{
		Machine:     s.machineName,
		User:        user,
		Script:      step.Script,
		Env:         env,
		Timeout:     time.Duration(step.TimeoutSeconds) * time.Second,
		Mode:        r.ExecMode,
		OutputLimit: OutputTail,
		Output:      out,
	})
	why := cancelReason(stepCtx)
	release()
	endLog()
	if ctx.Err() != nil {
		// The agent stopped and the step outlasted ShutdownGrace: status
		// keeps the step as started and not finished, so the next agent
		// runs it again (at-least-once).
		s.log.Info("the agent is stopping: step cut off; the next agent runs it again", "step", step.Name,
			"grace", r.ShutdownGrace)
		return false, ctrl.Result{}, ctx.Err()
	}
	finished := metav1.NowMicro()
	took := finished.Sub(started.Time)
	outcome := classifyStep(res.ExitCode, execErr, why)
	stepDuration.WithLabelValues(string(outcome)).Observe(took.Seconds())
	if outcome == outcomeError {
		// smolvm itself failed (machine gone, agent unreachable): not the
		// step's fault, so record no result and retry with backoff.
		st.ExecResults = st.ExecResults[:i]
		return r.smolvmFailure(s, v1.ConditionProvisioned, "exec step "+step.Name, execErr)
	}
	if outcome != outcomeCancelled && outcome != outcomeRefused {
		r.view.alive(s.machineName)
	}

	finishStep(&result, res, outcome, why, execErr, finished)
	st.ExecResults[i] = result

	switch outcome {
	case outcomeSucceeded:
		r.event(s, corev1.EventTypeNormal, v1.ReasonStepSucceeded, "Provision", "step %q (%d/%d) as %s exited 0 in %s",
			step.Name, i+1, total, user, took.Round(time.Millisecond))
		s.setCondition(v1.ConditionProvisioned, metav1.ConditionFalse, v1.ReasonProvisioning,
			fmt.Sprintf("step %q (%d/%d) succeeded", step.Name, i+1, total))
		return true, ctrl.Result{}, nil
	case outcomeCancelled:
		msg := fmt.Sprintf("step %q (%d/%d) %s", step.Name, i+1, total, result.Error)
		s.setCondition(v1.ConditionProvisioned, metav1.ConditionFalse, v1.ReasonStepCancelled, msg)
		s.wait(v1.ReasonStepCancelled, msg)
		r.event(s, corev1.EventTypeWarning, v1.ReasonStepCancelled, "Provision", "%s after %s", msg, took.Round(time.Millisecond))
		// The next pass acts on what cancelled it (delete, stop, new spec).
		return false, ctrl.Result{RequeueAfter: immediateRequeue}, nil
	}
	msg = blockedMessage(s.bottle.Name, i, total, result)
	s.setCondition(v1.ConditionProvisioned, metav1.ConditionFalse, v1.ReasonStepFailed, msg)
	s.stall(v1.ReasonStepFailed, msg)
	r.event(s, corev1.EventTypeWarning, v1.ReasonStepFailed, "Provision", "step %q (%d/%d) as %s: %s",
		step.Name, i+1, total, user, stepOutcomeText(result))
	return false, ctrl.Result{}, nil
}

// changed says whether the Bottle changed in a way that needs a new plan
// since this pass read it (cache read: no API round trip).
func (r *BottleReconciler) changed(ctx context.Context, s *scope) bool {
	latest := &v1.Bottle{}
	if err := r.Get(ctx, client.ObjectKeyFromObject(s.bottle), latest); err != nil {
		return true
	}
	return latest.Generation != s.bottle.Generation || !latest.DeletionTimestamp.IsZero() ||
		pendingRetry(latest.Annotations, s.status().LastHandledRetry).Token != ""
}

const (
	outcomeSucceeded stepOutcome = "succeeded"
	outcomeFailed    stepOutcome = "failed"
	outcomeTimeout   stepOutcome = "timeout"
	outcomeCancelled stepOutcome = "cancelled"
	// outcomeError: smolvm failed; the step has no result.
	outcomeError stepOutcome = "error"
	// outcomeRefused: the driver or smolvm refused the command line (a
	// usage error: a NUL byte in the script, or in an env value from a
	// binary Secret): the step did not run and never will as it is, so
	// retrying it would only loop.
	outcomeRefused stepOutcome = "refused"
)
