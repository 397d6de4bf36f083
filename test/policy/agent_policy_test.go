// Package policy tests the trust boundaries config/ ships around the node
// agents, on a real kube-apiserver: the ValidatingAdmissionPolicy that
// confines each agent's token to its node's Bottles, and the per-namespace
// ConfigMap/Secret access of config/source-access.
package policy

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/sourceaccess"
	"github.com/bot-bottle/bottle-controller/internal/testenv"
	"github.com/bot-bottle/bottle-controller/internal/testutil"
)

const (
	agentNS, agentSA = sourceaccess.AgentNamespace, sourceaccess.AgentServiceAccount
	nodeA, nodeB     = "node-a", "node-b"
	team, otherTeam  = "team", "other-team"
	nodeNameExtra    = "authentication.kubernetes.io/node-name"
)

type env struct {
	cfg   *rest.Config
	admin client.Client
	kube  kubernetes.Interface
}

// start boots the API server and installs config/default as shipped, plus
// config/source-access rendered for the namespace "team".
func start(t *testing.T) *env {
	t.Helper()
	te, cfg, err := testenv.Start(testenv.Options{})
	if testenv.Skippable(err) {
		t.Skip(err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = te.Stop() })
	e := &env{cfg: cfg}
	if e.admin, err = client.New(cfg, client.Options{Scheme: testenv.Scheme()}); err != nil {
		t.Fatal(err)
	}
	if e.kube, err = kubernetes.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	admin, err := te.AddUser(envtest.User{Name: "policy-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kubectl, err := admin.Kubectl()
	if err != nil {
		t.Fatal(err)
	}
	sa := t.TempDir()
	for name, data := range sourceaccess.Render([]string{team}) {
		if err := os.WriteFile(filepath.Join(sa, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	for _, ns := range []string{team, otherTeam} {
		if err := e.admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, dir := range []string{filepath.Join(testutil.RepoRoot(), "config", "default"), sa} {
		stdout, stderr, err := kubectl.Run("apply", "--server-side", "-k", dir)
		if err != nil {
			out, _ := io.ReadAll(stdout)
			errOut, _ := io.ReadAll(stderr)
			t.Fatalf("kubectl apply -k %s: %v\n%s%s", dir, err, out, errOut)
		}
	}
	return e
}

// agentPod is a Pod of the agent's ServiceAccount bound to node (no kubelet
// runs it; the API server only needs it to bind tokens to).
func (e *env) agentPod(t *testing.T, node string) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}
	if err := e.admin.Create(ctx, n); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "agent-" + node, Namespace: agentNS},
		Spec: corev1.PodSpec{
			ServiceAccountName: agentSA,
			NodeName:           node,
			Containers:         []corev1.Container{{Name: "agent", Image: "agent"}},
		},
	}
	if err := e.admin.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// tokenClient authenticates as the agent's ServiceAccount with a token from
// the TokenRequest API, bound to pod when it is not nil (as the kubelet's
// projected token is).
func (e *env) tokenClient(t *testing.T, pod *corev1.Pod) (client.Client, *rest.Config) {
	t.Helper()
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr(int64(600))}}
	if pod != nil {
		req.Spec.BoundObjectRef = &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID}
	}
	tok, err := e.kube.CoreV1().ServiceAccounts(agentNS).CreateToken(context.Background(), agentSA, req, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := rest.AnonymousClientConfig(e.cfg)
	cfg.BearerToken = tok.Status.Token
	c, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return c, cfg
}

func (e *env) bottle(t *testing.T, name, node string) *v1.Bottle {
	t.Helper()
	b := &v1.Bottle{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: team},
		Spec:       v1.BottleSpec{NodeName: node, MachineSpec: v1.MachineSpec{Image: "node:22-bookworm"}},
	}
	if err := e.admin.Create(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	return b
}

func ptr[T any](v T) *T { return &v }

func patch(c client.Client, b *v1.Bottle, status bool, body string) error {
	obj := &v1.Bottle{ObjectMeta: metav1.ObjectMeta{Name: b.Name, Namespace: b.Namespace}}
	p := client.RawPatch(types.MergePatchType, []byte(body))
	if status {
		return c.Status().Patch(context.Background(), obj, p)
	}
	return c.Patch(context.Background(), obj, p)
}

// TestAgentBoundaries runs against one API server with config/default
// installed as shipped.
func TestAgentBoundaries(t *testing.T) {
	e := start(t)
	t.Run("TokenConfinedToItsNode", func(t *testing.T) { testTokenConfinedToItsNode(t, e) })
	t.Run("SourcesOnlyInListedNamespaces", func(t *testing.T) { testSourcesOnlyInListedNamespaces(t, e) })
	t.Run("TemplateEntryConfinedToItsNode", func(t *testing.T) { testTemplateEntryConfinedToItsNode(t, e) })
	t.Run("LeasesConfinedToOwnNode", func(t *testing.T) { testLeasesConfinedToOwnNode(t, e) })
	t.Run("RunsConfinedToTheirNode", func(t *testing.T) { testRunsConfinedToTheirNode(t, e) })
}

// testTokenConfinedToItsNode: a token bound to a Pod on node A may write
// the status and finalizers of A's Bottles only; B's Bottles and every spec
// are refused with the policy's message.
func testTokenConfinedToItsNode(t *testing.T, e *env) {
	g := NewWithT(t)
	onA, onB := e.bottle(t, "on-a", nodeA), e.bottle(t, "on-b", nodeB)
	agentA, agentACfg := e.tokenClient(t, e.agentPod(t, nodeA))

	// The API server puts the Pod's node in the token's user info: the
	// ServiceAccountTokenPodNodeInfo feature, GA and locked on since 1.32.
	kubeA, err := kubernetes.NewForConfig(agentACfg)
	g.Expect(err).NotTo(HaveOccurred())
	who, err := kubeA.AuthenticationV1().SelfSubjectReviews().Create(context.Background(), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(who.Status.UserInfo.Username).To(Equal("system:serviceaccount:" + agentNS + ":" + agentSA))
	g.Expect(who.Status.UserInfo.Extra).To(HaveKeyWithValue(nodeNameExtra, ConsistOf(nodeA)))

	// Policies reach the admission plugin through informers: wait until
	// this one refuses. Each attempt asks for a different image: a patch
	// that got through before the policy loaded would make the same patch
	// a no-op afterwards, and the policy rightly allows a no-op.
	attempt := 0
	g.Eventually(func() error {
		attempt++
		return patch(agentA, onA, false, fmt.Sprintf(`{"spec":{"image":"evil:%d"}}`, attempt))
	}).WithTimeout(60 * time.Second).WithPolling(100 * time.Millisecond).
		Should(MatchError(ContainSubstring("may change only the status and metadata.finalizers of Bottle team/on-a")))
	specChange := `{"spec":{"image":"evil:latest"}}`

	// Its own node's Bottle: status and finalizers.
	g.Expect(patch(agentA, onA, true, `{"status":{"nodeName":"node-a","phase":"Creating"}}`)).To(Succeed())
	g.Expect(patch(agentA, onA, false, `{"metadata":{"finalizers":["agents.bot-bottle.dev/machine"]}}`)).To(Succeed())
	g.Expect(patch(agentA, onA, false, `{"metadata":{"finalizers":null}}`)).To(Succeed())

	// Its own Bottle's status may not name another node.
	g.Expect(patch(agentA, onA, true, `{"status":{"nodeName":"node-b"}}`)).To(
		MatchError(ContainSubstring("may record only its own node in status.nodeName of Bottle team/on-a")))

	// Nothing else on its own Bottle.
	for _, body := range []string{
		`{"spec":{"provision":[{"name":"x","script":"id"}]}}`,
		`{"metadata":{"labels":{"a":"b"}}}`,
		`{"metadata":{"annotations":{"a":"b"}}}`,
	} {
		err := patch(agentA, onA, false, body)
		g.Expect(apierrors.IsForbidden(err) || apierrors.IsInvalid(err)).To(BeTrue(), "%s: %v", body, err)
		g.Expect(err).To(MatchError(ContainSubstring("ValidatingAdmissionPolicy 'bottle-agent-node-scope'")), body)
	}

	// Another node's Bottle: nothing, not even status.
	onBMsg := "the Bottle agent of node node-a may not change Bottle team/on-b: it is bound to node node-b"
	g.Expect(patch(agentA, onB, true, `{"status":{"phase":"Failed"}}`)).To(MatchError(ContainSubstring(onBMsg)))
	g.Expect(patch(agentA, onB, false, `{"metadata":{"finalizers":["agents.bot-bottle.dev/machine"]}}`)).To(MatchError(ContainSubstring(onBMsg)))
	g.Expect(patch(agentA, onB, false, specChange)).To(MatchError(ContainSubstring(onBMsg)))

	// The admin is not the agent: the policy does not apply.
	g.Expect(patch(e.admin, onB, false, specChange)).To(Succeed())

	// A token of the same ServiceAccount that is bound to no Pod names no
	// node, and may change nothing.
	unbound, _ := e.tokenClient(t, nil)
	g.Expect(patch(unbound, onA, true, `{"status":{"phase":"Failed"}}`)).To(MatchError(ContainSubstring("the Bottle agent's token names no node")))

	// RBAC grants no create or delete at all.
	err = agentA.Create(context.Background(), &v1.Bottle{
		ObjectMeta: metav1.ObjectMeta{Name: "new", Namespace: team},
		Spec:       v1.BottleSpec{NodeName: nodeA, MachineSpec: v1.MachineSpec{Image: "node:22-bookworm"}},
	})
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "create: %v", err)
	g.Expect(apierrors.IsForbidden(agentA.Delete(context.Background(), onA))).To(BeTrue())

	// Status as the agent wrote it survived; B's did not change.
	got := &v1.Bottle{}
	g.Expect(e.admin.Get(context.Background(), client.ObjectKeyFromObject(onB), got)).To(Succeed())
	g.Expect(got.Status.Phase).To(BeEmpty())
}

// testSourcesOnlyInListedNamespaces: with "team" listed, the agent
// may get ConfigMaps and Secrets there and nowhere else, and may list none.
func testSourcesOnlyInListedNamespaces(t *testing.T, e *env) {
	g := NewWithT(t)
	ctx := context.Background()
	for _, ns := range []string{team, otherTeam} {
		g.Expect(e.admin.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "key", Namespace: ns}, StringData: map[string]string{"k": "v"}})).To(Succeed())
		g.Expect(e.admin.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: ns}, Data: map[string]string{"k": "v"}})).To(Succeed())
	}
	agent, _ := e.tokenClient(t, e.agentPod(t, nodeB))

	// RBAC reaches the authorizer through informers.
	g.Eventually(func() error {
		return agent.Get(ctx, types.NamespacedName{Namespace: team, Name: "key"}, &corev1.Secret{})
	}).WithTimeout(30 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
	g.Expect(agent.Get(ctx, types.NamespacedName{Namespace: team, Name: "cfg"}, &corev1.ConfigMap{})).To(Succeed())

	err := agent.Get(ctx, types.NamespacedName{Namespace: otherTeam, Name: "key"}, &corev1.Secret{})
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "secret in %s: %v", otherTeam, err)
	err = agent.Get(ctx, types.NamespacedName{Namespace: otherTeam, Name: "cfg"}, &corev1.ConfigMap{})
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "configmap in %s: %v", otherTeam, err)
	err = agent.List(ctx, &corev1.SecretList{}, client.InNamespace(team))
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "list secrets: %v", err)
}

// TestSourceAccessIsRendered: config/source-access is what its
// namespaces.txt renders to (`make manifests` keeps them in step).
func TestSourceAccessIsRendered(t *testing.T) {
	dir := filepath.Join(testutil.RepoRoot(), "config", "source-access")
	f, err := os.Open(filepath.Join(dir, sourceaccess.NamespacesFile))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	namespaces, err := sourceaccess.ReadNamespaces(f)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range sourceaccess.Render(namespaces) {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%s is stale: run `make manifests`", strings.TrimPrefix(filepath.Join(dir, name), testutil.RepoRoot()+"/"))
		}
	}
}
