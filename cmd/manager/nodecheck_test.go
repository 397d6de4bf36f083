package main

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/bot-bottle/bottle-controller/internal/testenv"
	"github.com/bot-bottle/bottle-controller/internal/testutil"
)

// probeBody is what the agent's probe at path answers: "ready", or the
// failure's body.
func probeBody(addr, path string) string {
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		return err.Error()
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		return "ready"
	}
	return string(body)
}

// An agent with the systemd launcher on a node whose bus has no systemd
// (here: no bus at all) stays up and says so on /readyz, naming the bus,
// instead of failing every VM start with the bus's own words.
func TestAgentWithoutSystemdIsUnavailable(t *testing.T) {
	env, cfg, err := testenv.Start(testenv.Options{})
	if testenv.Skippable(err) {
		t.Skip(err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	g := NewWithT(t)
	dir := t.TempDir()
	simPath, err := testutil.Simulator(simDir)
	g.Expect(err).NotTo(HaveOccurred())
	socket := filepath.Join(dir, "no_bus_socket")
	o, err := parseFlags([]string{
		"--node-name=no-systemd-node", "--smolvm-path=" + simPath, "--smolvm-data-dir=" + filepath.Join(dir, "data"),
		"--vm-launcher=systemd", "--system-bus-socket=" + socket, "--smolvm-recheck-period=1h",
		"--metrics-bind-address=0", "--health-probe-bind-address=" + freeAddr(t), "--exec-bind-address=0",
	})
	g.Expect(err).NotTo(HaveOccurred())
	o.skipNameValidation = true // another test's agent ran in this process
	ctx, cancel := context.WithCancel(context.Background())
	mgr, err := newAgent(ctx, cfg, o)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Logf("agent stopped: %v", err)
		}
	})
	g.Eventually(func() string { return probeBody(o.probeAddr, "/readyz/smolvm") }, 30*time.Second, 100*time.Millisecond).
		Should(ContainSubstring("SmolvmUnavailable: systemd launcher: connect to the system bus at " + socket))
	// The kubelet's probe reads the aggregate /readyz, which withholds the
	// reason: docs/deploy.md sends operators to /readyz/smolvm and the
	// Bottles, not to `kubectl describe pod`.
	g.Expect(probeBody(o.probeAddr, "/readyz")).To(And(ContainSubstring("[-]smolvm failed: reason withheld"), Not(ContainSubstring("SmolvmUnavailable"))))
	g.Consistently(done, time.Second).ShouldNot(Receive())
}
