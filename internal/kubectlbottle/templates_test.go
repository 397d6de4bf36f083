package kubectlbottle

import (
	"bytes"
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

func sampleTemplates() []v1.BottleTemplate {
	claude := v1.BottleTemplate{ObjectMeta: metav1.ObjectMeta{Name: "claude", Generation: 2}}
	claude.Status.Nodes = []v1.TemplateNodeStatus{
		{NodeName: "node-b", GoldenMachine: "g-b-1", TemplateGeneration: 1, Phase: v1.PhaseReady, HeldSlots: 2, Clones: 4},
		{NodeName: "node-a", GoldenMachine: "g-a-2", TemplateGeneration: 2, Phase: v1.PhaseReady, HeldSlots: 3, FreeSlots: 2, Clones: 1,
			RetiredGoldens: []v1.RetiredGolden{{MachineName: "g-a-1", TemplateGeneration: 1, Clones: 2}}},
		{NodeName: "node-c", GoldenMachine: "g-c-2", TemplateGeneration: 2, Phase: v1.PhaseFailed,
			Message: "step \"claude-code\" exited with code 1\nnpm ERR!"},
	}
	cold := v1.BottleTemplate{ObjectMeta: metav1.ObjectMeta{Name: "cold", Generation: 1}}
	return []v1.BottleTemplate{claude, cold}
}

func TestRenderTemplates(t *testing.T) {
	var out bytes.Buffer
	if err := RenderTemplates(&out, sampleTemplates()); err != nil {
		t.Fatal(err)
	}
	want := "TEMPLATE   NODE     GOLDEN   GENERATION        PHASE      FREE   HELD   CLONES   MESSAGE\n" +
		"claude     node-a   g-a-2    2                 Ready      2      3      1        -\n" +
		"claude     node-a   g-a-1    1 (template: 2)   Retired    -      -      2        kept for its clones\n" +
		"claude     node-b   g-b-1    1 (template: 2)   Ready      0      2      4        -\n" +
		"claude     node-c   g-c-2    2                 Failed     0      0      0        step \"claude-code\" exited with code 1\n" +
		"cold       -        -        -                 NoGolden   0      0      0        no node has a golden machine of this template yet\n"
	if out.String() != want {
		t.Fatalf("table:\n%s\nwant:\n%s", out.String(), want)
	}
	out.Reset()
	if err := RenderTemplates(&out, nil); err != nil || out.String() != "No BottleTemplates found.\n" {
		t.Fatalf("none: %q %v", out.String(), err)
	}
}

func TestTemplatesThroughMain(t *testing.T) {
	needEnv(t)
	tpl := &v1.BottleTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: "warm", Namespace: testNamespace},
		Spec: v1.BottleTemplateSpec{MachineSpec: v1.MachineSpec{Image: "node:22-bookworm"},
			Pool: v1.TemplatePool{HeldSlots: 2}},
	}
	if err := envClient.Create(context.Background(), tpl); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run("templates")
	if code != 0 || !strings.Contains(squeezed(out), "warm - - - NoGolden 0 0 0 no node has a golden") {
		t.Fatalf("templates before any golden: exit %d\n%s\nstderr %q", code, out, errOut)
	}
	tpl.Status.Nodes = []v1.TemplateNodeStatus{{NodeName: "node-a", GoldenMachine: "golden-1", TemplateGeneration: 1,
		Phase: v1.PhaseReady, HeldSlots: 2, FreeSlots: 2}}
	if err := envClient.Status().Update(context.Background(), tpl); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = run("templates", "warm")
	if code != 0 || !strings.Contains(squeezed(out), "warm node-a golden-1 1 Ready 2 2 0 -") {
		t.Fatalf("templates warm: exit %d\n%s\nstderr %q", code, out, errOut)
	}
	if code, _, errOut := run("templates", "nope"); code != 1 || !strings.Contains(errOut, "NotFound") {
		t.Fatalf("missing template: exit %d, stderr %q", code, errOut)
	}
	if code, out, errOut := run("__complete", "templates", "wa"); code != 0 || !strings.HasPrefix(out, "warm\n") {
		t.Fatalf("completion: exit %d, %q, stderr %q", code, out, errOut)
	}
}

// squeezed is s with every run of spaces as one, for matching table rows.
func squeezed(s string) string { return strings.Join(strings.Fields(s), " ") }
