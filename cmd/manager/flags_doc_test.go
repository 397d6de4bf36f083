package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bot-bottle/bottle-controller/internal/testutil"
)

var updateFlagDocs = flag.Bool("update-flag-docs", false, "rewrite docs/agent.md's flag table from the manager's flags")

const (
	flagTableBegin = "<!-- BEGIN flags: generated from cmd/manager's flags by `go test ./cmd/manager -run TestFlagReferenceIsCurrent -args -update-flag-docs` -->\n"
	flagTableEnd   = "<!-- END flags -->\n"
)

// docs/agent.md's flag table is the manager's own flag set, every flag with
// its default and help text, as -h prints them: a flag added, removed or
// reworded without regenerating the table fails here.
func TestFlagReferenceIsCurrent(t *testing.T) {
	// Defaults read from the environment are documented as unset.
	for _, env := range []string{"NODE_NAME", "SMOLVM_DATA_DIR", "POD_NAMESPACE"} {
		t.Setenv(env, "")
	}
	want := flagTable(newFlagSet(&options{}))

	path := filepath.Join(testutil.RepoRoot(), "docs", "agent.md")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	begin, end := strings.Index(doc, flagTableBegin), strings.Index(doc, flagTableEnd)
	if begin < 0 || end < begin {
		t.Fatalf("docs/agent.md lacks the markers %q … %q", flagTableBegin, flagTableEnd)
	}
	got := doc[begin+len(flagTableBegin) : end]
	if got == want {
		return
	}
	if *updateFlagDocs {
		doc = doc[:begin+len(flagTableBegin)] + want + doc[end:]
		if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("docs/agent.md's flag table is not the manager's flags; regenerate it:\n"+
		"  go test ./cmd/manager -run TestFlagReferenceIsCurrent -args -update-flag-docs\nwant:\n%s", want)
}

// flagTable renders fs as a Markdown table, in -h's order (by name).
func flagTable(fs *flag.FlagSet) string {
	var b strings.Builder
	b.WriteString("| flag | default | what it does |\n| --- | --- | --- |\n")
	fs.VisitAll(func(f *flag.Flag) {
		def := ""
		if f.DefValue != "" {
			def = "`" + f.DefValue + "`"
		}
		// A table cell: no pipe or newline, and no <node> GitHub would take for HTML.
		usage := strings.NewReplacer("|", `\|`, "\n", " ", "<", "&lt;", ">", "&gt;").Replace(f.Usage)
		fmt.Fprintf(&b, "| `--%s` | %s | %s |\n", f.Name, def, usage)
	})
	return b.String()
}
