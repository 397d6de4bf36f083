package certs

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
)

// Names the installer (config/default) gives the exec API's objects.
const (
	// SecretName is the Secret the agent DaemonSet mounts at --exec-cert-dir.
	SecretName = "bottle-exec-certs"
	// APIServiceName is fixed by the aggregated group and version.
	APIServiceName = "v1alpha1.subresources.agents.bot-bottle.dev"
)

// ClusterManifest returns what a cluster without cert-manager needs from
// the bundle, for `kubectl apply --server-side -f -`: the agents' Secret
// (never the CA key) and the APIService's caBundle, as a partial object
// that server-side apply merges into the installed APIService.
func (b *Bundle) ClusterManifest(namespace string) ([]byte, error) {
	secret := map[string]any{
		"apiVersion": "v1",
		"kind":       "Secret",
		"metadata": map[string]any{
			"name":      SecretName,
			"namespace": namespace,
			"labels":    map[string]string{"app.kubernetes.io/name": "bottle-controller", "app.kubernetes.io/component": "exec-api"},
		},
		"type": "Opaque",
		"data": map[string][]byte{
			ExecCACertFile:      b.ExecCA.CertPEM(),
			ServingCertFile:     b.Serving.CertPEM,
			ServingKeyFile:      b.Serving.KeyPEM,
			AgentClientCertFile: b.AgentClient.CertPEM,
			AgentClientKeyFile:  b.AgentClient.KeyPEM,
		},
	}
	apiService := map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1",
		"kind":       "APIService",
		"metadata":   map[string]any{"name": APIServiceName},
		"spec":       map[string]any{"caBundle": base64.StdEncoding.EncodeToString(b.ExecCA.CertPEM())},
	}
	var out []byte
	for _, o := range []any{secret, apiService} {
		// JSON is YAML; one document per object.
		j, err := json.Marshal(o)
		if err != nil {
			return nil, fmt.Errorf("encoding the cluster manifest: %w", err)
		}
		out = append(append(append(out, "---\n"...), j...), '\n')
	}
	return out, nil
}
