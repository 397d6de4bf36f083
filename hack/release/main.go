// Command release builds every release artifact into one directory
// (`make release`, or `make release-dry-run` into a temporary one), offline:
//
//   - kubectl-bottle_<os>_<arch>.tar.gz for linux and darwin on amd64 and
//     arm64 (kubectl-bottle, its completion shim and LICENSE at the root, as krew wants);
//   - manager_linux_<arch>: the static agent binaries;
//   - bottle.yaml: the krew manifest rendered from hack/krew/bottle.yaml.tmpl
//     with the archives' real sha256;
//   - install.yaml and install-cert-manager.yaml for the agent image -img;
//   - checksums.txt (sha256sum format) over all of them.
//
// It publishes nothing: uploading the directory to a GitHub release and
// pushing the image (make image / docker-push) are separate steps.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"text/template"
	"time"

	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/yaml"

	"github.com/bot-bottle/bottle-controller/internal/installer"
	"github.com/bot-bottle/bottle-controller/internal/kubectlbottle"
	"github.com/bot-bottle/bottle-controller/internal/version"
)

// Platforms of the kubectl plugin and of the agent.
var (
	pluginPlatforms = []platform{{"linux", "amd64"}, {"linux", "arm64"}, {"darwin", "amd64"}, {"darwin", "arm64"}}
	agentPlatforms  = []platform{{"linux", "amd64"}, {"linux", "arm64"}}
)

const downloadURL = "https://github.com/bot-bottle/bottle-controller/releases/download/"

var semver = regexp.MustCompile(`^v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$`)

type platform struct{ OS, Arch string }

type options struct {
	root, out, version, revision, img string
	dryRun                            bool
	// plugin and agent are the platforms to build (all by default).
	plugin, agent []platform
	// epoch is the archives' file time (reproducible archives).
	epoch time.Time
}

func main() {
	var o options
	flag.StringVar(&o.version, "version", "", "Release version, vX.Y.Z (a dry run accepts anything).")
	flag.StringVar(&o.revision, "revision", "", "Source revision stamped into the binaries.")
	flag.StringVar(&o.img, "img", "", "Agent image the installers deploy (default ghcr.io/bot-bottle/bottle-agent:VERSION).")
	flag.StringVar(&o.out, "out", "", "Output directory (default dist/release; a temporary directory for -dry-run).")
	flag.BoolVar(&o.dryRun, "dry-run", false, "Build and check everything into a temporary directory; for any version.")
	only := flag.String("platforms", "", "Comma-separated os/arch subset to build, for a quick dry run (a release builds all).")
	flag.Parse()
	var err error
	if o.plugin, o.agent, err = selectPlatforms(*only); err != nil {
		fmt.Fprintf(os.Stderr, "release: %v\n", err)
		os.Exit(2)
	}
	o.root = "."
	o.epoch = time.Unix(0, 0)
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		var secs int64
		if _, err := fmt.Sscan(s, &secs); err == nil {
			o.epoch = time.Unix(secs, 0)
		}
	}
	dir, err := release(o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "release: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("release %s written to %s\n", o.version, dir)
}

func release(o options) (string, error) {
	switch {
	case o.version == "" && o.dryRun:
		o.version = "v0.0.0-dry-run"
	case !semver.MatchString(o.version) && !o.dryRun:
		return "", fmt.Errorf("-version %q is not a release version vX.Y.Z[-pre]", o.version)
	case !o.dryRun && (len(o.plugin) != len(pluginPlatforms) || len(o.agent) != len(agentPlatforms)):
		return "", errors.New("-platforms is for dry runs: a release builds every platform")
	}
	if o.img == "" {
		o.img = installer.DefaultImage + ":" + o.version
	}
	if o.out == "" {
		if o.dryRun {
			d, err := os.MkdirTemp("", "bottle-release-")
			if err != nil {
				return "", err
			}
			o.out = d
		} else {
			o.out = filepath.Join(o.root, "dist", "release")
		}
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return "", err
	}
	license, err := os.ReadFile(filepath.Join(o.root, "LICENSE"))
	if err != nil {
		return "", err
	}
	complete, err := os.ReadFile(filepath.Join(o.root, "cmd", "kubectl-bottle", "kubectl_complete-bottle"))
	if err != nil {
		return "", err
	}

	var krew []krewPlatform
	for _, p := range o.plugin {
		bin, err := goBuild(o, p, "./cmd/kubectl-bottle")
		if err != nil {
			return "", err
		}
		name := fmt.Sprintf("kubectl-bottle_%s_%s.tar.gz", p.OS, p.Arch)
		archive, err := tarGz(o.epoch, map[string]file{
			"kubectl-bottle":          {mode: 0o755, data: bin},
			"kubectl_complete-bottle": {mode: 0o755, data: complete},
			"LICENSE":                 {mode: 0o644, data: license},
		})
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(o.out, name), archive, 0o644); err != nil {
			return "", err
		}
		krew = append(krew, krewPlatform{OS: p.OS, Arch: p.Arch, URI: downloadURL + o.version + "/" + name, SHA256: sha(archive)})
	}
	for _, p := range o.agent {
		bin, err := goBuild(o, p, "./cmd/manager")
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(o.out, "manager_"+p.OS+"_"+p.Arch), bin, 0o755); err != nil {
			return "", err
		}
	}

	manifest, err := renderKrew(filepath.Join(o.root, "hack", "krew", "bottle.yaml.tmpl"), o.version, krew)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(o.out, "bottle.yaml"), manifest, 0o644); err != nil {
		return "", err
	}
	for file, dir := range map[string]string{"install.yaml": "default", "install-cert-manager.yaml": "certmanager"} {
		y, err := installer.Build(filepath.Join(o.root, "config", dir), o.img)
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(o.out, file), y, 0o644); err != nil {
			return "", err
		}
	}
	if err := writeChecksums(o.out); err != nil {
		return "", err
	}
	return o.out, verify(o.out, len(o.plugin))
}

