package execapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/controllers/agent"
	"github.com/bot-bottle/bottle-controller/internal/kubectlbottle"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
	"github.com/bot-bottle/bottle-controller/internal/steplog"
)

// A template's goldens on node-a (the gateway) and node-b: each node's
// golden steps' logs read through the API server, from the node named,
// node-b's through its agent.
func TestTemplateGoldenLogs(t *testing.T) {
	s := needSuite(t)
	g := NewWithT(t)
	ctx := context.Background()
	tpl := &v1.BottleTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: "tools", Namespace: testNamespace},
		Spec: v1.BottleTemplateSpec{MachineSpec: v1.MachineSpec{Image: "node:22-bookworm",
			Provision: []v1.ProvisionStep{{Name: "install", Script: "true"}, {Name: "slow", Script: "true"}}}},
	}
	g.Expect(s.admin.Create(ctx, tpl)).To(Succeed())
	t.Cleanup(func() { _ = s.admin.Delete(ctx, tpl) })
	tpl.Status.Nodes = []v1.TemplateNodeStatus{
		{NodeName: nodeA, GoldenMachine: "tools-g-a", Phase: v1.PhaseReady,
			ExecResults: []v1.ExecResult{{Name: "install"}}},
		{NodeName: nodeB, GoldenMachine: "tools-g-b", Phase: v1.PhaseProvisioning,
			ExecResults: []v1.ExecResult{{Name: "install"}}},
	}
	g.Expect(s.admin.Status().Update(ctx, tpl)).To(Succeed())
	keyA := steplog.GoldenKey(string(tpl.UID), "tools-g-a")
	keyB := steplog.GoldenKey(string(tpl.UID), "tools-g-b")
	writeLog := func(store *steplog.Store, key, step string, data []byte) {
		w, err := store.Begin(key, step)
		g.Expect(err).NotTo(HaveOccurred())
		for p := data; len(p) > 0; p = p[min(len(p), 4096):] {
			_, _ = w.Write(p[:min(len(p), 4096)])
		}
		_ = w.Close()
	}

	// A 3 MB step of node-b's golden reads back byte for byte, through
	// node-a's gateway and node-b's agent.
	big := make([]byte, 3<<20)
	_, _ = rand.Read(big)
	writeLog(s.logsB, keyB, "install", big)
	writeLog(s.logsA, keyA, "install", []byte("node-a's golden\n"))
	code, out, errOut := kubectlBottle(t, "alice", "", "logs", "--template", "tools", "--node", nodeB, "--step", "install")
	g.Expect(code).To(Equal(0), errOut)
	g.Expect(out).To(Equal(string(big)), "got %d bytes, want the 3 MiB written", len(out))
	code, out, errOut = kubectlBottle(t, "alice", "", "logs", "--template", "tools", "--node", nodeA)
	g.Expect(code).To(Equal(0), errOut)
	g.Expect(out).To(Equal("node-a's golden\n"), "default step: the latest")

	// A step run again replaces its log.
	writeLog(s.logsB, keyB, "install", []byte("run again\n"))
	code, out, errOut = kubectlBottle(t, "alice", "", "logs", "--template", "tools", "--node", nodeB, "--step", "install")
	g.Expect(code).To(Equal(0), errOut)
	g.Expect(out).To(Equal("run again\n"))

	// -f follows node-b's running step through the proxy, and ends with it.
	w, err := s.logsB.Begin(keyB, "slow")
	g.Expect(err).NotTo(HaveOccurred())
	expectFollowed(g, s, w, &kubectlbottle.LogRequest{Namespace: testNamespace, Name: "tools", Template: true, Node: nodeB, Follow: true, TailLines: -1})

	// Two goldens: which one must be said; a node without one, a step the
	// template lacks and a template with no golden say so.
	code, _, errOut = kubectlBottle(t, "alice", "", "logs", "--template", "tools")
	g.Expect(code).To(Equal(1))
	g.Expect(errOut).To(ContainSubstring(`bottletemplate "tools" has goldens on several nodes (node-a, node-b): name one`))
	code, _, errOut = kubectlBottle(t, "alice", "", "logs", "--template", "tools", "--node", nodeLost)
	g.Expect(code).To(Equal(1))
	g.Expect(errOut).To(ContainSubstring(`bottletemplate "tools" has no golden on node "node-lost"`))
	code, _, errOut = kubectlBottle(t, "alice", "", "logs", "--template", "tools", "--node", nodeA, "--step", "nope")
	g.Expect(code).To(Equal(1))
	g.Expect(errOut).To(ContainSubstring(`bottletemplate "tools" has no step "nope" (its steps: install, slow)`))
	code, _, errOut = kubectlBottle(t, "alice", "", "logs", "--template", "missing")
	g.Expect(code).To(Equal(1))
	g.Expect(errOut).To(ContainSubstring(`bottletemplates.agents.bot-bottle.dev "missing" not found`))

	// A fork's inherited step points at its template's log.
	fork := &v1.Bottle{ObjectMeta: metav1.ObjectMeta{Name: "tools-fork", Namespace: testNamespace},
		Spec: v1.BottleSpec{NodeName: nodeA, TemplateRef: &v1.TemplateReference{Name: "tools"}}}
	g.Expect(s.admin.Create(ctx, fork)).To(Succeed())
	t.Cleanup(func() { _ = s.admin.Delete(ctx, fork) })
	fork.Status = v1.BottleStatus{Phase: v1.PhaseReady, NodeName: nodeA, MachineName: "tools-fork-1",
		Template: &v1.TemplateOrigin{Name: "tools", GoldenMachine: "tools-g-a", Steps: []v1.InheritedStep{{Name: "install"}}}}
	g.Expect(s.admin.Status().Update(ctx, fork)).To(Succeed())
	code, _, errOut = kubectlBottle(t, "alice", "", "logs", "tools-fork", "--step", "install")
	g.Expect(code).To(Equal(1))
	g.Expect(errOut).To(ContainSubstring(`its log is the template's (kubectl bottle logs --template tools --node node-a --step install)`))

	// bob may exec but holds no get on bottletemplates/log.
	err = (&kubectlbottle.LogRequest{Namespace: testNamespace, Name: "tools", Template: true, Node: nodeA, TailLines: -1}).
		Stream(context.Background(), as(s, "bob"), &bytes.Buffer{})
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "bob's error: %v", err)
}

