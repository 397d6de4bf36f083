package kubectlbottle

import (
	"strings"
	"sync"

	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// kubeconfigFlags are kubectl's global flags, with kubectl's names and
// meanings (those of cli-runtime's genericclioptions.ConfigFlags, without
// --cache-dir: the plugin has no discovery to cache), read with client-go's
// clientcmd as kubectl reads them. They are bound here rather than through
// genericclioptions, whose dependencies (kustomize, every built-in API
// type) cost each run of the plugin more start-up time than its request.
type kubeconfigFlags struct {
	kubeconfig       string
	overrides        clientcmd.ConfigOverrides
	userExtras       []string
	impersonateGroup []string

	once   sync.Once
	loader clientcmd.ClientConfig
}

func (f *kubeconfigFlags) addFlags(fs *pflag.FlagSet) {
	a, c, x := &f.overrides.AuthInfo, &f.overrides.ClusterInfo, &f.overrides.Context
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "Path to the kubeconfig file to use for CLI requests.")
	fs.StringVar(&a.ClientCertificate, "client-certificate", "", "Path to a client certificate file for TLS")
	fs.StringVar(&a.ClientKey, "client-key", "", "Path to a client key file for TLS")
	fs.StringVar(&a.Token, "token", "", "Bearer token for authentication to the API server")
	fs.StringVar(&a.Impersonate, "as", "", "Username to impersonate for the operation. User could be a regular user or a service account in a namespace.")
	fs.StringVar(&a.ImpersonateUID, "as-uid", "", "UID to impersonate for the operation.")
	fs.StringArrayVar(&f.impersonateGroup, "as-group", nil, "Group to impersonate for the operation, this flag can be repeated to specify multiple groups.")
	fs.StringArrayVar(&f.userExtras, "as-user-extra", nil, "User extras to impersonate for the operation, this flag can be repeated to specify multiple values for the same key.")
	fs.StringVar(&x.Cluster, "cluster", "", "The name of the kubeconfig cluster to use")
	fs.StringVar(&x.AuthInfo, "user", "", "The name of the kubeconfig user to use")
	fs.StringVarP(&x.Namespace, "namespace", "n", "", "If present, the namespace scope for this CLI request")
	fs.StringVar(&f.overrides.CurrentContext, "context", "", "The name of the kubeconfig context to use")
	fs.StringVarP(&c.Server, "server", "s", "", "The address and port of the Kubernetes API server")
	fs.StringVar(&c.TLSServerName, "tls-server-name", "", "Server name to use for server certificate validation. If it is not provided, the hostname used to contact the server is used")
	fs.BoolVar(&c.InsecureSkipTLSVerify, "insecure-skip-tls-verify", false, "If true, the server's certificate will not be checked for validity. This will make your HTTPS connections insecure")
	fs.StringVar(&c.CertificateAuthority, "certificate-authority", "", "Path to a cert file for the certificate authority")
	fs.StringVar(&f.overrides.Timeout, "request-timeout", "0", "The length of time to wait before giving up on a single server request. Non-zero values should contain a corresponding time unit (e.g. 1s, 2m, 3h). A value of zero means don't timeout requests.")
	fs.BoolVar(&c.DisableCompression, "disable-compression", false, "If true, opt-out of response compression for all requests to the server")
	fs.StringVar(&c.ProxyURL, "proxy-url", "", "Proxy URL to use for requests to the API server")
}

// clientConfig loads the kubeconfig once, with the flags applied.
func (f *kubeconfigFlags) clientConfig() clientcmd.ClientConfig {
	f.once.Do(func() {
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		rules.DefaultClientConfig = &clientcmd.DefaultClientConfig
		rules.ExplicitPath = f.kubeconfig
		o := f.overrides
		o.ClusterDefaults = clientcmd.ClusterDefaults
		o.AuthInfo.ImpersonateGroups = f.impersonateGroup
		if len(f.userExtras) > 0 {
			o.AuthInfo.ImpersonateUserExtra = map[string][]string{}
			for _, kv := range f.userExtras {
				if k, v, ok := strings.Cut(kv, "="); ok {
					o.AuthInfo.ImpersonateUserExtra[k] = append(o.AuthInfo.ImpersonateUserExtra[k], v)
				}
			}
		}
		f.loader = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &o)
	})
	return f.loader
}

func (f *kubeconfigFlags) restConfig() (*rest.Config, error) { return f.clientConfig().ClientConfig() }

func (f *kubeconfigFlags) namespace() (string, error) {
	ns, _, err := f.clientConfig().Namespace()
	return ns, err
}
