package execapi

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/activity"
	"github.com/bot-bottle/bottle-controller/internal/certs"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
	"github.com/bot-bottle/bottle-controller/internal/steplog"
	"github.com/bot-bottle/bottle-controller/internal/testenv"
	"github.com/bot-bottle/bottle-controller/internal/testutil"
)

// The end-to-end suite: a real kube-apiserver with the aggregation layer
// configured, two in-process Servers playing the agents of node-a (the
// gateway behind the APIService) and node-b, and the smolvm simulator.
const (
	testNamespace = "team"
	nodeA, nodeB  = "node-a", "node-b"
	nodeLost      = "node-lost"
	// nodeIdle's agent runs a real Bottle reconciler in the idle test
	// (run_e2e_test.go), with the activity record its server shares.
	nodeIdle = "node-idle"
	// testKeepAlive is short so the idle test is quick, yet long enough
	// that the missedPings periods of silence a session tolerates (3 s)
	// cannot pass between two pongs on a loaded 2-core machine.
	testKeepAlive = time.Second
	// testSessionsPerUser is the servers' per-user session cap; the tests
	// run one session at a time, except the one that fills the cap.
	testSessionsPerUser = 3
	promptPath          = "/etc/bottle/prompt.md"
	testAPIKey          = "sk-test-not-on-any-command-line"
)

func ptrTo[T any](v T) *T { return &v }

// fakeClaude prints what the attach test checks: its arguments, its user
// and whether stdin is a terminal.
const fakeClaude = `#!/bin/sh
for a in "$@"; do printf 'arg:%s\n' "$a"; done
printf 'user:%s\n' "$(id -un)"
[ -t 0 ] && echo stdin:tty
exit 0
`

type e2eSuite struct {
	cfg        *rest.Config // admin
	kubeconfig string
	admin      client.Client
	kube       kubernetes.Interface
	files      certs.Files
	bundle     *certs.Bundle
	addrA      string
	addrB      string
	pongsA     atomic.Int64
	simA       *smolvm.CLI // node-a's simulator, for the direct baseline
	dir        string      // lives as long as the suite
	logsA      *steplog.Store
	serverLogA *testutil.SyncBuffer // node-a's server's log
	logsB      *steplog.Store       // node-b's: a template's golden there (templatelogs_e2e_test.go)
	simIdle    *smolvm.CLI
	idle       *activity.Tracker
}

var (
	suite *e2eSuite
	// suiteSkip is why the suite cannot run here (outside CI only).
	suiteSkip string
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	flag.Parse()
	if !testing.Verbose() {
		// k8s.io/apiserver's certificate controllers log through klog.
		klog.SetLogger(logr.Discard())
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var cleanups []func()
	defer func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}()
	s, err := startSuite(ctx, &cleanups)
	var skip skipError
	switch {
	case errors.As(err, &skip) && (!testutil.InCI() || testing.Short()):
		suiteSkip = err.Error()
	case err != nil:
		fmt.Fprintf(os.Stderr, "execapi e2e setup: %v\n", err)
		return 1
	}
	suite = s
	return m.Run()
}

type skipError struct{ error }

// needSuite skips (outside CI) when the environment lacks envtest or bwrap.
func needSuite(t *testing.T) *e2eSuite {
	t.Helper()
	if suite == nil {
		t.Skipf("skipping the exec API end-to-end tests: %s", suiteSkip)
	}
	return suite
}

