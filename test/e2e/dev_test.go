// Package e2e runs `make dev`'s scripts end to end: the smoke test CI runs.
package e2e

import (
	"bytes"
	"context"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bot-bottle/bottle-controller/internal/testutil"
)

// devPortSpan is how many ports hack/dev-up.sh takes from its API server's
// port up (the agent, exec server, scheduler and kube-controller-manager sit
// at +100…+107).
const devPortSpan = 108

// devPorts picks the API server's and etcd's ports for hack/dev-up.sh: one
// block of free ports below the kernel's ephemeral range. A port handed out
// by listening on :0 sits in that range, and so do the offsets dev-up adds to
// it; another test's client connection took one of them between the pick and
// kube-controller-manager's bind, and dev-up failed with "address already in
// use". Below the range only listeners that name their port can take one.
func devPorts(t *testing.T) (api, etcd int) {
	t.Helper()
	floor := ephemeralFloor(t)
	const lowest = 10000
	span := devPortSpan + 2 // etcd's client and peer ports follow the block
	for try := 0; try < 50; try++ {
		base := lowest + rand.IntN(floor-lowest-span)
		if portsFree(base, span) {
			return base, base + devPortSpan
		}
	}
	t.Fatalf("no %d free ports in a row below %d", span, floor)
	return 0, 0
}

// ephemeralFloor is the first port of the kernel's ephemeral range.
func ephemeralFloor(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768 // Linux's default
	}
	f := strings.Fields(string(b))
	n, err := strconv.Atoi(f[0])
	if err != nil || n < 20000 {
		t.Fatalf("ip_local_port_range %q leaves no room below it", b)
	}
	return n
}

// portsFree reports whether n ports from base can all be bound on loopback.
func portsFree(base, n int) bool {
	for p := base; p < base+n; p++ {
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			return false
		}
		_ = l.Close()
	}
	return true
}

type devEnv struct {
	t   *testing.T
	dir string
	env []string
}

func (d *devEnv) run(ctx context.Context, name string, args ...string) (string, string, error) {
	return d.runEnv(ctx, d.env, name, args...)
}

func (d *devEnv) runEnv(ctx context.Context, env []string, name string, args ...string) (string, string, error) {
	return d.runStdin(ctx, env, "", name, args...)
}

// runStdin runs name with stdin (none when empty).
func (d *devEnv) runStdin(ctx context.Context, env []string, stdin, name string, args ...string) (string, string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = testutil.RepoRoot()
	cmd.Env = env
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

// kubectl runs kubectl as the README says: KUBECONFIG exported and the dev
// bin directory (kubectl, kubectl-bottle) first on PATH.
func (d *devEnv) kubectl(ctx context.Context, args ...string) (string, string, error) {
	return d.kubectlStdin(ctx, "", args...)
}

// kubectlStdin is kubectl with stdin.
func (d *devEnv) kubectlStdin(ctx context.Context, stdin string, args ...string) (string, string, error) {
	bin := filepath.Join(d.dir, "bin")
	env := append(append([]string{}, d.env...), "KUBECONFIG="+filepath.Join(d.dir, "kubeconfig"), "PATH="+bin+":"+os.Getenv("PATH"))
	return d.runStdin(ctx, env, stdin, filepath.Join(bin, "kubectl"), args...)
}

// TestDevUpDown is the newcomer's path: hack/dev-up.sh --background brings
// the sample to Ready on the simulator, kubectl works for both dev users
// with their RBAC, and hack/dev-down.sh stops every process it started.
func TestDevUpDown(t *testing.T) {
	if testing.Short() {
		t.Skip("dev e2e: skipped in -short mode")
	}
	testutil.RequireBwrap(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	dir := t.TempDir()
	apiPort, etcdPort := devPorts(t)
	d := &devEnv{t: t, dir: dir, env: append(os.Environ(),
		"DEV_DIR="+dir,
		"DEV_APISERVER_PORT="+strconv.Itoa(apiPort),
		"DEV_ETCD_PORT="+strconv.Itoa(etcdPort),
		"DEV_NODE=e2e-node",
		// The processes path; the kubelet path is make test-e2e-node's (test/node).
		"DEV_KUBELET=0",
		// A real smolvm on a KVM host would make this test boot VMs.
		"PATH="+withoutSmolvm(os.Getenv("PATH")),
	)}
	down := func() {
		out, errOut, err := d.run(context.Background(), "hack/dev-down.sh")
		if err != nil {
			t.Errorf("dev-down: %v\n%s%s", err, out, errOut)
		}
	}

	out, errOut, err := d.run(ctx, "hack/dev-up.sh", "--background")
	if err != nil {
		down()
		t.Fatalf("dev-up --background: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	pids := readPids(t, filepath.Join(dir, "pids"))
	t.Cleanup(func() {
		for _, pid := range pids {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
	})

	for _, want := range []string{"export KUBECONFIG=" + filepath.Join(dir, "kubeconfig"), "--- step whoami (as node): exit 0", "reviewer   Ready"} {
		if !strings.Contains(out, want) {
			t.Errorf("dev-up output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "smolvm SIMULATOR") {
		t.Errorf("dev-up did not say it uses the simulator:\n%s", errOut)
	}

	phase, _, err := d.kubectl(ctx, "get", "bottle", "reviewer", "-o", "jsonpath={.status.phase}")
	if err != nil || phase != "Ready" {
		t.Errorf("sample phase = %q (%v), want Ready", phase, err)
	}
	if _, errOut, err := d.kubectl(ctx, "--context", "dev-viewer", "get", "bottles"); err != nil {
		t.Errorf("dev-viewer cannot list bottles: %v %s", err, errOut)
	}
	if _, errOut, err := d.kubectl(ctx, "--context", "dev-viewer", "delete", "bottle", "reviewer"); err == nil || !strings.Contains(errOut, "Forbidden") {
		t.Errorf("dev-viewer could delete a bottle (err %v): %s", err, errOut)
	}
	devExecChecks(ctx, t, d)
	devSessionChecks(ctx, t, d)
	devNewNamespaceChecks(ctx, t, d)
	devTemplateChecks(ctx, t, d)
	devRunChecks(ctx, t, d)

	down()
	for _, pid := range pids {
		if syscall.Kill(pid, 0) == nil {
			t.Errorf("process %d still runs after dev-down", pid)
		}
	}
}

func readPids(t *testing.T, dir string) []int {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, pid)
	}
	if len(pids) < 3 {
		t.Fatalf("dev-up recorded %d processes, want etcd, kube-apiserver, kube-controller-manager and agent", len(pids))
	}
	return pids
}

func withoutSmolvm(path string) string {
	var keep []string
	for _, p := range filepath.SplitList(path) {
		if _, err := os.Stat(filepath.Join(p, "smolvm")); err == nil {
			continue
		}
		keep = append(keep, p)
	}
	return strings.Join(keep, string(filepath.ListSeparator))
}
