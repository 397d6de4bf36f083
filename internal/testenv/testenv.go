// Package testenv starts the real kube-apiserver + etcd that the tests talk
// to, with this repository's CRDs installed.
package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	k8sruntime "k8s.io/apimachinery/pkg/runtime"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/testutil"
)

// Scheme holds the built-in types and the Bottle API.
func Scheme() *k8sruntime.Scheme {
	s := k8sruntime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := v1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

// ErrNoAssets says the control-plane binaries are missing. Outside CI a test
// suite skips on it; under CI it is a failure.
var ErrNoAssets = fmt.Errorf("KUBEBUILDER_ASSETS is not set: run the tests with `make test`, " +
	"or export KUBEBUILDER_ASSETS=$(hack/envtest-bins.sh | tail -n1)")

// ErrShort says no control plane starts under `go test -short`
// (make test-unit): the fast loop runs only tests that need none.
var ErrShort = errors.New("skipped under -short: needs a real kube-apiserver (run make test)")

// Skippable reports whether a Start error skips the tests rather than failing
// them: always under -short, and for missing binaries outside CI.
func Skippable(err error) bool {
	return errors.Is(err, ErrShort) || errors.Is(err, ErrNoAssets) && !testutil.InCI()
}

// cachedAssets finds binaries hack/envtest-bins.sh already built, so a plain
// `go test ./...` works after one `make test`. It never starts a build.
func cachedAssets() string {
	cmd := exec.Command(filepath.Join(testutil.RepoRoot(), "hack", "envtest-bins.sh"))
	cmd.Env = append(os.Environ(), "ENVTEST_BINS_CACHED_ONLY=1")
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}

// Options tune the API server.
type Options struct {
	// APIServerArgs are extra kube-apiserver flags (key -> values).
	APIServerArgs map[string][]string
}

// Start boots etcd and kube-apiserver from KUBEBUILDER_ASSETS and installs the
// CRDs from config/crd/bases. The caller stops the returned environment.
func Start(opts Options) (*envtest.Environment, *rest.Config, error) {
	if testing.Short() {
		return nil, nil, ErrShort
	}
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		assets = cachedAssets()
	}
	if assets == "" {
		return nil, nil, ErrNoAssets
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(testutil.RepoRoot(), "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
		Scheme:                Scheme(),
	}
	args := env.ControlPlane.GetAPIServer().Configure()
	for k, vs := range opts.APIServerArgs {
		args.Set(k, vs...)
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, nil, fmt.Errorf("starting envtest from %s: %w", assets, err)
	}
	return env, cfg, nil
}

// BottleGVR is the Bottle resource.
var BottleGVR = schema.GroupVersionResource{Group: v1.GroupVersion.Group, Version: v1.GroupVersion.Version, Resource: "bottles"}