func startSuite(ctx context.Context, cleanups *[]func()) (*e2eSuite, error) {
	if testing.Short() {
		return nil, skipError{testenv.ErrShort}
	}
	if err := testutil.BwrapMissing(); err != nil {
		return nil, skipError{err}
	}
	dir, err := os.MkdirTemp("", "execapi-e2e-")
	if err != nil {
		return nil, err
	}
	*cleanups = append(*cleanups, func() { _ = os.RemoveAll(dir) })

	s := &e2eSuite{dir: dir}
	if s.bundle, err = certs.Generate(certs.Options{FrontProxy: true}); err != nil {
		return nil, err
	}
	if err := s.bundle.WriteDir(filepath.Join(dir, "certs")); err != nil {
		return nil, err
	}
	s.files = certs.FilesIn(filepath.Join(dir, "certs"))

	// Build the simulator while the API server starts.
	var sim string
	var buildErr error
	built := make(chan struct{}) // closed once sim and buildErr are set
	go func() {
		defer close(built)
		sim, buildErr = testutil.Simulator(dir)
	}()

	env, cfg, err := testenv.Start(testenv.Options{APIServerArgs: testenv.FrontProxyArgs(
		s.files.FrontProxyCA, s.files.FrontProxyClient, s.files.FrontProxyClientKey, certs.DefaultFrontProxyClientCN)})
	if err != nil {
		<-built
		if errors.Is(err, testenv.ErrNoAssets) {
			return nil, skipError{err}
		}
		return nil, err
	}
	*cleanups = append(*cleanups, func() { _ = env.Stop() })
	s.cfg = cfg
	if s.admin, err = client.New(cfg, client.Options{Scheme: testenv.Scheme()}); err != nil {
		return nil, err
	}
	if s.kube, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, err
	}
	s.kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := testenv.WriteKubeconfig(cfg, s.kubeconfig, testNamespace); err != nil {
		return nil, err
	}
	<-built
	if buildErr != nil {
		return nil, buildErr
	}

	// Two nodes, each with its own simulator state: a session for node-b's
	// Bottle can only succeed on node-b's agent.
	simA := smolvm.New(sim, "SMOLVM_DATA_DIR="+filepath.Join(dir, "smolvm-a"))
	simB := smolvm.New(sim, "SMOLVM_DATA_DIR="+filepath.Join(dir, "smolvm-b"))
	s.simA = simA
	s.simIdle = smolvm.New(sim, "SMOLVM_DATA_DIR="+filepath.Join(dir, "smolvm-idle"))
	s.idle = activity.New()
	for _, m := range []struct {
		cli  *smolvm.CLI
		name string
	}{{simA, "local-1"}, {simB, "remote-1"}} {
		if err := startMachine(ctx, m.cli, m.name); err != nil {
			return nil, err
		}
	}

	lnA, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	lnB, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	lnIdle, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.addrA, s.addrB = lnA.Addr().String(), lnB.Addr().String()
	closedAddr, err := closedPort()
	if err != nil {
		return nil, err
	}
	agents := map[string]string{nodeA: s.addrA, nodeB: s.addrB, nodeLost: closedAddr, nodeIdle: lnIdle.Addr().String()}
	reader, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		return nil, err
	}
	if s.logsA, err = steplog.New(filepath.Join(dir, "logs-a"), 8<<20); err != nil {
		return nil, err
	}
	if s.logsB, err = steplog.New(filepath.Join(dir, "logs-b"), 8<<20); err != nil {
		return nil, err
	}
	srvCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	*cleanups = append(*cleanups, func() { stop(); wg.Wait() })
	for _, n := range []struct {
		node string
		ln   net.Listener
		sim  *smolvm.CLI
	}{{nodeA, lnA, simA}, {nodeB, lnB, simB}, {nodeIdle, lnIdle, s.simIdle}} {
		srv, err := NewServer(cfg, reader, Options{
			NodeName:            n.node,
			Listener:            n.ln,
			ServingCertFile:     s.files.Serving,
			ServingKeyFile:      s.files.ServingKey,
			AgentCAFile:         s.files.ExecCA,
			AgentClientCertFile: s.files.AgentClient,
			AgentClientKeyFile:  s.files.AgentClientKey,
			AgentAddresses:      agents,
			KeepAlive:           testKeepAlive,
			MaxSessionsPerUser:  testSessionsPerUser,
			Machines:            n.sim,
			ExecMode:            smolvm.ModeLogin,
			Logger:              suiteLogger(n.node, s.serverLog(n.node)),
		})
		if n.node == nodeA {
			srv.opts.StepLogs = s.logsA
		}
		if n.node == nodeB {
			srv.opts.StepLogs = s.logsB
		}
		if n.node == nodeIdle {
			srv.opts.Activity = s.idle
		}
		if err != nil {
			return nil, err
		}
		if n.node == nodeA {
			srv.onPong = func() { s.pongsA.Add(1) }
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Start(srvCtx); err != nil {
				fmt.Fprintf(os.Stderr, "server %s: %v\n", n.node, err)
			}
		}()
		<-srv.Ready()
	}

	if err := s.registerAPIService(ctx); err != nil {
		return nil, err
	}
	if err := s.createFixtures(ctx); err != nil {
		return nil, err
	}
	if err := putFakeClaude(ctx, simA, "local-1"); err != nil {
		return nil, err
	}
	return s, nil
}

// serverLog is where node-a's server logs (nil for the others): the tests
// read what a session logs.
func (s *e2eSuite) serverLog(node string) *testutil.SyncBuffer {
	if node != nodeA {
		return nil
	}
	if s.serverLogA == nil {
		s.serverLogA = &testutil.SyncBuffer{}
	}
	return s.serverLogA
}

