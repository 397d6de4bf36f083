package execapi

import (
	"context"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	ctrl "sigs.k8s.io/controller-runtime"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/controllers/agent"
	"github.com/bot-bottle/bottle-controller/internal/kubectlbottle"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
	"github.com/bot-bottle/bottle-controller/internal/testenv"
	"github.com/bot-bottle/bottle-controller/internal/testutil"
)

// startRunAgent runs node-a's BottleRun controller, as cmd/manager wires
// it, with the gateway's log store: runs in "local" execute in node-a's
// simulator and their output is served by bottleruns/log.
func startRunAgent(t *testing.T, s *e2eSuite) {
	t.Helper()
	startAgentOnA(t, s, func(ctx context.Context, mgr ctrl.Manager) error {
		rr := &agent.BottleRunReconciler{
			Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Machines: s.simA, NodeName: nodeA,
			ExecMode: smolvm.ModeLogin, Logs: s.logsA, QueuePoll: 100 * time.Millisecond,
		}
		return rr.SetupWithManager(ctx, mgr, "bottlerun-e2e")
	})
}

// startAgentOnA runs a manager as node-a's agent, with the controllers
// setup adds, until the test ends.
func startAgentOnA(t *testing.T, s *e2eSuite, setup func(context.Context, ctrl.Manager) error) {
	t.Helper()
	g := NewWithT(t)
	mgr, err := ctrl.NewManager(s.cfg, testutil.ManagerOptions(agent.ManagerOptions(testenv.Scheme(), nodeA), suiteLogger(nodeA, nil)))
	g.Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithCancel(context.Background())
	g.Expect(setup(ctx, mgr)).To(Succeed())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = mgr.Start(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	g.Expect(mgr.GetCache().WaitForCacheSync(ctx)).To(BeTrue())
}

// grantRuns lets user create, read and delete BottleRuns in the test
// namespace (as the shipped editor role does).
func grantRuns(t *testing.T, s *e2eSuite, user string) {
	t.Helper()
	g := NewWithT(t)
	ctx := context.Background()
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "runs-" + user, Namespace: testNamespace},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{v1.GroupVersion.Group},
			Resources: []string{"bottleruns", "bottles"}, Verbs: []string{"create", "get", "delete", "list", "watch"}}},
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "runs-" + user, Namespace: testNamespace},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	}
	if err := s.admin.Create(ctx, role); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	if err := s.admin.Create(ctx, rb); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	g.Eventually(func() bool {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: user, ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: testNamespace, Verb: "create", Group: v1.GroupVersion.Group, Resource: "bottleruns"},
		}}
		res, err := s.kube.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
		return err == nil && res.Status.Allowed
	}, 30*time.Second, 100*time.Millisecond).Should(BeTrue())
}

