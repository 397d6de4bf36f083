package e2e

import (
	"context"
	"strings"
	"testing"
)

// devRunChecks: on the dev cluster a BottleRun in the sample Bottle is
// waited on with kubectl wait, as a pipeline would (docs/runs.md), and its
// result stays on the object.
func devRunChecks(ctx context.Context, t *testing.T, d *devEnv) {
	t.Helper()
	run := `apiVersion: agents.bot-bottle.dev/v1alpha1
kind: BottleRun
metadata: {name: hello, namespace: default}
spec:
  bottleRef: {name: reviewer}
  command: [sh, -c, "echo hello from the run; id -un"]
`
	if _, errOut, err := d.kubectlStdin(ctx, run, "apply", "--server-side", "-f", "-"); err != nil {
		t.Fatalf("apply a BottleRun: %v %s", err, errOut)
	}
	if out, errOut, err := d.kubectl(ctx, "wait", "bottlerun/hello", "--for=condition=Complete", "--timeout=2m"); err != nil {
		status, _, _ := d.kubectl(ctx, "get", "bottlerun/hello", "-o", "jsonpath={.status}")
		t.Fatalf("kubectl wait --for=condition=Complete: %v %s%s\nstatus: %s", err, out, errOut, status)
	}
	out, _, err := d.kubectl(ctx, "get", "bottlerun/hello", "-o", "jsonpath={.status.phase} {.status.exitCode} {.status.stdout}")
	if err != nil || !strings.HasPrefix(out, "Succeeded 0 hello from the run\nnode") {
		t.Errorf("the run's result on the object: %q %v", out, err)
	}
}
