package ociimage_test

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/bot-bottle/bottle-controller/internal/ociimage"
	"github.com/bot-bottle/bottle-controller/internal/testenv"
	"github.com/bot-bottle/bottle-controller/internal/version"
)

// TestImageTarball builds the image the way `make image` does (hack/image:
// a static cmd/manager on an empty base), then opens the tarball and the OCI
// layout and checks the config and every file in it.
func TestImageTarball(t *testing.T) {
	root := testenv.RepoRoot()
	dir := t.TempDir()
	cmd := exec.Command("go", "run", "./hack/image", "-img", "registry.test/bottle-agent:v9.9.9",
		"-version", "v9.9.9", "-revision", "abc123", "-platform", "linux/"+runtime.GOARCH,
		"-created", "1700000000", "-out", dir)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hack/image: %v\n%s", err, out)
	}

	img, err := tarball.ImageFromPath(filepath.Join(dir, "bottle-agent.tar"), nil)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if got := cf.Config.Entrypoint; len(got) != 1 || got[0] != "/manager" {
		t.Errorf("entrypoint = %q, want [/manager]", got)
	}
	if cf.Config.User != "65532:65532" {
		t.Errorf("user = %q, want 65532:65532 (non-root)", cf.Config.User)
	}
	if cf.OS != "linux" || cf.Architecture != runtime.GOARCH {
		t.Errorf("platform = %s/%s", cf.OS, cf.Architecture)
	}
	if !cf.Created.Time.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("created = %s, want the -created time", cf.Created.Time)
	}
	for k, want := range map[string]string{
		"org.opencontainers.image.version":  "v9.9.9",
		"org.opencontainers.image.revision": "abc123",
		"org.opencontainers.image.source":   ociimage.Source,
	} {
		if got := cf.Config.Labels[k]; got != want {
			t.Errorf("label %s = %q, want %q", k, got, want)
		}
	}

	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("%d layers, want 1 (the binary on an empty base)", len(layers))
	}
	files := readLayer(t, layers[0])
	if len(files) != 2 || files["manager"] == nil || files["LICENSE"] == nil {
		t.Fatalf("layer holds %v, want exactly manager and LICENSE", keys(files))
	}
	if h := files["manager"].hdr; h.Mode != 0o755 || h.Uid != 0 {
		t.Errorf("/manager mode %o uid %d, want 755 owned by root", h.Mode, h.Uid)
	}

	// The binary is static (no ELF interpreter) and carries the version.
	bin := filepath.Join(t.TempDir(), "manager")
	if err := os.WriteFile(bin, files["manager"].data, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("/manager has an ELF interpreter: not a static (CGO_ENABLED=0) binary")
		}
	}
	if !bytes.Contains(files["manager"].data, []byte("v9.9.9")) {
		t.Error("/manager does not carry the stamped version v9.9.9 (" + version.LDFlags("v", "r") + ")")
	}

	// The OCI layout holds the same image.
	p, err := layout.FromPath(filepath.Join(dir, "oci"))
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	if len(m.Manifests) != 1 || m.Manifests[0].Digest != want {
		t.Fatalf("OCI layout manifests %+v, want one with digest %s", m.Manifests, want)
	}
	if ref := m.Manifests[0].Annotations["org.opencontainers.image.ref.name"]; ref != "registry.test/bottle-agent:v9.9.9" {
		t.Errorf("OCI layout ref.name = %q", ref)
	}
}

type entry struct {
	hdr  *tar.Header
	data []byte
}

func readLayer(t *testing.T, l interface {
	Uncompressed() (io.ReadCloser, error)
}) map[string]*entry {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rc.Close() }()
	out := map[string]*entry{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[h.Name] = &entry{hdr: h, data: data}
	}
}

func keys(m map[string]*entry) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	return k
}
