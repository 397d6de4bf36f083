package e2e

import (
	"bytes"
	"encoding/base64"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/bot-bottle/bottle-controller/internal/certs"
	"github.com/bot-bottle/bottle-controller/internal/installer"
	"github.com/bot-bottle/bottle-controller/internal/testenv"
	"github.com/bot-bottle/bottle-controller/internal/testutil"
)

// TestInstallerApplies applies what `make build-installer` writes
// (dist/install.yaml: config/default rendered with an image) to a real API
// server, checks that every object in it was accepted and exists, then the
// no-cert-manager certificate step (gencerts' cluster manifest: the agents'
// Secret and the APIService caBundle), the cert-manager variant's
// non-cert-manager objects, and the samples.
func TestInstallerApplies(t *testing.T) {
	env, _, err := testenv.Start(testenv.Options{})
	if testenv.Skippable(err) {
		t.Skip(err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = env.Stop() }()
	admin, err := env.AddUser(envtest.User{Name: "manifests-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kubectl, err := admin.Kubectl()
	if err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		stdout, stderr, err := kubectl.Run(args...)
		out, _ := io.ReadAll(stdout)
		if err != nil {
			errOut, _ := io.ReadAll(stderr)
			t.Fatalf("kubectl %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
		}
		return string(out)
	}
	root := testutil.RepoRoot()
	dir := t.TempDir()

	const img = "registry.test/team/bottle-agent:v1.2.3"
	y, err := installer.Build(filepath.Join(root, "config", "default"), img)
	if err != nil {
		t.Fatal(err)
	}
	install := writeFile(t, dir, "install.yaml", y)
	objs := splitObjects(t, y)
	if len(objs) < 15 {
		t.Fatalf("installer holds %d objects; expected the CRD, RBAC, DaemonSet and exec API", len(objs))
	}
	kinds := map[string]bool{}
	for _, o := range objs {
		kinds[o.GetKind()] = true
		if strings.HasPrefix(o.GetName(), "bottle-bottle-") {
			t.Errorf("%s %s: doubled name prefix", o.GetKind(), o.GetName())
		}
	}
	for _, k := range []string{"Namespace", "CustomResourceDefinition", "ServiceAccount", "ClusterRole",
		"ClusterRoleBinding", "RoleBinding", "DaemonSet", "Service", "APIService"} {
		if !kinds[k] {
			t.Errorf("installer has no %s", k)
		}
	}

	run("apply", "--server-side", "-f", install)
	// Every object is there, under the name and namespace the file gives.
	got := run("get", "-f", install, "-o", "name")
	if n := len(strings.Fields(got)); n != len(objs) {
		t.Errorf("kubectl get -f install.yaml lists %d objects, the file holds %d:\n%s", n, len(objs), got)
	}
	if image := run("get", "daemonset", "-n", "bottle-system", "bottle-agent", "-o", "jsonpath={.spec.template.spec.containers[0].image}"); image != img {
		t.Errorf("agent image %q, want %q", image, img)
	}
	// Applying again changes nothing and fails nothing (upgrades re-apply).
	run("apply", "--server-side", "-f", install)

	// Without cert-manager: gencerts' cluster manifest.
	b, err := certs.Generate(certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := b.ClusterManifest(certs.DefaultServiceNamespace)
	if err != nil {
		t.Fatal(err)
	}
	run("apply", "--server-side", "--field-manager=bottle-gencerts", "-f", writeFile(t, dir, "certs.yaml", m))
	caBundle := run("get", "apiservice", certs.APIServiceName, "-o", "jsonpath={.spec.caBundle}")
	if ca, _ := base64.StdEncoding.DecodeString(caBundle); !bytes.Equal(ca, b.ExecCA.CertPEM()) {
		t.Errorf("APIService caBundle is not the exec CA after the gencerts step: %q", caBundle)
	}
	keys := run("get", "secret", "-n", "bottle-system", certs.SecretName, "-o", "jsonpath={.data}")
	for _, k := range []string{certs.ExecCACertFile, certs.ServingCertFile, certs.ServingKeyFile, certs.AgentClientCertFile, certs.AgentClientKeyFile} {
		if !strings.Contains(keys, `"`+k+`"`) {
			t.Errorf("Secret %s lacks %s", certs.SecretName, k)
		}
	}
	if strings.Contains(keys, certs.ExecCAKeyFile) {
		t.Errorf("Secret %s holds the CA key", certs.SecretName)
	}
	// Re-applying the installer (an upgrade) keeps the injected caBundle.
	run("apply", "--server-side", "-f", install)
	if after := run("get", "apiservice", certs.APIServiceName, "-o", "jsonpath={.spec.caBundle}"); after != caBundle {
		t.Error("re-applying install.yaml dropped the caBundle")
	}

	// The cert-manager variant: its own objects need cert-manager's CRDs;
	// everything else must apply over the plain install.
	cm, err := installer.Build(filepath.Join(root, "config", "certmanager"), img)
	if err != nil {
		t.Fatal(err)
	}
	var rest []byte
	n := 0
	for _, o := range splitObjects(t, cm) {
		if strings.HasPrefix(o.GetAPIVersion(), "cert-manager.io/") {
			n++
			continue
		}
		j, _ := o.MarshalJSON()
		rest = append(append(append(rest, "---\n"...), j...), '\n')
	}
	if n != 5 {
		t.Errorf("cert-manager variant holds %d cert-manager objects, want 2 Issuers and 3 Certificates", n)
	}
	run("apply", "--server-side", "--force-conflicts", "-f", writeFile(t, dir, "cm.yaml", rest))
	if vol := run("get", "daemonset", "-n", "bottle-system", "bottle-agent", "-o", `jsonpath={.spec.template.spec.volumes[?(@.name=="exec-certs")].projected.sources[*].secret.items[*].path}`); vol != "exec-ca.crt serving.crt serving.key agent-client.crt agent-client.key" {
		t.Errorf("cert-manager variant projects %q into the cert dir", vol)
	}

	run("apply", "--server-side", "-k", filepath.Join(root, "config", "samples"))
	run("get", "bottle", "-n", "default", "reviewer")
	run("get", "bottletemplate", "-n", "default", "claude-code")
	if out := run("get", "brun", "-n", "default", "hello", "-o", "jsonpath={.spec.bottleRef.name} {.spec.concurrencyPolicy} {.spec.outputs[0].maxBytes}"); out != "reviewer Queue 16384" {
		t.Errorf("sample BottleRun: %q, want its Bottle, the default policy and output bound", out)
	}
	if ref := run("get", "bottle", "-n", "default", "reviewer-fork", "-o", "jsonpath={.spec.templateRef.name}"); ref != "claude-code" {
		t.Errorf("sample templated Bottle names template %q", ref)
	}
	// The CRDs print what `kubectl get` promises (docs/templates.md).
	if head := strings.Fields(strings.SplitN(run("get", "bottletemplates", "-n", "default", "-o", "wide"), "\n", 2)[0]); strings.Join(head, " ") !=
		"NAME READY GOLDEN NODES FREE SLOTS HELD AGE IMAGE POLICY REASON MESSAGE" {
		t.Errorf("kubectl get bottletemplates -o wide columns: %q", head)
	}
	if head := strings.Fields(strings.SplitN(run("get", "bottles", "-n", "default", "-o", "wide"), "\n", 2)[0]); !strings.Contains(strings.Join(head, " "), " TEMPLATE REASON MESSAGE") {
		t.Errorf("kubectl get bottles -o wide columns: %q", head)
	}
	if held := run("get", "btpl", "-n", "default", "claude-code", "-o", "custom-columns=HELD:.spec.pool.heldSlots", "--no-headers"); strings.TrimSpace(held) != "2" {
		t.Errorf("short name btpl: held slots %q", held)
	}
}

func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func splitObjects(t *testing.T, y []byte) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for _, doc := range strings.Split(string(y), "\n---\n") {
		if strings.TrimSpace(strings.TrimPrefix(doc, "---")) == "" {
			continue
		}
		j, err := yaml.YAMLToJSON([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(j); err != nil {
			t.Fatal(err)
		}
		out = append(out, u)
	}
	return out
}
