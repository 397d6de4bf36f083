// Command gencerts writes the exec API's self-signed certificates to a
// directory (see docs/exec.md):
//
//	go run ./cmd/gencerts -out DIR [-front-proxy] [-rotate] [-cluster-manifest | -print-ca-bundle]
//
// -cluster-manifest prints the agents' Secret and the APIService caBundle for
// `kubectl apply --server-side -f -` (README, "Install on a cluster").
//
// -rotate keeps the CAs already in DIR and re-issues the leaves, so the
// APIService caBundle and the agents' trust need no change. It fails, and
// writes nothing, when a CA's certificate or key is not in DIR.
package main

import (
	"encoding/base64"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bot-bottle/bottle-controller/internal/certs"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "gencerts: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("gencerts", flag.ContinueOnError)
	out := fs.String("out", "", "Directory to write the certificates to (required).")
	service := fs.String("service", certs.DefaultServiceName, "Name of the Service in front of the agents.")
	namespace := fs.String("namespace", certs.DefaultServiceNamespace, "Namespace of that Service.")
	extraDNS := fs.String("dns", "", "Extra comma-separated DNS names for the serving certificate.")
	extraIPs := fs.String("ips", "127.0.0.1,::1", "Comma-separated IP addresses for the serving certificate.")
	validity := fs.Duration("validity", certs.DefaultValidity, "Validity of the leaf certificates.")
	frontProxy := fs.Bool("front-proxy", false, "Also issue a front-proxy CA and client certificate for a kube-apiserver you run yourself.")
	rotate := fs.Bool("rotate", false, "Keep the CAs in -out and re-issue only the leaves; fails when a CA certificate or key is missing there.")
	force := fs.Bool("force", false, "Without -rotate: replace a CA already in -out (every agent, the APIService caBundle and any client then need the new one).")
	printCA := fs.Bool("print-ca-bundle", false, "Print the exec CA base64-encoded, for the APIService's spec.caBundle.")
	clusterManifest := fs.Bool("cluster-manifest", false, "Print, for `kubectl apply --server-side -f -`, the agents' Secret "+certs.SecretName+" (never the CA key) and the APIService caBundle.")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("-out is required")
	}
	o := certs.Options{
		DNSNames:   append(certs.DefaultDNSNames(*service, *namespace), splitList(*extraDNS)...),
		Validity:   *validity,
		FrontProxy: *frontProxy,
	}
	for _, s := range splitList(*extraIPs) {
		ip := net.ParseIP(s)
		if ip == nil {
			return fmt.Errorf("-ips: %q is not an IP address", s)
		}
		o.IPs = append(o.IPs, ip)
	}
	var (
		b   *certs.Bundle
		err error
	)
	if *rotate {
		b, err = certs.Rotate(*out, o)
	} else {
		if err := refuseToReplaceCA(*out, *force); err != nil {
			return err
		}
		if b, err = certs.Generate(o); err == nil {
			err = b.WriteDir(*out)
		}
	}
	if err != nil {
		return err
	}
	if *clusterManifest {
		m, err := b.ClusterManifest(*namespace)
		if err != nil {
			return err
		}
		_, err = os.Stdout.Write(m)
		return err
	}
	if *printCA {
		fmt.Println(base64.StdEncoding.EncodeToString(b.ExecCA.CertPEM()))
		return nil
	}
	fmt.Fprintf(os.Stderr, "wrote certificates to %s (leaves valid until %s)\n", *out,
		time.Now().Add(*validity).UTC().Format(time.RFC3339))
	return nil
}

// refuseToReplaceCA stops a re-run of the install command from silently
// minting a new CA over the one the cluster trusts.
func refuseToReplaceCA(dir string, force bool) error {
	if force {
		return nil
	}
	f := certs.FilesIn(dir)
	for _, p := range []string{f.ExecCAKey, f.ExecCA} {
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("%s already holds a CA (%s): -rotate keeps it and re-issues the leaves; -force replaces it", dir, filepath.Base(p))
		}
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
