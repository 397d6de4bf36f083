package e2e

import (
	"io"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/bot-bottle/bottle-controller/internal/testenv"
	"github.com/bot-bottle/bottle-controller/internal/testutil"
)

// TestManifestsApply applies what `make deploy` and the exec API install
// (config/default, config/apiservice) and the samples to a real API server,
// so a manifest the API server would reject never ships.
func TestManifestsApply(t *testing.T) {
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
	root := testutil.RepoRoot()
	for _, args := range [][]string{
		{"apply", "--server-side", "-k", filepath.Join(root, "config", "default")},
		{"apply", "--server-side", "-k", filepath.Join(root, "config", "apiservice")},
		{"apply", "--server-side", "-k", filepath.Join(root, "config", "samples")},
		{"get", "daemonset", "-n", "bottle-system", "bottle-agent"},
		{"get", "apiservice", "v1alpha1.subresources.agents.bot-bottle.dev"},
		{"get", "bottle", "-n", "default", "reviewer"},
	} {
		stdout, stderr, err := kubectl.Run(args...)
		if err != nil {
			out, _ := io.ReadAll(stdout)
			errOut, _ := io.ReadAll(stderr)
			t.Fatalf("kubectl %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
		}
	}
}