func TestPluginRunStreamsOutputAndExitsWithTheCommandsCode(t *testing.T) {
	s := needSuite(t)
	g := NewWithT(t)
	startRunAgent(t, s)
	grantRuns(t, s, "alice")

	code, out, errOut := kubectlBottle(t, "alice", "", "run", "local", "--name", "plugin-run", "--",
		"sh", "-c", "echo hello from the run; exit 7")
	g.Expect(code).To(Equal(7), errOut)
	g.Expect(out).To(Equal("hello from the run\n"), "the output comes through bottleruns/log")
	g.Expect(errOut).To(ContainSubstring("bottlerun/plugin-run created"))
	g.Expect(errOut).NotTo(ContainSubstring("cannot stream"), "the log exists once the run is seen started")

	// The run and its result stay behind.
	run := &v1.BottleRun{}
	g.Expect(s.admin.Get(context.Background(), types.NamespacedName{Namespace: testNamespace, Name: "plugin-run"}, run)).To(Succeed())
	g.Expect(run.Status.Phase).To(Equal(v1.RunPhaseFailed))
	g.Expect(*run.Status.ExitCode).To(Equal(int32(7)))
	g.Expect(run.Status.Stdout).To(Equal("hello from the run\n"))

	// A script from stdin, as another user.
	code, out, errOut = kubectlBottle(t, "alice", "id -un; echo script-ok\n", "run", "local", "--user", "root", "--script", "-")
	g.Expect(code).To(Equal(0), errOut)
	g.Expect(out).To(Equal("root\nscript-ok\n"))

	// --rm deletes the run once it ended; exit 0.
	code, out, errOut = kubectlBottle(t, "alice", "", "run", "local", "--rm", "--name", "plugin-rm", "--env", "WHO=world", "--",
		"sh", "-c", `echo "hi $WHO"`)
	g.Expect(code).To(Equal(0), errOut)
	g.Expect(out).To(Equal("hi world\n"))
	err := s.admin.Get(context.Background(), types.NamespacedName{Namespace: testNamespace, Name: "plugin-rm"}, &v1.BottleRun{})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "--rm must delete the run: %v", err)

	// --claude: claude -p PROMPT as the execUser, with the Bottle's prompt
	// file (the fake claude prints its arguments and user).
	code, out, errOut = kubectlBottle(t, "alice", "", "run", "local", "--rm", "--claude", "review 'this' $commit")
	g.Expect(code).To(Equal(0), errOut)
	g.Expect(out).To(Equal("arg:-p\narg:review 'this' $commit\narg:--append-system-prompt-file\narg:" + promptPath + "\nuser:node\n"))

	// A Bottle that does not exist is refused at once.
	code, _, errOut = kubectlBottle(t, "alice", "", "run", "nope", "--", "true")
	g.Expect(code).To(Equal(1))
	g.Expect(errOut).To(ContainSubstring(`"nope" not found`))

	// bob holds no get on bottleruns/log.
	err = (&runLogForTest{name: "plugin-run"}).read(s, "bob")
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "bob's error: %v", err)
}

type runLogForTest struct{ name string }

func (l *runLogForTest) read(s *e2eSuite, user string) error {
	kube, err := kubernetes.NewForConfig(as(s, user))
	if err != nil {
		return err
	}
	path := "/apis/" + v1.SubresourceGroupVersion.String() + "/namespaces/" + testNamespace + "/" +
		v1.BottleRunResource + "/" + l.name + "/" + v1.SubresourceLog
	return kube.Discovery().RESTClient().Get().AbsPath(path).Do(context.Background()).Error()
}

// startIdleAgent runs node-idle's Bottle reconciler, sharing the activity
// record with node-idle's exec API server, as cmd/manager wires them.
func startIdleAgent(t *testing.T, s *e2eSuite) {
	t.Helper()
	g := NewWithT(t)
	mgr, err := ctrl.NewManager(s.cfg, testutil.ManagerOptions(agent.ManagerOptions(testenv.Scheme(), nodeIdle), suiteLogger(nodeIdle, nil)))
	g.Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithCancel(context.Background())
	r := &agent.BottleReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Machines: s.simIdle, NodeName: nodeIdle,
		ExecMode: smolvm.ModeLogin, TempDir: t.TempDir(), ResyncPeriod: 2 * time.Second, Activity: s.idle,
	}
	g.Expect(r.SetupWithManager(mgr, "bottle-idle-e2e")).To(Succeed())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = mgr.Start(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	g.Expect(mgr.GetCache().WaitForCacheSync(ctx)).To(BeTrue())
}

