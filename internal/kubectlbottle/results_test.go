package kubectlbottle

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

func i32(v int32) *int32 { return &v }

func sampleResults(start time.Time) *v1.Bottle {
	at := func(d time.Duration) *metav1.MicroTime { t := metav1.NewMicroTime(start.Add(d)); return &t }
	b := &v1.Bottle{}
	b.Spec.ExecUser = "node"
	for _, name := range []string{"install", "configure", "long", "pending", "later"} {
		b.Spec.Provision = append(b.Spec.Provision, v1.ProvisionStep{Name: name})
	}
	b.Spec.Provision[0].User = "root"
	b.Status.ExecResults = []v1.ExecResult{
		{Name: "install", User: "root", ExitCode: i32(0), Stdout: "step 1\nadded 12 packages\n\n", StartedAt: at(0), FinishedAt: at(1500 * time.Millisecond)},
		{Name: "configure", User: "node", ExitCode: i32(3), Stderr: "warning\nfatal:\tno\x1b[31m config", StartedAt: at(2 * time.Second), FinishedAt: at(2*time.Second + 40*time.Millisecond)},
		{Name: "long", User: "node", Stdout: strings.Repeat("x", 100), StartedAt: at(3 * time.Second)},
		{Name: "pending"},
	}
	return b
}

func TestRenderResultsTable(t *testing.T) {
	start := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	var out bytes.Buffer
	if err := RenderResults(&out, sampleResults(start), "", start.Add(73*time.Second)); err != nil {
		t.Fatal(err)
	}
	want := "STEP        STATUS      USER   EXIT CODE   DURATION        OUTPUT\n" +
		"install     Succeeded   root   0           1.5s            added 12 packages\n" +
		"configure   Failed      node   3           40ms            fatal: no [31m config\n" +
		"long        Running     node   -           running 1m10s   " + strings.Repeat("x", maxOutputColumn-1) + "…\n" +
		"pending     Pending     -      -           -               -\n" +
		"later       Pending     node   -           -               -\n"
	if out.String() != want {
		t.Fatalf("table:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestRenderResultsOfAFork(t *testing.T) {
	start := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	b := sampleResults(start)
	b.Spec.Provision = b.Spec.Provision[:1]
	b.Status.ExecResults = b.Status.ExecResults[:1]
	b.Status.Template = &v1.TemplateOrigin{Name: "claude-code", Generation: 3,
		Steps: []v1.InheritedStep{{Name: "install-claude"}, {Name: "tools"}}}
	var out bytes.Buffer
	if err := RenderResults(&out, b, "", start); err != nil {
		t.Fatal(err)
	}
	want := "STEP             STATUS      USER   EXIT CODE   DURATION   OUTPUT\n" +
		"install-claude   Inherited   -      -           -          from template claude-code, generation 3\n" +
		"tools            Inherited   -      -           -          from template claude-code, generation 3\n" +
		"install          Succeeded   root   0           1.5s       added 12 packages\n"
	if out.String() != want {
		t.Fatalf("table:\n%s\nwant:\n%s", out.String(), want)
	}
	// A fork with no steps of its own still shows what it inherited.
	b.Spec.Provision, b.Status.ExecResults = nil, nil
	out.Reset()
	if err := RenderResults(&out, b, "", start); err != nil || !strings.Contains(out.String(), "tools            Inherited") {
		t.Fatalf("fork without own steps: %v\n%s", err, out.String())
	}
}

func TestRenderResultsFormats(t *testing.T) {
	start := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	var out bytes.Buffer
	if err := RenderResults(&out, sampleResults(start), "json", start); err != nil {
		t.Fatal(err)
	}
	var back []v1.ExecResult
	if err := json.Unmarshal(out.Bytes(), &back); err != nil || len(back) != 4 || *back[1].ExitCode != 3 {
		t.Fatalf("json round trip: %v %+v", err, back)
	}
	out.Reset()
	if err := RenderResults(&out, sampleResults(start), "yaml", start); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "- exitCode: 0\n") || !strings.Contains(out.String(), "name: configure") {
		t.Fatalf("yaml:\n%s", out.String())
	}
	out.Reset()
	if err := RenderResults(&out, &v1.Bottle{}, "", start); err != nil || out.String() != "This Bottle has no provisioning steps.\n" {
		t.Fatalf("empty: %q %v", out.String(), err)
	}
	out.Reset()
	if err := RenderResults(&out, &v1.Bottle{}, "json", start); err != nil || out.String() != "[]\n" {
		t.Fatalf("empty json: %q %v", out.String(), err)
	}
}

func TestRetryPatch(t *testing.T) {
	at := time.Date(2026, 5, 1, 12, 0, 0, 123456789, time.UTC)
	p, err := RetryPatch(at, "")
	if err != nil || string(p) != `{"metadata":{"annotations":{"agents.bot-bottle.dev/retry":"2026-05-01T12:00:00.123456789Z","agents.bot-bottle.dev/retry-step":null}}}` {
		t.Fatalf("plain retry: %s %v", p, err)
	}
	p, _ = RetryPatch(at, "setup")
	var m map[string]map[string]map[string]string
	if err := json.Unmarshal(p, &m); err != nil || m["metadata"]["annotations"][v1.AnnotationRetryStep] != "setup" {
		t.Fatalf("retry --step: %s %v", p, err)
	}
}
