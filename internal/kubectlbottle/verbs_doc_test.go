package kubectlbottle

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/bot-bottle/bottle-controller/internal/testutil"
)

// Every verb of the plugin is shown in the README's verb block and has a
// section of docs/exec.md: the plugin's own commands are the one list, the
// docs are checked against it (the krew description is rendered from it).
func TestEveryVerbIsDocumented(t *testing.T) {
	read := func(rel string) string {
		b, err := os.ReadFile(filepath.Join(testutil.RepoRoot(), rel))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	readme, exec := read("README.md"), read("docs/exec.md")
	for _, c := range NewCommand(genericiooptions.IOStreams{}).Commands() {
		if !c.IsAvailableCommand() {
			continue
		}
		verb := c.Name()
		if !strings.Contains(readme, "kubectl bottle "+verb+" ") {
			t.Errorf("README.md does not show `kubectl bottle %s`", verb)
		}
		if !strings.Contains(exec, "\n### "+verb+"\n") {
			t.Errorf("docs/exec.md has no section ### %s", verb)
		}
	}
}
