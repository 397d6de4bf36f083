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
	"github.com/bot-bottle/bottle-controller/controllers/agent"
	"github.com/bot-bottle/bottle-controller/internal/steplog"
	"github.com/bot-bottle/bottle-controller/internal/testenv"
	"github.com/bot-bottle/bottle-controller/internal/testutil"
)

// The agent, once it leads, removes the step logs of Bottles that are gone
// (deleted while no agent ran, or a finalizer removed by hand) and keeps
// those of its node's Bottles; likewise for goldens: it keeps the logs of
// the golden its node's entry of a template names, and removes those of an
// earlier golden of that template and of a golden its node has not.
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

	// A template whose golden this node keeps (its selector matches: the
	// agent keeps the entry's golden and runs no step), and one whose
	// golden is on another node only.
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node, Labels: map[string]string{"pool": "sweep"}}}
	g.Expect(c.Create(ctx, n)).To(Succeed())
	tpl := &v1.BottleTemplate{ObjectMeta: metav1.ObjectMeta{Name: "kept-tpl", Namespace: "default"},
		Spec: v1.BottleTemplateSpec{MachineSpec: v1.MachineSpec{Image: "node:22"},
			Pool: v1.TemplatePool{NodeSelector: map[string]string{"pool": "sweep"}}}}
	elsewhere := &v1.BottleTemplate{ObjectMeta: metav1.ObjectMeta{Name: "elsewhere", Namespace: "default"},
		Spec: v1.BottleTemplateSpec{MachineSpec: v1.MachineSpec{Image: "node:22"},
			Pool: v1.TemplatePool{NodeSelector: map[string]string{"pool": "other"}}}}
	for _, x := range []*v1.BottleTemplate{tpl, elsewhere} {
		g.Expect(c.Create(ctx, x)).To(Succeed())
	}
	golden := agent.GoldenMachineName(tpl)
	tpl.Status.Nodes = []v1.TemplateNodeStatus{{NodeName: node, GoldenMachine: golden, Phase: v1.PhaseReady}}
	g.Expect(c.Status().Update(ctx, tpl)).To(Succeed())
	elsewhere.Status.Nodes = []v1.TemplateNodeStatus{{NodeName: "another-node", GoldenMachine: "elsewhere-g", Phase: v1.PhaseReady}}
	g.Expect(c.Status().Update(ctx, elsewhere)).To(Succeed())

	dir := t.TempDir()
	logs := filepath.Join(dir, "step-logs")
	gone, kept := filepath.Join(logs, "5e1d3c2b-0000-4000-8000-000000000001"), filepath.Join(logs, string(b.UID))
	keptRun := filepath.Join(logs, string(run.UID))
	keptGolden := filepath.Join(logs, steplog.GoldenKey(string(tpl.UID), golden))
	earlierGolden := filepath.Join(logs, steplog.GoldenKey(string(tpl.UID), "kept-tpl-an-earlier-golden"))
	otherNodesGolden := filepath.Join(logs, steplog.GoldenKey(string(elsewhere.UID), "elsewhere-g"))
	for _, d := range []string{gone, kept, keptRun, keptGolden, earlierGolden, otherNodesGolden} {
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
	g.Expect(keptGolden).To(BeADirectory(), "the logs of the golden the node's entry names stay")
	g.Expect(earlierGolden).NotTo(BeAnExistingFile(), "the logs of an earlier golden of the template are removed")
	g.Expect(otherNodesGolden).NotTo(BeAnExistingFile(), "the logs of a golden this node has not are removed")
}
