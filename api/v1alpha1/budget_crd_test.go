package v1alpha1_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// crdText is a CRD file of config/crd/bases with whitespace runs as one
// space (YAML folds long strings).
func crdText(t *testing.T, file string) string {
	t.Helper()
	crd, err := os.ReadFile(filepath.Join("..", "..", "config", "crd", "bases", file))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(strings.Fields(string(crd)), " ")
}

// TestCRDRulesUseTheBudget: the CEL rules carry the budget as literals (a
// marker cannot reference a Go constant); this keeps the two in step, in
// both kinds that hold a MachineSpec.
func TestCRDRulesUseTheBudget(t *testing.T) {
	for _, file := range []string{"agents.bot-bottle.dev_bottles.yaml", "agents.bot-bottle.dev_bottletemplates.yaml"} {
		text := crdText(t, file)
		for name, n := range map[string]int{"MaxContentChars": v1.MaxContentChars, "MaxPathChars": v1.MaxPathChars} {
			if want := "<= " + strconv.Itoa(n); !strings.Contains(text, want) {
				t.Errorf("%s has no rule %q: update the markers on MachineSpec to %s", file, want, name)
			}
			if want := "at most " + strconv.Itoa(n) + " characters in total"; !strings.Contains(text, want) {
				t.Errorf("%s has no message %q for %s", file, want, name)
			}
		}
	}
}

// TestCRDDefaultsMatchGo: the numbers Go and the CRD's markers both spell.
func TestCRDDefaultsMatchGo(t *testing.T) {
	text := crdText(t, "agents.bot-bottle.dev_bottletemplates.yaml")
	for _, want := range []string{
		`heldSlots: default: 0 description: [^:]* format: int32 maximum: ` + strconv.Itoa(v1.MaxHeldSlots) + ` `,
		`cpus: default: ` + strconv.Itoa(v1.DefaultCPUs) + ` `,
		`memoryMiB: default: ` + strconv.Itoa(v1.DefaultMemoryMiB) + ` `,
	} {
		if !regexp.MustCompile(want).MatchString(text) {
			t.Errorf("the BottleTemplate CRD does not match %q", want)
		}
	}
}
