package certs

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"
)

// AgentServerName is the DNS name every node agent's serving certificate
// carries and gateways verify when they dial an agent by IP address: node
// addresses are not known when the certificate is issued.
const AgentServerName = "bottle-exec-agent"

// Default names of the Service in front of the agents (config/apiservice).
const (
	DefaultServiceName      = "bottle-exec"
	DefaultServiceNamespace = "bottle-system"
)

// Defaults for the issued certificates.
const (
	DefaultValidity      = 365 * 24 * time.Hour
	DefaultCAValidity    = 10 * 365 * 24 * time.Hour
	DefaultAgentClientCN = "bottle-exec-gateway"
	// DefaultFrontProxyClientCN must be in kube-apiserver's
	// --requestheader-allowed-names.
	DefaultFrontProxyClientCN = "front-proxy-client"
)

// File names inside a certificate directory.
const (
	ExecCACertFile           = "exec-ca.crt"
	ExecCAKeyFile            = "exec-ca.key"
	ServingCertFile          = "serving.crt"
	ServingKeyFile           = "serving.key"
	AgentClientCertFile      = "agent-client.crt"
	AgentClientKeyFile       = "agent-client.key"
	FrontProxyCACertFile     = "front-proxy-ca.crt"
	FrontProxyCAKeyFile      = "front-proxy-ca.key"
	FrontProxyClientCertFile = "front-proxy-client.crt"
	FrontProxyClientKeyFile  = "front-proxy-client.key"
)

// Files are the full paths of a certificate directory's files.
type Files struct {
	ExecCA, ExecCAKey                     string
	Serving, ServingKey                   string
	AgentClient, AgentClientKey           string
	FrontProxyCA, FrontProxyCAKey         string
	FrontProxyClient, FrontProxyClientKey string
}

// FilesIn names the files of dir.
func FilesIn(dir string) Files {
	p := func(name string) string { return filepath.Join(dir, name) }
	return Files{
		ExecCA: p(ExecCACertFile), ExecCAKey: p(ExecCAKeyFile),
		Serving: p(ServingCertFile), ServingKey: p(ServingKeyFile),
		AgentClient: p(AgentClientCertFile), AgentClientKey: p(AgentClientKeyFile),
		FrontProxyCA: p(FrontProxyCACertFile), FrontProxyCAKey: p(FrontProxyCAKeyFile),
		FrontProxyClient: p(FrontProxyClientCertFile), FrontProxyClientKey: p(FrontProxyClientKeyFile),
	}
}

// Options select what Generate issues. Zero values take the defaults.
type Options struct {
	// DNSNames and IPs of the serving certificate; empty means
	// DefaultDNSNames(DefaultServiceName, DefaultServiceNamespace) and the
	// loopback addresses.
	DNSNames []string
	IPs      []net.IP
	// Validity of the leaf certificates; CAValidity of new CAs.
	Validity, CAValidity time.Duration
	// AgentClientCN is the common name of the gateway's client certificate.
	AgentClientCN string
	// FrontProxy also issues a front-proxy CA and client certificate, for a
	// kube-apiserver you start yourself (--requestheader-client-ca-file,
	// --proxy-client-cert-file). Managed clusters have their own.
	FrontProxy bool
	// FrontProxyClientCN defaults to DefaultFrontProxyClientCN.
	FrontProxyClientCN string
}

// DefaultDNSNames are the names the API server uses to reach the Service,
// plus localhost and AgentServerName.
func DefaultDNSNames(service, namespace string) []string {
	return []string{
		service + "." + namespace + ".svc",
		service + "." + namespace + ".svc.cluster.local",
		service + "." + namespace,
		service,
		"localhost",
		AgentServerName,
	}
}

// Bundle is everything the exec API needs. FrontProxyCA and
// FrontProxyClient are nil unless Options.FrontProxy.
type Bundle struct {
	// ExecCA signs the serving certificate (the APIService caBundle) and
	// the gateway's client certificate (the agents trust it).
	ExecCA           *CA
	Serving          *KeyPair
	AgentClient      *KeyPair
	FrontProxyCA     *CA
	FrontProxyClient *KeyPair
}

