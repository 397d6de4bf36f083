package execapi

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"

	"github.com/bot-bottle/bottle-controller/internal/certs"
	"github.com/bot-bottle/bottle-controller/internal/kubectlbottle"
	"github.com/bot-bottle/bottle-controller/internal/testutil"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// kubectlBottle runs the plugin as user (impersonated by the admin
// kubeconfig) and returns its exit code, stdout and stderr.
func kubectlBottle(t *testing.T, user, stdin string, args ...string) (int, string, string) {
	t.Helper()
	s := needSuite(t)
	var out, errOut bytes.Buffer
	streams := genericiooptions.IOStreams{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut}
	full := append([]string{"--kubeconfig", s.kubeconfig, "--as", user, "-n", testNamespace}, args...)
	code := kubectlbottle.Main(full, streams)
	return code, out.String(), errOut.String()
}

func as(s *e2eSuite, user string) *rest.Config {
	c := rest.CopyConfig(s.cfg)
	c.Impersonate = rest.ImpersonationConfig{UserName: user}
	return c
}

func TestExecThroughAPIServer(t *testing.T) {
	code, out, errOut := kubectlBottle(t, "alice", "hello\n",
		"exec", "local", "-i", "--", "sh", "-c", `read x; echo "$x"; echo err >&2; exit 7`)
	if code != 7 || out != "hello\n" || errOut != "err\n" {
		t.Fatalf("exec = exit %d, stdout %q, stderr %q; want 7, %q, %q", code, out, errOut, "hello\n", "err\n")
	}
}

func TestExecRunsAsExecUserOrUserParam(t *testing.T) {
	code, out, errOut := kubectlBottle(t, "bob", "", "exec", "local", "--", "id", "-un")
	if code != 0 || out != "node\n" {
		t.Fatalf("exec id -un = exit %d, %q (stderr %q); want 0, node", code, out, errOut)
	}
	code, out, errOut = kubectlBottle(t, "bob", "", "exec", "local", "--user", "root", "--", "id", "-un")
	if code != 0 || out != "root\n" {
		t.Fatalf("exec --user root id -un = exit %d, %q (stderr %q); want 0, root", code, out, errOut)
	}
	// Arguments reach the guest as words, whatever they contain.
	code, out, _ = kubectlBottle(t, "bob", "", "exec", "local", "--", "printf", "%s|", "a b", "$HOME", "'q'", "; id")
	if code != 0 || out != "a b|$HOME|'q'|; id|" {
		t.Fatalf("argv quoting: exit %d, %q", code, out)
	}
}

func TestAuthorization(t *testing.T) {
	cases := []struct {
		name, user, sub string
		wantCode        int
		wantErr         string
	}{
		// No RBAC at all: the kube-apiserver itself refuses the URL.
		{"no role", "dave", "exec", 1, `Error from server (Forbidden)`},
		// Allowed through the front door, but the gateway's SubjectAccessReview
		// for create bottles/exec in agents.bot-bottle.dev fails.
		{"front door only", "carol", "exec", 1, `User "carol" cannot create resource "bottles/exec" in API group "agents.bot-bottle.dev"`},
		{"exec but not attach", "bob", "attach", 1, `Error from server (Forbidden)`},
		{"exec allowed", "bob", "exec", 0, ""},
	}
	perBottle := []struct {
		name, user, bottle string
		wantCode           int
		wantErr            string
	}{
		{"one Bottle only: allowed", "erin", "local", 0, ""},
		{"one Bottle only: another Bottle", "erin", "remote", 1, `User "erin" cannot get resource "bottles/exec"`},
		// The gateway reads the Bottle while it asks: a denied user still
		// learns nothing of whether it exists.
		{"front door only: a missing Bottle", "carol", "missing", 1, `User "carol" cannot create resource "bottles/exec" in API group "agents.bot-bottle.dev"`},
	}
	for _, c := range perBottle {
		t.Run(c.name, func(t *testing.T) {
			code, _, errOut := kubectlBottle(t, c.user, "", "exec", c.bottle, "--", "true")
			if code != c.wantCode || !strings.Contains(errOut, c.wantErr) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, errOut, c.wantCode, c.wantErr)
			}
		})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := []string{c.sub, "local", "--", "true"}
			if c.sub == "attach" {
				args = []string{"attach", "local"}
			}
			code, _, errOut := kubectlBottle(t, c.user, "", args...)
			t.Logf("kubectl bottle %s: exit %d, stderr %q", strings.Join(args, " "), code, errOut)
			if code != c.wantCode || !strings.Contains(errOut, c.wantErr) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, errOut, c.wantCode, c.wantErr)
			}
		})
	}

	// The client sees a typed Forbidden.
	s := needSuite(t)
	err := (&kubectlbottle.Session{Namespace: testNamespace, Name: "local", Subresource: "exec", Command: []string{"true"},
		Stdout: io.Discard}).Stream(context.Background(), as(s, "carol"))
	if !apierrors.IsForbidden(err) {
		t.Fatalf("carol's exec error = %v; want Forbidden", err)
	}
}

