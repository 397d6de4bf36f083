package testenv

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Scheduler is a real kube-scheduler (built by hack/envtest-bins.sh next
// to kube-apiserver) running against a test environment.
type Scheduler struct {
	cmd  *exec.Cmd
	done chan error
	// Log is the scheduler's output.
	Log string
}

// StartScheduler runs kube-scheduler against env as a system:masters user,
// without leader election and with a one-second backoff for unschedulable
// Pods (the default is minutes), and waits until it serves /healthz. dir
// holds its kubeconfig, configuration and log.
func StartScheduler(env *envtest.Environment, dir string) (*Scheduler, error) {
	bin := filepath.Join(env.BinaryAssetsDirectory, "kube-scheduler")
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("kube-scheduler is not in KUBEBUILDER_ASSETS (%s): run hack/envtest-bins.sh: %w", env.BinaryAssetsDirectory, err)
	}
	user, err := env.AddUser(envtest.User{Name: "test-scheduler", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, err
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return nil, err
	}
	kcPath := filepath.Join(dir, "scheduler.kubeconfig")
	if err := os.WriteFile(kcPath, kubeconfig, 0o600); err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "scheduler.yaml")
	cfg := fmt.Sprintf(`apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: %q
leaderElection:
  leaderElect: false
podInitialBackoffSeconds: 1
podMaxBackoffSeconds: 1
`, kcPath)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	s := &Scheduler{Log: filepath.Join(dir, "kube-scheduler.log"), done: make(chan error, 1)}
	logf, err := os.Create(s.Log)
	if err != nil {
		return nil, err
	}
	s.cmd = exec.Command(bin, "--config="+cfgPath, "--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(port),
		"--cert-dir="+filepath.Join(dir, "scheduler-certs"), "--v=1")
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		_ = logf.Close()
		return nil, err
	}
	go func() { s.done <- s.cmd.Wait(); _ = logf.Close() }()

	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // a local test process's self-signed serving cert
	url := fmt.Sprintf("https://127.0.0.1:%d/healthz", port)
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-s.done:
			return nil, fmt.Errorf("kube-scheduler exited (%v); see %s", err, s.Log)
		default:
		}
		if resp, err := hc.Get(url); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			_ = s.Stop()
			return nil, fmt.Errorf("kube-scheduler not healthy after 60s; see %s", s.Log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop ends the scheduler.
func (s *Scheduler) Stop() error {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		return ignoreSignalled(err)
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		return ignoreSignalled(<-s.done)
	}
}

// ignoreSignalled drops the exit status of a process this package
// stopped: kube-scheduler exits 1 on SIGTERM.
func ignoreSignalled(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return nil
	}
	return err
}

// FreePort is a loopback TCP port free at the time of the call.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// CreateNode makes a Node object the scheduler can place Pods on (there
// is no kubelet: nothing runs them): the given allocatable CPUs and memory,
// 110 Pods, Ready and untainted, with labels.
func CreateNode(ctx context.Context, c client.Client, name string, cpus int64, memory string, labels map[string]string) (*corev1.Node, error) {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if err := c.Create(ctx, n); err != nil {
		return nil, err
	}
	// The API server's admission taints a new Node not-ready until the
	// node lifecycle controller (not running here) sees it Ready. Other
	// writers (the node labeller) may race: retry on conflicts.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(n), n); err != nil {
			return err
		}
		n.Spec.Taints = nil
		return c.Update(ctx, n)
	})
	if err != nil {
		return nil, err
	}
	res := corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewQuantity(cpus, resource.DecimalSI),
		corev1.ResourceMemory: resource.MustParse(memory),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(n), n); err != nil {
			return err
		}
		n.Status = corev1.NodeStatus{
			Capacity: res, Allocatable: res,
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
				LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}},
		}
		return c.Status().Update(ctx, n)
	})
	return n, err
}
