package v1alpha1_test

import (
	"encoding/json"
	"fmt"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// sampleTemplateNodes is how many nodes' goldens docs/templates.md says a
// template shaped like the sample's fits in one object.
const sampleTemplateNodes = 100

var _ = Describe("BottleTemplate size", func() {
	It("stores a sample-shaped template with a golden on 100 nodes, each entry written by its own agent with full tails", func() {
		t := newTemplate(func(t *v1.BottleTemplate) {
			t.Spec.Env = []v1.EnvVar{{Name: "NPM_CONFIG_PREFIX", Value: inline("/home/node/.local")}}
			t.Spec.Files = []v1.File{{Path: "/home/node/.claude/settings.json", Owner: "node", Inline: inline(`{"permissions": {"defaultMode": "acceptEdits"}}`)}}
			t.Spec.Provision = []v1.ProvisionStep{{Name: "install-claude", TimeoutSeconds: 900,
				Script: "mkdir -p \"$NPM_CONFIG_PREFIX/bin\"\nnpm install -g @anthropic-ai/claude-code\n\"$NPM_CONFIG_PREFIX/bin/claude\" --version\n"}}
			t.Spec.Pool = v1.TemplatePool{HeldSlots: 4, NodeSelector: map[string]string{"bot-bottle.dev/kvm": "true"}}
		})
		Expect(k8sClient.Create(ctx, t)).To(Succeed())

		now := metav1.NewTime(metav1.Now().Rfc3339Copy().Time)
		micro := metav1.NewMicroTime(now.Time)
		// The tails at the agent's limit, in characters JSON escapes.
		tail := escaped(v1.MaxTailJSONBytes / 6)
		for i := range sampleTemplateNodes {
			node := fmt.Sprintf("kvm-node-%03d.pool.example.com", i)
			applyNode(t, &v1.TemplateNodeStatus{
				NodeName: node, TemplateGeneration: 1, GoldenMachine: fmt.Sprintf("default-t-golden-g1-%010x", i),
				Phase: v1.PhaseReady, Reason: v1.ReasonProvisioned, Message: "golden machine is provisioned (1 step(s)); 4 of 4 held slot(s) free",
				Files: []v1.FileStatus{{Path: "/home/node/.claude/settings.json", SHA256: strings.Repeat("f", 64), Bytes: 48, Mode: 0o600, Owner: "node", CopiedAt: &now}},
				ExecResults: []v1.ExecResult{{Name: "install-claude", User: "node", ExitCode: ptr.To[int32](0), Stdout: tail, Stderr: tail,
					StdoutBytes: 1 << 20, StderrBytes: 1 << 20, Truncated: true, StartedAt: &micro, FinishedAt: &micro,
					ScriptSHA256: strings.Repeat("a", 64), TimeoutSeconds: 900}},
				HeldSlots: 4, FreeSlots: 4, Clones: 12,
			}, node)
		}

		got := &v1.BottleTemplate{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(t), got)).To(Succeed())
		Expect(got.Status.Nodes).To(HaveLen(sampleTemplateNodes))
		stored, err := json.Marshal(got)
		Expect(err).NotTo(HaveOccurred())
		status, _ := json.Marshal(got.Status)
		managed, _ := json.Marshal(got.ManagedFields)
		GinkgoWriter.Printf("sample-shaped template, %d nodes: %d bytes stored (status %d, managedFields %d) of etcd's %d\n",
			sampleTemplateNodes, len(stored), len(status), len(managed), v1.EtcdMaxObjectBytes)
		Expect(len(stored)).To(BeNumerically("<", v1.EtcdMaxObjectBytes))
	})
})
