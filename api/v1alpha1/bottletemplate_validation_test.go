package v1alpha1_test

import (
	"fmt"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

func newTemplate(mutate func(t *v1.BottleTemplate)) *v1.BottleTemplate {
	seq++
	t := &v1.BottleTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("t-%d", seq), Namespace: "default"},
		Spec:       v1.BottleTemplateSpec{MachineSpec: v1.MachineSpec{Image: "node:22-bookworm"}},
	}
	if mutate != nil {
		mutate(t)
	}
	return t
}

// templated is a Bottle forked from template "claude": no image of its own.
func templated(mutate func(b *v1.Bottle)) *v1.Bottle {
	return newBottle(func(b *v1.Bottle) {
		b.Spec.Image = ""
		b.Spec.TemplateRef = &v1.TemplateReference{Name: "claude"}
		if mutate != nil {
			mutate(b)
		}
	})
}

// expectInvalid checks a 422 whose message names field and says says.
func expectInvalid(err error, field, says string) {
	GinkgoHelper()
	Expect(err).To(HaveOccurred())
	Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want 422 Invalid, got %v", err)
	Expect(err.Error()).To(ContainSubstring(field))
	Expect(err.Error()).To(ContainSubstring(says))
}

var _ = Describe("BottleTemplate validation by the API server", func() {
	type invalid struct {
		mutate func(t *v1.BottleTemplate)
		field  string
		says   string
	}
	DescribeTable("rejects an invalid BottleTemplate with a message naming the field",
		func(c invalid) {
			expectInvalid(k8sClient.Create(ctx, newTemplate(c.mutate)), c.field, c.says)
		},
		Entry("image missing", invalid{func(t *v1.BottleTemplate) { t.Spec.Image = "" }, "spec.image", "image is required: set spec.image to the OCI image the template's golden machine boots"}),
		Entry("image with whitespace", invalid{func(t *v1.BottleTemplate) { t.Spec.Image = "node:22 bookworm" }, "spec.image", "without whitespace"}),
		Entry("heldSlots over the maximum", invalid{func(t *v1.BottleTemplate) { t.Spec.Pool.HeldSlots = v1.MaxHeldSlots + 1 }, "spec.pool.heldSlots", "less than or equal to 64"}),
		Entry("heldSlots negative", invalid{func(t *v1.BottleTemplate) { t.Spec.Pool.HeldSlots = -1 }, "spec.pool.heldSlots", "greater than or equal to 0"}),
		Entry("policy unknown", invalid{func(t *v1.BottleTemplate) { t.Spec.Pool.Policy = "Everywhere" }, "spec.pool.policy", `supported values: "OnDemand", "Selected"`}),
		Entry("policy Selected without a nodeSelector", invalid{func(t *v1.BottleTemplate) { t.Spec.Pool.Policy = v1.PoolSelected }, "spec.pool.nodeSelector", "policy Selected needs a non-empty pool.nodeSelector"}),
		Entry("nodeSelector over 32 labels", invalid{func(t *v1.BottleTemplate) {
			t.Spec.Pool.NodeSelector = map[string]string{}
			for i := range 33 {
				t.Spec.Pool.NodeSelector[fmt.Sprintf("k%d", i)] = "v"
			}
		}, "spec.pool.nodeSelector", "must have at most 32 items"}),
		// The machine's rules are MachineSpec's, the same for both kinds.
		Entry("cpus 17", invalid{func(t *v1.BottleTemplate) { t.Spec.Resources.CPUs = 17 }, "spec.resources.cpus", "less than or equal to 16"}),
		Entry("allowCIDRs not a CIDR", invalid{func(t *v1.BottleTemplate) { t.Spec.Network.AllowCIDRs = []string{"10.0.0.0/33"} }, "spec.network.allowCIDRs[0]", "must be CIDRs"}),
		Entry("execUser uppercase", invalid{func(t *v1.BottleTemplate) { t.Spec.ExecUser = "Node" }, "spec.execUser", "POSIX user name"}),
		Entry("prompt without promptPath", invalid{func(t *v1.BottleTemplate) { t.Spec.Prompt = &v1.ContentSource{Inline: inline("hi")} }, "spec.prompt", "prompt requires promptPath"}),
		Entry("a file from a Secret", invalid{func(t *v1.BottleTemplate) {
			t.Spec.Files = []v1.File{{Path: "/a", Inline: inline("1")}, {Path: "/b", SecretKeyRef: &v1.KeyRef{Name: "s", Key: "k"}}}
		}, "spec.files", "files[].secretKeyRef is not allowed on a template: its files are in its golden machine and in every Bottle forked from it"}),
		Entry("a prompt from a Secret", invalid{func(t *v1.BottleTemplate) {
			t.Spec.PromptPath = "/p"
			t.Spec.Prompt = &v1.ContentSource{SecretKeyRef: &v1.KeyRef{Name: "s", Key: "k"}}
		}, "spec.prompt", "prompt.secretKeyRef is not allowed on a template"}),
		Entry("file path relative", invalid{func(t *v1.BottleTemplate) { t.Spec.Files = []v1.File{{Path: "a", Inline: inline("1")}} }, "spec.files[0].path", "absolute path"}),
		Entry("step names not unique", invalid{func(t *v1.BottleTemplate) {
			t.Spec.Provision = []v1.ProvisionStep{{Name: "a", Script: "true"}, {Name: "a", Script: "false"}}
		}, "spec.provision[1]", "Duplicate value"}),
		Entry("content over the total budget", invalid{func(t *v1.BottleTemplate) {
			t.Spec.Provision = []v1.ProvisionStep{{Name: "a", Script: strings.Repeat("s", 65536)}, {Name: "b", Script: strings.Repeat("s", 65536)}}
			t.Spec.Env = []v1.EnvVar{{Name: "A", Value: inline("e")}}
		}, "spec", "at most 131072 characters in total"}),
	)

	It("accepts a minimal template and applies every default", func() {
		t := newTemplate(func(t *v1.BottleTemplate) {
			t.Spec.Provision = []v1.ProvisionStep{{Name: "claude-code", Script: "npm install -g @anthropic-ai/claude-code"}}
		})
		Expect(k8sClient.Create(ctx, t)).To(Succeed())
		got := &v1.BottleTemplate{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(t), got)).To(Succeed())
		Expect(got.Spec.ExecUser).To(Equal(v1.DefaultExecUser))
		Expect(got.Spec.Pool).To(Equal(v1.TemplatePool{Policy: v1.PoolOnDemand}))
		Expect(got.Spec.Provision[0].TimeoutSeconds).To(Equal(int32(600)))
		Expect(got.Spec.Resources.OrDefault()).To(Equal(v1.Resources{CPUs: v1.DefaultCPUs, MemoryMiB: v1.DefaultMemoryMiB}))
	})

	It("accepts a template at every pool limit", func() {
		t := newTemplate(func(t *v1.BottleTemplate) {
			t.Spec.Resources = v1.Resources{CPUs: 8, MemoryMiB: 16384}
			t.Spec.Network.AllowHosts = []string{"api.anthropic.com", "registry.npmjs.org"}
			t.Spec.Pool = v1.TemplatePool{Policy: v1.PoolSelected, HeldSlots: v1.MaxHeldSlots,
				NodeSelector: map[string]string{"pool": "claude"}}
		})
		Expect(k8sClient.Create(ctx, t)).To(Succeed())
	})
})

