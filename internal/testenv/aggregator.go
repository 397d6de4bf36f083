package testenv

import (
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// FrontProxyArgs make the kube-apiserver an aggregator: it presents
// clientCert/clientKey to aggregated API servers, which verify it against
// caFile (published in kube-system/extension-apiserver-authentication) and
// read the user from the X-Remote-* headers.
func FrontProxyArgs(caFile, clientCert, clientKey string, allowedNames ...string) map[string][]string {
	return map[string][]string{
		"requestheader-client-ca-file":       {caFile},
		"requestheader-allowed-names":        allowedNames,
		"requestheader-username-headers":     {"X-Remote-User"},
		"requestheader-group-headers":        {"X-Remote-Group"},
		"requestheader-extra-headers-prefix": {"X-Remote-Extra-"},
		"proxy-client-cert-file":             {clientCert},
		"proxy-client-key-file":              {clientKey},
	}
}

// WriteKubeconfig writes cfg (host, CA, client certificate or token) as a
// kubeconfig whose current context uses namespace, for testing CLIs.
func WriteKubeconfig(cfg *rest.Config, path, namespace string) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["envtest"] = &clientcmdapi.AuthInfo{
		ClientCertificateData: cfg.CertData,
		ClientKeyData:         cfg.KeyData,
		Token:                 cfg.BearerToken,
	}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "envtest", Namespace: namespace}
	kc.CurrentContext = "envtest"
	return clientcmd.WriteToFile(*kc, path)
}
