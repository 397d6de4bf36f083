package main

import (
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
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
		// The paths the args name are where the pod mounts things.
		mounts := map[string]bool{}
		for _, m := range c.VolumeMounts {
			mounts[m.MountPath] = true
		}
		for flag, path := range map[string]string{
			"--smolvm-path":     filepath.Dir(filepath.Dir(o.smolvmPath)),
			"--smolvm-data-dir": o.smolvmDataDir,
			"--exec-cert-dir":   o.exec.certDir,
		} {
			if !mounts[path] {
				t.Errorf("config/%s: %s names %s, which the pod does not mount (mounts %v)", dir, flag, path, mounts)
			}
		}
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
