package agent

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

// Pure decisions about provisioning steps. Each takes plain values and
// returns a verdict; the phases act on it. Table tests in
// decide_steps_test.go.

// stepDigest identifies what a step runs. The user is compared separately.
func stepDigest(script string) string {
	sum := sha256.Sum256([]byte(script))
	return hex.EncodeToString(sum[:])
}

func stepUser(execUser string, step v1.ProvisionStep) string {
	if step.User != "" {
		return step.User
	}
	return execUser
}

// sameStep says whether a recorded result is for this very step: same name,
// script and user. The timeout is not part of a step's identity: raising it
// must not re-run a step that succeeded.
func sameStep(r v1.ExecResult, execUser string, step v1.ProvisionStep) bool {
	return r.Name == step.Name && r.ScriptSHA256 == stepDigest(step.Script) && r.User == stepUser(execUser, step)
}

func succeeded(r v1.ExecResult) bool {
	return r.FinishedAt != nil && r.Error == "" && r.ExitCode != nil && *r.ExitCode == 0
}

// firstPending is the index of the first step that must (re)run: the first
// without a recorded success for the same script and user. Every step after
// it runs again too, because it may depend on what that step did. A result
// with a start and no finish was left by an agent that died mid-step: the
// step runs again (at-least-once across agent crashes).
func firstPending(execUser string, steps []v1.ProvisionStep, results []v1.ExecResult) int {
	for i, step := range steps {
		if i >= len(results) || !sameStep(results[i], execUser, step) || !succeeded(results[i]) {
			return i
		}
	}
	return len(steps)
}

// retryRequest is what the retry annotations ask for, if anything new.
type retryRequest struct {
	// Token is the annotation's value; "" when no new retry is asked for.
	Token string
	// Step, when set, re-runs from that step even if it succeeded.
	Step string
}

// pendingRetry reads the retry annotations against the last token handled.
func pendingRetry(annotations map[string]string, lastHandled string) retryRequest {
	tok := annotations[v1.AnnotationRetry]
	if tok == "" || tok == lastHandled {
		return retryRequest{}
	}
	return retryRequest{Token: tok, Step: annotations[v1.AnnotationRetryStep]}
}

type stepAction int

const (
	// stepsDone: every step has a recorded success.
	stepsDone stepAction = iota
	// stepRun: run Index (results from Index on are dropped first).
	stepRun
	// stepBlocked: Index failed, timed out or was cancelled, and nothing
	// asks for it to run again.
	stepBlocked
)

// stepPlan is the verdict of planSteps.
type stepPlan struct {
	Action stepAction
	Index  int
	// Keep is how many recorded results stay (the prefix still valid).
	Keep int
	// RetryHandled is set when the plan consumed the retry request: its token
	// is recorded in status with the plan's first write.
	RetryHandled bool
	// Why says why Index runs (for the log and the Provisioning message).
	Why string
}

// planSteps decides what provisioning does next, as a chain: the first
// pending step; moved back by a retry naming an earlier step; and, when the
// step's last run failed with the same script and user, re-run only when a
// retry asks for it or its timeout changed.
func planSteps(execUser string, steps []v1.ProvisionStep, results []v1.ExecResult, retry retryRequest) stepPlan {
	i := firstPending(execUser, steps, results)
	plan := stepPlan{Index: i, Keep: min(i, len(results)), RetryHandled: retry.Token != ""}
	if retry.Step != "" {
		for j := range steps[:i] {
			if steps[j].Name == retry.Step {
				plan.Index, plan.Keep, plan.Why = j, j, "retry requested from this step"
				plan.Action = stepRun
				return plan
			}
		}
	}
	if i == len(steps) {
		plan.Action, plan.Keep = stepsDone, len(steps)
		return plan
	}
	plan.Action, plan.Why = stepRun, "not run yet for this script and user"
	if i < len(results) && sameStep(results[i], execUser, steps[i]) {
		prev := results[i]
		switch {
		case prev.FinishedAt == nil:
			plan.Why = "its last run was interrupted (agent restart)"
		case retry.Token != "":
			plan.Why = "retry requested"
		case prev.TimeoutSeconds != 0 && prev.TimeoutSeconds != steps[i].TimeoutSeconds:
			plan.Why = fmt.Sprintf("timeoutSeconds changed (%d -> %d)", prev.TimeoutSeconds, steps[i].TimeoutSeconds)
		default:
			// No blind retry of the same script: that is for a human.
			plan.Action, plan.Keep, plan.RetryHandled, plan.Why = stepBlocked, i+1, false, ""
		}
	}
	return plan
}

// stepOutcomeText is how a finished result reads in messages and events.
func stepOutcomeText(res v1.ExecResult) string {
	if res.Error != "" {
		return res.Error
	}
	if res.ExitCode == nil {
		return "did not finish"
	}
	return fmt.Sprintf("exited with code %d", *res.ExitCode)
}