// suiteLogger writes a server's log to keep (when set), and shows it with -v.
func suiteLogger(node string, keep *testutil.SyncBuffer) logr.Logger {
	if !testing.Verbose() && keep == nil {
		return logr.Discard()
	}
	return funcr.New(func(prefix, args string) {
		if keep != nil {
			_, _ = fmt.Fprintln(keep, prefix, args)
		}
		if testing.Verbose() {
			fmt.Fprintln(os.Stderr, prefix, args)
		}
	}, funcr.Options{Verbosity: 1}).WithName(node)
}

func startMachine(ctx context.Context, c *smolvm.CLI, name string) error {
	if err := c.Create(ctx, smolvm.MachineSpec{Name: name, Image: "node:22-bookworm"}); err != nil {
		return err
	}
	return c.Start(ctx, name)
}

func putFakeClaude(ctx context.Context, c *smolvm.CLI, machine string) error {
	res, err := c.Exec(ctx, smolvm.ExecRequest{
		Machine: machine,
		Script: `mkdir -p /opt/bin && cat > /opt/bin/claude && chmod 755 /opt/bin/claude &&
echo 'PATH=/opt/bin:$PATH' > /etc/profile.d/opt-bin.sh`,
		Stdin:   strings.NewReader(fakeClaude),
		Timeout: time.Minute,
	})
	if err == nil && res.ExitCode != 0 {
		err = fmt.Errorf("installing the fake claude: exit %d: %s", res.ExitCode, res.Stderr)
	}
	return err
}

// closedPort is an address nothing listens on: the "unreachable agent".
func closedPort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// registerAPIService points the aggregator at node-a's server through an
// ExternalName Service (envtest has no kube-proxy to route a ClusterIP) and
// waits until the aggregator reports it Available.
func (s *e2eSuite) registerAPIService(ctx context.Context) error {
	_, port, _ := net.SplitHostPort(s.addrA)
	var portNum int64
	if _, err := fmt.Sscan(port, &portNum); err != nil {
		return fmt.Errorf("port of %s: %w", s.addrA, err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: certs.DefaultServiceNamespace}}
	if err := s.admin.Create(ctx, ns); err != nil {
		return err
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: certs.DefaultServiceName, Namespace: certs.DefaultServiceNamespace},
		Spec: corev1.ServiceSpec{
			Type:         corev1.ServiceTypeExternalName,
			ExternalName: "localhost",
			Ports:        []corev1.ServicePort{{Name: "exec", Port: int32(portNum)}},
		},
	}
	if err := s.admin.Create(ctx, svc); err != nil {
		return err
	}
	apiService := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1",
		"kind":       "APIService",
		"metadata":   map[string]any{"name": v1.SubresourceVersion + "." + v1.SubresourceGroup},
		"spec": map[string]any{
			"group":                v1.SubresourceGroup,
			"version":              v1.SubresourceVersion,
			"groupPriorityMinimum": int64(1000),
			"versionPriority":      int64(15),
			"caBundle":             s.bundle.ExecCA.CertPEM(),
			"service": map[string]any{
				"name":      certs.DefaultServiceName,
				"namespace": certs.DefaultServiceNamespace,
				"port":      portNum,
			},
		},
	}}
	if err := s.admin.Create(ctx, apiService); err != nil {
		return err
	}
	return poll(ctx, 60*time.Second, func() (bool, error) {
		got := &unstructured.Unstructured{}
		got.SetGroupVersionKind(apiService.GroupVersionKind())
		if err := s.admin.Get(ctx, client.ObjectKeyFromObject(apiService), got); err != nil {
			return false, nil
		}
		conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
		for _, c := range conds {
			m, _ := c.(map[string]any)
			if m["type"] == "Available" && m["status"] == "True" {
				return true, nil
			}
		}
		return false, nil
	}, "the APIService to become Available")
}

