package docs

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/bot-bottle/bottle-controller/internal/testutil"
)

// pages returns README.md, DEVELOPMENT.md and docs/*.md by their path
// relative to the repository root, with their text.
func pages(t *testing.T, root string) map[string]string {
	t.Helper()
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, p := range append([]string{filepath.Join(root, "README.md"), filepath.Join(root, "DEVELOPMENT.md")}, docs...) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, p)
		out[filepath.ToSlash(rel)] = string(b)
	}
	return out
}

var qualified = regexp.MustCompile(`\b([a-z][a-z0-9]*)\.([A-Z][A-Za-z0-9_]*)`)

// Every `pkg.Name` the docs mention, in prose or in an example, where pkg
// is one of this module's packages (v1 is the API package's import name),
// names an identifier that package declares: a renamed or removed function
// cannot live on in an example that no longer compiles.
func TestDocumentedIdentifiersExist(t *testing.T) {
	root := testutil.RepoRoot()
	dirs := map[string][]string{} // package name -> directories
	for dir := range packages(t, root) {
		name := path.Base(dir)
		dirs[name] = append(dirs[name], dir)
	}
	dirs["v1"] = dirs["v1alpha1"]
	declared := map[string]map[string]bool{}
	decls := func(pkg string) map[string]bool {
		if d, ok := declared[pkg]; ok {
			return d
		}
		d := map[string]bool{}
		for _, dir := range dirs[pkg] {
			for name := range declaredNames(t, filepath.Join(root, dir)) {
				d[name] = true
			}
		}
		declared[pkg] = d
		return d
	}
	checked := 0
	for page, text := range pages(t, root) {
		for _, m := range qualified.FindAllStringSubmatch(text, -1) {
			pkg, name := m[1], m[2]
			if len(dirs[pkg]) == 0 {
				continue // the standard library, a dependency, or a variable
			}
			checked++
			if !decls(pkg)[name] {
				t.Errorf("%s names %s.%s, which package %s (%s) does not declare", page, pkg, name, pkg, strings.Join(dirs[pkg], ", "))
			}
		}
	}
	if checked == 0 {
		t.Fatal("no pkg.Name found in the docs: the pattern is broken")
	}
}

// declaredNames returns the top-level identifiers the Go files of dir
// declare, tests included (test helpers are named in DEVELOPMENT.md).
func declaredNames(t *testing.T, dir string) map[string]bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	fset := token.NewFileSet()
	for _, name := range files {
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil {
					out[d.Name.Name] = true
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						out[s.Name.Name] = true
					case *ast.ValueSpec:
						for _, n := range s.Names {
							out[n.Name] = true
						}
					}
				}
			}
		}
	}
	return out
}

var repoPath = regexp.MustCompile("`((?:api|cmd|config|controllers|docs|hack|internal|test)/[A-Za-z0-9_./-]*[A-Za-z0-9_/])`")

// hypothetical are paths that are not this repository's: a file a recipe
// of DEVELOPMENT.md would add, and kubebuilder's layout it is compared with.
var hypothetical = map[string]bool{"internal/kubectlbottle/stop.go": true, "cmd/main.go": true, "internal/controller/": true}

// Every repository path the docs quote (`internal/smolvm/argv.go`,
// `controllers/agent/`) exists: a moved or renamed file cannot leave the
// docs pointing at nothing.
func TestDocumentedPathsExist(t *testing.T) {
	root := testutil.RepoRoot()
	checked := 0
	var missing []string
	for page, text := range pages(t, root) {
		for _, m := range repoPath.FindAllStringSubmatch(text, -1) {
			p := m[1]
			if hypothetical[p] || strings.ContainsAny(p, "*") {
				continue
			}
			checked++
			if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(p))); err != nil {
				missing = append(missing, page+": "+p)
			}
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("%s does not exist", m)
	}
	if checked == 0 {
		t.Fatal("no repository path found in the docs: the pattern is broken")
	}
}

var flagBeforePlugin = regexp.MustCompile(`kubectl((?:\s+-{1,2}[a-z][a-z-]*(?:[= ][^-\s]\S*)?)+)\s+bottle(?:\s|$)`)

// kubectl does not accept flags before a plugin's name ("flags cannot be
// placed before plugin name"): an example must write `kubectl bottle
// --as dave exec …`, not `kubectl --as dave bottle exec …`.
func TestNoFlagsBeforeThePluginName(t *testing.T) {
	root := testutil.RepoRoot()
	for page, text := range pages(t, root) {
		for _, m := range flagBeforePlugin.FindAllString(text, -1) {
			t.Errorf("%s: %q: kubectl refuses flags before a plugin's name; put them after `bottle`", page, m)
		}
	}
}
