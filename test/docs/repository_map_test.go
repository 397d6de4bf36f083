package docs

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/bot-bottle/bottle-controller/internal/testutil"
)

// The repository map of DEVELOPMENT.md names every Go package directory
// (`go list ./...`), and every directory it names exists: a new package, a
// move or a rename that forgets the map fails here.
func TestRepositoryMapIsComplete(t *testing.T) {
	root := testutil.RepoRoot()
	named := mapDirectories(t, filepath.Join(root, "DEVELOPMENT.md"))
	if len(named) == 0 {
		t.Fatal("DEVELOPMENT.md: no directory in the repository map")
	}
	for dir := range named {
		if fi, err := os.Stat(filepath.Join(root, dir)); err != nil || !fi.IsDir() {
			t.Errorf("the repository map names %s, which is not a directory", dir)
		}
	}

	cmd := exec.Command("go", "list", "-f", "{{.Dir}}", "./...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list ./...: %v", err)
	}
	for _, dir := range strings.Fields(string(out)) {
		rel, err := filepath.Rel(root, dir)
		if err != nil {
			t.Fatal(err)
		}
		rel = filepath.ToSlash(rel) + "/"
		if !named[rel] {
			t.Errorf("package directory %s is missing from the repository map in DEVELOPMENT.md", rel)
		}
	}
}

var backticked = regexp.MustCompile("`([^`]+)`")

// mapDirectories returns the directories in the first cell of each row of the
// "## Repository map" table: every backticked name ending in a slash.
func mapDirectories(t *testing.T, path string) map[string]bool {
	t.Helper()
	section := sectionOf(t, path, "## Repository map")
	dirs := map[string]bool{}
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(line, "|")
		if !strings.HasPrefix(line, "|") || len(cells) < 3 {
			continue
		}
		for _, m := range backticked.FindAllStringSubmatch(cells[1], -1) {
			if strings.HasSuffix(m[1], "/") {
				dirs[m[1]] = true
			}
		}
	}
	return dirs
}

// sectionOf returns the text under heading up to the next heading of the
// same or a higher level.
func sectionOf(t *testing.T, path, heading string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	start := strings.Index(text, "\n"+heading+"\n")
	if start < 0 {
		t.Fatalf("%s has no %q", path, heading)
	}
	rest := text[start+len(heading)+2:]
	level := strings.SplitN(heading, " ", 2)[0]
	for i := 1; i <= len(level); i++ {
		if end := strings.Index(rest, "\n"+strings.Repeat("#", i)+" "); end >= 0 {
			rest = rest[:end]
		}
	}
	return rest
}
