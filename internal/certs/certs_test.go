package certs

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func leaf(t *testing.T, kp *KeyPair) *x509.Certificate {
	t.Helper()
	c, err := tls.X509KeyPair(kp.CertPEM, kp.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	x, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func TestGenerateIssuesVerifiableLeaves(t *testing.T) {
	b, err := Generate(Options{FrontProxy: true})
	if err != nil {
		t.Fatal(err)
	}
	serving := leaf(t, b.Serving)
	for _, name := range []string{"bottle-exec.bottle-system.svc", "localhost", AgentServerName} {
		if _, err := serving.Verify(x509.VerifyOptions{Roots: b.ExecCA.Pool(), DNSName: name}); err != nil {
			t.Errorf("serving certificate for %s: %v", name, err)
		}
	}
	if _, err := serving.Verify(x509.VerifyOptions{Roots: b.ExecCA.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("the serving certificate must not authenticate a client")
	}
	agent := leaf(t, b.AgentClient)
	if _, err := agent.Verify(x509.VerifyOptions{Roots: b.ExecCA.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("agent client certificate: %v", err)
	}
	fp := leaf(t, b.FrontProxyClient)
	if fp.Subject.CommonName != DefaultFrontProxyClientCN {
		t.Errorf("front-proxy client CN = %q", fp.Subject.CommonName)
	}
	if _, err := fp.Verify(x509.VerifyOptions{Roots: b.ExecCA.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("the front-proxy client certificate must not verify against the exec CA")
	}
}

func TestWriteDirAndRotateKeepTheCA(t *testing.T) {
	dir := t.TempDir()
	b, err := Generate(Options{Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	f := FilesIn(dir)
	if fi, err := os.Stat(f.ServingKey); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("serving key mode: %v %v", fi.Mode(), err)
	}
	if _, err := tls.LoadX509KeyPair(f.Serving, f.ServingKey); err != nil {
		t.Fatal(err)
	}
	caBefore, _ := os.ReadFile(f.ExecCA)
	servingBefore, _ := os.ReadFile(f.Serving)

	rotated, err := Rotate(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	caAfter, _ := os.ReadFile(f.ExecCA)
	servingAfter, _ := os.ReadFile(f.Serving)
	if !bytes.Equal(caBefore, caAfter) {
		t.Error("Rotate replaced the CA: the APIService caBundle would break")
	}
	if bytes.Equal(servingBefore, servingAfter) {
		t.Error("Rotate did not re-issue the serving certificate")
	}
	if _, err := leaf(t, rotated.Serving).Verify(x509.VerifyOptions{Roots: b.ExecCA.Pool(), DNSName: "localhost"}); err != nil {
		t.Errorf("rotated serving certificate does not chain to the old CA: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, FrontProxyCACertFile)); !os.IsNotExist(err) {
		t.Errorf("no front-proxy files were asked for, got %v", err)
	}
}

// TestRotateRefusesWithoutTheCAKey: rotating a directory that lacks the CA
// key must fail and leave the CA certificate alone, not mint a new CA.
func TestRotateRefusesWithoutTheCAKey(t *testing.T) {
	for _, c := range []struct {
		name         string
		remove, keep func(Files) string
		frontProxy   bool
	}{
		{"exec CA key", func(f Files) string { return f.ExecCAKey }, func(f Files) string { return f.ExecCA }, false},
		{"front-proxy CA key", func(f Files) string { return f.FrontProxyCAKey }, func(f Files) string { return f.FrontProxyCA }, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			b, err := Generate(Options{Validity: time.Hour, FrontProxy: true})
			if err != nil {
				t.Fatal(err)
			}
			if err := b.WriteDir(dir); err != nil {
				t.Fatal(err)
			}
			f := FilesIn(dir)
			before, _ := os.ReadFile(c.keep(f))
			servingBefore, _ := os.ReadFile(f.Serving)
			if err := os.Remove(c.remove(f)); err != nil {
				t.Fatal(err)
			}
			_, err = Rotate(dir, Options{FrontProxy: c.frontProxy})
			if !errors.Is(err, ErrNoCAKey) || !strings.Contains(err.Error(), c.remove(f)) {
				t.Fatalf("Rotate without %s = %v, want ErrNoCAKey naming it", c.remove(f), err)
			}
			after, _ := os.ReadFile(c.keep(f))
			servingAfter, _ := os.ReadFile(f.Serving)
			if !bytes.Equal(before, after) || !bytes.Equal(servingBefore, servingAfter) {
				t.Error("a refused rotation changed the certificates")
			}
		})
	}
}