var _ = Describe("Bottle.spec.templateRef validation by the API server", func() {
	type invalid struct {
		mutate func(b *v1.Bottle)
		field  string
		says   string
	}
	DescribeTable("rejects a templated Bottle that sets a field only its template may set, naming the field",
		func(c invalid) {
			expectInvalid(k8sClient.Create(ctx, templated(c.mutate)), c.field, c.says)
		},
		Entry("image", invalid{func(b *v1.Bottle) { b.Spec.Image = "node:22-bookworm" }, "spec.image", "image is the template's"}),
		Entry("resources.cpus", invalid{func(b *v1.Bottle) { b.Spec.Resources.CPUs = 2 }, "spec.resources", "resources are the template's"}),
		Entry("resources.memoryMiB", invalid{func(b *v1.Bottle) { b.Spec.Resources.MemoryMiB = 4096 }, "spec.resources", "resources are the template's"}),
		Entry("network.allowHosts", invalid{func(b *v1.Bottle) { b.Spec.Network.AllowHosts = []string{"github.com"} }, "spec.network", "network is the template's"}),
		Entry("network.allowCIDRs", invalid{func(b *v1.Bottle) { b.Spec.Network.AllowCIDRs = []string{"10.0.0.0/8"} }, "spec.network", "network is the template's"}),
		Entry("templateRef.name not a DNS subdomain", invalid{func(b *v1.Bottle) { b.Spec.TemplateRef.Name = "Claude_Code" }, "spec.templateRef.name", "DNS subdomain"}),
		Entry("templateRef.name empty", invalid{func(b *v1.Bottle) { b.Spec.TemplateRef.Name = "" }, "spec.templateRef.name", "at least 1 chars long"}),
	)

	// kubectl sends what the YAML says: an empty object is still set.
	DescribeTable("rejects an empty resources or network object on a templated Bottle",
		func(field, says string) {
			u := applied(templated(nil))
			Expect(unstructured.SetNestedMap(u.Object, map[string]any{}, "spec", field)).To(Succeed())
			expectInvalid(k8sClient.Create(ctx, u), "spec."+field, says)
		},
		Entry("resources: {}", "resources", "resources are the template's"),
		Entry("network: {}", "network", "network is the template's"),
	)

	It("names every field only the template may set, in one answer", func() {
		err := k8sClient.Create(ctx, templated(func(b *v1.Bottle) {
			b.Spec.Image = "node:22"
			b.Spec.Resources.CPUs = 4
			b.Spec.Network.AllowHosts = []string{"github.com"}
		}))
		expectInvalid(err, "spec.image", "image is the template's")
		Expect(err.Error()).To(And(ContainSubstring("spec.resources"), ContainSubstring("spec.network")))
	})

	It("still requires image on a Bottle without templateRef, saying how to fix it", func() {
		err := k8sClient.Create(ctx, newBottle(func(b *v1.Bottle) { b.Spec.Image = "" }))
		expectInvalid(err, "spec.image", "image is required: set spec.image to the OCI image the machine boots, or spec.templateRef")
	})

	It("accepts a templated Bottle with its own files, env, prompt, steps and placement", func() {
		b := templated(func(b *v1.Bottle) {
			b.Spec.NodeName = ""
			b.Spec.MachineName = "my-clone"
			b.Spec.ExecUser = "agent"
			b.Spec.PromptPath = "/home/agent/prompt.md"
			b.Spec.Prompt = &v1.ContentSource{Inline: inline("review the PR")}
			b.Spec.Env = []v1.EnvVar{{Name: "ANTHROPIC_API_KEY", ValueFrom: &v1.EnvVarSource{SecretKeyRef: ref}}}
			b.Spec.Files = []v1.File{{Path: "/home/agent/.gitconfig", Inline: inline("[user]\n")}}
			b.Spec.Provision = []v1.ProvisionStep{{Name: "clone", Script: "git clone https://github.com/x/y"}}
			b.Spec.Placement = &v1.Placement{NodeSelector: map[string]string{"zone": "a"}}
		})
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		got := &v1.Bottle{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(b), got)).To(Succeed())
		Expect(got.Spec.TemplateRef).To(Equal(&v1.TemplateReference{Name: "claude"}))
		Expect(got.Spec.Image).To(BeEmpty())
		Expect(got.Spec.Resources).To(BeZero(), "nothing defaults resources on a templated Bottle")
		Expect(got.Spec.Network).To(BeZero())
	})

	Context("immutability", func() {
		It("rejects changing templateRef", func() {
			b := templated(nil)
			Expect(k8sClient.Create(ctx, b)).To(Succeed())
			b.Spec.TemplateRef.Name = "other"
			expectInvalid(k8sClient.Update(ctx, b), "spec.templateRef", "templateRef is immutable")
		})
		It("rejects removing templateRef", func() {
			b := templated(nil)
			Expect(k8sClient.Create(ctx, b)).To(Succeed())
			b.Spec.TemplateRef = nil
			b.Spec.Image = "node:22"
			expectInvalid(k8sClient.Update(ctx, b), "spec.templateRef", "templateRef is immutable")
		})
		It("rejects adding templateRef to a plain Bottle", func() {
			b := newBottle(nil)
			Expect(k8sClient.Create(ctx, b)).To(Succeed())
			b.Spec.Image = ""
			b.Spec.TemplateRef = &v1.TemplateReference{Name: "claude"}
			expectInvalid(k8sClient.Update(ctx, b), "spec.templateRef", "templateRef is immutable")
		})
		It("allows changing a templated Bottle's own steps and power", func() {
			b := templated(nil)
			Expect(k8sClient.Create(ctx, b)).To(Succeed())
			b.Spec.Provision = steps(2)
			b.Spec.RunState = v1.RunStateStopped
			Expect(k8sClient.Update(ctx, b)).To(Succeed())
		})
	})

	It("stores where a templated Bottle's machine came from in its status", func() {
		b := templated(nil)
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		origin := &v1.TemplateOrigin{Name: "claude", Generation: 3, GoldenMachine: "default-claude-g3-0a1b2c3d4e", HeldSlot: true,
			Steps: []v1.InheritedStep{{Name: "claude-code", ScriptSHA256: strings.Repeat("a", 64)}, {Name: "tools", ScriptSHA256: strings.Repeat("b", 64)}}}
		u, err := b.StatusApplyObject(&v1.BottleStatus{Template: origin})
		Expect(err).NotTo(HaveOccurred())
		Expect(k8sClient.Status().Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(v1.FieldManagerAgent), client.ForceOwnership)).To(Succeed())
		got := &v1.Bottle{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(b), got)).To(Succeed())
		Expect(got.Status.Template).To(Equal(origin))
	})
})