func TestBottleErrors(t *testing.T) {
	cases := []struct{ bottle, want string }{
		// Allowed while provisioning, but this one's machine does not exist.
		{"provisioning", `bottle "provisioning" has no machine yet (phase Provisioning)`},
		{"stopped", `Error from server (Conflict): bottle "stopped" has no running machine: runState is Stopped: set it to Running`},
		{"missing", `Error from server (NotFound): bottles.agents.bot-bottle.dev "missing" not found`},
		{"lost", `error: the agent on node "node-lost" is unreachable (127.0.0.1:`},
	}
	for _, c := range cases {
		t.Run(c.bottle, func(t *testing.T) {
			code, _, errOut := kubectlBottle(t, "alice", "", "exec", c.bottle, "--", "true")
			if code != 1 || !strings.Contains(errOut, c.want) {
				t.Fatalf("exit %d, stderr %q; want 1 and %q", code, errOut, c.want)
			}
		})
	}
}

func TestAttachRunsClaudeAsExecUser(t *testing.T) {
	s := needSuite(t)
	g := NewWithT(t)
	out := &testutil.SyncBuffer{}
	sizes := make(sizeQueue, 1)
	sizes <- remotecommand.TerminalSize{Width: 100, Height: 30}
	err := (&kubectlbottle.Session{
		Namespace: testNamespace, Name: "local", Subresource: "attach",
		Command: []string{"--model", "x y"},
		Stdin:   strings.NewReader(""), Stdout: out, TTY: true, SizeQueue: sizes,
	}).Stream(context.Background(), as(s, "alice"))
	g.Expect(err).NotTo(HaveOccurred(), out.String())
	got := strings.ReplaceAll(out.String(), "\r\n", "\n")
	g.Expect(got).To(ContainSubstring("arg:--append-system-prompt-file\narg:" + promptPath + "\narg:--model\narg:x y\n"))
	g.Expect(got).To(ContainSubstring("user:node\n"))
	g.Expect(got).To(ContainSubstring("stdin:tty\n"))
}

func TestTTYResize(t *testing.T) {
	s := needSuite(t)
	g := NewWithT(t)
	stdin, typing := io.Pipe()
	out := &testutil.SyncBuffer{}
	sizes := make(sizeQueue, 2)
	sizes <- remotecommand.TerminalSize{Width: 100, Height: 30}
	done := make(chan error, 1)
	go func() {
		done <- (&kubectlbottle.Session{
			Namespace: testNamespace, Name: "local", Subresource: "exec",
			Command: []string{"sh", "-c", "stty size; while read x; do stty size; done"},
			Stdin:   stdin, Stdout: out, TTY: true, SizeQueue: sizes,
		}).Stream(context.Background(), as(s, "alice"))
	}()
	g.Eventually(out.String).WithTimeout(20 * time.Second).Should(ContainSubstring("30 100"))

	sizes <- remotecommand.TerminalSize{Width: 120, Height: 40}
	// Resize and keystrokes travel separately; keep asking until the guest
	// reports the new size.
	g.Eventually(func() string {
		_, _ = typing.Write([]byte("\n"))
		return out.String()
	}).WithTimeout(10 * time.Second).WithPolling(200 * time.Millisecond).Should(ContainSubstring("40 120"))
	_ = typing.Close() // EOF (^D on the pty) ends the loop
	close(sizes)
	g.Eventually(done).WithTimeout(10 * time.Second).Should(Receive(BeNil()))
}

func TestIdleSessionOutlivesKeepAlivePeriods(t *testing.T) {
	s := needSuite(t)
	g := NewWithT(t)
	stdin, typing := io.Pipe()
	out := &testutil.SyncBuffer{}
	done := make(chan error, 1)
	pongsBefore := s.pongsA.Load()
	start := time.Now()
	go func() {
		done <- (&kubectlbottle.Session{
			Namespace: testNamespace, Name: "local", Subresource: "exec",
			Command: []string{"sh", "-c", `read x; echo "got $x"`},
			Stdin:   stdin, Stdout: out, Stderr: io.Discard,
		}).Stream(context.Background(), as(s, "alice"))
	}()
	// Nothing is sent either way; the session must survive more than
	// missedPings periods of silence, which only the pongs answering the
	// server's pings allow.
	g.Eventually(func(g Gomega) {
		select {
		case err := <-done:
			StopTrying(fmt.Sprintf("the idle session ended early: %v (output %q)", err, out.String())).Now()
		default:
		}
		g.Expect(s.pongsA.Load() - pongsBefore).To(BeNumerically(">=", missedPings+2))
	}).WithTimeout(30 * time.Second).Should(Succeed())
	// Not vacuous: the session was silent for longer than the server
	// tolerates without pongs.
	g.Expect(time.Since(start)).To(BeNumerically(">", missedPings*testKeepAlive))
	_, _ = typing.Write([]byte("go\n"))
	g.Eventually(done).WithTimeout(10 * time.Second).Should(Receive(BeNil()))
	g.Expect(out.String()).To(Equal("got go\n"))
}

