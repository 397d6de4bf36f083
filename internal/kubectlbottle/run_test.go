package kubectlbottle

import (
	"strings"
	"testing"
	"time"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

func TestRunFlagsBuild(t *testing.T) {
	f := &runFlags{timeout: 90 * time.Second, ttl: time.Hour, env: []string{"A=1=2"}, outputs: []string{"review=/tmp/r.md"}, concurrency: "Forbid"}
	run, err := f.build(strings.NewReader(""), "reviewer", []string{"npm", "test"})
	if err != nil {
		t.Fatal(err)
	}
	if run.GenerateName != "reviewer-run-" || run.Spec.BottleRef.Name != "reviewer" || strings.Join(run.Spec.Command, " ") != "npm test" {
		t.Errorf("run = %+v", run)
	}
	if run.Spec.TimeoutSeconds != 90 || *run.Spec.TTLSecondsAfterFinished != 3600 || run.Spec.ConcurrencyPolicy != v1.ConcurrencyForbid {
		t.Errorf("timeout, ttl, policy = %d %d %s", run.Spec.TimeoutSeconds, *run.Spec.TTLSecondsAfterFinished, run.Spec.ConcurrencyPolicy)
	}
	if e := run.Spec.Env[0]; e.Name != "A" || *e.Value != "1=2" {
		t.Errorf("env = %+v", run.Spec.Env)
	}
	if o := run.Spec.Outputs[0]; o.Name != "review" || o.Path != "/tmp/r.md" {
		t.Errorf("outputs = %+v", run.Spec.Outputs)
	}

	// --claude: a script, the prompt in the environment, not in argv.
	run, err = (&runFlags{claude: "review it; rm -rf /"}).build(nil, "reviewer", nil)
	if err != nil {
		t.Fatal(err)
	}
	if run.Spec.Command != nil || run.Spec.Script == nil || strings.Contains(*run.Spec.Script, "rm -rf") {
		t.Errorf("claude run = %+v", run.Spec)
	}
	if e := run.Spec.Env[0]; e.Name != "BOTTLE_RUN_PROMPT" || *e.Value != "review it; rm -rf /" {
		t.Errorf("claude env = %+v", run.Spec.Env)
	}

	// --script - reads stdin; --template makes a fresh-Bottle run.
	run, err = (&runFlags{script: "-", template: "claude-code"}).build(strings.NewReader("echo hi\n"), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if *run.Spec.Script != "echo hi\n" || run.Spec.TemplateRef.Name != "claude-code" || run.Spec.BottleRef != nil {
		t.Errorf("script/template run = %+v", run.Spec)
	}

	for _, c := range []struct {
		f      *runFlags
		bottle string
		argv   []string
		says   string
	}{
		{&runFlags{}, "", []string{"true"}, "give the Bottle"},
		{&runFlags{template: "t"}, "b", []string{"true"}, "not both"},
		{&runFlags{}, "b", nil, "exactly one of"},
		{&runFlags{claude: "x"}, "b", []string{"true"}, "exactly one of"},
		{&runFlags{env: []string{"NOEQUALS"}}, "b", []string{"true"}, "KEY=VALUE"},
		{&runFlags{outputs: []string{"x"}}, "b", []string{"true"}, "NAME=PATH"},
	} {
		if _, err := c.f.build(strings.NewReader(""), c.bottle, c.argv); err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("build(%+v, %q, %q) = %v, want an error saying %q", c.f, c.bottle, c.argv, err, c.says)
		}
	}
}