// The idle lifecycle through the API server: a Bottle its agent stopped
// for idleness is started again by `kubectl bottle attach` (and exec),
// which waits for it instead of refusing.
func TestAttachWakesAnIdleStoppedBottle(t *testing.T) {
	s := needSuite(t)
	g := NewWithT(t)
	startIdleAgent(t, s)
	ctx := context.Background()
	b := &v1.Bottle{
		ObjectMeta: metav1.ObjectMeta{Name: "sleepy", Namespace: testNamespace},
		Spec: v1.BottleSpec{
			NodeName: nodeIdle,
			MachineSpec: v1.MachineSpec{
				Image: "node:22-bookworm", ExecUser: "node", PromptPath: promptPath,
				Files: []v1.File{{Path: "/opt/bin/claude", Mode: ptrTo[int32](0o755), Inline: ptrTo(fakeClaude)},
					{Path: "/etc/profile.d/opt-bin.sh", Inline: ptrTo("PATH=/opt/bin:$PATH\n")}},
				Provision: []v1.ProvisionStep{{Name: "mark", Script: "echo kept > /home/node/mark", TimeoutSeconds: 60}},
			},
			Lifecycle: &v1.Lifecycle{StopAfterIdle: &metav1.Duration{Duration: 2 * time.Second}},
		},
	}
	g.Expect(s.admin.Create(ctx, b)).To(Succeed())
	t.Cleanup(func() { _ = s.admin.Delete(context.Background(), b) })
	key := types.NamespacedName{Namespace: testNamespace, Name: "sleepy"}
	idleStopped := func() bool {
		cur := &v1.Bottle{}
		if err := s.admin.Get(ctx, key, cur); err != nil {
			return false
		}
		return cur.Status.Phase == v1.PhaseStopped && cur.Status.Lifecycle != nil && cur.Status.Lifecycle.IdleStoppedAt != nil
	}
	g.Eventually(idleStopped, 60*time.Second, 100*time.Millisecond).Should(BeTrue())

	code, out, errOut := kubectlBottle(t, "alice", "", "attach", "sleepy", "-T", "--", "--resume")
	g.Expect(code).To(Equal(0), errOut)
	g.Expect(out).To(ContainSubstring("arg:--resume"))
	g.Expect(out).To(ContainSubstring("user:node"))

	g.Eventually(idleStopped, 60*time.Second, 100*time.Millisecond).Should(BeTrue(), "idle again after the session")
	code, out, errOut = kubectlBottle(t, "alice", "", "exec", "sleepy", "--", "cat", "/home/node/mark")
	g.Expect(code).To(Equal(0), errOut)
	g.Expect(out).To(Equal("kept\n"), "the disk was kept across the idle stops")
}

// kubectl bottle run streams the output while the command runs: the first
// line is seen before the command may go on (it waits for a file the test
// writes only then).
func TestPluginRunStreamsLive(t *testing.T) {
	s := needSuite(t)
	g := NewWithT(t)
	startRunAgent(t, s)
	grantRuns(t, s, "alice")
	ctx := context.Background()
	_, _ = s.simA.Exec(ctx, smolvm.ExecRequest{Machine: "local-1", Argv: []string{"rm", "-f", "/tmp/live-go"}, Timeout: time.Minute})

	out, errOut := &testutil.SyncBuffer{}, &testutil.SyncBuffer{}
	code := make(chan int, 1)
	go func() {
		streams := genericiooptions.IOStreams{In: strings.NewReader(""), Out: out, ErrOut: errOut}
		code <- kubectlbottle.Main([]string{"--kubeconfig", s.kubeconfig, "--as", "alice", "-n", testNamespace,
			"run", "local", "--rm", "--", "sh", "-c", "echo first; while [ ! -e /tmp/live-go ]; do sleep 0.05; done; echo second"}, streams)
	}()
	g.Eventually(out.String, 60*time.Second, 50*time.Millisecond).Should(Equal("first\n"), "stderr: %s", errOut.String())
	res, err := s.simA.Exec(ctx, smolvm.ExecRequest{Machine: "local-1", Argv: []string{"touch", "/tmp/live-go"}, Timeout: time.Minute})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.ExitCode).To(BeZero())
	g.Eventually(code, 60*time.Second).Should(Receive(Equal(0)), "stderr: %s", errOut.String())
	g.Expect(out.String()).To(Equal("first\nsecond\n"))
}
