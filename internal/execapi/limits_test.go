package execapi

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bot-bottle/bottle-controller/internal/certs"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

func TestSessionLimiter(t *testing.T) {
	g := NewWithT(t)
	l := newSessionLimiter("node-a", 3, 2)
	a1, err := l.acquire("alice")
	g.Expect(err).NotTo(HaveOccurred())
	_, err = l.acquire("alice")
	g.Expect(err).NotTo(HaveOccurred())

	_, err = l.acquire("alice")
	g.Expect(apierrors.IsTooManyRequests(err)).To(BeTrue(), "third session of alice: %v", err)
	g.Expect(err).To(MatchError(ContainSubstring(`user "alice" already has 2 sessions (exec, attach, log follows) open through node "node-a"`)))
	secs, ok := apierrors.SuggestsClientDelay(err)
	g.Expect(ok).To(BeTrue())
	g.Expect(secs).To(Equal(sessionRetryAfter))

	b1, err := l.acquire("bob")
	g.Expect(err).NotTo(HaveOccurred())
	_, err = l.acquire("carol")
	g.Expect(apierrors.IsTooManyRequests(err)).To(BeTrue())
	g.Expect(err).To(MatchError(ContainSubstring(`node "node-a" already serves 3 sessions (exec, attach, log follows)`)))

	// Releasing twice frees one slot only.
	a1()
	a1()
	c1, err := l.acquire("carol")
	g.Expect(err).NotTo(HaveOccurred())
	_, err = l.acquire("carol")
	g.Expect(apierrors.IsTooManyRequests(err)).To(BeTrue())
	b1()
	c1()
	g.Expect(l.total).To(Equal(1))
	g.Expect(l.byUser).To(Equal(map[string]int{"alice": 1}))
}

// noMachines runs nothing: these tests never reach a session.
type noMachines struct{}

func (noMachines) ExecInteractive(context.Context, smolvm.ExecRequest, smolvm.Streams) (int, error) {
	return 0, errors.New("no machines here")
}

// noReader reads nothing: the tests that use it never get that far.
type noReader struct{}

func (noReader) Get(context.Context, client.ObjectKey, client.Object, ...client.GetOption) error {
	return errors.New("no API server in this test")
}

func (noReader) List(context.Context, client.ObjectList, ...client.ListOption) error {
	return errors.New("no API server in this test")
}

