package smolvm

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// smolvm resolves each --allow-host at create, up to 10 s each: the create
// deadline grows with them, so a create that spends its base deadline
// resolving is not killed.
func TestCreateDeadlineGrowsWithAllowHosts(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "smolvm")
	// A create that takes longer than the base deadline, as a slow resolver.
	if err := os.WriteFile(fake, []byte("#!/bin/sh\nsleep 1\necho 'Created machine: m1'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	c := New(fake)
	c.Timeouts.Create = 100 * time.Millisecond
	ctx := testContext(t)
	if err := c.Create(ctx, MachineSpec{Name: "m1", Image: "alpine"}); !IsTimeout(err) {
		t.Fatalf("without allow-hosts: %v, want the base deadline", err)
	}
	spec := MachineSpec{Name: "m1", Image: "alpine", Network: true, AllowHosts: []string{"slow.example.com"}}
	if err := c.Create(ctx, spec); err != nil {
		t.Fatalf("with an allow-host: %v", err)
	}
	if AllowHostResolution(64) != 640*time.Second {
		t.Fatal("64 allow-hosts do not get 10 s each")
	}
}
