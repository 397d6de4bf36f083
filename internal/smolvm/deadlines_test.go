package smolvm

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// boundByRequest are the verbs the table does not bound: an exec runs
// within its request's Timeout (or CLI.DefaultExecTimeout).
var boundByRequest = map[string]bool{verbExec: true, verbInteractive: true}

// TestEveryVerbIsInTheTable reads every verb* constant of this package's
// sources, so a new verb without a deadline fails here rather than panicking
// in an agent.
func TestEveryVerbIsInTheTable(t *testing.T) {
	verbs := verbConstants(t)
	if len(verbs) < 10 {
		t.Fatalf("found only %d verb constants (%v): the scan is broken", len(verbs), verbs)
	}
	for name, verb := range verbs {
		if boundByRequest[verb] {
			continue
		}
		t.Run(name, func(t *testing.T) {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("%s (%q) has no deadline: %v", name, verb, r)
				}
			}()
			if d := DefaultTimeouts().deadline(verb, 0); d <= 0 {
				t.Fatalf("%s: deadline %v", name, d)
			}
		})
	}
}

func TestUnknownVerbPanics(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), `"pause"`) {
			t.Fatalf("recovered %v, want a panic naming the verb", r)
		}
	}()
	DefaultTimeouts().deadline("pause", 0)
}

// Each verb takes the field its flag sets, and zero fields the defaults.
func TestDeadlineOfEachVerb(t *testing.T) {
	set := Timeouts{Version: 1 * time.Second, Status: 2 * time.Second, List: 3 * time.Second,
		Stop: 4 * time.Second, Delete: 5 * time.Second, Create: 6 * time.Second, Start: 7 * time.Second,
		Copy: 8 * time.Second, CopyPerMiB: time.Millisecond}
	d := DefaultTimeouts()
	for _, tt := range []struct {
		verb      string
		set, zero time.Duration
	}{
		{verbVersion, set.Version, d.Version},
		{verbStatus, set.Status, d.Status},
		{verbEgressEvents, set.Status, d.Status},
		{verbList, set.List, d.List},
		{verbStop, set.Stop, d.Stop},
		{verbDelete, set.Delete, d.Delete},
		{verbCreate, set.Create, d.Create},
		{verbUpdate, set.Create, d.Create},
		{verbStart, set.Start, d.Start},
		{verbFork, set.Start, d.Start},
		{verbForkRelease, set.Start, d.Start},
		{verbCopyIn, set.Copy, d.Copy},
	} {
		if got := set.deadline(tt.verb, 0); got != tt.set {
			t.Errorf("%s with the field set: %v, want %v", tt.verb, got, tt.set)
		}
		if got := (Timeouts{}).deadline(tt.verb, 0); got != tt.zero {
			t.Errorf("%s with zero Timeouts: %v, want the default %v", tt.verb, got, tt.zero)
		}
	}
	// A copy adds CopyPerMiB per MiB, rounded up.
	if got := set.deadline(verbCopyIn, 2<<20+1); got != set.Copy+3*set.CopyPerMiB {
		t.Errorf("copy of 2 MiB + 1 B: %v", got)
	}
}

// verbConstants maps each constant named verb* in the package's non-test
// sources to its value.
func verbConstants(t *testing.T) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), e.Name(), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	verbs := map[string]string{}
	for _, f := range files {
		for _, decl := range f.Decls {
			g, ok := decl.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, spec := range g.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if !strings.HasPrefix(n.Name, "verb") || i >= len(vs.Values) {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						t.Fatalf("%s is not a string literal", n.Name)
					}
					v, err := strconv.Unquote(lit.Value)
					if err != nil {
						t.Fatal(err)
					}
					verbs[n.Name] = v
				}
			}
		}
	}
	return verbs
}
