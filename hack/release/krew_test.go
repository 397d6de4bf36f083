package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/yaml"

	"github.com/bot-bottle/bottle-controller/internal/kubectlbottle"
	"github.com/bot-bottle/bottle-controller/internal/testutil"
)

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
