package execapi

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/http"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/request/headerrequest"
	"k8s.io/apiserver/pkg/authentication/user"
	genericrequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/client-go/kubernetes"
)

// The ConfigMap the kube-apiserver publishes its front-proxy settings in.
const (
	authConfigMapNamespace = "kube-system"
	authConfigMapName      = "extension-apiserver-authentication"
)

// frontProxy authenticates the aggregator: a client certificate signed by
// the requestheader CA (and, when the list is set, with an allowed common
// name), then the user from the X-Remote-* headers. All of it is read from
// the ConfigMap and followed as it changes, exactly as an aggregated
// apiserver built on k8s.io/apiserver does.
type frontProxy struct {
	ca      *dynamiccertificates.ConfigMapCAController
	headers *headerrequest.RequestHeaderAuthRequestController
	auth    authenticator.Request
}

func newFrontProxy(kube kubernetes.Interface) (*frontProxy, error) {
	ca, err := dynamiccertificates.NewDynamicCAFromConfigMapController(
		"front-proxy-ca", authConfigMapNamespace, authConfigMapName, "requestheader-client-ca-file", kube)
	if err != nil {
		return nil, err
	}
	headers := headerrequest.NewRequestHeaderAuthRequestController(
		authConfigMapName, authConfigMapNamespace, kube,
		"requestheader-username-headers",
		"requestheader-uid-headers",
		"requestheader-group-headers",
		"requestheader-extra-headers-prefix",
		"requestheader-allowed-names",
	)
	f := &frontProxy{ca: ca, headers: headers}
	f.auth = headerrequest.NewDynamicVerifyOptionsSecure(
		ca.VerifyOptions,
		headerrequest.StringSliceProviderFunc(headers.AllowedClientNames),
		headerrequest.StringSliceProviderFunc(headers.UsernameHeaders),
		headerrequest.StringSliceProviderFunc(headers.UIDHeaders),
		headerrequest.StringSliceProviderFunc(headers.GroupHeaders),
		headerrequest.StringSliceProviderFunc(headers.ExtraHeaderPrefixes),
	)
	return f, nil
}

// run primes both controllers (a failure is returned but not fatal: they
// keep watching, and until the ConfigMap is right every request is 401),
// then follows the ConfigMap until ctx ends.
func (f *frontProxy) run(ctx context.Context) error {
	err := f.ca.RunOnce(ctx)
	if err2 := f.headers.RunOnce(ctx); err == nil {
		err = err2
	}
	go f.ca.Run(ctx, 1)
	go f.headers.Run(ctx, 1)
	return err
}

// authenticated requires a verified front-proxy identity and puts the user
// into the request context.
func (s *Server) authenticated(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, ok, err := s.frontProxy.auth.AuthenticateRequest(r)
		if err != nil || !ok {
			if err != nil {
				s.log.V(1).Info("rejected a request without a valid front-proxy certificate", "remote", r.RemoteAddr, "reason", err.Error())
			}
			writeAPIStatus(w, statusError(http.StatusUnauthorized, metav1.StatusReasonUnauthorized,
				"Unauthorized: this API is served through the kube-apiserver's aggregation layer only"))
			return
		}
		next.ServeHTTP(w, r.WithContext(genericrequest.WithUser(r.Context(), resp.User)))
	})
}

func userFrom(r *http.Request) user.Info {
	u, _ := genericrequest.UserFrom(r.Context())
	return u
}

// agentCaller requires a client certificate issued by the agent CA: the
// agent endpoint trusts the gateway's authorization, so nothing else may
// reach it.
func (s *Server) agentCaller(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.verifyAgentClient(r); err != nil {
			s.log.V(1).Info("rejected an agent request", "remote", r.RemoteAddr, "reason", err.Error())
			writeAPIStatus(w, statusError(http.StatusUnauthorized, metav1.StatusReasonUnauthorized,
				"Unauthorized: the agent endpoint requires the gateway's client certificate from the exec CA"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

type unauthenticatedError string

func (e unauthenticatedError) Error() string { return string(e) }

func (s *Server) verifyAgentClient(r *http.Request) error {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return unauthenticatedError("no client certificate")
	}
	opts, ok := s.agentCA.VerifyOptions() // KeyUsages: client auth
	if !ok {
		return unauthenticatedError("no agent CA loaded")
	}
	if len(r.TLS.PeerCertificates) > 1 {
		opts.Intermediates = x509.NewCertPool()
		for _, c := range r.TLS.PeerCertificates[1:] {
			opts.Intermediates.AddCert(c)
		}
	}
	leaf := r.TLS.PeerCertificates[0]
	if _, err := leaf.Verify(opts); err != nil {
		return err
	}
	// The exec CA signs more than the gateway's certificate (serving
	// certificates; with cert-manager, whatever its Issuer is asked for):
	// only the gateway identity may open sessions here.
	if !slices.Contains(s.opts.GatewayClientNames, leaf.Subject.CommonName) {
		return unauthenticatedError(fmt.Sprintf("client certificate %q is not a gateway identity (%s)",
			leaf.Subject.CommonName, strings.Join(s.opts.GatewayClientNames, ", ")))
	}
	return nil
}
