package smolvm

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bot-bottle/bottle-controller/internal/smolvmsim"
	"github.com/bot-bottle/bottle-controller/internal/testutil"
)

// simDir holds the simulator when a test builds it (testutil.Simulator);
// TestMain removes it.
var simDir string

func TestMain(m *testing.M) { testutil.MainWithSimDir(m, "smolvm-driver-test-", &simDir) }

// newSim returns a driver for a freshly built simulator with its own data
// dir. extraEnv adds SMOLVM_SIM_* knobs.
func newSim(t testing.TB, extraEnv ...string) *CLI {
	t.Helper()
	testutil.RequireBwrap(t)
	path, err := testutil.Simulator(simDir)
	if err != nil {
		t.Fatal(err)
	}
	env := append([]string{"SMOLVM_DATA_DIR=" + t.TempDir()}, extraEnv...)
	return New(path, env...)
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// runningMachine creates and starts a machine for a test.
func runningMachine(t testing.TB, c *CLI, name string) {
	t.Helper()
	ctx := testContext(t)
	if err := c.Create(ctx, MachineSpec{Name: name, Image: "node:22"}); err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	if err := c.Start(ctx, name); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
}

func mustExec(t testing.TB, c *CLI, req ExecRequest) ExecResult {
	t.Helper()
	res, err := c.Exec(testContext(t), req)
	if err != nil {
		t.Fatalf("exec %q: %v (stderr %q)", req.Script+strings.Join(req.Argv, " "), err, res.Stderr)
	}
	return res
}

// processesMatching lists host processes whose command line contains s.
func processesMatching(s string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue
		}
		cmdline := strings.ReplaceAll(string(b), "\x00", " ")
		// A running machine's stand-in VMM names the machine and lives
		// as long as it runs: it is not a leftover of a command.
		if strings.HasPrefix(cmdline, smolvmsim.VMMName+" ") {
			continue
		}
		if strings.Contains(cmdline, s) {
			out = append(out, e.Name()+": "+cmdline)
		}
	}
	return out
}

// waitNoProcesses polls until no process matches (killed processes need a
// moment to be reaped by their pid namespace), failing after a deadline.
func waitNoProcesses(t testing.TB, marker string, within time.Duration) { //nolint:unparam // callers may need a longer wait
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		left := processesMatching(marker)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes survived: %q", left)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
