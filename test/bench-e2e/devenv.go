package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bot-bottle/bottle-controller/internal/smolvmsim"
	"github.com/bot-bottle/bottle-controller/internal/testenv"
)

// devEnv is one `make dev` environment (hack/dev-up.sh) started for a phase
// of the benchmark, on its own ports and directory.
type devEnv struct {
	repo, dir string
	// simLog is the agent's SMOLVM_SIM_LOG.
	simLog string
	// latency is the simulator's SMOLVM_SIM_LATENCY, the same for the
	// agent and for the work done by hand.
	latency string
	node    string
	cfg     *rest.Config
	client  client.WithWatch
	// agentMetrics is the agent's metrics endpoint (dev-up.sh: the API
	// server's port + 100).
	agentMetrics string
}

// devProcesses are the pid files hack/dev-up.sh writes, in
// <DEV_DIR>/pids/<name>.pid.
var devProcesses = []string{"agent", "cluster", "kube-scheduler", "kube-apiserver", "etcd"}

// startDev runs hack/dev-up.sh --background with the phase's settings. The
// agent inherits dev-up's environment, so the simulator knobs reach every
// smolvm process it starts.
func startDev(ctx context.Context, o *options, phase, latency string) (*devEnv, error) {
	d := &devEnv{
		repo:         o.repo,
		dir:          filepath.Join(o.workDir, "dev-"+phase),
		latency:      latency,
		node:         "bench-node",
		agentMetrics: fmt.Sprintf("http://127.0.0.1:%d/metrics", o.apiPort+100),
	}
	d.simLog = filepath.Join(d.dir, "smolvm-invocations.jsonl")
	if err := os.RemoveAll(d.dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(d.dir, 0o755); err != nil {
		return nil, err
	}
	logPath := filepath.Join(o.workDir, "dev-up-"+phase+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer func() { _ = logFile.Close() }()
	cmd := exec.CommandContext(ctx, filepath.Join(o.repo, "hack", "dev-up.sh"), "--background")
	cmd.Dir = o.repo
	cmd.Env = append(withoutSimKnobs(os.Environ()),
		"DEV_DIR="+d.dir,
		"DEV_APISERVER_PORT="+strconv.Itoa(o.apiPort),
		"DEV_ETCD_PORT="+strconv.Itoa(o.etcdPort),
		"DEV_NODE="+d.node,
		// The processes path: the benchmark reads their pids and logs.
		"DEV_KUBELET=0",
		"DEV_SAMPLE=0",
		// Room for every Bottle's reservation: capacity is not measured.
		"DEV_NODE_CPUS=4000",
		"DEV_NODE_MEMORY=64Ti",
		"DEV_RESYNC_PERIOD="+o.resyncPeriod.String(),
		"SMOLVM_SIM_LATENCY="+latency,
		smolvmsim.InvocationLogEnv+"="+d.simLog,
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	say("starting the dev environment for %s (SMOLVM_SIM_LATENCY=%s; log %s)", phase, latency, logPath)
	if err := cmd.Run(); err != nil {
		d.stop()
		return nil, fmt.Errorf("hack/dev-up.sh: %w (see %s)", err, logPath)
	}
	if target, err := os.Readlink(d.smolvm()); err != nil || filepath.Base(target) != "smolvm-sim" {
		d.stop()
		return nil, fmt.Errorf("the dev environment's agent does not use the smolvm simulator (%s): the benchmark counts smolvm processes through the simulator's %s", d.smolvm(), smolvmsim.InvocationLogEnv)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(d.dir, "kubeconfig"))
	if err != nil {
		d.stop()
		return nil, err
	}
	// The benchmark creates Bottles in bursts: the client must not be
	// what limits them.
	cfg.QPS, cfg.Burst = 1000, 2000
	d.cfg = cfg
	if d.client, err = client.NewWithWatch(cfg, client.Options{Scheme: testenv.Scheme()}); err != nil {
		d.stop()
		return nil, err
	}
	return d, nil
}

// withoutSimKnobs drops SMOLVM_SIM_* settings the caller may have: the
// phase sets its own.
func withoutSimKnobs(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "SMOLVM_SIM_") && !strings.HasPrefix(kv, "DEV_") {
			out = append(out, kv)
		}
	}
	return out
}

// stop runs hack/dev-down.sh --clean for this environment, keeping its
// logs and the simulator's invocation log next to the report
// (WORKDIR/logs-PHASE) for a later look at where the time went.
func (d *devEnv) stop() {
	kept := d.dir + "-logs"
	if err := os.MkdirAll(kept, 0o755); err == nil {
		for _, src := range append([]string{d.simLog}, globLogs(d.dir)...) {
			if data, err := os.ReadFile(src); err == nil {
				_ = os.WriteFile(filepath.Join(kept, filepath.Base(src)), data, 0o644)
			}
		}
	}
	cmd := exec.Command(filepath.Join(d.repo, "hack", "dev-down.sh"), "--clean")
	cmd.Dir = d.repo
	cmd.Env = append(withoutSimKnobs(os.Environ()), "DEV_DIR="+d.dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		say("hack/dev-down.sh: %v\n%s", err, out)
	}
}

// smolvm is the simulator the agent runs (a link to bin/smolvm-sim).
func (d *devEnv) smolvm() string { return filepath.Join(d.dir, "bin", "smolvm") }

// dataDir is the agent's --smolvm-data-dir.
func (d *devEnv) dataDir() string { return filepath.Join(d.dir, "smolvm") }

func (d *devEnv) kubeconfig() string { return filepath.Join(d.dir, "kubeconfig") }

// pids are the environment's processes by name.
func (d *devEnv) pids() map[string]int {
	out := map[string]int{}
	for _, name := range devProcesses {
		data, err := os.ReadFile(filepath.Join(d.dir, "pids", name+".pid"))
		if err != nil {
			continue
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
			out[name] = pid
		}
	}
	return out
}

// globLogs are the dev environment's process logs (hack/dev-up.sh).
func globLogs(dir string) []string {
	logs, _ := filepath.Glob(filepath.Join(dir, "logs", "*.log"))
	return logs
}