func TestRemoteNodeStreamsThroughItsAgent(t *testing.T) {
	// remote-1 exists only in node-b's simulator: success means node-a's
	// gateway proxied the session to node-b's agent over mTLS.
	code, out, errOut := kubectlBottle(t, "alice", "ping\n",
		"exec", "remote", "-i", "--", "sh", "-c", `read x; echo "$x from $(hostname)"; echo e >&2; exit 3`)
	if code != 3 || !strings.HasPrefix(out, "ping from ") || errOut != "e\n" {
		t.Fatalf("remote exec = exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestAgentEndpointRequiresExecCAClientCert(t *testing.T) {
	s := needSuite(t)
	url := "https://" + s.addrB + agentPathPrefix + "/namespaces/" + testNamespace + "/bottles/remote/exec?command=id"
	frontProxy, err := s.bundle.FrontProxyClient.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	agentClient, err := s.bundle.AgentClient.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name        string
		clientCerts []tls.Certificate
		want        int
	}{
		{"no client certificate", nil, http.StatusUnauthorized},
		{"front-proxy certificate (another CA)", []tls.Certificate{frontProxy}, http.StatusUnauthorized},
		// Authenticated: refused only because this is not a WebSocket.
		{"gateway certificate", []tls.Certificate{agentClient}, http.StatusBadRequest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code := get(t, url, &tls.Config{RootCAs: s.bundle.ExecCA.Pool(), ServerName: certs.AgentServerName, Certificates: c.clientCerts})
			if code != c.want {
				t.Fatalf("status %d, want %d", code, c.want)
			}
		})
	}
	t.Run("gateway without front-proxy certificate", func(t *testing.T) {
		gw := "https://" + s.addrA + "/apis/" + v1.SubresourceGroupVersion.String() + "/namespaces/" + testNamespace + "/bottles/local/exec?command=id"
		code := get(t, gw, &tls.Config{RootCAs: s.bundle.ExecCA.Pool(), ServerName: "localhost", Certificates: []tls.Certificate{agentClient}})
		if code != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", code)
		}
	})
}

func TestDiscovery(t *testing.T) {
	s := needSuite(t)
	dc := discovery.NewDiscoveryClientForConfigOrDie(s.cfg)
	list, err := dc.ServerResourcesForGroupVersion(v1.SubresourceGroupVersion.String())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, r := range list.APIResources {
		got[r.Name] = r.Verbs
	}
	for _, name := range []string{"bottles/exec", "bottles/attach"} {
		if v := got[name]; len(v) != 2 || v[0] != "get" || v[1] != "create" {
			t.Errorf("%s verbs = %v, want [get create] (all: %v)", name, v, got)
		}
	}
	for _, name := range []string{"bottles/log", "bottleruns/log", "bottletemplates/log"} {
		if v := got[name]; len(v) != 1 || v[0] != "get" {
			t.Errorf("%s verbs = %v, want [get] (all: %v)", name, v, got)
		}
	}
}

func get(t *testing.T, url string, cfg *tls.Config) int {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		var tlsErr *tls.CertificateVerificationError
		if errors.As(err, &tlsErr) {
			t.Fatalf("server certificate: %v", err)
		}
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// sizeQueue feeds terminal sizes; closing it ends the resize stream.
type sizeQueue chan remotecommand.TerminalSize

func (q sizeQueue) Next() *remotecommand.TerminalSize {
	s, ok := <-q
	if !ok {
		return nil
	}
	return &s
}

func TestServingCertificateRotation(t *testing.T) {
	s := needSuite(t)
	g := NewWithT(t)
	serial := func() string {
		conn, err := tls.Dial("tcp", s.addrA, &tls.Config{RootCAs: s.bundle.ExecCA.Pool(), ServerName: certs.AgentServerName})
		if err != nil {
			return "dial: " + err.Error()
		}
		defer func() { _ = conn.Close() }()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	before := serial()
	// Same CA, new leaves, written over the files the servers were started
	// with: no restart, and the APIService caBundle stays valid.
	if _, err := certs.Rotate(filepath.Dir(s.files.Serving), certs.Options{FrontProxy: true}); err != nil {
		t.Fatal(err)
	}
	g.Eventually(serial).WithTimeout(90 * time.Second).ShouldNot(Equal(before))
	g.Expect(serial()).NotTo(HavePrefix("dial:"))
	// Sessions through the aggregator and to the other agent still work.
	code, out, errOut := kubectlBottle(t, "alice", "", "exec", "remote", "--", "echo", "rotated")
	g.Expect(code).To(Equal(0), errOut)
	g.Expect(out).To(Equal("rotated\n"))
}