// blockedMessage is the Failed message of a blocked step: what happened and
// exactly how to run it again.
func blockedMessage(bottleName string, i, total int, res v1.ExecResult) string {
	return fmt.Sprintf("step %q (%d/%d) %s;%s to run it again: kubectl bottle retry %s "+
		"(or set annotation %s to a new value), or edit the step",
		res.Name, i+1, total, stepOutcomeText(res), nonRootImageHint(res), bottleName, v1.AnnotationRetry)
}

// runuserNotRoot is what util-linux's runuser says when the caller is not
// root (login-utils/su-common.c).
const runuserNotRoot = "may not be used by non-root users"

// nonRootImageHint says what to do when a step failed because smolvm ran it
// as the image's USER rather than root (smolvm:src/cli/vm_common.rs:349):
// the agent needs root to switch to the step's user. "" otherwise.
func nonRootImageHint(res v1.ExecResult) string {
	if res.ExitCode == nil || *res.ExitCode == 0 || !strings.Contains(res.Stderr, runuserNotRoot) {
		return ""
	}
	return " the image sets a non-root USER, and smolvm runs commands as the image's USER: the agent needs root " +
		"to run steps as spec.execUser; use an image whose USER is root (e.g. FROM the image, USER root) " +
		"and keep spec.execUser for the agent's user;"
}

// runningStep is what a running step was planned from, so an event can tell
// whether the spec still asks for it.
type runningStep struct {
	Name string
	// Prefix holds the identity (name, digest, user) of every step up to and
	// including the running one: an edit of an earlier step discards its
	// result too.
	Prefix []stepIdentity
}

type stepIdentity struct{ Name, Digest, User string }

func identities(execUser string, steps []v1.ProvisionStep) []stepIdentity {
	out := make([]stepIdentity, len(steps))
	for i, s := range steps {
		out[i] = stepIdentity{Name: s.Name, Digest: stepDigest(s.Script), User: stepUser(execUser, s)}
	}
	return out
}

// mustCancel says why a running step must stop, or "" when it may finish:
// the Bottle is going away or being stopped, or the spec no longer asks for
// this step as it runs (removed, edited, or an earlier step edited).
func mustCancel(run runningStep, b *v1.Bottle) string {
	if b == nil {
		return "the Bottle was deleted"
	}
	if !b.DeletionTimestamp.IsZero() {
		return "the Bottle is being deleted"
	}
	if b.Spec.RunState == v1.RunStateStopped {
		return "runState is Stopped"
	}
	now := identities(b.ExecUser(), b.Spec.Provision)
	for i, id := range run.Prefix {
		if i >= len(now) || now[i].Name != id.Name {
			if i == len(run.Prefix)-1 {
				return "the step was removed or moved in spec.provision"
			}
			return fmt.Sprintf("step %q before it was removed or moved", id.Name)
		}
		if now[i] != id {
			if i == len(run.Prefix)-1 {
				return "the step was edited"
			}
			return fmt.Sprintf("step %q before it was edited", id.Name)
		}
	}
	return ""
}

// cancelledError is the Error text of a step stopped by mustCancel.
func cancelledError(why string) string {
	return "cancelled: " + strings.TrimSpace(why)
}

// finishStep records how a started step's exec ended in its result: the
// one ledger entry a Bottle's steps and a template golden's steps share.
// An outcomeError (smolvm failed) is never recorded: the caller drops the
// result and retries.
func finishStep(result *v1.ExecResult, res smolvm.ExecResult, outcome stepOutcome, why string, execErr error, finished metav1.MicroTime) {
	result.FinishedAt = &finished
	result.Stdout, result.Stderr = tailForStatus(res.Stdout, OutputTail), tailForStatus(res.Stderr, OutputTail)
	result.StdoutBytes, result.StderrBytes = res.StdoutBytes, res.StderrBytes
	result.Truncated = res.Truncated || len(result.Stdout) < len(res.Stdout) || len(result.Stderr) < len(res.Stderr)
	switch outcome {
	case outcomeSucceeded, outcomeFailed:
		result.ExitCode = new(int32(res.ExitCode))
	case outcomeTimeout:
		result.ExitCode = new(int32(124))
		result.Error = fmt.Sprintf("timed out after %ds", result.TimeoutSeconds)
	case outcomeCancelled:
		result.Error = cancelledError(why)
	case outcomeRefused:
		// Recorded like a failure: blocked until an edit or a retry.
		result.Error = fmt.Sprintf("not run: %v", execErr)
	}
}

type stepOutcome string

// classifyStep reads an exec's outcome. A cancel asked for by the registry
// wins over the driver's error (a killed smolvm), and a timeout is the
// step's, not smolvm's.
func classifyStep(exitCode int, err error, cancelWhy string) stepOutcome {
	switch {
	case cancelWhy != "":
		return outcomeCancelled
	case err != nil && smolvm.IsTimeout(err):
		return outcomeTimeout
	case err != nil && smolvm.ClassOf(err) == smolvm.ClassUsage:
		return outcomeRefused
	case err != nil:
		return outcomeError
	case exitCode != 0:
		return outcomeFailed
	default:
		return outcomeSucceeded
	}
}
