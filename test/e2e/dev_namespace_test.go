package e2e

import (
	"context"
	"strings"
	"testing"
)

// devNewNamespaceChecks: a Bottle in a namespace made after `make dev` is
// placed and Ready. Its reservation Pod is admitted with the namespace's
// default ServiceAccount, which kube-controller-manager makes; without it
// the Pod is refused and the Bottle is never placed.
func devNewNamespaceChecks(ctx context.Context, t *testing.T, d *devEnv) {
	t.Helper()
	if _, errOut, err := d.kubectl(ctx, "create", "namespace", "team-new"); err != nil {
		t.Fatalf("create namespace: %v %s", err, errOut)
	}
	bottle := `apiVersion: agents.bot-bottle.dev/v1alpha1
kind: Bottle
metadata:
  name: fresh
  namespace: team-new
spec:
  image: node:22-bookworm
  resources:
    cpus: 1
    memoryMiB: 1024
`
	if _, errOut, err := d.kubectlStdin(ctx, bottle, "apply", "--server-side", "-f", "-"); err != nil {
		t.Fatalf("apply a Bottle in team-new: %v %s", err, errOut)
	}
	if out, errOut, err := d.kubectl(ctx, "-n", "team-new", "wait", "bottle/fresh", "--for=condition=Ready", "--timeout=3m"); err != nil {
		status, _, _ := d.kubectl(ctx, "-n", "team-new", "get", "bottle/fresh", "-o", "jsonpath={.status}")
		t.Fatalf("Bottle team-new/fresh not Ready: %v %s%s\nstatus: %s", err, out, errOut, status)
	}
	if out, errOut, err := d.kubectl(ctx, "-n", "team-new", "delete", "bottle/fresh", "--wait", "--timeout=2m"); err != nil || !strings.Contains(out, "deleted") {
		t.Errorf("delete team-new/fresh: %v %s%s", err, out, errOut)
	}
}