// selectPlatforms returns the plugin and agent platforms named in only
// (comma-separated os/arch), or all of them.
func selectPlatforms(only string) (plugin, agent []platform, err error) {
	if only == "" {
		return pluginPlatforms, agentPlatforms, nil
	}
	for _, s := range strings.Split(only, ",") {
		goos, arch, _ := strings.Cut(strings.TrimSpace(s), "/")
		p, known := platform{goos, arch}, false
		for _, q := range pluginPlatforms {
			if q == p {
				plugin, known = append(plugin, p), true
			}
		}
		for _, q := range agentPlatforms {
			if q == p {
				agent, known = append(agent, p), true
			}
		}
		if !known {
			return nil, nil, fmt.Errorf("-platforms: %q is not a release platform", s)
		}
	}
	return plugin, agent, nil
}

func goBuild(o options, p platform, pkg string) ([]byte, error) {
	tmp, err := os.CreateTemp("", "bottle-release-bin-")
	if err != nil {
		return nil, err
	}
	_ = tmp.Close()
	defer func() { _ = os.Remove(tmp.Name()) }()
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", version.LDFlags(o.version, o.revision), "-o", tmp.Name(), pkg)
	cmd.Dir = o.root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Arch)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go build %s for %s/%s: %w\n%s", pkg, p.OS, p.Arch, err, stderr.String())
	}
	return os.ReadFile(tmp.Name())
}

type file struct {
	mode int64
	data []byte
}

// tarGz writes a reproducible archive: sorted names, fixed times, root owner.
func tarGz(mtime time.Time, files map[string]file) ([]byte, error) {
	var buf bytes.Buffer
	gz, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	gz.ModTime = mtime
	tw := tar.NewWriter(gz)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		f := files[n]
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: n, Mode: f.mode, Size: int64(len(f.data)), ModTime: mtime, Format: tar.FormatPAX}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

type krewPlatform struct{ OS, Arch, URI, SHA256 string }

func renderKrew(tmplPath, ver string, platforms []krewPlatform) ([]byte, error) {
	t, err := template.New(filepath.Base(tmplPath)).Option("missingkey=error").ParseFiles(tmplPath)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, struct {
		Version   string
		Verbs     string
		Platforms []krewPlatform
	}{ver, pluginVerbs("      "), platforms}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// pluginVerbs lists `kubectl bottle`'s verbs, one line each with its short
// help, from the plugin's own commands: the krew description cannot lose or
// misname one.
func pluginVerbs(indent string) string {
	var b strings.Builder
	for _, c := range kubectlbottle.NewCommand(genericiooptions.IOStreams{}).Commands() {
		if c.IsAvailableCommand() {
			fmt.Fprintf(&b, "%skubectl bottle %-9s %s\n", indent, c.Name(), c.Short)
		}
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func writeChecksums(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var lines []string
	for _, e := range entries {
		if e.IsDir() || e.Name() == "checksums.txt" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return err
		}
		lines = append(lines, sha(b)+"  "+e.Name())
	}
	return os.WriteFile(filepath.Join(dir, "checksums.txt"), []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}

// verify re-reads what was written: the krew manifest names every archive
// with its true sha256, and no hash is a placeholder.
func verify(dir string, platforms int) error {
	b, err := os.ReadFile(filepath.Join(dir, "bottle.yaml"))
	if err != nil {
		return err
	}
	var m struct {
		Spec struct {
			Version   string `json:"version"`
			Platforms []struct {
				URI    string `json:"uri"`
				SHA256 string `json:"sha256"`
			} `json:"platforms"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("krew manifest: %w", err)
	}
	if len(m.Spec.Platforms) != platforms {
		return fmt.Errorf("krew manifest lists %d platforms, want %d", len(m.Spec.Platforms), platforms)
	}
	var errs []error
	for _, p := range m.Spec.Platforms {
		archive, err := os.ReadFile(filepath.Join(dir, filepath.Base(p.URI)))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if got := sha(archive); got != p.SHA256 || strings.Trim(p.SHA256, "0") == "" {
			errs = append(errs, fmt.Errorf("krew manifest: %s has sha256 %q, the archive %s", p.URI, p.SHA256, got))
		}
		if _, err := readTarGz(archive, "kubectl-bottle", "kubectl_complete-bottle", "LICENSE"); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", filepath.Base(p.URI), err))
		}
	}
	return errors.Join(errs...)
}

// readTarGz returns the archive's file names and fails unless it holds
// exactly want.
func readTarGz(archive []byte, want ...string) ([]string, error) {
	gz, err := gzip.NewReader(bytes.NewReader(archive))
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(gz)
	var names []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		names = append(names, h.Name)
	}
	sort.Strings(names)
	sort.Strings(want)
	if strings.Join(names, ",") != strings.Join(want, ",") {
		return names, fmt.Errorf("archive holds %v, want %v", names, want)
	}
	return names, nil
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
