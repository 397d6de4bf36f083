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

	for dir := range packages(t, root) {
		if !named[dir+"/"] {
			t.Errorf("package directory %s/ is missing from the repository map in DEVELOPMENT.md", dir)
		}
	}
}

// The "Imported by" column of the repository map is what the code imports
// (tests aside): every package a row names there imports one of the row's
// packages, and every package that does is named. A row that says
// "everyone" is not checked.
func TestRepositoryMapImportsAreTrue(t *testing.T) {
	root := testutil.RepoRoot()
	pkgs := packages(t, root)
	importers := map[string]map[string]bool{}
	for dir, imports := range pkgs {
		for _, imp := range imports {
			if importers[imp] == nil {
				importers[imp] = map[string]bool{}
			}
			importers[imp][dir] = true
		}
	}
	rows := 0
	for _, row := range mapRows(t, filepath.Join(root, "DEVELOPMENT.md")) {
		if strings.Contains(row.importedBy, "everyone") {
			continue
		}
		inRow := map[string]bool{}
		for _, d := range row.dirs {
			inRow[strings.TrimSuffix(d, "/")] = true
		}
		actual, claimed := map[string]bool{}, map[string]bool{}
		isPackage := false
		for d := range inRow {
			if _, ok := pkgs[d]; ok {
				isPackage = true
			}
			for imp := range importers[d] {
				if !inRow[imp] {
					actual[imp] = true
				}
			}
		}
		if !isPackage {
			continue
		}
		rows++
		for _, m := range backticked.FindAllStringSubmatch(row.importedBy, -1) {
			d := strings.TrimSuffix(m[1], "/")
			if _, ok := pkgs[d]; ok && !inRow[d] {
				claimed[d] = true
			}
		}
		for d := range actual {
			if !claimed[d] {
				t.Errorf("repository map, row %v: %s imports it but is not in its \"Imported by\"", row.dirs, d)
			}
		}
		for d := range claimed {
			if !actual[d] {
				t.Errorf("repository map, row %v: \"Imported by\" names %s, which does not import it", row.dirs, d)
			}
		}
	}
	if rows == 0 {
		t.Fatal("no row of the repository map was checked")
	}
}

// packages maps each package directory of the module, relative to root, to
// the directories of the module's packages it imports (tests aside).
func packages(t *testing.T, root string) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-f", "{{.ImportPath}} {{.Dir}} {{join .Imports \" \"}}", "./...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list ./...: %v", err)
	}
	mod := exec.Command("go", "list", "-m")
	mod.Dir = root
	modPath, err := mod.Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	prefix := strings.TrimSpace(string(modPath)) + "/"
	pkgs := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		rel, err := filepath.Rel(root, f[1])
		if err != nil {
			t.Fatal(err)
		}
		var imports []string
		for _, imp := range f[2:] {
			if strings.HasPrefix(imp, prefix) {
				imports = append(imports, strings.TrimPrefix(imp, prefix))
			}
		}
		pkgs[filepath.ToSlash(rel)] = imports
	}
	return pkgs
}

var backticked = regexp.MustCompile("`([^`]+)`")

// mapRow is one row of the repository map: the directories of its first
// cell (every backticked name ending in a slash) and its last cell.
type mapRow struct {
	dirs       []string
	importedBy string
}

func mapRows(t *testing.T, path string) []mapRow {
	t.Helper()
	var rows []mapRow
	for _, line := range strings.Split(sectionOf(t, path, "## Repository map"), "\n") {
		cells := strings.Split(line, "|")
		if !strings.HasPrefix(line, "|") || len(cells) < 5 {
			continue
		}
		var row mapRow
		for _, m := range backticked.FindAllStringSubmatch(cells[1], -1) {
			if strings.HasSuffix(m[1], "/") {
				row.dirs = append(row.dirs, m[1])
			}
		}
		if len(row.dirs) > 0 {
			row.importedBy = cells[len(cells)-2]
			rows = append(rows, row)
		}
	}
	return rows
}

// mapDirectories returns every directory the repository map names.
func mapDirectories(t *testing.T, path string) map[string]bool {
	t.Helper()
	dirs := map[string]bool{}
	for _, row := range mapRows(t, path) {
		for _, d := range row.dirs {
			dirs[d] = true
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
