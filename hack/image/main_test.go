package main

import (
	"archive/tar"
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
	"github.com/bot-bottle/bottle-controller/internal/testutil"
)

// TestImageTarball builds the image the way `make image` does (a static
// binary, stamped, on an empty base; a small stand-in for cmd/manager keeps
// the test fast), then opens the tarball and the OCI layout and checks the
// config and every file in it.
func TestImageTarball(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(testutil.RepoRoot())
	if err := run("registry.test/bottle-agent:v9.9.9", "v9.9.9", "abc123", "linux/"+runtime.GOARCH,
		dir, "1700000000", "./hack/image/testdata/stamped"); err != nil {
		t.Fatal(err)
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
	if !cf.Created.Equal(time.Unix(1700000000, 0)) {
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
	out, err := exec.Command(bin).Output()
	if err != nil || string(out) != "v9.9.9 abc123\n" {
		t.Errorf("/manager prints %q (%v), want the stamped version and revision", out, err)
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
	if len(m.Manifests) != 1 {
		t.Fatalf("OCI layout holds %d manifests, want 1", len(m.Manifests))
	}
	// The same image: the docker tarball re-encodes the manifest, so compare
	// the config (which names the layers' content).
	li, err := p.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.ConfigName()
	if got, _ := li.ConfigName(); got != want {
		t.Errorf("OCI layout image config %s, tarball's %s", got, want)
	}
	if mt, _ := li.MediaType(); mt != "application/vnd.oci.image.manifest.v1+json" {
		t.Errorf("OCI layout manifest media type %s", mt)
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
