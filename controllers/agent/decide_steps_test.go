package agent

import (
	"errors"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

func st(name, script string) v1.ProvisionStep {
	return v1.ProvisionStep{Name: name, Script: script, TimeoutSeconds: 600}
}

// ran is a finished result of a step as user node.
func ran(step v1.ProvisionStep, code int32, errText string) v1.ExecResult {
	now := metav1.NowMicro()
	return v1.ExecResult{Name: step.Name, User: stepUser("node", step), ScriptSHA256: stepDigest(step.Script),
		TimeoutSeconds: step.TimeoutSeconds, StartedAt: &now, FinishedAt: &now, ExitCode: &code, Error: errText}
}

func started(step v1.ProvisionStep) v1.ExecResult {
	r := ran(step, 0, "")
	r.FinishedAt, r.ExitCode = nil, nil
	return r
}

func TestPlanSteps(t *testing.T) {
	a, b, c := st("a", "echo a"), st("b", "exit 3"), st("c", "echo c")
	bLonger := b
	bLonger.TimeoutSeconds = 1200
	bEdited := st("b", "echo fixed")
	bRoot := b
	bRoot.User = "root"
	steps := []v1.ProvisionStep{a, b, c}

	cases := []struct {
		name    string
		steps   []v1.ProvisionStep
		results []v1.ExecResult
		retry   retryRequest
		want    stepPlan
	}{
		{"nothing ran yet", steps, nil, retryRequest{},
			stepPlan{Action: stepRun, Index: 0, Keep: 0, Why: "not run yet for this script and user"}},
		{"no steps", nil, nil, retryRequest{}, stepPlan{Action: stepsDone}},
		{"all succeeded", steps, []v1.ExecResult{ran(a, 0, ""), ran(b, 0, ""), ran(c, 0, "")}, retryRequest{},
			stepPlan{Action: stepsDone, Index: 3, Keep: 3}},
		{"a step removed at the end drops its result", steps[:2], []v1.ExecResult{ran(a, 0, ""), ran(b, 0, ""), ran(c, 0, "")}, retryRequest{},
			stepPlan{Action: stepsDone, Index: 2, Keep: 2}},
		{"next after a success", steps, []v1.ExecResult{ran(a, 0, "")}, retryRequest{},
			stepPlan{Action: stepRun, Index: 1, Keep: 1, Why: "not run yet for this script and user"}},
		{"failed: no blind retry", steps, []v1.ExecResult{ran(a, 0, ""), ran(b, 3, "")}, retryRequest{},
			stepPlan{Action: stepBlocked, Index: 1, Keep: 2}},
		{"timed out: no blind retry", steps, []v1.ExecResult{ran(a, 0, ""), ran(b, 124, "timed out after 600s")}, retryRequest{},
			stepPlan{Action: stepBlocked, Index: 1, Keep: 2}},
		{"cancelled: no blind retry", steps, []v1.ExecResult{ran(a, 0, ""), ran(b, 0, "cancelled: runState is Stopped")}, retryRequest{},
			stepPlan{Action: stepBlocked, Index: 1, Keep: 2}},
		{"failed, retry asked", steps, []v1.ExecResult{ran(a, 0, ""), ran(b, 3, "")}, retryRequest{Token: "1"},
			stepPlan{Action: stepRun, Index: 1, Keep: 1, RetryHandled: true, Why: "retry requested"}},
		{"failed, timeout changed", []v1.ProvisionStep{a, bLonger, c}, []v1.ExecResult{ran(a, 0, ""), ran(b, 124, "timed out after 600s")}, retryRequest{},
			stepPlan{Action: stepRun, Index: 1, Keep: 1, Why: "timeoutSeconds changed (600 -> 1200)"}},
		{"succeeded, timeout changed: not re-run", []v1.ProvisionStep{a, bLonger}, []v1.ExecResult{ran(a, 0, ""), ran(b, 0, "")}, retryRequest{},
			stepPlan{Action: stepsDone, Index: 2, Keep: 2}},
		{"failed, edited", []v1.ProvisionStep{a, bEdited, c}, []v1.ExecResult{ran(a, 0, ""), ran(b, 3, "")}, retryRequest{},
			stepPlan{Action: stepRun, Index: 1, Keep: 1, Why: "not run yet for this script and user"}},
		{"user changed re-runs it and the rest", []v1.ProvisionStep{a, bRoot, c}, []v1.ExecResult{ran(a, 0, ""), ran(b, 0, ""), ran(c, 0, "")}, retryRequest{},
			stepPlan{Action: stepRun, Index: 1, Keep: 1, Why: "not run yet for this script and user"}},
		{"interrupted by an agent crash", steps, []v1.ExecResult{ran(a, 0, ""), started(b)}, retryRequest{},
			stepPlan{Action: stepRun, Index: 1, Keep: 1, Why: "its last run was interrupted (agent restart)"}},
		{"retry from a named earlier step", steps, []v1.ExecResult{ran(a, 0, ""), ran(b, 3, "")}, retryRequest{Token: "x", Step: "a"},
			stepPlan{Action: stepRun, Index: 0, Keep: 0, RetryHandled: true, Why: "retry requested from this step"}},
		{"retry when all succeeded is consumed", steps, []v1.ExecResult{ran(a, 0, ""), ran(b, 0, ""), ran(c, 0, "")}, retryRequest{Token: "x"},
			stepPlan{Action: stepsDone, Index: 3, Keep: 3, RetryHandled: true}},
		{"retry of an unknown step acts as a plain retry", steps, []v1.ExecResult{ran(a, 0, ""), ran(b, 3, "")}, retryRequest{Token: "x", Step: "zzz"},
			stepPlan{Action: stepRun, Index: 1, Keep: 1, RetryHandled: true, Why: "retry requested"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := planSteps("node", tc.steps, tc.results, tc.retry)
			if got != tc.want {
				t.Errorf("planSteps = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestPendingRetry(t *testing.T) {
	cases := []struct {
		ann         map[string]string
		lastHandled string
		want        retryRequest
	}{
		{nil, "", retryRequest{}},
		{map[string]string{v1.AnnotationRetry: "1"}, "", retryRequest{Token: "1"}},
		{map[string]string{v1.AnnotationRetry: "1"}, "1", retryRequest{}},
		{map[string]string{v1.AnnotationRetry: "2", v1.AnnotationRetryStep: "b"}, "1", retryRequest{Token: "2", Step: "b"}},
		{map[string]string{v1.AnnotationRetryStep: "b"}, "", retryRequest{}},
	}
	for _, tc := range cases {
		if got := pendingRetry(tc.ann, tc.lastHandled); got != tc.want {
			t.Errorf("pendingRetry(%v, %q) = %+v, want %+v", tc.ann, tc.lastHandled, got, tc.want)
		}
	}
}

func TestBlockedMessageSaysHowToRerun(t *testing.T) {
	b := st("b", "exit 3")
	msg := blockedMessage("agent", 1, 3, ran(b, 3, ""))
	for _, want := range []string{`step "b" (2/3) exited with code 3`, "kubectl bottle retry agent", v1.AnnotationRetry, "edit the step"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
}

// A step that failed because smolvm ran it as the image's non-root USER
// says what to do; other failures do not.
func TestBlockedMessageForANonRootImage(t *testing.T) {
	b := st("b", "true")
	res := ran(b, 1, "")
	res.Stderr = "runuser: may not be used by non-root users\n"
	if msg := blockedMessage("agent", 0, 1, res); !strings.Contains(msg, "non-root USER") || !strings.Contains(msg, "USER root") {
		t.Errorf("message %q says nothing of the image's user", msg)
	}
	res.Stderr = "npm ERR! missing script\n"
	if msg := blockedMessage("agent", 0, 1, res); strings.Contains(msg, "USER") {
		t.Errorf("message %q blames the image's user", msg)
	}
}

func TestMustCancel(t *testing.T) {
	a, b, c := st("a", "echo a"), st("b", "sleep 600"), st("c", "echo c")
	run := runningStep{Name: "b", Prefix: identities("node", []v1.ProvisionStep{a, b})}
	bottle := func(mut func(*v1.Bottle)) *v1.Bottle {
		bt := &v1.Bottle{Spec: v1.BottleSpec{RunState: v1.RunStateRunning, MachineSpec: v1.MachineSpec{ExecUser: "node", Provision: []v1.ProvisionStep{a, b, c}}}}
		if mut != nil {
			mut(bt)
		}
		return bt
	}
	now := metav1.Now()
	cases := []struct {
		name string
		b    *v1.Bottle
		want string
	}{
		{"unchanged", bottle(nil), ""},
		{"a label or annotation (same spec)", bottle(func(b *v1.Bottle) { b.Annotations = map[string]string{"x": "y"} }), ""},
		{"a later step edited", bottle(func(b *v1.Bottle) { b.Spec.Provision[2].Script = "echo other" }), ""},
		{"a later step removed", bottle(func(b *v1.Bottle) { b.Spec.Provision = b.Spec.Provision[:2] }), ""},
		{"timeout raised", bottle(func(b *v1.Bottle) { b.Spec.Provision[1].TimeoutSeconds = 3600 }), ""},
		{"gone", nil, "the Bottle was deleted"},
		{"deleting", bottle(func(b *v1.Bottle) { b.DeletionTimestamp = &now }), "the Bottle is being deleted"},
		{"stopped", bottle(func(b *v1.Bottle) { b.Spec.RunState = v1.RunStateStopped }), "runState is Stopped"},
		{"edited", bottle(func(b *v1.Bottle) { b.Spec.Provision[1].Script = "true" }), "the step was edited"},
		{"user changed", bottle(func(b *v1.Bottle) { b.Spec.Provision[1].User = "root" }), "the step was edited"},
		{"execUser changed", bottle(func(b *v1.Bottle) { b.Spec.ExecUser = "agent" }), `step "a" before it was edited`},
		{"removed", bottle(func(b *v1.Bottle) { b.Spec.Provision = []v1.ProvisionStep{a, c} }), "the step was removed or moved in spec.provision"},
		{"earlier step edited", bottle(func(b *v1.Bottle) { b.Spec.Provision[0].Script = "echo A" }), `step "a" before it was edited`},
		{"earlier step removed", bottle(func(b *v1.Bottle) { b.Spec.Provision = []v1.ProvisionStep{b.Spec.Provision[1]} }), `step "a" before it was removed or moved`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := mustCancel(run, tc.b); got != tc.want {
				t.Errorf("mustCancel = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestClassifyStep(t *testing.T) {
	timeout := &smolvm.Error{Verb: "exec", Class: smolvm.ClassTimeout}
	cancelled := &smolvm.Error{Verb: "exec", Class: smolvm.ClassCanceled}
	gone := &smolvm.Error{Verb: "exec", Class: smolvm.ClassNotRunning}
	usage := &smolvm.Error{Verb: "exec", Class: smolvm.ClassUsage, ExitCode: -1, Message: "script contains a NUL byte"}
	cases := []struct {
		name string
		code int
		err  error
		why  string
		want stepOutcome
	}{
		{"exit 0", 0, nil, "", outcomeSucceeded},
		{"exit 3", 3, nil, "", outcomeFailed},
		{"step timeout", -1, timeout, "", outcomeTimeout},
		{"cancelled by the registry", -1, cancelled, "the step was edited", outcomeCancelled},
		{"cancel wins over a timeout at the same moment", -1, timeout, "runState is Stopped", outcomeCancelled},
		{"smolvm failed", -1, gone, "", outcomeError},
		{"wrapped smolvm failure", -1, errors.Join(errors.New("x"), gone), "", outcomeError},
		{"refused before running: never retried blindly", -1, usage, "", outcomeRefused},
	}
	for _, tc := range cases {
		if got := classifyStep(tc.code, tc.err, tc.why); got != tc.want {
			t.Errorf("%s: classifyStep = %s, want %s", tc.name, got, tc.want)
		}
	}
}