// standaloneServer starts a Server that talks to no API server (nothing
// these tests do needs one) with the options changed by mutate.
func standaloneServer(t *testing.T, mutate func(*Options)) (*Server, *certs.Bundle) {
	t.Helper()
	bundle, err := certs.Generate(certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "certs")
	if err := bundle.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	f := certs.FilesIn(dir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed, err := closedPort()
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{
		NodeName: "node-a", Listener: ln,
		ServingCertFile: f.Serving, ServingKeyFile: f.ServingKey,
		AgentCAFile: f.ExecCA, AgentClientCertFile: f.AgentClient, AgentClientKeyFile: f.AgentClientKey,
		Machines: noMachines{},
	}
	if mutate != nil {
		mutate(&opts)
	}
	srv, err := NewServer(&rest.Config{Host: "https://" + closed}, noReader{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Start(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	<-srv.Ready()
	return srv, bundle
}

func dialTLS(addr string, bundle *certs.Bundle, clientCerts ...tls.Certificate) (*tls.Conn, error) { //nolint:unparam // a client certificate is optional by design
	d := &net.Dialer{Timeout: 10 * time.Second}
	return tls.DialWithDialer(d, "tcp", addr, &tls.Config{
		RootCAs: bundle.ExecCA.Pool(), ServerName: certs.AgentServerName,
		Certificates: clientCerts, NextProtos: []string{"http/1.1"},
	})
}

// closedByPeer reports whether the server has closed conn, waiting at most
// a moment for it.
func closedByPeer(conn net.Conn) bool {
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	var b [1]byte
	_, err := conn.Read(b[:])
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed)
}

// TestIdleConnectionsClose: keep-alive connections that went idle after a
// request are closed after IdleTimeout (50 of 50 stayed open before).
func TestIdleConnectionsClose(t *testing.T) {
	g := NewWithT(t)
	srv, bundle := standaloneServer(t, func(o *Options) { o.IdleTimeout = 300 * time.Millisecond })
	var conns []*tls.Conn
	for i := 0; i < 50; i++ {
		conn, err := dialTLS(srv.Addr().String(), bundle)
		g.Expect(err).NotTo(HaveOccurred())
		defer func() { _ = conn.Close() }()
		_, err = fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		g.Expect(err).NotTo(HaveOccurred())
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
		g.Expect(resp.Close).To(BeFalse(), "the server keeps the connection alive")
		_ = resp.Body.Close()
		conns = append(conns, conn)
	}
	for i, conn := range conns {
		g.Eventually(func() bool { return closedByPeer(conn) }).WithTimeout(10*time.Second).
			Should(BeTrue(), "connection %d is still open", i)
	}
}

// TestSlowHeadersAreCutOff: a connection whose request headers do not all
// arrive within 10 s is closed (docs/security.md: connections cannot be
// hoarded by sending headers a byte at a time).
func TestSlowHeadersAreCutOff(t *testing.T) {
	g := NewWithT(t)
	srv, bundle := standaloneServer(t, nil)
	conn, err := dialTLS(srv.Addr().String(), bundle)
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = conn.Close() }()
	// A request line and one header, never the blank line that ends them.
	_, err = fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n")
	g.Expect(err).NotTo(HaveOccurred())
	start := time.Now()
	g.Eventually(func() bool { return closedByPeer(conn) }).WithTimeout(30*time.Second).WithPolling(100*time.Millisecond).
		Should(BeTrue(), "a connection still sending its headers is kept open")
	g.Expect(time.Since(start)).To(BeNumerically(">", 5*time.Second), "closed long before the header deadline: another limit did it")
}

// TestConnectionLimit: past MaxConnections, a new connection is not served
// until another closes.
func TestConnectionLimit(t *testing.T) {
	g := NewWithT(t)
	srv, bundle := standaloneServer(t, func(o *Options) { o.MaxConnections = 2 })
	addr := srv.Addr().String()
	first, err := dialTLS(addr, bundle)
	g.Expect(err).NotTo(HaveOccurred())
	second, err := dialTLS(addr, bundle)
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = second.Close() }()

	third := make(chan error, 1)
	go func() {
		conn, err := dialTLS(addr, bundle)
		if err == nil {
			defer func() { _ = conn.Close() }()
		}
		third <- err
	}()
	// The handshake needs the server to accept, which it does not while
	// two connections are open.
	g.Consistently(third).WithTimeout(500 * time.Millisecond).ShouldNot(Receive())
	_ = first.Close()
	g.Eventually(third).WithTimeout(10 * time.Second).Should(Receive(BeNil()))
}

// TestAgentEndpointRequiresGatewayIdentity: a client certificate of the exec
// CA with another common name is refused before anything is read.
func TestAgentEndpointRequiresGatewayIdentity(t *testing.T) {
	g := NewWithT(t)
	srv, bundle := standaloneServer(t, nil)
	intruder, err := bundle.ExecCA.IssueClient("node-b-agent", nil, time.Hour)
	g.Expect(err).NotTo(HaveOccurred())
	cert, err := tls.X509KeyPair(intruder.CertPEM, intruder.KeyPEM)
	g.Expect(err).NotTo(HaveOccurred())
	url := "https://" + srv.Addr().String() + agentPathPrefix + "/namespaces/team/bottles/local/exec?command=id"
	code := get(t, url, &tls.Config{RootCAs: bundle.ExecCA.Pool(), ServerName: certs.AgentServerName, Certificates: []tls.Certificate{cert}})
	g.Expect(code).To(Equal(http.StatusUnauthorized))
}

// TestGatewayGivesUpOnASilentAgent: an agent that completes TLS and never
// answers gets the gateway's 502 once the response timeout passes, instead
// of holding the request (and its connection slot) for good.
func TestGatewayGivesUpOnASilentAgent(t *testing.T) {
	g := NewWithT(t)
	var silent net.Listener
	srv, bundle := standaloneServer(t, func(o *Options) {
		var err error
		silent, err = net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		o.AgentAddresses = map[string]string{"node-silent": silent.Addr().String()}
	})
	cert, err := tls.X509KeyPair(bundle.Serving.CertPEM, bundle.Serving.KeyPEM)
	g.Expect(err).NotTo(HaveOccurred())
	tl := tls.NewListener(silent, &tls.Config{Certificates: []tls.Certificate{cert}})
	defer func() { _ = tl.Close() }()
	go func() {
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			// Handshake, then say nothing.
			_ = c.(*tls.Conn).Handshake()
			defer func() { _ = c.Close() }()
		}
	}()
	srv.agentResponseTimeout = 300 * time.Millisecond
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/apis/x/namespaces/team/bottles/b/log", nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.proxyToAgent(rec, req, "node-silent", &sessionRequest{namespace: "team", name: "b", subresource: "log"}, "alice")
	}()
	g.Eventually(done).WithTimeout(10*time.Second).Should(BeClosed(), "the gateway still waits for a silent agent")
	g.Expect(rec.Code).To(Equal(http.StatusBadGateway))
	g.Expect(rec.Body.String()).To(ContainSubstring("timeout awaiting response headers"))
}
