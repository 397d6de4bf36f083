package execapi

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	ctrl "sigs.k8s.io/controller-runtime"

	agentsv1alpha1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/controllers"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
	"github.com/bot-bottle/bottle-controller/internal/testenv"
	"github.com/bot-bottle/bottle-controller/internal/testutil"
)

// startRunAgent runs node-a's BottleRun controller, as cmd/manager wires
// it, with the gateway's log store: runs in "local" execute in node-a's
// simulator and their output is served by bottleruns/log.
func startRunAgent(t *testing.T, s *e2eSuite) {
	t.Helper()
	g := NewWithT(t)
	mgr, err := ctrl.NewManager(s.cfg, testutil.ManagerOptions(controllers.ManagerOptions(testenv.Scheme(), nodeA), suiteLogger(nodeA)))
	g.Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithCancel(context.Background())
	rr := &controllers.BottleRunReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Machines: s.simA, NodeName: nodeA,
		ExecMode: smolvm.ModeLogin, Logs: s.logsA, QueuePoll: 100 * time.Millisecond,
	}
	g.Expect(rr.SetupWithManager(ctx, mgr, "bottlerun-e2e")).To(Succeed())
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
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{agentsv1alpha1.GroupVersion.Group},
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
				Namespace: testNamespace, Verb: "create", Group: agentsv1alpha1.GroupVersion.Group, Resource: "bottleruns"},
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

	// The run and its result stay behind.
	run := &agentsv1alpha1.BottleRun{}
	g.Expect(s.admin.Get(context.Background(), types.NamespacedName{Namespace: testNamespace, Name: "plugin-run"}, run)).To(Succeed())
	g.Expect(run.Status.Phase).To(Equal(agentsv1alpha1.RunPhaseFailed))
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
	err := s.admin.Get(context.Background(), types.NamespacedName{Namespace: testNamespace, Name: "plugin-rm"}, &agentsv1alpha1.BottleRun{})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "--rm must delete the run: %v", err)

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
	path := "/apis/" + agentsv1alpha1.SubresourceGroupVersion.String() + "/namespaces/" + testNamespace + "/" +
		agentsv1alpha1.BottleRunResource + "/" + l.name + "/" + agentsv1alpha1.SubresourceLog
	return kube.Discovery().RESTClient().Get().AbsPath(path).Do(context.Background()).Error()
}
