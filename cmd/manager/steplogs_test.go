package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/testenv"
	"github.com/bot-bottle/bottle-controller/internal/testutil"
)

// The agent, once it leads, removes the step logs of Bottles that are gone
// (deleted while no agent ran, or a finalizer removed by hand) and keeps
// those of its node's Bottles.
func TestAgentSweepsTheStepLogsOfGoneBottles(t *testing.T) {
	testutil.RequireBwrap(t)
	env, cfg, err := testenv.Start(testenv.Options{})
	if testenv.Skippable(err) {
		t.Skip(err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	g := NewWithT(t)
	ctx := context.Background()
	c, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())
	simPath, err := testutil.Simulator(simDir)
	g.Expect(err).NotTo(HaveOccurred())
	const node, ns = "sweep-node", "sweep-leases"
	g.Expect(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	b := &v1.Bottle{ObjectMeta: metav1.ObjectMeta{Name: "kept", Namespace: "default"},
		Spec: v1.BottleSpec{NodeName: node, RunState: v1.RunStateStopped, MachineSpec: v1.MachineSpec{Image: "node:22"}}}
	g.Expect(c.Create(ctx, b)).To(Succeed())

	run := &v1.BottleRun{ObjectMeta: metav1.ObjectMeta{Name: "kept-run", Namespace: "default"},
		Spec: v1.BottleRunSpec{BottleRef: &v1.BottleReference{Name: "kept"}, Command: []string{"true"}}}
	g.Expect(c.Create(ctx, run)).To(Succeed())

	dir := t.TempDir()
	logs := filepath.Join(dir, "step-logs")
	gone, kept := filepath.Join(logs, "5e1d3c2b-0000-4000-8000-000000000001"), filepath.Join(logs, string(b.UID))
	keptRun := filepath.Join(logs, string(run.UID))
	for _, d := range []string{gone, kept, keptRun} {
		g.Expect(os.MkdirAll(d, 0o700)).To(Succeed())
		g.Expect(os.WriteFile(filepath.Join(d, "73746570.log"), []byte("output"), 0o600)).To(Succeed())
	}
	dataDir := filepath.Join(dir, "node")
	g.Expect(os.MkdirAll(dataDir, 0o755)).To(Succeed())
	startTestAgent(t, cfg, "agent-sweep", node, ns, simPath, dataDir, "--step-log-dir="+logs)
	g.Eventually(func() bool { _, err := os.Stat(gone); return os.IsNotExist(err) }, 60*time.Second).Should(BeTrue(),
		"the logs of a Bottle that is gone are removed")
	g.Expect(kept).To(BeADirectory(), "the logs of the node's Bottle stay")
	g.Expect(keptRun).To(BeADirectory(), "the output of a BottleRun stays")
}
