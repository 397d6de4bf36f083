package smolvm

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// TestRealSmolvmE2E drives a real smolvm. It runs only where /dev/kvm is
// usable and a real (non-simulator) smolvm is on PATH. SMOLVM_E2E_IMAGE
// picks the image (default node:22-slim, which has the `node` user);
// pulling it needs network.
func TestRealSmolvmE2E(t *testing.T) {
	path, err := exec.LookPath("smolvm")
	kvm, kerr := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if kerr == nil {
		_ = kvm.Close()
	}
	if err != nil || kerr != nil {
		t.Skip("real smolvm e2e: /dev/kvm or smolvm not present")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c := New(path, "SMOLVM_DATA_DIR="+t.TempDir())
	if out, _ := exec.CommandContext(ctx, path, "--version").Output(); strings.Contains(string(out), "simulator") {
		t.Skip("real smolvm e2e: /dev/kvm or smolvm not present (smolvm on PATH is the simulator)")
	}
	if _, err := c.CheckVersion(ctx); err != nil {
		t.Fatal(err)
	}
	image := os.Getenv("SMOLVM_E2E_IMAGE")
	if image == "" {
		image = "node:22-slim"
	}
	name := v1.MachineNameFor("e2e", "real-smolvm", time.Now().Format("150405.000000"))
	if err := c.Create(ctx, MachineSpec{Name: name, Image: image, CPUs: 1, MemoryMiB: 1024}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := c.Delete(context.Background(), name); err != nil && !IsNotFound(err) {
			t.Errorf("cleanup: %v", err)
		}
	}()
	if err := c.Start(ctx, name); err != nil {
		t.Fatal(err)
	}
	res, err := c.Exec(ctx, ExecRequest{Machine: name, User: "node", Mode: ModeDirect, Argv: []string{"id", "-un"}, Timeout: time.Minute})
	if err != nil || strings.TrimSpace(res.Stdout) != "node" {
		t.Fatalf("exec as node: %+v %v", res, err)
	}
	host := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(host, []byte("e2e\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := c.CopyIn(ctx, name, host, "/tmp/f", 0o600, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	res, err = c.Exec(ctx, ExecRequest{Machine: name, Argv: []string{"stat", "-c", "%a %u", "/tmp/f"}, Timeout: time.Minute})
	if err != nil || strings.TrimSpace(res.Stdout) != "600 1000" {
		t.Fatalf("stat: %+v %v", res, err)
	}
	if err := c.Stop(ctx, name); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, ExecRequest{Machine: name, Argv: []string{"true"}}); !IsNotRunning(err) {
		t.Fatalf("exec after stop: %v", err)
	}
}
