package main

import (
	"bufio"
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/yaml"

	"github.com/bot-bottle/bottle-controller/internal/kubectlbottle"
	"github.com/bot-bottle/bottle-controller/internal/testutil"
)

// TestReleaseDryRun runs `make release-dry-run` with the module proxy off
// (offline) and checks what it wrote: archives and binaries, checksums that
// match, and a krew manifest whose sha256s are the archives' own. It builds
// the host's linux platform only (RELEASE_PLATFORMS): six cold static
// cross-builds of client-go take longer than a test may on 2 cores;
// `make release` builds all of them through the same code.
func TestReleaseDryRun(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles three binaries")
	}
	root := testutil.RepoRoot()
	out := t.TempDir()
	cmd := exec.Command("make", "--no-print-directory", "release-dry-run", "VERSION=v1.2.3-test", "RELEASE_DIR="+out,
		"RELEASE_PLATFORMS=linux/"+runtime.GOARCH)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOPROXY=off", "GOFLAGS=-mod=readonly")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make release-dry-run: %v\n%s", err, b)
	}

	for _, name := range []string{
		"kubectl-bottle_linux_" + runtime.GOARCH + ".tar.gz", "manager_linux_" + runtime.GOARCH,
		"bottle.yaml", "install.yaml", "install-cert-manager.yaml", "checksums.txt",
	} {
		if _, err := os.Stat(filepath.Join(out, name)); err != nil {
			t.Errorf("missing %s: %v", name, err)
		}
	}
	// checksums.txt is right about every file.
	f, err := os.Open(filepath.Join(out, "checksums.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		b, err := os.ReadFile(filepath.Join(out, name))
		if !ok || err != nil || sha(b) != sum {
			t.Errorf("checksums.txt line %q does not match the file (%v)", sc.Text(), err)
		}
		n++
	}
	if n != 5 {
		t.Errorf("checksums.txt covers %d files, want 5", n)
	}
	// The krew manifest: version and the real hashes (verify re-checks
	// each one against its archive, and fails on a placeholder).
	manifest, _ := os.ReadFile(filepath.Join(out, "bottle.yaml"))
	if !bytes.Contains(manifest, []byte("version: v1.2.3-test")) ||
		!bytes.Contains(manifest, []byte("/releases/download/v1.2.3-test/kubectl-bottle_linux_"+runtime.GOARCH+".tar.gz")) {
		t.Errorf("krew manifest lacks the version or URLs:\n%s", manifest)
	}
	if err := verify(out, 1); err != nil {
		t.Error(err)
	}
	// Its description names every verb of the plugin, and is valid YAML.
	for _, c := range kubectlbottle.NewCommand(genericiooptions.IOStreams{}).Commands() {
		if !c.IsAvailableCommand() {
			continue
		}
		verb := c.Name()
		if !bytes.Contains(manifest, []byte("kubectl bottle "+verb+" ")) {
			t.Errorf("krew manifest's description lacks the verb %s:\n%s", verb, manifest)
		}
	}
	var parsed struct {
		Spec struct{ Description string }
	}
	if err := yaml.Unmarshal(manifest, &parsed); err != nil || !strings.Contains(parsed.Spec.Description, "kubectl bottle retry") {
		t.Errorf("krew manifest does not parse with its verbs in spec.description (%v):\n%s", err, manifest)
	}
	// The agent binaries are static, for their architecture.
	for arch, machine := range map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64} {
		if arch != runtime.GOARCH {
			continue
		}
		e, err := elf.Open(filepath.Join(out, "manager_linux_"+arch))
		if err != nil {
			t.Fatal(err)
		}
		if e.Machine != machine {
			t.Errorf("manager_linux_%s is for %s", arch, e.Machine)
		}
		for _, p := range e.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("manager_linux_%s is dynamically linked", arch)
			}
		}
		_ = e.Close()
	}
	// The installer deploys the release's image.
	inst, _ := os.ReadFile(filepath.Join(out, "install.yaml"))
	if !bytes.Contains(inst, []byte("image: ghcr.io/bot-bottle/bottle-agent:v1.2.3-test")) {
		t.Error("install.yaml does not deploy ghcr.io/bot-bottle/bottle-agent:v1.2.3-test")
	}
}

// A release refuses a non-release version and a platform subset.
func TestReleaseRefuses(t *testing.T) {
	if _, err := release(options{version: "v1.2", plugin: pluginPlatforms, agent: agentPlatforms}); err == nil {
		t.Error("release accepted version v1.2")
	}
	if _, err := release(options{version: "v1.2.0", plugin: pluginPlatforms[:1], agent: agentPlatforms}); err == nil {
		t.Error("release accepted a platform subset")
	}
	if _, _, err := selectPlatforms("windows/amd64"); err == nil {
		t.Error("windows/amd64 accepted as a release platform")
	}
}

// No placeholder hash stays in the repository: the krew manifest is
// generated, and nothing else may carry an all-zero sha256.
func TestNoPlaceholderHashes(t *testing.T) {
	root := testutil.RepoRoot()
	cmd := exec.Command("git", "ls-files", "-z")
	cmd.Dir = root
	b, err := cmd.Output()
	if err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	zeros := []byte(strings.Repeat("0", 64))
	for _, name := range strings.Split(strings.TrimRight(string(b), "\x00"), "\x00") {
		data, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			continue // deleted in the work tree
		}
		if bytes.Contains(data, zeros) {
			t.Errorf("%s holds an all-zero sha256 placeholder", name)
		}
	}
}

// The krew manifest's description, rendered from hack/krew/bottle.yaml.tmpl,
// names every verb of the plugin with its short help and stays valid YAML:
// the template holds no hand-written list of its own (it once lacked retry).
// TestReleaseDryRun checks the same of a whole release; this needs no build.
func TestKrewDescriptionNamesEveryVerb(t *testing.T) {
	manifest, err := renderKrew(filepath.Join(testutil.RepoRoot(), "hack", "krew", "bottle.yaml.tmpl"), "v0.0.0-test",
		[]krewPlatform{{OS: "linux", Arch: "amd64", URI: "https://example.invalid/a.tar.gz", SHA256: strings.Repeat("0", 64)}})
	if err != nil {
		t.Fatal(err)
	}
	var parsed struct {
		Spec struct{ Description string }
	}
	if err := yaml.Unmarshal(manifest, &parsed); err != nil {
		t.Fatalf("the rendered manifest is not YAML: %v\n%s", err, manifest)
	}
	verbs := 0
	for _, c := range kubectlbottle.NewCommand(genericiooptions.IOStreams{}).Commands() {
		if !c.IsAvailableCommand() {
			continue
		}
		verbs++
		if !strings.Contains(parsed.Spec.Description, "kubectl bottle "+c.Name()+" ") || !strings.Contains(parsed.Spec.Description, c.Short) {
			t.Errorf("spec.description lacks `kubectl bottle %s` with its short help %q:\n%s", c.Name(), c.Short, parsed.Spec.Description)
		}
	}
	if verbs == 0 {
		t.Fatal("the plugin has no verbs")
	}
	if got := bytes.Count(manifest, []byte("kubectl bottle ")); got < verbs {
		t.Errorf("the manifest names %d verbs, the plugin has %d", got, verbs)
	}
}
