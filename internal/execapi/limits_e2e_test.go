package execapi

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"

	"github.com/bot-bottle/bottle-controller/internal/certs"
	"github.com/bot-bottle/bottle-controller/internal/kubectlbottle"
	"github.com/bot-bottle/bottle-controller/internal/testutil"
)

// TestSessionCapAnswers429: a user holding the per-user number of sessions
// gets 429 Too Many Requests through the API server, for a local and for a
// proxied Bottle, and a session again once one ends.
func TestSessionCapAnswers429(t *testing.T) {
	s := needSuite(t)
	g := NewWithT(t)
	type open struct {
		typing *io.PipeWriter
		done   chan error
	}
	start := func(bottle string) open {
		stdin, typing := io.Pipe()
		out := &testutil.SyncBuffer{}
		done := make(chan error, 1)
		go func() {
			done <- (&kubectlbottle.Session{
				Namespace: testNamespace, Name: bottle, Subresource: "exec",
				Command: []string{"sh", "-c", "echo up; read x"},
				Stdin:   stdin, Stdout: out, Stderr: io.Discard,
			}).Stream(context.Background(), as(s, "alice"))
		}()
		g.Eventually(out.String).WithTimeout(20*time.Second).Should(Equal("up\n"), "session %s did not start", bottle)
		return open{typing: typing, done: done}
	}
	var sessions []open
	for i := 0; i < testSessionsPerUser; i++ {
		sessions = append(sessions, start("local"))
	}
	for _, bottle := range []string{"local", "remote"} {
		err := (&kubectlbottle.Session{Namespace: testNamespace, Name: bottle, Subresource: "exec",
			Command: []string{"true"}, Stdout: io.Discard}).Stream(context.Background(), as(s, "alice"))
		g.Expect(apierrors.IsTooManyRequests(err)).To(BeTrue(), "session %d on %s: %v", testSessionsPerUser+1, bottle, err)
		g.Expect(err).To(MatchError(ContainSubstring(`user "alice" already has 3 sessions (exec, attach, log follows) open through node "node-a"`)))
	}
	// Another user is not affected.
	code, out, _ := kubectlBottle(t, "bob", "", "exec", "local", "--", "echo", "bob")
	g.Expect(code).To(BeZero())
	g.Expect(out).To(Equal("bob\n"))

	// One ends: alice may open another.
	_, _ = sessions[0].typing.Write([]byte("bye\n"))
	g.Eventually(sessions[0].done).WithTimeout(10 * time.Second).Should(Receive(BeNil()))
	g.Eventually(func() int {
		code, _, _ := kubectlBottle(t, "alice", "", "exec", "local", "--", "true")
		return code
	}).WithTimeout(10 * time.Second).Should(BeZero())
	for _, o := range sessions[1:] {
		_, _ = o.typing.Write([]byte("bye\n"))
		g.Eventually(o.done).WithTimeout(10 * time.Second).Should(Receive(BeNil()))
	}
}

// TestAgentRefusesBottlesOfOtherNodes: node-b's agent endpoint, called with
// the gateway's own certificate, refuses a Bottle bound to node-a.
func TestAgentRefusesBottlesOfOtherNodes(t *testing.T) {
	s := needSuite(t)
	gateway, err := tls.X509KeyPair(s.bundle.AgentClient.CertPEM, s.bundle.AgentClient.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	url := "https://" + s.addrB + agentPathPrefix + "/namespaces/" + testNamespace + "/bottles/local/exec?command=id"
	code := get(t, url, &tls.Config{RootCAs: s.bundle.ExecCA.Pool(), ServerName: certs.AgentServerName, Certificates: []tls.Certificate{gateway}})
	if code != http.StatusConflict {
		t.Fatalf("node-b's agent answered %d for node-a's Bottle, want 409", code)
	}
}

// TestLogFollowsTakeSessionSlots: a follow holds a connection for as long
// as its step runs, so it takes a session slot: a user with the per-user
// number of follows open gets 429 for one more follow and for an exec,
// while plain reads still work (40 follows of one user were all served).
func TestLogFollowsTakeSessionSlots(t *testing.T) {
	s := needSuite(t)
	g := NewWithT(t)
	uid := bottleUID(t, "withenv")
	w, err := s.logsA.Begin(uid, "slow")
	g.Expect(err).NotTo(HaveOccurred())
	_, _ = w.Write([]byte("line\n"))
	follow := func(out io.Writer) error {
		return (&kubectlbottle.LogRequest{Namespace: testNamespace, Name: "withenv", Step: "slow", Follow: true, TailLines: -1}).
			Stream(context.Background(), as(s, "alice"), out)
	}
	var done []chan error
	for i := 0; i < testSessionsPerUser; i++ {
		out := &testutil.SyncBuffer{}
		d := make(chan error, 1)
		go func() { d <- follow(out) }()
		g.Eventually(out.String).WithTimeout(20*time.Second).Should(Equal("line\n"), "follow %d did not start", i)
		done = append(done, d)
	}
	// One more, without client-go's retries of a 429 (ten, 5 s apart).
	kube, err := kubernetes.NewForConfig(as(s, "alice"))
	g.Expect(err).NotTo(HaveOccurred())
	_, err = kube.CoreV1().RESTClient().Get().
		AbsPath("/apis", v1.SubresourceGroupVersion.String(), "namespaces", testNamespace, "bottles", "withenv", "log").
		Param("step", "slow").Param("follow", "true").MaxRetries(0).Stream(context.Background())
	g.Expect(apierrors.IsTooManyRequests(err)).To(BeTrue(), "follow %d: %v", testSessionsPerUser+1, err)
	g.Expect(err).To(MatchError(ContainSubstring(`user "alice" already has 3 sessions (exec, attach, log follows)`)))
	err = (&kubectlbottle.Session{Namespace: testNamespace, Name: "local", Subresource: "exec",
		Command: []string{"true"}, Stdout: io.Discard}).Stream(context.Background(), as(s, "alice"))
	g.Expect(apierrors.IsTooManyRequests(err)).To(BeTrue(), "exec with every slot held by follows: %v", err)
	code, out, _ := kubectlBottle(t, "alice", "", "logs", "withenv", "--step", "slow")
	g.Expect(code).To(BeZero())
	g.Expect(out).To(Equal("line\n"), "a plain read takes no slot")

	_ = w.Close() // the step ends: so do its follows, and their slots
	for _, d := range done {
		g.Eventually(d).WithTimeout(20 * time.Second).Should(Receive(BeNil()))
	}
	g.Eventually(func() int {
		code, _, _ := kubectlBottle(t, "alice", "", "exec", "local", "--", "true")
		return code
	}).WithTimeout(10 * time.Second).Should(BeZero())
}
