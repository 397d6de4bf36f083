package execapi

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/net/netutil"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// Server is the exec API of one node: gateway behind the APIService, and
// agent for the Bottles of its node. It is a controller-runtime Runnable.
type Server struct {
	opts   Options
	reader client.Reader
	kube   kubernetes.Interface
	log    logr.Logger

	frontProxy  *frontProxy
	serving     *dynamiccertificates.DynamicCertKeyPairContent
	agentCA     *dynamiccertificates.DynamicFileCAContent
	agentClient *dynamiccertificates.DynamicCertKeyPairContent
	servingTLS  certCache
	sessions    *sessionLimiter

	mu      sync.Mutex
	baseCtx context.Context
	addr    net.Addr
	ready   chan struct{}

	onPong func() // test hook
	// agentResponseTimeout, when set, replaces agentResponseTimeout (tests).
	agentResponseTimeout time.Duration
}

// NewServer checks opts and loads the certificate files. reader must read
// Bottles of every node and Nodes from the API server: pass the manager's
// GetAPIReader(), not its node-scoped cache.
func NewServer(cfg *rest.Config, reader client.Reader, opts Options) (*Server, error) {
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("exec API: %w", err)
	}
	if reader == nil {
		return nil, errors.New("exec API: a client.Reader is required")
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	s := &Server{opts: opts, reader: reader, kube: kube, log: opts.Logger, ready: make(chan struct{}),
		sessions: newSessionLimiter(opts.NodeName, opts.MaxSessions, opts.MaxSessionsPerUser)}
	if s.frontProxy, err = newFrontProxy(kube); err != nil {
		return nil, err
	}
	if s.serving, err = dynamiccertificates.NewDynamicServingContentFromFiles("exec-serving", opts.ServingCertFile, opts.ServingKeyFile); err != nil {
		return nil, fmt.Errorf("exec API serving certificate: %w", err)
	}
	if s.agentCA, err = dynamiccertificates.NewDynamicCAContentFromFile("exec-agent-ca", opts.AgentCAFile); err != nil {
		return nil, fmt.Errorf("exec API agent CA: %w", err)
	}
	if s.agentClient, err = dynamiccertificates.NewDynamicServingContentFromFiles("exec-agent-client", opts.AgentClientCertFile, opts.AgentClientKeyFile); err != nil {
		return nil, fmt.Errorf("exec API agent client certificate: %w", err)
	}
	return s, nil
}

// NeedLeaderElection is false: every node's agent serves its own Bottles.
func (s *Server) NeedLeaderElection() bool { return false }

// Addr is the address the server listens on, once Ready is closed.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Ready is closed when the server accepts connections.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Start serves until ctx ends. Open sessions are cancelled with ctx.
func (s *Server) Start(ctx context.Context) error {
	if err := s.frontProxy.run(ctx); err != nil {
		// Not fatal: the ConfigMap is watched and requests get 401 until it
		// is right.
		s.log.Info("front-proxy settings not loaded yet; requests are rejected until they are", "reason", err.Error())
	}
	for _, c := range []dynamiccertificates.ControllerRunner{s.serving, s.agentCA, s.agentClient} {
		go c.Run(ctx, 1)
	}

	ln := s.opts.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", s.opts.BindAddress); err != nil {
			return fmt.Errorf("exec API: %w", err)
		}
	}
	s.mu.Lock()
	s.addr = ln.Addr()
	s.baseCtx = ctx
	s.mu.Unlock()

	// The port is open to the network (hostPort): bound the connections,
	// and close those idle between requests, before anyone authenticates.
	tlsLn := tls.NewListener(netutil.LimitListener(ln, s.opts.MaxConnections), &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: s.getCertificate,
		// The front-proxy and the agent endpoints verify different CAs,
		// and the front-proxy CA can change at any time: certificates are
		// verified per request (authn.go), never accepted unverified.
		ClientAuth: tls.RequestClientCert,
		// WebSocket upgrades need HTTP/1.1.
		NextProtos: []string{"http/1.1"},
	})
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       s.opts.IdleTimeout,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          s.stdLogger("http"),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(tlsLn) }()
	close(s.ready)
	s.log.Info("exec API listening", "address", ln.Addr().String(), "node", s.opts.NodeName)

	select {
	case err := <-errc:
		return fmt.Errorf("exec API: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx)
	return nil
}

// Handler routes the API. Only /healthz is open; the rest needs the
// front-proxy certificate or the agent client certificate.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", serveHealthz)
	gv := "/apis/" + v1.SubresourceGroupVersion.String()
	mux.Handle("GET /apis", s.authenticated(http.HandlerFunc(serveGroupList)))
	mux.Handle("GET /apis/"+v1.SubresourceGroup, s.authenticated(http.HandlerFunc(serveGroup)))
	mux.Handle("GET "+gv, s.authenticated(http.HandlerFunc(serveResources)))
	for _, sr := range subresources {
		mux.Handle(sr.pattern(gv), s.authenticated(sr.bind(s, sr.gateway)))
		mux.Handle(sr.pattern(agentPathPrefix), s.agentCaller(sr.bind(s, sr.agent)))
	}
	// Any other Bottle subresource: a Status naming the ones there are.
	mux.Handle(gv+"/namespaces/{namespace}/"+v1.BottleResource+"/{name}/{subresource}", s.authenticated(http.HandlerFunc(serveUnknownSubresource)))
	mux.Handle(agentPathPrefix+"/namespaces/{namespace}/"+v1.BottleResource+"/{name}/{subresource}", s.agentCaller(http.HandlerFunc(serveUnknownSubresource)))
	mux.HandleFunc("/", serveNotFound)
	return mux
}

func (s *Server) baseContext() context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.baseCtx == nil {
		return context.Background()
	}
	return s.baseCtx
}

func (s *Server) agentPort() int {
	if s.opts.AgentPort != 0 {
		return s.opts.AgentPort
	}
	if a, ok := s.Addr().(*net.TCPAddr); ok {
		return a.Port
	}
	_, p, _ := net.SplitHostPort(s.opts.BindAddress)
	n, _ := strconv.Atoi(p)
	return n
}

func (s *Server) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.servingTLS.get(s.serving.CurrentCertKeyContent())
}

// certCache parses a key pair once per content change, not per handshake.
type certCache struct {
	mu        sync.Mutex
	cert, key []byte
	parsed    *tls.Certificate
}

func (c *certCache) get(cert, key []byte) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.parsed != nil && bytes.Equal(cert, c.cert) && bytes.Equal(key, c.key) {
		return c.parsed, nil
	}
	pair, err := tls.X509KeyPair(cert, key)
	if err != nil {
		return nil, err
	}
	c.cert, c.key, c.parsed = cert, key, &pair
	return c.parsed, nil
}

// stdLogger sends net/http's own messages (TLS handshake errors, proxy
// copy errors) to the logr logger at V(1).
func (s *Server) stdLogger(name string) *stdlog.Logger {
	l := s.log.WithName(name)
	return stdlog.New(logWriter(func(msg string) { l.V(1).Info(msg) }), "", 0)
}

type logWriter func(string)

func (f logWriter) Write(p []byte) (int, error) {
	f(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
