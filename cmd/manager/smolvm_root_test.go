package main

import (
	"context"
	"os"
	"runtime"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/bot-bottle/bottle-controller/internal/testenv"
	"github.com/bot-bottle/bottle-controller/internal/testutil"
)

// An agent that cannot enter --smolvm-root (no CAP_SYS_CHROOT: not run as
// root) stays up and says so on /readyz, as for a missing smolvm, instead of
// crash-looping. The capability is dropped on the thread that builds the
// agent, which is the one its start-up version check forks from.
func TestAgentWithoutChrootCapabilityIsUnavailable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIP: dropping CAP_SYS_CHROOT needs a process that has it (root)")
	}
	env, cfg, err := testenv.Start(testenv.Options{})
	if testenv.Skippable(err) {
		t.Skip(err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	g := NewWithT(t)

	o, err := parseFlags([]string{
		"--node-name=root-node", "--smolvm-root=" + t.TempDir(), "--smolvm-path=/opt/smolvm/bin/smolvm",
		"--copy-source-dir=/run/bottle-controller/files", "--smolvm-recheck-period=1h",
		"--metrics-bind-address=0", "--health-probe-bind-address=" + freeAddr(t), "--exec-bind-address=0",
	})
	g.Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithCancel(context.Background())
	type built struct {
		mgr ctrl.Manager
		err error
	}
	ch := make(chan built, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		if err := testutil.DropEffectiveCap(testutil.CapSysChroot); err != nil {
			ch <- built{err: err}
			return
		}
		mgr, err := newAgent(ctx, cfg, o)
		ch <- built{mgr, err}
	}()
	b := <-ch
	if b.err != nil {
		cancel()
		t.Fatal(b.err)
	}
	done := make(chan error, 1)
	go func() { done <- b.mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Logf("agent stopped: %v", err)
		}
	})

	g.Eventually(func() string { return probeBody(o.probeAddr, "/readyz/smolvm") }, 30*time.Second, 100*time.Millisecond).Should(And(
		ContainSubstring(`SmolvmUnavailable: smolvm at "/opt/smolvm/bin/smolvm" (in --smolvm-root `),
		ContainSubstring("needs CAP_SYS_CHROOT, which the agent does not have"),
	))
	// The agent is up (its manager still runs), not crash-looping.
	g.Consistently(done, time.Second).ShouldNot(Receive())
}
