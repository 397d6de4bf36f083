package e2e

import (
	"context"
	"os/exec"
	"strings"
	"testing"
)

// devExecChecks: in the dev cluster `kubectl bottle exec` works for
// dev-admin and is forbidden for dev-viewer, as the README shows.
func devExecChecks(ctx context.Context, t *testing.T, d *devEnv) {
	t.Helper()
	out, errOut, err := d.kubectl(ctx, "bottle", "exec", "reviewer", "--", "sh", "-c", "id -un; echo to-stderr >&2; exit 6")
	var ee *exec.ExitError
	if !asExit(err, &ee) || ee.ExitCode() != 6 {
		t.Errorf("dev-admin exec: err %v, want exit 6; stderr %s", err, errOut)
	}
	if out != "node\n" || !strings.Contains(errOut, "to-stderr") {
		t.Errorf("dev-admin exec: stdout %q stderr %q", out, errOut)
	}
	_, errOut, err = d.kubectl(ctx, "bottle", "--context", "dev-viewer", "exec", "reviewer", "--", "id")
	if err == nil || !strings.Contains(errOut, "forbidden") {
		t.Errorf("dev-viewer exec: err %v, stderr %q; want forbidden", err, errOut)
	}
}

func asExit(err error, target **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	if ok {
		*target = e
	}
	return ok
}
