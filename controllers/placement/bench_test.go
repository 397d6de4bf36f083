package placement_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/testenv"
	"github.com/bot-bottle/bottle-controller/internal/testutil"
)

// BenchmarkPlace200Bottles applies 200 Bottles without nodeName across 5
// Nodes with live agents and waits until every one is Scheduled, through
// the real kube-scheduler and the real cluster controller binary
// (bin/manager --mode=cluster, its own process). It reports:
//   - s-until-all-scheduled: wall time from the first create;
//   - controller-cpu-ms/bottle: the cluster controller process's CPU time
//     per Bottle: its share, apart from the API server's and the
//     scheduler's (goal: under 10 ms);
//   - reconcile-ms/bottle: wall time inside its reconciles, API round
//     trips included (on a loaded 2-core machine mostly waiting);
//   - passes/bottle: reconciles per Bottle.
func BenchmarkPlace200Bottles(b *testing.B) {
	const bottles, nodes = 200, 5
	RegisterTestingT(b)
	ctrl.SetLogger(logr.Discard())
	var cancelAll context.CancelFunc
	ctx, cancelAll = context.WithCancel(context.Background())
	defer cancelAll()
	e, c, err := testenv.Start(testenv.Options{})
	if testenv.Skippable(err) {
		b.Skip(err.Error())
	}
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = e.Stop() }()
	env, cfg = e, c
	k8sClient, err = client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	Expect(err).NotTo(HaveOccurred())
	Expect(k8sClient.Create(ctx, nsObj(agentNamespace))).To(Succeed())
	dir := b.TempDir()
	s, err := testenv.StartScheduler(env, dir)
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = s.Stop() }()
	for i := range nodes {
		name := fmt.Sprintf("bench-%d", i)
		_, err := testenv.CreateNode(ctx, k8sClient, name, 256, "1Ti", kvm)
		Expect(err).NotTo(HaveOccurred())
		defer beat(name).kill()
	}
	cc := startClusterProcess(env, dir)
	defer cc.stop()

	b.ResetTimer()
	var wall time.Duration
	var cpu, reconcile, passes float64
	for range b.N {
		ns := nsObj("")
		ns.GenerateName = "bench-"
		Expect(k8sClient.Create(ctx, ns)).To(Succeed())
		cpu0, rec0, pass0 := cc.cpuSeconds(), cc.metric(`controller_runtime_reconcile_time_seconds_sum{controller="placement"}`), cc.passes()
		start := time.Now()
		for i := range bottles {
			Expect(k8sClient.Create(ctx, newBottle(ns.Name, fmt.Sprintf("b%03d", i), 1, 1024, ""))).To(Succeed())
		}
		Eventually(func() int {
			var list v1.BottleList
			Expect(k8sClient.List(ctx, &list, client.InNamespace(ns.Name))).To(Succeed())
			n := 0
			for i := range list.Items {
				if meta.IsStatusConditionTrue(list.Items[i].Status.Conditions, v1.ConditionScheduled) {
					n++
				}
			}
			return n
		}).WithTimeout(5 * time.Minute).WithPolling(100 * time.Millisecond).Should(Equal(bottles))
		wall += time.Since(start)
		cpu += cc.cpuSeconds() - cpu0
		reconcile += cc.metric(`controller_runtime_reconcile_time_seconds_sum{controller="placement"}`) - rec0
		passes += cc.passes() - pass0
		b.StopTimer()
		Expect(k8sClient.Delete(ctx, ns)).To(Succeed())
		b.StartTimer()
	}
	per := float64(b.N * bottles)
	b.ReportMetric(wall.Seconds()/float64(b.N), "s-until-all-scheduled")
	b.ReportMetric(cpu*1000/per, "controller-cpu-ms/bottle")
	b.ReportMetric(reconcile*1000/per, "reconcile-ms/bottle")
	b.ReportMetric(passes/per, "passes/bottle")
}

// clusterProcess is bin/manager --mode=cluster run against env.
type clusterProcess struct {
	cmd     *exec.Cmd
	metrics string
}

func startClusterProcess(env *envtest.Environment, dir string) *clusterProcess {
	bin := filepath.Join(dir, "manager")
	build := exec.Command("go", "build", "-o", bin, "./cmd/manager")
	build.Dir = testutil.RepoRoot()
	out, err := build.CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), string(out))
	user, err := env.AddUser(envtest.User{Name: "bench-cluster", Groups: []string{"system:masters"}}, nil)
	Expect(err).NotTo(HaveOccurred())
	kc, err := user.KubeConfig()
	Expect(err).NotTo(HaveOccurred())
	kcPath := filepath.Join(dir, "cluster.kubeconfig")
	Expect(os.WriteFile(kcPath, kc, 0o600)).To(Succeed())
	metricsPort, err := testenv.FreePort()
	Expect(err).NotTo(HaveOccurred())
	probePort, err := testenv.FreePort()
	Expect(err).NotTo(HaveOccurred())
	logf, err := os.Create(filepath.Join(dir, "cluster-controller.log"))
	Expect(err).NotTo(HaveOccurred())
	cmd := exec.Command(bin, "--mode=cluster", "--leader-elect=false", "--lease-namespace="+agentNamespace,
		"--agent-timeout="+agentTimeout.String(), "--zap-log-level=error",
		fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", metricsPort),
		fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", probePort))
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kcPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	Expect(cmd.Start()).To(Succeed())
	Eventually(func() error {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", probePort))
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz: %s", resp.Status)
		}
		return nil
	}).WithTimeout(30 * time.Second).Should(Succeed())
	return &clusterProcess{cmd: cmd, metrics: fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)}
}

func (p *clusterProcess) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	_ = p.cmd.Wait()
}

// cpuSeconds is the process's user + system CPU time (/proc/PID/stat).
func (p *clusterProcess) cpuSeconds() float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	Expect(err).NotTo(HaveOccurred())
	// Fields after the command name (which may hold spaces) start at ')'.
	fields := strings.Fields(string(raw)[strings.LastIndexByte(string(raw), ')')+2:])
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	return (utime + stime) / 100 // USER_HZ
}

// metric returns the value of one series of the process's /metrics.
func (p *clusterProcess) metric(series string) float64 {
	resp, err := http.Get(p.metrics)
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		name, value, ok := strings.Cut(line, " ")
		if !ok || !seriesMatches(name, series) {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		Expect(err).NotTo(HaveOccurred())
		sum += v
	}
	return sum
}

// seriesMatches: name is series, or series plus more labels.
func seriesMatches(name, series string) bool {
	if name == series {
		return true
	}
	base, labels, _ := strings.Cut(series, "{")
	return strings.HasPrefix(name, base+"{") && strings.Contains(name, strings.TrimSuffix(labels, "}"))
}

func (p *clusterProcess) passes() float64 {
	return p.metric(`controller_runtime_reconcile_total{controller="placement"}`)
}
