package v1alpha1_test

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// applyStatus applies u to the status subresource as manager.
func applyStatus(u *unstructured.Unstructured, manager string) error {
	return k8sClient.Status().Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(manager), client.ForceOwnership)
}

// applyNode applies n as its node's agent does.
func applyNode(t *v1.BottleTemplate, n *v1.TemplateNodeStatus, node string) {
	GinkgoHelper()
	u, err := t.NodeStatusApplyObject(n)
	Expect(err).NotTo(HaveOccurred())
	Expect(applyStatus(u, v1.FieldManagerAgentOn(node))).To(Succeed())
}

func nodeEntry(node, golden string, phase v1.Phase, free int32) *v1.TemplateNodeStatus {
	micro := metav1.NewMicroTime(metav1.Now().Time)
	return &v1.TemplateNodeStatus{
		NodeName: node, TemplateGeneration: 1, GoldenMachine: golden, Phase: phase, Reason: "Provisioned",
		Files:       []v1.FileStatus{{Path: "/home/node/.npmrc", SHA256: strings.Repeat("c", 64), Bytes: 12}},
		ExecResults: []v1.ExecResult{{Name: "claude-code", ExitCode: ptr.To[int32](0), StartedAt: &micro, FinishedAt: &micro, ScriptSHA256: strings.Repeat("d", 64)}},
		HeldSlots:   free, FreeSlots: free,
	}
}

func getTemplate(t *v1.BottleTemplate) *v1.BottleTemplate {
	GinkgoHelper()
	got := &v1.BottleTemplate{}
	Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(t), got)).To(Succeed())
	return got
}

var _ = Describe("BottleTemplate status: one entry per node, one writer per entry", func() {
	var t *v1.BottleTemplate
	BeforeEach(func() {
		t = newTemplate(nil)
		Expect(k8sClient.Create(ctx, t)).To(Succeed())
	})

	It("keeps two nodes' entries, applied by two field managers, side by side", func() {
		applyNode(t, nodeEntry("node-a", "golden-a", v1.PhaseProvisioning, 0), "node-a")
		applyNode(t, nodeEntry("node-b", "golden-b", v1.PhaseReady, 3), "node-b")

		By("node-a's agent applying again, changed: node-b's entry is untouched")
		a := nodeEntry("node-a", "golden-a", v1.PhaseReady, 2)
		a.Clones = 1
		applyNode(t, a, "node-a")
		got := getTemplate(t)
		Expect(got.Status.Nodes).To(HaveLen(2))
		byNode := map[string]v1.TemplateNodeStatus{}
		for _, n := range got.Status.Nodes {
			byNode[n.NodeName] = n
		}
		Expect(byNode["node-a"].Phase).To(Equal(v1.PhaseReady))
		Expect(byNode["node-a"].FreeSlots).To(Equal(int32(2)))
		Expect(byNode["node-a"].Clones).To(Equal(int32(1)))
		Expect(byNode["node-b"].GoldenMachine).To(Equal("golden-b"))
		Expect(byNode["node-b"].FreeSlots).To(Equal(int32(3)))
		Expect(byNode["node-b"].ExecResults).To(HaveLen(1))

		By("each manager owning only its own entry")
		owners := map[string]string{}
		for _, m := range got.ManagedFields {
			if m.Subresource == "status" {
				owners[m.Manager] = m.FieldsV1.GetRawString()
			}
		}
		// An entry's key reads k:{"nodeName":"node-a"} in managedFields.
		Expect(owners[v1.FieldManagerAgentOn("node-a")]).To(And(ContainSubstring("node-a"), Not(ContainSubstring("node-b"))))
		Expect(owners[v1.FieldManagerAgentOn("node-b")]).To(And(ContainSubstring("node-b"), Not(ContainSubstring("node-a"))))

		By("node-a's agent dropping its entry removes it, and only it")
		applyNode(t, nil, "node-a")
		got = getTemplate(t)
		Expect(got.Status.Nodes).To(HaveLen(1))
		Expect(got.Status.Nodes[0].NodeName).To(Equal("node-b"))
	})

	It("keeps the cluster controller's summary and the agents' entries apart", func() {
		applyNode(t, nodeEntry("node-a", "golden-a", v1.PhaseReady, 2), "node-a")

		summary := t.ApplyObject()
		summary.Object["status"] = map[string]any{
			"observedGeneration": int64(1), "goldenNodes": int64(1), "freeSlots": int64(2),
			"conditions": []any{map[string]any{"type": v1.ConditionReady, "status": "True", "reason": v1.ReasonReady,
				"message": "1 node has a golden", "lastTransitionTime": metav1.Now().UTC().Format("2006-01-02T15:04:05Z")}},
		}
		Expect(applyStatus(summary, v1.FieldManagerCluster)).To(Succeed())
		applyNode(t, nodeEntry("node-b", "golden-b", v1.PhaseCreating, 0), "node-b")

		got := getTemplate(t)
		Expect(got.Status.Nodes).To(HaveLen(2))
		Expect(got.Status.GoldenNodes).To(Equal(int32(1)))
		Expect(got.Status.FreeSlots).To(Equal(int32(2)))
		Expect(got.Status.ObservedGeneration).To(Equal(int64(1)))
		Expect(got.Status.Conditions).To(HaveLen(1))
	})

	It("accepts a field manager for the longest node name", func() {
		node := strings.Repeat("n", 63) + "." + strings.Repeat("o", 63) + "." + strings.Repeat("d", 63) + "." + strings.Repeat("e", 61)
		Expect(node).To(HaveLen(253))
		applyNode(t, nodeEntry(node, "golden", v1.PhaseReady, 1), node)
		Expect(getTemplate(t).Status.Nodes).To(HaveLen(1))
	})
})
