package kubectlbottle

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/testenv"
	"github.com/bot-bottle/bottle-controller/internal/testutil"
)

const testNamespace = "plugin-test"

var (
	envClient  client.WithWatch
	bottles    *bottleClient // the plugin's own client
	kubeconfig string
	envSkip    string
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	flag.Parse() // testenv.Start reads -short
	env, cfg, err := testenv.Start(testenv.Options{})
	switch {
	case testenv.Skippable(err):
		envSkip = err.Error()
		return m.Run()
	case err != nil:
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	dir, err := os.MkdirTemp("", "kubectl-bottle-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()
	kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := testenv.WriteKubeconfig(cfg, kubeconfig, testNamespace); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if envClient, err = client.NewWithWatch(cfg, client.Options{Scheme: testenv.Scheme()}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if bottles, err = newBottleClient(cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testNamespace}}
	if err := envClient.Create(context.Background(), ns); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

func needEnv(t *testing.T) {
	t.Helper()
	if envClient == nil {
		t.Skipf("skipping envtest tests: %s", envSkip)
	}
}

// run is `kubectl bottle ARGS` against envtest.
func run(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := Main(append([]string{"--kubeconfig", kubeconfig}, args...),
		genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	return code, out.String(), errOut.String()
}

func newBottle(t *testing.T, name string, phase v1.Phase) *v1.Bottle {
	t.Helper()
	b := &v1.Bottle{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNamespace},
		Spec:       v1.BottleSpec{NodeName: "node-a", MachineSpec: v1.MachineSpec{Image: "node:22-bookworm"}},
	}
	if err := envClient.Create(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	setStatus(t, b, phase, "")
	return b
}

func setStatus(t *testing.T, b *v1.Bottle, phase v1.Phase, message string) {
	t.Helper()
	b.Status.Phase = phase
	b.Status.ObservedGeneration = b.Generation
	if message != "" {
		apimeta.SetStatusCondition(&b.Status.Conditions, metav1.Condition{
			Type: v1.ConditionReady, Status: metav1.ConditionFalse, Reason: "StepFailed", Message: message,
		})
	}
	if err := envClient.Status().Update(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}

// startWait waits (up to a minute) for b to be Ready.
func startWait(b *v1.Bottle) (*testutil.SyncBuffer, chan error) {
	out := &testutil.SyncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- waitForPhase(context.Background(), bottles, out, types.NamespacedName{Namespace: b.Namespace, Name: b.Name}, v1.PhaseReady, time.Minute)
	}()
	return out, done
}

func TestWaitReady(t *testing.T) {
	needEnv(t)
	g := NewWithT(t)
	b := newBottle(t, "w-ready", v1.PhaseProvisioning)
	out, done := startWait(b)
	g.Eventually(out.String).Should(Equal("bottle/w-ready: Provisioning\n"))
	setStatus(t, b, v1.PhaseReady, "")
	g.Eventually(done).Should(Receive(BeNil()))
	g.Expect(out.String()).To(Equal("bottle/w-ready: Provisioning\nbottle/w-ready: Ready\n"))
}

func TestWaitFailed(t *testing.T) {
	needEnv(t)
	g := NewWithT(t)
	b := newBottle(t, "w-failed", v1.PhaseCreating)
	out, done := startWait(b)
	g.Eventually(out.String).Should(ContainSubstring("Creating"))
	setStatus(t, b, v1.PhaseFailed, `step "setup" exited with code 3`)
	var err error
	g.Eventually(done).Should(Receive(&err))
	var ee *ExitError
	g.Expect(errors.As(err, &ee)).To(BeTrue(), "error %v", err)
	g.Expect(ee.Code).To(Equal(WaitExitFailed))
	g.Expect(err.Error()).To(ContainSubstring(`bottle "w-failed" failed: step "setup" exited with code 3`))
}

// docs/exec.md ("wait"): a Bottle deleted while waited on ends the wait
// with exit code 1, and a phase reported for an older generation does not
// count.
func TestWaitDeletedAndStaleGeneration(t *testing.T) {
	needEnv(t)
	g := NewWithT(t)
	ctx := context.Background()

	gone := newBottle(t, "w-gone", v1.PhaseProvisioning)
	out, done := startWait(gone)
	g.Eventually(out.String).Should(ContainSubstring("Provisioning"))
	g.Expect(envClient.Delete(ctx, gone)).To(Succeed())
	var err error
	g.Eventually(done).Should(Receive(&err))
	var ee *ExitError
	g.Expect(errors.As(err, &ee)).To(BeTrue(), "error %v", err)
	g.Expect(ee.Code).To(Equal(WaitExitFailed))
	g.Expect(err.Error()).To(ContainSubstring(`bottle "w-gone" was deleted`))

	stale := newBottle(t, "w-stale", v1.PhaseProvisioning)
	stale.Spec.Image = "node:24-bookworm" // generation 2
	g.Expect(envClient.Update(ctx, stale)).To(Succeed())
	g.Expect(stale.Generation).To(BeNumerically(">", stale.Status.ObservedGeneration))
	out, done = startWait(stale)
	stale.Status.Phase = v1.PhaseReady // what the agent said of generation 1
	g.Expect(envClient.Status().Update(ctx, stale)).To(Succeed())
	g.Eventually(out.String).Should(ContainSubstring("Ready"))
	g.Consistently(done, time.Second).ShouldNot(Receive(), "Ready for an older generation ended the wait")
	setStatus(t, stale, v1.PhaseReady, "")
	g.Eventually(done).Should(Receive(BeNil()))
}

func TestWaitExitCodesThroughMain(t *testing.T) {
	needEnv(t)
	newBottle(t, "w-slow", v1.PhaseProvisioning)
	code, out, errOut := run("-n", testNamespace, "wait", "w-slow", "--timeout=700ms")
	if code != WaitExitTimeout || out != "bottle/w-slow: Provisioning\n" || !strings.Contains(errOut, "timed out after 700ms") {
		t.Fatalf("timeout: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	newBottle(t, "w-done", v1.PhaseStopped)
	if code, out, errOut := run("wait", "w-done", "--for=Stopped"); code != 0 || out != "bottle/w-done: Stopped\n" {
		t.Fatalf("already Stopped: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if code, _, errOut := run("wait", "nope"); code != WaitExitFailed || !strings.Contains(errOut, "NotFound") {
		t.Fatalf("missing: exit %d, stderr %q", code, errOut)
	}
	if code, _, errOut := run("wait", "w-done", "--for=Done"); code != 1 || !strings.Contains(errOut, "--for must be a Bottle phase") {
		t.Fatalf("bad --for: exit %d, stderr %q", code, errOut)
	}
}

func TestResultsThroughMain(t *testing.T) {
	needEnv(t)
	b := newBottle(t, "r1", v1.PhaseReady)
	now := metav1.NewMicroTime(time.Now())
	b.Status.ExecResults = []v1.ExecResult{{Name: "setup", User: "node", ExitCode: new(int32), Stdout: "ok\n", StartedAt: &now, FinishedAt: &now}}
	if err := envClient.Status().Update(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run("results", "r1")
	if code != 0 || !strings.Contains(out, "setup   Succeeded   node   0           0s         ok") {
		t.Fatalf("results: exit %d\n%s\nstderr %q", code, out, errOut)
	}
	if code, out, _ := run("results", "r1", "-o", "json"); code != 0 || !strings.Contains(out, `"name": "setup"`) {
		t.Fatalf("results -o json: exit %d\n%s", code, out)
	}
}

func TestCompletionListsBottles(t *testing.T) {
	needEnv(t)
	newBottle(t, "complete-me", v1.PhaseReady)
	code, out, errOut := run("__complete", "exec", "complete-")
	if code != 0 || !strings.HasPrefix(out, "complete-me\n") {
		t.Fatalf("completion: exit %d, %q, stderr %q", code, out, errOut)
	}
}

func TestExecArgumentsNeedDash(t *testing.T) {
	code, _, errOut := run("exec", "b", "ls")
	if code != 1 || !strings.Contains(errOut, "separate the command from the Bottle name with --") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	code, _, errOut = run("exec", "b")
	if code != 1 || !strings.Contains(errOut, "exec needs a command") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}

func TestRetryThroughMain(t *testing.T) {
	needEnv(t)
	b := newBottle(t, "retry-me", v1.PhaseFailed)
	b.Spec.Provision = []v1.ProvisionStep{{Name: "setup", Script: "true"}}
	if err := envClient.Update(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	annotations := func() map[string]string {
		got := &v1.Bottle{}
		if err := envClient.Get(context.Background(), client.ObjectKeyFromObject(b), got); err != nil {
			t.Fatal(err)
		}
		return got.Annotations
	}
	code, out, errOut := run("retry", "retry-me", "--step", "setup")
	first := annotations()
	if code != 0 || !strings.Contains(out, "retry requested from step setup") ||
		first[v1.AnnotationRetry] == "" || first[v1.AnnotationRetryStep] != "setup" {
		t.Fatalf("retry --step: exit %d, %q, stderr %q, annotations %v", code, out, errOut, first)
	}
	code, _, errOut = run("retry", "retry-me")
	second := annotations()
	if code != 0 || second[v1.AnnotationRetry] == first[v1.AnnotationRetry] {
		t.Fatalf("retry: exit %d, stderr %q: the token did not change: %v", code, errOut, second)
	}
	if _, ok := second[v1.AnnotationRetryStep]; ok {
		t.Fatalf("a plain retry left the step of the previous one: %v", second)
	}
	if code, _, errOut := run("retry", "retry-me", "--step", "nope"); code != 1 || !strings.Contains(errOut, `has no provisioning step "nope"`) {
		t.Fatalf("unknown step: exit %d, stderr %q", code, errOut)
	}
	if code, _, errOut := run("retry", "missing"); code != 1 || !strings.Contains(errOut, "NotFound") {
		t.Fatalf("missing Bottle: exit %d, stderr %q", code, errOut)
	}
}
