package v1alpha1_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// TestCRDRulesUseTheBudget: the CEL rules carry the budget as literals (a
// marker cannot reference a Go constant); this keeps the two in step.
func TestCRDRulesUseTheBudget(t *testing.T) {
	crd, err := os.ReadFile(filepath.Join("..", "..", "config", "crd", "bases", "agents.bot-bottle.dev_bottles.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// YAML folds long strings: compare with whitespace runs as one space.
	text := strings.Join(strings.Fields(string(crd)), " ")
	for name, n := range map[string]int{"MaxContentChars": v1.MaxContentChars, "MaxPathChars": v1.MaxPathChars} {
		if want := "<= " + strconv.Itoa(n); !strings.Contains(text, want) {
			t.Errorf("the CRD has no rule %q: update the markers on BottleSpec to %s", want, name)
		}
		if want := "at most " + strconv.Itoa(n) + " characters in total"; !strings.Contains(text, want) {
			t.Errorf("the CRD has no message %q for %s", want, name)
		}
	}
}
