package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

// OutputTail is how much of each stream a step keeps in status: enough to
// read an error, small enough that 32 steps stay far below etcd's limit.
const OutputTail = 4096

const execLookupTimeout = 30 * time.Second

// stepDigest identifies what a step runs. The user is compared separately.
func stepDigest(script string) string {
	sum := sha256.Sum256([]byte(script))
	return hex.EncodeToString(sum[:])
}

func stepUser(spec *v1.BottleSpec, step v1.ProvisionStep) string {
	if step.User != "" {
		return step.User
	}
	return spec.ExecUser
}

// firstPending is the index of the first step that must (re)run: the first
// without a recorded result for the same script and user. Every step after it
// runs again too, because it may depend on what that step did.
func firstPending(spec *v1.BottleSpec, results []v1.ExecResult) int {
	for i, step := range spec.Provision {
		if i >= len(results) {
			return i
		}
		r := results[i]
		if r.Name != step.Name || r.ScriptSHA256 != stepDigest(step.Script) || r.User != stepUser(spec, step) ||
			r.FinishedAt == nil || r.ExitCode == nil || *r.ExitCode != 0 {
			return i
		}
	}
	return len(spec.Provision)
}

// reconcileProvision runs at most one step per pass, so each result is
// recorded (one status patch) before the next step starts. A step whose
// result was not recorded -- the agent died while it ran -- runs again:
// provisioning is at-least-once.
func (r *BottleReconciler) reconcileProvision(ctx context.Context, s *scope) (bool, ctrl.Result, error) {
	spec, st := s.spec(), s.status()
	total := len(spec.Provision)
	i := firstPending(spec, st.ExecResults)
	if i == total {
		st.ExecResults = st.ExecResults[:total]
		r.setCondition(s, v1.ConditionProvisioned, metav1.ConditionTrue, v1.ReasonProvisioned, fmt.Sprintf("%d step(s) succeeded", total))
		return true, ctrl.Result{}, nil
	}
	step := spec.Provision[i]
	user := stepUser(spec, step)

	// The same script already failed for the same user: no blind retry.
	// Editing the step (or a step before it) is what runs it again.
	if i < len(st.ExecResults) {
		prev := st.ExecResults[i]
		if prev.Name == step.Name && prev.ScriptSHA256 == stepDigest(step.Script) && prev.User == user && prev.FinishedAt != nil {
			st.ExecResults = st.ExecResults[:i+1]
			r.failStep(s, i, prev)
			return false, ctrl.Result{}, nil
		}
	}

	env, err := s.sources.env(ctx, spec.Env)
	if err != nil {
		if isSourceMissing(err) {
			msg := err.Error()
			r.setCondition(s, v1.ConditionProvisioned, metav1.ConditionFalse, v1.ReasonSourceNotFound, msg)
			s.wait(v1.ReasonSourceNotFound, msg)
			return false, ctrl.Result{RequeueAfter: r.SourceRetryPeriod}, nil
		}
		return false, ctrl.Result{}, err
	}

	started := metav1.NowMicro()
	res, err := r.Machines.Exec(ctx, smolvm.ExecRequest{
		Machine:     s.machineName,
		User:        user,
		Script:      step.Script,
		Env:         env,
		Timeout:     time.Duration(step.TimeoutSeconds) * time.Second,
		Mode:        r.ExecMode,
		OutputLimit: OutputTail,
	})
	if ctx.Err() != nil {
		// The agent is stopping: record nothing, the step runs again later.
		return false, ctrl.Result{}, ctx.Err()
	}
	finished := metav1.NowMicro()
	result := v1.ExecResult{
		Name: step.Name, User: user, ScriptSHA256: stepDigest(step.Script),
		StartedAt: &started, FinishedAt: &finished,
	}
	outcome := "succeeded"
	switch {
	case err != nil && smolvm.IsTimeout(err):
		result.ExitCode = ptrInt32(124)
		result.Error = fmt.Sprintf("timed out after %ds", step.TimeoutSeconds)
		outcome = "timeout"
	case err != nil:
		// smolvm itself failed (machine gone, agent unreachable): not the
		// step's fault, so record nothing and retry with backoff.
		stepDuration.WithLabelValues("error").Observe(finished.Sub(started.Time).Seconds())
		return r.smolvmFailure(s, v1.ConditionProvisioned, "exec step "+step.Name, err)
	default:
		result.ExitCode = ptrInt32(int32(res.ExitCode))
		result.Stdout, result.Stderr = toValidUTF8(res.Stdout), toValidUTF8(res.Stderr)
		result.StdoutBytes, result.StderrBytes = res.StdoutBytes, res.StderrBytes
		result.Truncated = res.Truncated
		if res.ExitCode != 0 {
			outcome = "failed"
		}
	}
	stepDuration.WithLabelValues(outcome).Observe(finished.Sub(started.Time).Seconds())
	st.ExecResults = append(st.ExecResults[:min(i, len(st.ExecResults))], result)

	if outcome != "succeeded" {
		r.failStep(s, i, result)
		r.event(s, corev1.EventTypeWarning, v1.ReasonStepFailed, "Provision", "step %q (%d/%d) as %s: %s",
			step.Name, i+1, total, user, stepOutcome(result))
		return false, ctrl.Result{}, nil
	}
	r.event(s, corev1.EventTypeNormal, v1.ReasonStepSucceeded, "Provision", "step %q (%d/%d) as %s exited 0 in %s",
		step.Name, i+1, total, user, finished.Sub(started.Time).Round(time.Millisecond))
	if i+1 == total {
		r.setCondition(s, v1.ConditionProvisioned, metav1.ConditionTrue, v1.ReasonProvisioned, fmt.Sprintf("%d step(s) succeeded", total))
		return true, ctrl.Result{}, nil
	}
	next := spec.Provision[i+1].Name
	msg := fmt.Sprintf("step %q (%d/%d) next", next, i+2, total)
	r.setCondition(s, v1.ConditionProvisioned, metav1.ConditionFalse, v1.ReasonProvisioning, msg)
	s.wait(v1.ReasonProvisioning, msg)
	// Come straight back for the next step; RequeueAfter (not Requeue) so
	// the rate limiter's per-item backoff does not grow with every step.
	return false, ctrl.Result{RequeueAfter: time.Millisecond}, nil
}

func (r *BottleReconciler) failStep(s *scope, i int, res v1.ExecResult) {
	msg := fmt.Sprintf("step %q (%d/%d) %s; edit the step to run it again", res.Name, i+1, len(s.spec().Provision), stepOutcome(res))
	r.setCondition(s, v1.ConditionProvisioned, metav1.ConditionFalse, v1.ReasonStepFailed, msg)
	s.stall(v1.ReasonStepFailed, msg)
}

func stepOutcome(res v1.ExecResult) string {
	if res.Error != "" {
		return res.Error
	}
	if res.ExitCode == nil {
		return "did not finish"
	}
	return fmt.Sprintf("exited with code %d", *res.ExitCode)
}

func ptrInt32(v int32) *int32 { return &v }
