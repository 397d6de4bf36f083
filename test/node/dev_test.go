package node

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bot-bottle/bottle-controller/internal/testutil"
)

// TestDevOnRealNode: where a kubelet can run, `make dev` (hack/dev-up.sh)
// runs the real node with the project installed from dist/install.yaml:
// the agent and the cluster controller are Pods, the sample is Ready, placed
// through a reservation Pod the kubelet runs, and the README's quick-start
// commands hold (dev-admin execs, dev-viewer reads but may not delete or
// exec). hack/dev-down.sh takes it all down, leaving the machine as found.
func TestDevOnRealNode(t *testing.T) {
	requireNode(t)
	repo := testutil.RepoRoot()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	before := snapshot(t)
	dev, err := os.MkdirTemp("/var/tmp", "bottle-e2e-dev-")
	if err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "DEV_DIR="+dev, "DEV_KUBELET=1")
	c := &cluster{t: t, repo: repo, dir: filepath.Join(dev, "node"), kubeconfig: filepath.Join(dev, "kubeconfig"),
		bin: filepath.Join(dev, "bin"), node: "bottle-node", sdCgroup: "bottle-node-systemd"}
	t.Cleanup(func() {
		down := exec.Command(filepath.Join(repo, "hack/dev-down.sh"), "--clean")
		down.Env = env
		if out, err := down.CombinedOutput(); err != nil {
			t.Errorf("hack/dev-down.sh --clean: %v\n%s", err, out)
		}
		if ps := nodeProcesses(t, c.dir, c.sdCgroup); len(ps) > 0 {
			t.Errorf("processes of the node still run after dev-down: %+v", ps)
		}
		before.diff(t, snapshot(t))
	})

	up := exec.CommandContext(ctx, filepath.Join(repo, "hack/dev-up.sh"), "--background")
	up.Dir, up.Env = repo, env
	start := time.Now()
	out, err := up.CombinedOutput()
	if err != nil {
		t.Fatalf("hack/dev-up.sh --background: %v\n%s", err, out)
	}
	t.Logf("make dev on a real node took %s", time.Since(start).Round(time.Second))
	for _, want := range []string{"on a real node", "reviewer   Ready", "bottle-reviewer   1/1     Running"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("dev-up output lacks %q:\n%s", want, out)
		}
	}
	pods := c.kubectl(ctx, "-n", "bottle-system", "get", "pods", "-o", "jsonpath={range .items[*]}{.metadata.labels.app\\.kubernetes\\.io/component} {.status.phase}{\"\\n\"}{end}")
	lines := strings.Split(strings.TrimSpace(pods), "\n")
	running := 0
	for _, l := range lines {
		if strings.HasSuffix(l, " Running") {
			running++
		}
	}
	if !strings.Contains(pods, "agent Running") || len(lines) < 2 || running != len(lines) {
		t.Errorf("the agent and the cluster controller are not all Running Pods:\n%s", pods)
	}
	if id := c.run(ctx, "", "kubectl", "bottle", "exec", "reviewer", "--", "id", "-un"); id != "node\n" {
		t.Errorf("dev-admin exec: %q, want node", id)
	}
	if _, errOut, err := c.try(ctx, "", "kubectl", "--context", "dev-viewer", "delete", "bottle", "reviewer"); err == nil || !strings.Contains(errOut, "forbidden") {
		t.Errorf("dev-viewer could delete the sample (err %v): %s", err, errOut)
	}
	if _, errOut, err := c.try(ctx, "", "kubectl", "bottle", "--context", "dev-viewer", "exec", "reviewer", "--", "id"); err == nil || !strings.Contains(errOut, "forbidden") {
		t.Errorf("dev-viewer could exec (err %v): %s", err, errOut)
	}
	c.kubectl(ctx, "--context", "dev-viewer", "get", "bottles")
}
