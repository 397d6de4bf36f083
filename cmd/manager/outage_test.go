package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/agentlease"
	"github.com/bot-bottle/bottle-controller/internal/certs"
	"github.com/bot-bottle/bottle-controller/internal/kubectlbottle"
	"github.com/bot-bottle/bottle-controller/internal/testenv"
	"github.com/bot-bottle/bottle-controller/internal/testutil"
)

// TestOutageKeepsStepsAndSessions freezes etcd for longer than the Lease's
// duration while a step runs and an exec session is open: the agent stops
// starting new work but keeps both, renews the Lease when etcd is back, the
// session goes on, and the step ran exactly once. (With controller-runtime's
// leader election the agent exited RenewDeadline into the outage, killing
// both, and the next agent ran the step again.)
func TestOutageKeepsStepsAndSessions(t *testing.T) {
	testutil.RequireBwrap(t)
	dir := t.TempDir()
	bundle, err := certs.Generate(certs.Options{FrontProxy: true})
	if err != nil {
		t.Fatal(err)
	}
	certDir := filepath.Join(dir, "certs")
	if err := bundle.WriteDir(certDir); err != nil {
		t.Fatal(err)
	}
	files := certs.FilesIn(certDir)
	env, cfg, err := testenv.Start(testenv.Options{APIServerArgs: testenv.FrontProxyArgs(
		files.FrontProxyCA, files.FrontProxyClient, files.FrontProxyClientKey, certs.DefaultFrontProxyClientCN)})
	if testenv.Skippable(err) {
		t.Skip(err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	logs := agentLogs()
	g := NewWithT(t)
	g.SetDefaultEventuallyTimeout(60 * time.Second)
	g.SetDefaultEventuallyPollingInterval(100 * time.Millisecond)
	ctx := context.Background()
	c, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())

	simPath, err := testutil.Simulator(simDir)
	if err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(dir, "node")
	g.Expect(os.MkdirAll(dataDir, 0o755)).To(Succeed())
	const node, ns = "outage-node", "bottle-system"
	g.Expect(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	execAddr := freeAddr(t)
	a := startTestAgent(t, cfg, "agent-a", node, ns, simPath, dataDir,
		"--exec-bind-address="+execAddr, "--exec-cert-dir="+certDir)
	g.Eventually(a.readyCode).Should(Equal(http.StatusOK))

	// The step says it started, then waits for the test's go-ahead.
	bottle := &v1.Bottle{
		ObjectMeta: metav1.ObjectMeta{Name: "outage", Namespace: "default"},
		Spec: v1.BottleSpec{NodeName: node, MachineSpec: v1.MachineSpec{Image: "node:22", Provision: []v1.ProvisionStep{{
			Name: "long", Script: `echo run >> /tmp/runs; until [ -e /tmp/go ]; do sleep 0.1; done`,
		}}}},
	}
	g.Expect(c.Create(ctx, bottle)).To(Succeed())
	machine := func() string {
		got := &v1.Bottle{}
		if c.Get(ctx, client.ObjectKeyFromObject(bottle), got) != nil {
			return ""
		}
		return got.Status.MachineName
	}
	g.Eventually(machine).ShouldNot(BeEmpty(), logs.String)
	guest := func(script string) string {
		cmd := exec.Command(simPath, "machine", "exec", "--name", machine(), "--", "sh", "-c", script)
		cmd.Env = append(os.Environ(), "SMOLVM_DATA_DIR="+dataDir)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			return fmt.Sprintf("%v: %s", err, errOut.String())
		}
		return out.String()
	}
	runs := func() string { return guest("cat /tmp/runs 2>/dev/null || true") }
	g.Eventually(runs).Should(Equal("run\n"), "the step is running")

	// A session served by this agent (as the aggregator would reach it).
	stdin, typing := io.Pipe()
	defer func() { _ = typing.Close() }()
	out := &testutil.SyncBuffer{}
	sessionDone := make(chan error, 1)
	go func() {
		sessionDone <- (&kubectlbottle.Session{
			Namespace: "default", Name: "outage", Subresource: "exec",
			Command: []string{"sh", "-c", `echo ready; read x; echo "got $x"`},
			Stdin:   stdin, Stdout: out, Stderr: io.Discard,
		}).Stream(ctx, frontProxyConfig(execAddr, bundle, files))
	}()
	g.Eventually(out.String).Should(Equal("ready\n"))

	thaw, err := testenv.FreezeEtcd(env)
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(thaw)
	// Past the renew deadline: no new work, and the agent says so.
	g.Eventually(func() string { _, body := a.readyz(); return body }).Should(ContainSubstring("adrift"))
	g.Eventually(logs.String).Should(ContainSubstring("starting no new work"))
	// Past the Lease's duration too: the agent, the step and the session
	// stay.
	g.Consistently(func() error {
		select {
		case <-a.done:
			return fmt.Errorf("the agent exited: %v", a.err)
		case err := <-sessionDone:
			return fmt.Errorf("the session ended: %v (output %q)", err, out.String())
		default:
			return nil
		}
	}, 4*time.Second, 100*time.Millisecond).Should(Succeed())
	thaw()

	g.Eventually(a.readyCode).Should(Equal(http.StatusOK), "the Lease is renewed once etcd is back")
	g.Expect(logs.String()).To(ContainSubstring("renewed the node's lease again"))
	_, _ = typing.Write([]byte("go on\n"))
	g.Eventually(sessionDone).Should(Receive(BeNil()))
	g.Expect(out.String()).To(Equal("ready\ngot go on\n"), "the session survived")

	g.Expect(guest("touch /tmp/go")).To(BeEmpty())
	g.Eventually(func() bool {
		got := &v1.Bottle{}
		return c.Get(ctx, client.ObjectKeyFromObject(bottle), got) == nil &&
			meta.IsStatusConditionTrue(got.Status.Conditions, v1.ConditionReady)
	}).Should(BeTrue())
	g.Expect(runs()).To(Equal("run\n"), "the step ran exactly once")
	lease := &coordinationv1.Lease{}
	g.Expect(c.Get(ctx, client.ObjectKey{Namespace: ns, Name: agentlease.Name(node)}, lease)).To(Succeed())
	g.Expect(ptr.Deref(lease.Spec.HolderIdentity, "")).To(Equal("agent-a"))
	g.Expect(logs.String()).NotTo(ContainSubstring("leader election lost"))
}

// frontProxyConfig reaches the agent's aggregated API as the kube-apiserver
// does: with the front-proxy client certificate and the user in headers.
func frontProxyConfig(addr string, bundle *certs.Bundle, files certs.Files) *rest.Config {
	return &rest.Config{
		Host: "https://" + addr,
		TLSClientConfig: rest.TLSClientConfig{
			CAData: bundle.ExecCA.CertPEM(), ServerName: "localhost",
			CertFile: files.FrontProxyClient, KeyFile: files.FrontProxyClientKey,
		},
		WrapTransport: func(rt http.RoundTripper) http.RoundTripper {
			return roundTripFunc(func(r *http.Request) (*http.Response, error) {
				r = r.Clone(r.Context())
				r.Header.Set("X-Remote-User", "outage-tester")
				r.Header.Set("X-Remote-Group", "system:masters")
				return rt.RoundTrip(r)
			})
		},
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
