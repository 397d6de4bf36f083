package kubectlbottle

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// The plugin takes kubectl's global flags: the same names, shorthands,
// defaults and help as cli-runtime's ConfigFlags, except --cache-dir (no
// discovery to cache).
func TestKubeconfigFlagsAreKubectls(t *testing.T) {
	want := pflag.NewFlagSet("kubectl", pflag.ContinueOnError)
	genericclioptions.NewConfigFlags(true).AddFlags(want)
	got := pflag.NewFlagSet("plugin", pflag.ContinueOnError)
	(&kubeconfigFlags{}).addFlags(got)
	var missing []string
	want.VisitAll(func(w *pflag.Flag) {
		if w.Name == "cache-dir" {
			return
		}
		g := got.Lookup(w.Name)
		switch {
		case g == nil:
			missing = append(missing, w.Name)
		case g.Shorthand != w.Shorthand || g.DefValue != w.DefValue || g.Usage != w.Usage || g.Value.Type() != w.Value.Type():
			t.Errorf("--%s: plugin -%s %q %q %s, kubectl -%s %q %q %s", w.Name,
				g.Shorthand, g.DefValue, g.Usage, g.Value.Type(), w.Shorthand, w.DefValue, w.Usage, w.Value.Type())
		}
	})
	if len(missing) > 0 {
		t.Errorf("kubectl flags the plugin lacks: %v", missing)
	}
	got.VisitAll(func(g *pflag.Flag) {
		if want.Lookup(g.Name) == nil {
			t.Errorf("--%s is not a kubectl flag", g.Name)
		}
	})
}

// The flags override the kubeconfig as kubectl's do.
func TestKubeconfigFlagsOverride(t *testing.T) {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["c1"] = &clientcmdapi.Cluster{Server: "https://one.example"}
	kc.Clusters["c2"] = &clientcmdapi.Cluster{Server: "https://two.example"}
	kc.AuthInfos["u1"] = &clientcmdapi.AuthInfo{Token: "from-file"}
	kc.Contexts["ctx1"] = &clientcmdapi.Context{Cluster: "c1", AuthInfo: "u1", Namespace: "ns1"}
	kc.Contexts["ctx2"] = &clientcmdapi.Context{Cluster: "c2", AuthInfo: "u1", Namespace: "ns2"}
	kc.CurrentContext = "ctx1"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", "")

	f := &kubeconfigFlags{}
	fs := pflag.NewFlagSet("plugin", pflag.ContinueOnError)
	f.addFlags(fs)
	if err := fs.Parse([]string{"--kubeconfig", path, "--context", "ctx2", "-n", "team", "--token", "flag-token",
		"--as", "alice", "--as-group", "g1", "--as-group", "g2", "--as-user-extra", "scope=a", "--as-user-extra", "scope=b",
		"--request-timeout", "7s"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := f.restConfig()
	if err != nil {
		t.Fatal(err)
	}
	ns, err := f.namespace()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "https://two.example" || ns != "team" || cfg.BearerToken != "flag-token" || cfg.Timeout.String() != "7s" {
		t.Errorf("host %q, namespace %q, token %q, timeout %s", cfg.Host, ns, cfg.BearerToken, cfg.Timeout)
	}
	im := cfg.Impersonate
	if im.UserName != "alice" || !slices.Equal(im.Groups, []string{"g1", "g2"}) || !slices.Equal(im.Extra["scope"], []string{"a", "b"}) {
		t.Errorf("impersonation %+v", im)
	}

	// No kubeconfig at all: kubectl's default server, as for kubectl.
	empty := &kubeconfigFlags{}
	t.Setenv("HOME", t.TempDir())
	if cfg, err := empty.restConfig(); err != nil || cfg.Host != "http://localhost:8080" {
		t.Errorf("no kubeconfig: %v %v", cfg, err)
	}
}
