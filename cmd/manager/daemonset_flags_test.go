package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/bot-bottle/bottle-controller/internal/installer"
	"github.com/bot-bottle/bottle-controller/internal/testutil"
)

// Every flag the shipped DaemonSet passes (dist/install.yaml and the
// cert-manager variant) is one this manager accepts, with a valid value.
func TestDaemonSetArgsAreManagerFlags(t *testing.T) {
	for _, dir := range []string{"default", "certmanager"} {
		y, err := installer.Build(filepath.Join(testutil.RepoRoot(), "config", dir), "")
		if err != nil {
			t.Fatal(err)
		}
		var ds *appsv1.DaemonSet
		for _, doc := range strings.Split(string(y), "\n---\n") {
			if strings.Contains(doc, "kind: DaemonSet") {
				ds = &appsv1.DaemonSet{}
				if err := yaml.UnmarshalStrict([]byte(doc), ds); err != nil {
					t.Fatal(err)
				}
			}
		}
		if ds == nil {
			t.Fatalf("config/%s: no DaemonSet", dir)
		}
		c := ds.Spec.Template.Spec.Containers[0]
		if len(c.Args) == 0 {
			t.Fatalf("config/%s: the agent has no args", dir)
		}
		// NODE_NAME comes from the downward API in the pod.
		t.Setenv("NODE_NAME", "node-a")
		o, err := parseFlags(c.Args)
		if err != nil {
			t.Errorf("config/%s: the manager rejects the DaemonSet's args %q: %v", dir, c.Args, err)
			continue
		}
		checkDaemonSetPaths(t, dir, o, ds.Spec.Template.Spec)
	}
}

// checkDaemonSetPaths: the paths the args name are where the pod mounts
// things. smolvm runs in the node's root, mounted read-only at
// --smolvm-root from the host's /; what smolvm writes (its data dir, the
// copy sources) is a read-write hostPath of that same host path, mounted at
// the same place inside the root.
func checkDaemonSetPaths(t *testing.T, dir string, o *options, pod corev1.PodSpec) {
	t.Helper()
	hostPaths := map[string]string{}
	for _, v := range pod.Volumes {
		if v.HostPath != nil {
			hostPaths[v.Name] = v.HostPath.Path
		}
	}
	type mount struct {
		hostPath string
		readOnly bool
	}
	mounts := map[string]mount{}
	for _, m := range pod.Containers[0].VolumeMounts {
		mounts[m.MountPath] = mount{hostPaths[m.Name], m.ReadOnly}
		if m.MountPath == o.smolvmRoot.root && (m.MountPropagation == nil || *m.MountPropagation != corev1.MountPropagationHostToContainer) {
			t.Errorf("config/%s: the root at %s does not see later host mounts (mountPropagation %v)", dir, m.MountPath, m.MountPropagation)
		}
	}
	if o.smolvmRoot.root == "" {
		t.Fatalf("config/%s: the agent runs smolvm without --smolvm-root: a dynamically linked smolvm cannot run from its image", dir)
	}
	// The kubelet waits terminationGracePeriodSeconds before it kills the
	// agent: the manager's own shutdown (the step's grace and the status
	// write after it) must fit.
	if g := pod.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= *newManagerOptions(nil, o).GracefulShutdownTimeout {
		t.Errorf("config/%s: terminationGracePeriodSeconds %v does not exceed the manager's shutdown (--shutdown-grace %s + 5s)", dir, g, o.shutdownGrace)
	}
	// smolvm.CheckRootPIDNamespace: smolvm in the root reads the host's
	// /proc, so it must run in the host's PID namespace.
	if !pod.HostPID {
		t.Errorf("config/%s: the agent runs smolvm in the host's root without hostPID: smolvm would see the host's pids from the container's namespace", dir)
	}
	if m := mounts[o.smolvmRoot.root]; m.hostPath != "/" || !m.readOnly {
		t.Errorf("config/%s: --smolvm-root %s is %+v, want the host's / mounted read-only", dir, o.smolvmRoot.root, m)
	}
	for flag, p := range map[string]string{
		"--smolvm-data-dir": o.smolvmDataDir,
		"--copy-source-dir": o.smolvmRoot.copyDir,
	} {
		if m := mounts[filepath.Join(o.smolvmRoot.root, p)]; m.hostPath != p || m.readOnly {
			t.Errorf("config/%s: %s %s is %+v under the root, want the host's %s mounted read-write", dir, flag, p, m, p)
		}
	}
	if _, ok := mounts[o.exec.certDir]; !ok {
		t.Errorf("config/%s: --exec-cert-dir names %s, which the pod does not mount", dir, o.exec.certDir)
	}
}

// The cluster controller's Deployment passes only flags this manager
// accepts, in cluster mode, with the same --reservations as the agents.
func TestClusterDeploymentArgsAreManagerFlags(t *testing.T) {
	y, err := installer.Build(filepath.Join(testutil.RepoRoot(), "config", "default"), "")
	if err != nil {
		t.Fatal(err)
	}
	var deploy *appsv1.Deployment
	var agentArgs []string
	for _, doc := range strings.Split(string(y), "\n---\n") {
		switch {
		case strings.Contains(doc, "kind: Deployment") && strings.Contains(doc, "name: bottle-cluster-controller"):
			deploy = &appsv1.Deployment{}
			if err := yaml.UnmarshalStrict([]byte(doc), deploy); err != nil {
				t.Fatal(err)
			}
		case strings.Contains(doc, "kind: DaemonSet"):
			ds := &appsv1.DaemonSet{}
			if err := yaml.UnmarshalStrict([]byte(doc), ds); err != nil {
				t.Fatal(err)
			}
			agentArgs = ds.Spec.Template.Spec.Containers[0].Args
		}
	}
	if deploy == nil {
		t.Fatal("config/default: no bottle-cluster-controller Deployment")
	}
	o, err := parseFlags(deploy.Spec.Template.Spec.Containers[0].Args)
	if err != nil {
		t.Fatalf("the manager rejects the cluster Deployment's args: %v", err)
	}
	if o.mode != "cluster" {
		t.Errorf("the cluster Deployment runs mode %q", o.mode)
	}
	t.Setenv("NODE_NAME", "node-a")
	a, err := parseFlags(agentArgs)
	if err != nil {
		t.Fatal(err)
	}
	if a.reservations != o.reservations {
		t.Errorf("--reservations differs: agent %v, cluster controller %v", a.reservations, o.reservations)
	}
}