// startTemplateAgent runs node-a's BottleTemplate controller, as
// cmd/manager wires it, with the gateway's log store: goldens of templates
// selecting node-a are made in node-a's simulator.
func startTemplateAgent(t *testing.T, s *e2eSuite) {
	t.Helper()
	startAgentOnA(t, s, func(_ context.Context, mgr ctrl.Manager) error {
		tr := &agent.TemplateReconciler{
			Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Machines: s.simA, NodeName: nodeA,
			ExecMode: smolvm.ModeLogin, StepLogs: s.logsA, ResyncPeriod: time.Second, TempDir: t.TempDir(),
		}
		return tr.SetupWithManager(mgr, "bottletemplate-e2e")
	})
}

// A golden step's whole output, as node-a's agent ran it in the simulator,
// reads back through the API server, where status keeps a tail of it.
func TestTemplateGoldenLogFromTheAgent(t *testing.T) {
	s := needSuite(t)
	g := NewWithT(t)
	ctx := context.Background()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: nodeA, Labels: map[string]string{"pool": "golden-logs"}}}
	g.Expect(s.admin.Create(ctx, node)).To(Succeed())
	t.Cleanup(func() { _ = s.admin.Delete(ctx, node) })
	startTemplateAgent(t, s)
	tpl := &v1.BottleTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: "golden-logs", Namespace: testNamespace},
		Spec: v1.BottleTemplateSpec{
			MachineSpec: v1.MachineSpec{Image: "node:22-bookworm", Provision: []v1.ProvisionStep{
				{Name: "big", Script: "head -c 400000 /dev/urandom | base64"},
			}},
			Pool: v1.TemplatePool{NodeSelector: map[string]string{"pool": "golden-logs"}},
		},
	}
	g.Expect(s.admin.Create(ctx, tpl)).To(Succeed())
	t.Cleanup(func() { _ = s.admin.Delete(ctx, tpl) })
	var entry v1.TemplateNodeStatus
	g.Eventually(func(g Gomega) {
		cur := &v1.BottleTemplate{}
		g.Expect(s.admin.Get(ctx, client.ObjectKeyFromObject(tpl), cur)).To(Succeed())
		g.Expect(cur.Status.Nodes).To(HaveLen(1))
		entry = cur.Status.Nodes[0]
		g.Expect(entry.Phase).To(Equal(v1.PhaseReady))
	}, 60*time.Second).Should(Succeed())
	res := entry.ExecResults[0]
	g.Expect(res.Truncated).To(BeTrue(), "status keeps a tail of the step")

	code, out, errOut := kubectlBottle(t, "alice", "", "logs", "--template", "golden-logs")
	g.Expect(code).To(Equal(0), errOut)
	g.Expect(int64(len(out))).To(Equal(res.StdoutBytes), "the whole output, as many bytes as the step printed")
	g.Expect(out).To(HaveSuffix(res.Stdout))
}