// Generate creates new CAs and issues every leaf.
func Generate(o Options) (*Bundle, error) {
	o = o.withDefaults()
	b := &Bundle{}
	var err error
	if b.ExecCA, err = NewCA("bottle-exec-ca", o.CAValidity); err != nil {
		return nil, err
	}
	if o.FrontProxy {
		if b.FrontProxyCA, err = NewCA("bottle-front-proxy-ca", o.CAValidity); err != nil {
			return nil, err
		}
	}
	return b, b.issueLeaves(o)
}

// Rotate re-issues every leaf of dir from the CAs already there, so the
// APIService caBundle and the agents' trust stay valid. It never makes a new
// CA: a CA certificate or key missing from dir is an error (a new CA would
// silently replace the trust anchor every client holds). The result is
// written back to dir.
func Rotate(dir string, o Options) (*Bundle, error) {
	o = o.withDefaults()
	f := FilesIn(dir)
	b := &Bundle{}
	var err error
	if b.ExecCA, err = loadCAForRotation(f.ExecCA, f.ExecCAKey); err != nil {
		return nil, err
	}
	if o.FrontProxy {
		if b.FrontProxyCA, err = loadCAForRotation(f.FrontProxyCA, f.FrontProxyCAKey); err != nil {
			return nil, err
		}
	}
	if err := b.issueLeaves(o); err != nil {
		return nil, err
	}
	return b, b.WriteDir(dir)
}

// ErrNoCAKey says rotation cannot keep the trust anchor.
var ErrNoCAKey = errors.New("rotation keeps the CA, so it needs the CA's certificate and key")

func loadCAForRotation(certFile, keyFile string) (*CA, error) {
	for _, f := range []string{certFile, keyFile} {
		if _, err := os.Stat(f); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s is missing (generate a new bundle without rotating to replace the CA, then update every caBundle)", ErrNoCAKey, f)
		}
	}
	return LoadCA(certFile, keyFile)
}

func (b *Bundle) issueLeaves(o Options) error {
	var err error
	if b.Serving, err = b.ExecCA.IssueServing(o.DNSNames, o.IPs, o.Validity); err != nil {
		return err
	}
	if b.AgentClient, err = b.ExecCA.IssueClient(o.AgentClientCN, nil, o.Validity); err != nil {
		return err
	}
	if b.FrontProxyCA != nil {
		if b.FrontProxyClient, err = b.FrontProxyCA.IssueClient(o.FrontProxyClientCN, nil, o.Validity); err != nil {
			return err
		}
	}
	return nil
}

// WriteDir writes the bundle to dir (created 0700) under the names of
// FilesIn. Leaves are written after their CA, each file atomically.
func (b *Bundle) WriteDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f := FilesIn(dir)
	if err := writeCA(b.ExecCA, f.ExecCA, f.ExecCAKey); err != nil {
		return err
	}
	if err := b.Serving.WriteFiles(f.Serving, f.ServingKey); err != nil {
		return err
	}
	if err := b.AgentClient.WriteFiles(f.AgentClient, f.AgentClientKey); err != nil {
		return err
	}
	if b.FrontProxyCA == nil {
		return nil
	}
	if err := writeCA(b.FrontProxyCA, f.FrontProxyCA, f.FrontProxyCAKey); err != nil {
		return err
	}
	return b.FrontProxyClient.WriteFiles(f.FrontProxyClient, f.FrontProxyClientKey)
}

func writeCA(ca *CA, certFile, keyFile string) error {
	key, err := ca.KeyPEM()
	if err != nil {
		return err
	}
	if err := WriteFileAtomic(keyFile, key, 0o600); err != nil {
		return fmt.Errorf("writing CA key: %w", err)
	}
	return WriteFileAtomic(certFile, ca.CertPEM(), 0o644)
}

func (o Options) withDefaults() Options {
	if len(o.DNSNames) == 0 && len(o.IPs) == 0 {
		o.DNSNames = DefaultDNSNames(DefaultServiceName, DefaultServiceNamespace)
		o.IPs = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	}
	if o.Validity == 0 {
		o.Validity = DefaultValidity
	}
	if o.CAValidity == 0 {
		o.CAValidity = DefaultCAValidity
	}
	if o.AgentClientCN == "" {
		o.AgentClientCN = DefaultAgentClientCN
	}
	if o.FrontProxyClientCN == "" {
		o.FrontProxyClientCN = DefaultFrontProxyClientCN
	}
	return o
}
