package smolvm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// The controller's path end to end against the simulator.
func TestLifecycleAgainstSimulator(t *testing.T) {
	c := newSim(t)
	ctx := testContext(t)
	name := v1.MachineNameFor("default", "my.bottle", "0b5c7c1e-uid")

	if err := c.Create(ctx, MachineSpec{Name: name, Image: "node:22", CPUs: 2, MemoryMiB: 2048,
		Labels: map[string]string{"bottle": "default-my.bottle"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, MachineSpec{Name: name, Image: "node:22"}); !IsAlreadyExists(err) {
		t.Fatalf("second create: %v, want ClassAlreadyExists", err)
	}
	m, err := c.Status(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if m.State != StateCreated || m.CPUs != 2 || m.MemoryMiB != 2048 || m.PID != 0 || m.Image != "node:22" ||
		m.Labels["bottle"] != "default-my.bottle" || m.CreatedAt == "" {
		t.Fatalf("status after create: %+v", m)
	}
	if _, err := c.Exec(ctx, ExecRequest{Machine: name, Argv: []string{"true"}}); !IsNotRunning(err) {
		t.Fatalf("exec before start: %v, want ClassNotRunning", err)
	}

	if err := c.Start(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx, name); err != nil {
		t.Fatalf("start of a running machine must succeed: %v", err)
	}
	if m, err = c.Status(ctx, name); err != nil || m.State != StateRunning || m.PID == 0 {
		t.Fatalf("status after start: %+v %v", m, err)
	}

	res := mustExec(t, c, ExecRequest{Machine: name, User: "node", Script: `id -un; echo "$HOME"; pwd`})
	if res.ExitCode != 0 || res.Stdout != "node\n/home/node\n/home/node\n" {
		t.Fatalf("login exec as node: %+v", res)
	}
	res = mustExec(t, c, ExecRequest{Machine: name, User: "node", Mode: ModeDirect, Argv: []string{"sh", "-c", `id -un; echo "$HOME"`}})
	if res.Stdout != "node\n/home/node\n" {
		t.Fatalf("direct exec as node: %+v", res)
	}

	host := filepath.Join(t.TempDir(), "secret.txt")
	if err := os.WriteFile(host, []byte("s3cret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := c.CopyIn(ctx, name, host, "/home/node/secret.txt", 0o600, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	res = mustExec(t, c, ExecRequest{Machine: name, User: "node", Script: `cat ~/secret.txt; stat -c '%a %U' ~/secret.txt`})
	if res.Stdout != "s3cret\n600 node\n" {
		t.Fatalf("file after cp: %+v", res)
	}
	// Written by node in one exec, visible (and node's) in the next.
	mustExec(t, c, ExecRequest{Machine: name, User: "node", Script: `echo hi > /workspace/note`})

	if err := c.Stop(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(ctx, name); err != nil {
		t.Fatalf("stop of a stopped machine must succeed: %v", err)
	}
	if m, err = c.Status(ctx, name); err != nil || m.State != StateStopped || m.PID != 0 {
		t.Fatalf("status after stop: %+v %v", m, err)
	}
	if err := c.CopyIn(ctx, name, host, "/tmp/x", 0, -1, -1); !IsNotRunning(err) {
		t.Fatalf("cp to a stopped machine: %v, want ClassNotRunning", err)
	}
	if err := c.Start(ctx, name); err != nil {
		t.Fatal(err)
	}
	res = mustExec(t, c, ExecRequest{Machine: name, Script: `cat /home/node/secret.txt; stat -c '%U' /workspace/note`})
	if res.Stdout != "s3cret\nnode\n" {
		t.Fatalf("files after restart: %+v", res)
	}

	ms, err := c.List(ctx)
	if err != nil || len(ms) != 1 || ms[0].Name != name || ms[0].State != StateRunning {
		t.Fatalf("list: %+v %v", ms, err)
	}
	if err := c.Delete(ctx, name); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Status(ctx, name); !IsNotFound(err) {
		t.Fatalf("status after delete: %v, want ClassNotFound", err)
	}
	if err := c.Delete(ctx, name); !IsNotFound(err) {
		t.Fatalf("second delete: %v, want ClassNotFound", err)
	}
	if ms, err := c.List(ctx); err != nil || len(ms) != 0 {
		t.Fatalf("list after delete: %+v %v", ms, err)
	}
}

func TestInvalidNamesNeverRun(t *testing.T) {
	// A binary that must not be started: the name is rejected first.
	c := New(filepath.Join(t.TempDir(), "no-such-smolvm"))
	ctx := testContext(t)
	for _, name := range []string{"a.b", "-rf", "", "a--b", strings.Repeat("a", 129)} {
		for _, err := range []error{
			c.Start(ctx, name), c.Stop(ctx, name), c.Delete(ctx, name),
			c.Create(ctx, MachineSpec{Name: name, Image: "x"}),
			func() error { _, err := c.Status(ctx, name); return err }(),
			func() error { _, err := c.Exec(ctx, ExecRequest{Machine: name, Argv: []string{"true"}}); return err }(),
			c.CopyIn(ctx, name, "/etc/hostname", "/x", 0, -1, -1),
		} {
			if ClassOf(err) != ClassInvalidName {
				t.Fatalf("name %q: %v, want ClassInvalidName", name, err)
			}
		}
	}
}

func TestCheckVersion(t *testing.T) {
	ctx := testContext(t)
	c := newSim(t)
	v, err := c.CheckVersion(ctx)
	if err != nil || v != "1.9.0" {
		t.Fatalf("CheckVersion = %q, %v", v, err)
	}
	old := newSim(t, "SMOLVM_SIM_VERSION=1.8.9")
	if _, err := old.CheckVersion(ctx); ClassOf(err) != ClassUnsupportedVersion || !strings.Contains(err.Error(), "older than the minimum supported version 1.9.0") {
		t.Fatalf("old version: %v", err)
	}
	newer := newSim(t, "SMOLVM_SIM_VERSION=1.16.2")
	if v, err := newer.CheckVersion(ctx); err != nil || v != "1.16.2" {
		t.Fatalf("newer version: %q %v", v, err)
	}
	missing := New(filepath.Join(t.TempDir(), "smolvm"))
	_, err = missing.CheckVersion(ctx)
	if ClassOf(err) != ClassNotInstalled || !strings.Contains(err.Error(), "smolvm not found at") {
		t.Fatalf("missing binary: %v", err)
	}
	onPath := New("smolvm-definitely-not-installed")
	if _, err := onPath.Version(ctx); ClassOf(err) != ClassNotInstalled {
		t.Fatalf("missing on PATH: %v", err)
	}
}

func TestCompareVersions(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{{"1.9.0", "1.9.0", 0}, {"1.10.0", "1.9.0", 1}, {"1.8.12", "1.9.0", -1}, {"2.0.0", "1.99.99", 1}, {"1.9", "1.9.0", 0}} {
		if got := compareVersions(tt.a, tt.b); got != tt.want {
			t.Errorf("compare(%s,%s) = %d", tt.a, tt.b, got)
		}
	}
	if parseVersion("smolvm 1.9.3 (abc)\n") != "1.9.3" || parseVersion("no version") != "" {
		t.Error("parseVersion")
	}
}
