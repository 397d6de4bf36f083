package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// devTemplateChecks: on the dev cluster a BottleTemplate's golden is
// provisioned on the node, a templated Bottle is forked from it (a held
// slot), and the plugin's verbs work on it as on any Bottle: wait, exec,
// cp both ways, results, logs, templates.
func devTemplateChecks(ctx context.Context, t *testing.T, d *devEnv) {
	t.Helper()
	manifest := `apiVersion: agents.bot-bottle.dev/v1alpha1
kind: BottleTemplate
metadata: {name: tools, namespace: default}
spec:
  image: node:22-bookworm
  resources: {cpus: 1, memoryMiB: 1024}
  files:
  - {path: /home/node/tools.conf, owner: node, inline: "tools=1"}
  provision:
  - name: install
    script: echo installed-once >> /home/node/installs
  pool: {heldSlots: 1, nodeSelector: {bot-bottle.dev/kvm: "true"}}
---
apiVersion: agents.bot-bottle.dev/v1alpha1
kind: Bottle
metadata: {name: forked, namespace: default}
spec:
  templateRef: {name: tools}
  provision:
  - name: own
    script: cat /home/node/tools.conf /home/node/installs
`
	if _, errOut, err := d.kubectlStdin(ctx, manifest, "apply", "--server-side", "-f", "-"); err != nil {
		t.Fatalf("apply a template and a templated Bottle: %v %s", err, errOut)
	}
	if out, errOut, err := d.kubectl(ctx, "bottle", "wait", "forked", "--timeout=3m"); err != nil {
		status, _, _ := d.kubectl(ctx, "get", "bottletemplate/tools", "-o", "jsonpath={.status}")
		t.Fatalf("kubectl bottle wait forked: %v %s%s\ntemplate status: %s", err, out, errOut, status)
	}
	if out, _, err := d.kubectl(ctx, "get", "bottle", "forked", "-o", "jsonpath={.status.template.heldSlot}"); err != nil || out != "true" {
		t.Errorf("forked did not take the held slot: %q %v", out, err)
	}
	if out, errOut, err := d.kubectl(ctx, "bottle", "exec", "forked", "--", "sh", "-c", "id -un; cat /home/node/installs"); err != nil || out != "node\ninstalled-once\n" {
		t.Errorf("exec in the fork: %q %v %s; want the exec user and the template's step run once", out, err, errOut)
	}
	local := filepath.Join(t.TempDir(), "in.txt")
	if err := os.WriteFile(local, []byte("copied in\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, err := d.kubectl(ctx, "bottle", "cp", local, "forked:/home/node/in.txt"); err != nil {
		t.Errorf("cp into the fork: %v %s", err, errOut)
	}
	back := filepath.Join(t.TempDir(), "back.txt")
	if _, errOut, err := d.kubectl(ctx, "bottle", "cp", "forked:/home/node/in.txt", back); err != nil {
		t.Errorf("cp out of the fork: %v %s", err, errOut)
	} else if data, _ := os.ReadFile(back); string(data) != "copied in\n" {
		t.Errorf("cp round trip: %q", data)
	}
	if out, errOut, err := d.kubectl(ctx, "bottle", "results", "forked"); err != nil || !strings.Contains(out, "own") || !strings.Contains(out, "Succeeded") {
		t.Errorf("results of the fork: %v %s\n%s", err, errOut, out)
	}
	if out, errOut, err := d.kubectl(ctx, "bottle", "logs", "forked", "--step", "own"); err != nil || out != "tools=1installed-once\n" {
		t.Errorf("logs of the fork's own step: %q %v %s", out, err, errOut)
	}
	if out, errOut, err := d.kubectl(ctx, "bottle", "templates", "tools"); err != nil || !strings.Contains(out, "Ready") {
		t.Errorf("kubectl bottle templates: %v %s\n%s", err, errOut, out)
	}
	if out, errOut, err := d.kubectl(ctx, "delete", "bottle/forked", "bottletemplate/tools", "--wait", "--timeout=2m"); err != nil {
		t.Errorf("delete the fork and the template: %v %s%s", err, out, errOut)
	}
}