// createFixtures makes the namespace, the users' RBAC (from
// config/apiservice, as shipped) and the Bottles.
func (s *e2eSuite) createFixtures(ctx context.Context) error {
	if err := s.admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testNamespace}}); err != nil {
		return err
	}
	roles, err := shippedClusterRoles()
	if err != nil {
		return err
	}
	for _, r := range roles {
		if err := s.admin.Create(ctx, r); err != nil {
			return err
		}
	}
	// carol passes the API server's check (the URL) but not the gateway's
	// SubjectAccessReview: it proves the gateway asks.
	frontDoorOnly := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "front-door-only", Namespace: testNamespace},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{v1.SubresourceGroup}, Resources: []string{"bottles/exec"}, Verbs: []string{"get", "create"},
		}},
	}
	if err := s.admin.Create(ctx, frontDoorOnly); err != nil {
		return err
	}
	// erin may exec into the Bottle "local" only.
	oneBottle := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "exec-local-only", Namespace: testNamespace},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{v1.SubresourceGroup}, Resources: []string{"bottles/exec"}, ResourceNames: []string{"local"}, Verbs: []string{"get"}},
			{APIGroups: []string{v1.GroupVersion.Group}, Resources: []string{"bottles/exec"}, ResourceNames: []string{"local"}, Verbs: []string{"create"}},
		},
	}
	if err := s.admin.Create(ctx, oneBottle); err != nil {
		return err
	}
	bindings := []struct{ user, kind, role string }{
		{"erin", "Role", "exec-local-only"},
		{"alice", "ClusterRole", "bottle-exec"},
		{"alice", "ClusterRole", "bottle-attach"},
		{"alice", "ClusterRole", "bottle-log"},
		{"bob", "ClusterRole", "bottle-exec"},
		{"carol", "Role", "front-door-only"},
	}
	for _, b := range bindings {
		rb := &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: b.user + "-" + b.role, Namespace: testNamespace},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: b.kind, Name: b.role},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: b.user}},
		}
		if err := s.admin.Create(ctx, rb); err != nil {
			return err
		}
	}

	bottles := []struct {
		name, node, machine string
		phase               v1.Phase
	}{
		{"local", nodeA, "local-1", v1.PhaseReady},
		{"remote", nodeB, "remote-1", v1.PhaseReady},
		{"lost", nodeLost, "lost-1", v1.PhaseReady},
		{"provisioning", nodeA, "prov-1", v1.PhaseProvisioning},
		{"stopped", nodeA, "stopped-1", v1.PhaseStopped},
		{"failed", nodeA, "local-1", v1.PhaseFailed},
		{"withenv", nodeA, "local-1", v1.PhaseReady},
	}
	key := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "agent-key", Namespace: testNamespace},
		StringData: map[string]string{"key": testAPIKey},
	}
	if err := s.admin.Create(ctx, key); err != nil {
		return err
	}
	for _, bt := range bottles {
		b := &v1.Bottle{
			ObjectMeta: metav1.ObjectMeta{Name: bt.name, Namespace: testNamespace},
			Spec: v1.BottleSpec{
				NodeName: bt.node,
				MachineSpec: v1.MachineSpec{
					Image:      "node:22-bookworm",
					ExecUser:   "node",
					PromptPath: promptPath,
				},
			},
		}
		if bt.phase == v1.PhaseStopped {
			b.Spec.RunState = v1.RunStateStopped
		}
		if bt.name == "withenv" {
			lit := "a 'literal' $value"
			b.Spec.Env = []v1.EnvVar{
				{Name: "ANTHROPIC_API_KEY", ValueFrom: &v1.EnvVarSource{SecretKeyRef: &v1.KeyRef{Name: "agent-key", Key: "key"}}},
				{Name: "LIT", Value: &lit},
				{Name: "PATH", Value: ptrTo("/opt/bin:/usr/bin:/bin")},
			}
			b.Spec.Provision = []v1.ProvisionStep{{Name: "install", Script: "true"}, {Name: "slow", Script: "true"}}
		}
		if err := s.admin.Create(ctx, b); err != nil {
			return err
		}
		b.Status = v1.BottleStatus{
			Phase: bt.phase, NodeName: bt.node, MachineName: bt.machine, ObservedGeneration: b.Generation,
		}
		if err := s.admin.Status().Update(ctx, b); err != nil {
			return err
		}
	}

	// RBAC reaches the authorizer through informers: wait for the last
	// binding to take effect.
	return poll(ctx, 30*time.Second, func() (bool, error) {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: "carol",
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: testNamespace, Verb: "get", Group: v1.SubresourceGroup, Resource: "bottles", Subresource: "exec", Name: "local",
			},
		}}
		res, err := s.kube.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
		return err == nil && res.Status.Allowed, nil
	}, "the test RBAC to take effect")
}

func shippedClusterRoles() ([]*rbacv1.ClusterRole, error) {
	data, err := os.ReadFile(filepath.Join(testutil.RepoRoot(), "config", "apiservice", "user_roles.yaml"))
	if err != nil {
		return nil, err
	}
	var roles []*rbacv1.ClusterRole
	for _, doc := range bytes.Split(data, []byte("\n---")) {
		r := &rbacv1.ClusterRole{}
		if err := yaml.Unmarshal(doc, r); err != nil {
			return nil, err
		}
		if r.Kind == "ClusterRole" {
			roles = append(roles, r)
		}
	}
	if len(roles) != 3 {
		return nil, fmt.Errorf("expected 3 ClusterRoles in user_roles.yaml, found %d", len(roles))
	}
	return roles, nil
}

// poll is setup's Eventually.
func poll(ctx context.Context, timeout time.Duration, cond func() (bool, error), what string) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
