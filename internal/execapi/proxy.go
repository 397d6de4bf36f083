package execapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

const agentDialTimeout = 10 * time.Second

// agentResponseTimeout bounds the wait for the agent's response headers: an
// agent that accepts and never answers would otherwise hold the gateway's
// request, and its listener slot, for good. Sessions upgrade and logs
// answer at once; their streams are not bounded by it.
const agentResponseTimeout = 30 * time.Second

// proxyToAgent forwards the (already authorized) session to the agent of
// node. httputil.ReverseProxy carries the WebSocket upgrade and then copies
// bytes both ways, so the agent's keepalive pings reach the client.
func (s *Server) proxyToAgent(w http.ResponseWriter, r *http.Request, node string, sr *sessionRequest, requester string) {
	addr, err := s.agentAddress(r.Context(), node)
	if err != nil {
		writeAPIStatus(w, err)
		return
	}
	tlsConfig, err := s.agentTLSConfig()
	if err != nil {
		writeAPIStatus(w, statusError(http.StatusServiceUnavailable, metav1.StatusReasonServiceUnavailable,
			"the agent on node %q is unreachable: %v", node, err))
		return
	}
	target := &url.URL{
		Scheme:   "https",
		Host:     addr,
		Path:     fmt.Sprintf("%s/namespaces/%s/%s/%s/%s", agentPathPrefix, sr.namespace, sr.parent(), sr.name, sr.subresource),
		RawQuery: r.URL.RawQuery,
	}
	// A transport per session: its TLS config holds the CA and client
	// certificate current now, so rotated files take effect at once.
	transport := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: agentDialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsConfig,
		TLSHandshakeTimeout:   agentDialTimeout,
		ResponseHeaderTimeout: s.responseTimeout(),
		DisableKeepAlives:     true,
	}
	defer transport.CloseIdleConnections()
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL = target
			pr.Out.Host = ""
			pr.Out.Header.Set(requesterHeader, requester)
		},
		Transport:     transport,
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			s.log.Info("node agent unreachable", "node", node, "address", addr, "reason", err.Error())
			writeAPIStatus(w, statusError(http.StatusBadGateway, metav1.StatusReasonServiceUnavailable,
				"the agent on node %q is unreachable (%s): %v", node, addr, err))
		},
		ErrorLog: s.stdLogger("proxy"),
	}
	rp.ServeHTTP(w, r)
}

// agentAddress is host:port of node's agent: the override map, else the
// Node's InternalIP and the agent port.
func (s *Server) agentAddress(ctx context.Context, node string) (string, error) {
	if addr, ok := s.opts.AgentAddresses[node]; ok {
		return addr, nil
	}
	n := &corev1.Node{}
	if err := s.reader.Get(ctx, types.NamespacedName{Name: node}, n); err != nil {
		if apierrors.IsNotFound(err) {
			return "", statusError(http.StatusServiceUnavailable, metav1.StatusReasonServiceUnavailable,
				"the bottle's node %q does not exist", node)
		}
		return "", statusError(http.StatusServiceUnavailable, metav1.StatusReasonServiceUnavailable,
			"cannot look up node %q: %v", node, err)
	}
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP && a.Address != "" {
			return net.JoinHostPort(a.Address, strconv.Itoa(s.agentPort())), nil
		}
	}
	return "", statusError(http.StatusServiceUnavailable, metav1.StatusReasonServiceUnavailable,
		"node %q has no InternalIP to reach its agent at", node)
}

// agentTLSConfig authenticates both ways: the agent must present a
// certificate for AgentServerName from the agent CA, and we present our
// client certificate from the same CA.
func (s *Server) agentTLSConfig() (*tls.Config, error) {
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(s.agentCA.CurrentCABundleContent()) {
		return nil, errors.New("no agent CA loaded")
	}
	certPEM, keyPEM := s.agentClient.CurrentCertKeyContent()
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("agent client certificate: %w", err)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		RootCAs:      roots,
		ServerName:   s.opts.AgentServerName,
		Certificates: []tls.Certificate{cert},
		// Upgrades need HTTP/1.1.
		NextProtos: []string{"http/1.1"},
	}, nil
}

func (s *Server) responseTimeout() time.Duration {
	if s.agentResponseTimeout > 0 {
		return s.agentResponseTimeout
	}
	return agentResponseTimeout
}
