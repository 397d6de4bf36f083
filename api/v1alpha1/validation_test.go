package v1alpha1_test

import (
	"fmt"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

var seq int

func newBottle(mutate func(b *v1.Bottle)) *v1.Bottle {
	seq++
	b := &v1.Bottle{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("b-%d", seq), Namespace: "default"},
		Spec: v1.BottleSpec{
			NodeName: "node-a",
			MachineSpec: v1.MachineSpec{
				Image: "node:22-bookworm",
			},
		},
	}
	if mutate != nil {
		mutate(b)
	}
	return b
}

func inline(s string) *string { return &s }

func files(n int) []v1.File {
	out := make([]v1.File, n)
	for i := range out {
		out[i] = v1.File{Path: fmt.Sprintf("/f/%d", i), Inline: inline("x")}
	}
	return out
}

func steps(n int) []v1.ProvisionStep {
	out := make([]v1.ProvisionStep, n)
	for i := range out {
		out[i] = v1.ProvisionStep{Name: fmt.Sprintf("s%d", i), Script: "true"}
	}
	return out
}

func envs(n int) []v1.EnvVar {
	out := make([]v1.EnvVar, n)
	for i := range out {
		out[i] = v1.EnvVar{Name: fmt.Sprintf("V%d", i), Value: inline("v")}
	}
	return out
}

func list(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(prefix, i)
	}
	return out
}

var ref = &v1.KeyRef{Name: "src", Key: "k"}

var _ = Describe("Bottle validation by the API server", func() {
	type invalid struct {
		mutate func(b *v1.Bottle)
		field  string // the field path the API server must name
		says   string // what the message must say
	}
	DescribeTable("rejects an invalid Bottle with a message naming the field",
		func(c invalid) {
			err := k8sClient.Create(ctx, newBottle(c.mutate))
			Expect(err).To(HaveOccurred())
			Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want 422 Invalid, got %v", err)
			Expect(err.Error()).To(ContainSubstring(c.field))
			Expect(err.Error()).To(ContainSubstring(c.says))
		},
		Entry("placement with 33 tolerations", invalid{func(b *v1.Bottle) {
			b.Spec.Placement = &v1.Placement{Tolerations: make([]corev1.Toleration, 33)}
		}, "spec.placement.tolerations", "must have at most 32 items"}),
		Entry("placement with 33 nodeSelector labels", invalid{func(b *v1.Bottle) {
			b.Spec.Placement = &v1.Placement{NodeSelector: map[string]string{}}
			for i := range 33 {
				b.Spec.Placement.NodeSelector[fmt.Sprintf("l%d", i)] = "x"
			}
		}, "spec.placement.nodeSelector", "must have at most 32 items"}),
		Entry("nodeName not a DNS subdomain", invalid{func(b *v1.Bottle) { b.Spec.NodeName = "Node_A" }, "spec.nodeName", "DNS subdomain"}),
		Entry("nodeName over 253", invalid{func(b *v1.Bottle) { b.Spec.NodeName = strings.Repeat("a", 254) }, "spec.nodeName", "253"}),
		Entry("prompt inline over 64 KiB", invalid{func(b *v1.Bottle) {
			b.Spec.Prompt = &v1.ContentSource{Inline: inline(strings.Repeat("x", 65537))}
		}, "spec.prompt.inline", "65536"}),
		Entry("machineName with a dot", invalid{func(b *v1.Bottle) { b.Spec.MachineName = "my.vm" }, "spec.machineName", "only letters, digits"}),
		Entry("machineName starting with '-'", invalid{func(b *v1.Bottle) { b.Spec.MachineName = "-vm" }, "spec.machineName", "start with a letter or digit"}),
		Entry("machineName ending with '-'", invalid{func(b *v1.Bottle) { b.Spec.MachineName = "vm-" }, "spec.machineName", "must not end with '-'"}),
		Entry("machineName with '--'", invalid{func(b *v1.Bottle) { b.Spec.MachineName = "my--vm" }, "spec.machineName", "must not contain '--'"}),
		Entry("machineName over 128", invalid{func(b *v1.Bottle) { b.Spec.MachineName = strings.Repeat("a", 129) }, "spec.machineName", "128"}),
		Entry("image missing", invalid{func(b *v1.Bottle) { b.Spec.Image = "" }, "spec.image", "image is required: set spec.image"}),
		Entry("image with whitespace", invalid{func(b *v1.Bottle) { b.Spec.Image = "node:22 bookworm" }, "spec.image", "without whitespace"}),
		Entry("image over 512", invalid{func(b *v1.Bottle) { b.Spec.Image = strings.Repeat("a", 513) }, "spec.image", "512"}),
		Entry("image '-' (stdin)", invalid{func(b *v1.Bottle) { b.Spec.Image = "-" }, "spec.image", "registry reference"}),
		Entry("image an absolute node path", invalid{func(b *v1.Bottle) { b.Spec.Image = "/var/lib/rootfs" }, "spec.image", "files on the node"}),
		Entry("image ./ relative", invalid{func(b *v1.Bottle) { b.Spec.Image = "./rootfs" }, "spec.image", "files on the node"}),
		Entry("image ../ relative", invalid{func(b *v1.Bottle) { b.Spec.Image = "../etc" }, "spec.image", "files on the node"}),
		Entry("image a .tar", invalid{func(b *v1.Bottle) { b.Spec.Image = "image.tar" }, "spec.image", "files on the node"}),
		Entry("image a tag ending .tar", invalid{func(b *v1.Bottle) { b.Spec.Image = "node:22.tar" }, "spec.image", "files on the node"}),
		Entry("image a .tar.gz", invalid{func(b *v1.Bottle) { b.Spec.Image = "rootfs.tar.gz" }, "spec.image", "files on the node"}),
		Entry("image a .tgz", invalid{func(b *v1.Bottle) { b.Spec.Image = "rootfs.tgz" }, "spec.image", "files on the node"}),
		Entry("execUser uppercase", invalid{func(b *v1.Bottle) { b.Spec.ExecUser = "Node" }, "spec.execUser", "POSIX user name"}),
		Entry("execUser over 32", invalid{func(b *v1.Bottle) { b.Spec.ExecUser = strings.Repeat("a", 33) }, "spec.execUser", "32"}),
		Entry("promptPath relative", invalid{func(b *v1.Bottle) { b.Spec.PromptPath = "prompt.md" }, "spec.promptPath", "absolute path"}),
		Entry("promptPath with '..'", invalid{func(b *v1.Bottle) { b.Spec.PromptPath = "/home/../etc/passwd" }, "spec.promptPath", "'..' segment"}),
		Entry("promptPath with a control character", invalid{func(b *v1.Bottle) { b.Spec.PromptPath = "/p\nq" }, "spec.promptPath", "control characters"}),
		Entry("promptPath over 4096", invalid{func(b *v1.Bottle) { b.Spec.PromptPath = "/" + strings.Repeat("a", 4096) }, "spec.promptPath", "4096"}),
		Entry("prompt without promptPath", invalid{func(b *v1.Bottle) { b.Spec.Prompt = &v1.ContentSource{Inline: inline("hi")} }, "spec.prompt", "prompt requires promptPath"}),
		Entry("prompt with two sources", invalid{func(b *v1.Bottle) {
			b.Spec.PromptPath = "/p"
			b.Spec.Prompt = &v1.ContentSource{Inline: inline("hi"), ConfigMapKeyRef: ref}
		}, "spec.prompt", "exactly one of inline, configMapKeyRef or secretKeyRef"}),
		Entry("prompt with no source", invalid{func(b *v1.Bottle) { b.Spec.PromptPath = "/p"; b.Spec.Prompt = &v1.ContentSource{} }, "spec.prompt", "exactly one of inline"}),
		Entry("cpus below 1", invalid{func(b *v1.Bottle) { b.Spec.Resources.CPUs = -1 }, "spec.resources.cpus", "greater than or equal to 1"}),
		Entry("cpus 17, above smolvm's cap", invalid{func(b *v1.Bottle) { b.Spec.Resources.CPUs = 17 }, "spec.resources.cpus", "less than or equal to 16"}),
		Entry("memoryMiB 255", invalid{func(b *v1.Bottle) { b.Spec.Resources.MemoryMiB = 255 }, "spec.resources.memoryMiB", "greater than or equal to 256"}),
		Entry("memoryMiB over 256 GiB", invalid{func(b *v1.Bottle) { b.Spec.Resources.MemoryMiB = 262145 }, "spec.resources.memoryMiB", "less than or equal to 262144"}),
		Entry("allowHosts not a host name", invalid{func(b *v1.Bottle) { b.Spec.Network.AllowHosts = []string{"bad host"} }, "spec.network.allowHosts[0]", "RFC 1123"}),
		Entry("allowHosts over 64", invalid{func(b *v1.Bottle) { b.Spec.Network.AllowHosts = list("h%d.example.com", 65) }, "spec.network.allowHosts", "must have at most 64 items"}),
		Entry("allowCIDRs not a CIDR", invalid{func(b *v1.Bottle) { b.Spec.Network.AllowCIDRs = []string{"10.0.0.0/33"} }, "spec.network.allowCIDRs[0]", "must be CIDRs"}),
		Entry("allowCIDRs over 64", invalid{func(b *v1.Bottle) { b.Spec.Network.AllowCIDRs = list("10.0.%d.0/24", 65) }, "spec.network.allowCIDRs", "must have at most 64 items"}),
		Entry("env name not a C identifier", invalid{func(b *v1.Bottle) { b.Spec.Env = []v1.EnvVar{{Name: "1BAD", Value: inline("v")}} }, "spec.env[0].name", "C identifier"}),
		Entry("env names not unique", invalid{func(b *v1.Bottle) {
			b.Spec.Env = []v1.EnvVar{{Name: "A", Value: inline("1")}, {Name: "A", Value: inline("2")}}
		}, "spec.env[1]", "Duplicate value"}),
		Entry("env with value and valueFrom", invalid{func(b *v1.Bottle) {
			b.Spec.Env = []v1.EnvVar{{Name: "A", Value: inline("1"), ValueFrom: &v1.EnvVarSource{SecretKeyRef: ref}}}
		}, "spec.env[0]", "exactly one of value or valueFrom"}),
		Entry("env with neither value nor valueFrom", invalid{func(b *v1.Bottle) { b.Spec.Env = []v1.EnvVar{{Name: "A"}} }, "spec.env[0]", "exactly one of value or valueFrom"}),
		Entry("env valueFrom with both refs", invalid{func(b *v1.Bottle) {
			b.Spec.Env = []v1.EnvVar{{Name: "A", ValueFrom: &v1.EnvVarSource{SecretKeyRef: ref, ConfigMapKeyRef: ref}}}
		}, "spec.env[0].valueFrom", "exactly one of secretKeyRef or configMapKeyRef"}),
		Entry("env over 64", invalid{func(b *v1.Bottle) { b.Spec.Env = envs(65) }, "spec.env", "must have at most 64 items"}),
		Entry("secretKeyRef name not a DNS subdomain", invalid{func(b *v1.Bottle) {
			b.Spec.Env = []v1.EnvVar{{Name: "A", ValueFrom: &v1.EnvVarSource{SecretKeyRef: &v1.KeyRef{Name: "Bad_Name", Key: "k"}}}}
		}, "spec.env[0].valueFrom.secretKeyRef.name", "DNS subdomain"}),
		Entry("configMapKeyRef key with '/'", invalid{func(b *v1.Bottle) {
			b.Spec.Files = []v1.File{{Path: "/a", ConfigMapKeyRef: &v1.KeyRef{Name: "cm", Key: "a/b"}}}
		}, "spec.files[0].configMapKeyRef.key", "letters, digits"}),
		Entry("files paths not unique", invalid{func(b *v1.Bottle) {
			b.Spec.Files = []v1.File{{Path: "/a", Inline: inline("1")}, {Path: "/a", Inline: inline("2")}}
		}, "spec.files[1]", "Duplicate value"}),
		Entry("file path relative", invalid{func(b *v1.Bottle) { b.Spec.Files = []v1.File{{Path: "a", Inline: inline("1")}} }, "spec.files[0].path", "absolute path"}),
		Entry("file path with '..'", invalid{func(b *v1.Bottle) { b.Spec.Files = []v1.File{{Path: "/a/../b", Inline: inline("1")}} }, "spec.files[0].path", "'..' segment"}),
		Entry("file path with a control character", invalid{func(b *v1.Bottle) { b.Spec.Files = []v1.File{{Path: "/a\tb", Inline: inline("1")}} }, "spec.files[0].path", "control characters"}),
		Entry("file mode over 0777", invalid{func(b *v1.Bottle) {
			b.Spec.Files = []v1.File{{Path: "/a", Mode: ptr.To[int32](512), Inline: inline("1")}}
		}, "spec.files[0].mode", "less than or equal to 511"}),
		Entry("file mode negative", invalid{func(b *v1.Bottle) {
			b.Spec.Files = []v1.File{{Path: "/a", Mode: ptr.To[int32](-1), Inline: inline("1")}}
		}, "spec.files[0].mode", "greater than or equal to 0"}),
		Entry("file owner not a user name", invalid{func(b *v1.Bottle) { b.Spec.Files = []v1.File{{Path: "/a", Owner: "No Body", Inline: inline("1")}} }, "spec.files[0].owner", "POSIX user name"}),
		Entry("file with two sources", invalid{func(b *v1.Bottle) { b.Spec.Files = []v1.File{{Path: "/a", Inline: inline("1"), SecretKeyRef: ref}} }, "spec.files[0]", "exactly one of inline, configMapKeyRef or secretKeyRef"}),
		Entry("file with no source", invalid{func(b *v1.Bottle) { b.Spec.Files = []v1.File{{Path: "/a"}} }, "spec.files[0]", "exactly one of inline"}),
		Entry("file inline over 64 KiB", invalid{func(b *v1.Bottle) { b.Spec.Files = []v1.File{{Path: "/a", Inline: inline(strings.Repeat("x", 65537))}} }, "spec.files[0].inline", "65536"}),
		Entry("files over 64", invalid{func(b *v1.Bottle) { b.Spec.Files = files(65) }, "spec.files", "must have at most 64 items"}),
		Entry("step name not a DNS label", invalid{func(b *v1.Bottle) { b.Spec.Provision = []v1.ProvisionStep{{Name: "Step_1", Script: "true"}} }, "spec.provision[0].name", "DNS label"}),
		Entry("step names not unique", invalid{func(b *v1.Bottle) {
			b.Spec.Provision = []v1.ProvisionStep{{Name: "a", Script: "true"}, {Name: "a", Script: "false"}}
		}, "spec.provision[1]", "Duplicate value"}),
		Entry("step script empty", invalid{func(b *v1.Bottle) { b.Spec.Provision = []v1.ProvisionStep{{Name: "a"}} }, "spec.provision[0].script", "at least 1 chars long"}),
		Entry("step script with a NUL byte", invalid{func(b *v1.Bottle) { b.Spec.Provision = []v1.ProvisionStep{{Name: "a", Script: "echo a\x00b"}} }, "spec.provision[0].script", "must not contain a NUL byte"}),
		Entry("step script over 64 KiB", invalid{func(b *v1.Bottle) {
			b.Spec.Provision = []v1.ProvisionStep{{Name: "a", Script: strings.Repeat("x", 65537)}}
		}, "spec.provision[0].script", "65536"}),
		Entry("step user not a user name", invalid{func(b *v1.Bottle) { b.Spec.Provision = []v1.ProvisionStep{{Name: "a", Script: "true", User: "ROOT"}} }, "spec.provision[0].user", "POSIX user name"}),
		Entry("step timeout below 1", invalid{func(b *v1.Bottle) {
			b.Spec.Provision = []v1.ProvisionStep{{Name: "a", Script: "true", TimeoutSeconds: -5}}
		}, "spec.provision[0].timeoutSeconds", "greater than or equal to 1"}),
		Entry("step timeout over a day", invalid{func(b *v1.Bottle) {
			b.Spec.Provision = []v1.ProvisionStep{{Name: "a", Script: "true", TimeoutSeconds: 86401}}
		}, "spec.provision[0].timeoutSeconds", "less than or equal to 86400"}),
		Entry("steps over 32", invalid{func(b *v1.Bottle) { b.Spec.Provision = steps(33) }, "spec.provision", "must have at most 32 items"}),
		Entry("runState unknown", invalid{func(b *v1.Bottle) { b.Spec.RunState = "Paused" }, "spec.runState", `supported values: "Running", "Stopped"`}),
		Entry("recreatePolicy unknown", invalid{func(b *v1.Bottle) { b.Spec.RecreatePolicy = "Always" }, "spec.recreatePolicy", `supported values: "Never", "OnChange"`}),
		Entry("promptPath with '//'", invalid{func(b *v1.Bottle) { b.Spec.PromptPath = "/home//node/p.md" }, "spec.promptPath", "must be canonical"}),
		Entry("promptPath with '/./'", invalid{func(b *v1.Bottle) { b.Spec.PromptPath = "/home/./node/p.md" }, "spec.promptPath", "must be canonical"}),
		Entry("promptPath ending in '/.'", invalid{func(b *v1.Bottle) { b.Spec.PromptPath = "/home/node/." }, "spec.promptPath", "must be canonical"}),
		Entry("promptPath with a trailing '/'", invalid{func(b *v1.Bottle) { b.Spec.PromptPath = "/home/node/" }, "spec.promptPath", "must be canonical"}),
		Entry("promptPath '/'", invalid{func(b *v1.Bottle) { b.Spec.PromptPath = "/" }, "spec.promptPath", "must be canonical"}),
		Entry("file path with '//'", invalid{func(b *v1.Bottle) { b.Spec.Files = []v1.File{{Path: "//a", Inline: inline("1")}} }, "spec.files[0].path", "must be canonical"}),
		Entry("a file path that is another file's directory", invalid{func(b *v1.Bottle) {
			b.Spec.Files = []v1.File{{Path: "/home/node/cfg", Inline: inline("1")}, {Path: "/home/node/cfg/inner.json", Inline: inline("{}")}}
		}, "spec.files", "a files[].path must not be a directory of another files[].path"}),
		Entry("a file path under the prompt path", invalid{func(b *v1.Bottle) {
			b.Spec.PromptPath = "/home/node/prompt"
			b.Spec.Prompt = &v1.ContentSource{Inline: inline("hi")}
			b.Spec.Files = []v1.File{{Path: "/home/node/prompt/extra.md", Inline: inline("1")}}
		}, "spec.promptPath", "promptPath and a files[].path must not be one the other's directory"}),
		Entry("file path that is a staging name", invalid{func(b *v1.Bottle) { b.Spec.Files = []v1.File{{Path: "/var/lib/.bottle-staged-1", Inline: inline("1")}} }, "spec.files[0].path", "the agent stages copies there"}),
		Entry("file path with '/./'", invalid{func(b *v1.Bottle) { b.Spec.Files = []v1.File{{Path: "/a/./b", Inline: inline("1")}} }, "spec.files[0].path", "must be canonical"}),
		Entry("file path with a trailing '/'", invalid{func(b *v1.Bottle) { b.Spec.Files = []v1.File{{Path: "/a/b/", Inline: inline("1")}} }, "spec.files[0].path", "must be canonical"}),
		Entry("two files aliasing one path", invalid{func(b *v1.Bottle) {
			b.Spec.Files = []v1.File{{Path: "/a/b", Inline: inline("1")}, {Path: "/a//b", Inline: inline("2")}}
		}, "spec.files[1].path", "must be canonical"}),
		Entry("prompt written to a files[] path", invalid{func(b *v1.Bottle) {
			b.Spec.PromptPath = "/home/node/prompt.md"
			b.Spec.Prompt = &v1.ContentSource{Inline: inline("hi")}
			b.Spec.Files = []v1.File{{Path: "/etc/x", Inline: inline("1")}, {Path: "/home/node/prompt.md", Inline: inline("2")}}
		}, "spec.promptPath", "promptPath must differ from every files[].path"}),
		Entry("prompt aliasing a files[] path", invalid{func(b *v1.Bottle) {
			b.Spec.PromptPath = "/home/node/./prompt.md"
			b.Spec.Prompt = &v1.ContentSource{Inline: inline("hi")}
			b.Spec.Files = []v1.File{{Path: "/home/node/prompt.md", Inline: inline("2")}}
		}, "spec.promptPath", "must be canonical"}),
		Entry("content over the total budget (23 inline files of 64 KiB)", invalid{func(b *v1.Bottle) {
			b.Spec.Files = files(23)
			for i := range b.Spec.Files {
				b.Spec.Files[i].Inline = inline(strings.Repeat("x", 65536))
			}
		}, "spec", "at most 131072 characters in total"}),
		Entry("content over the total budget by one character, across every kind", invalid{func(b *v1.Bottle) {
			b.Spec.PromptPath = "/p"
			b.Spec.Prompt = &v1.ContentSource{Inline: inline(strings.Repeat("p", 1))}
			b.Spec.Files = []v1.File{{Path: "/f", Inline: inline(strings.Repeat("f", 32768))}}
			b.Spec.Provision = []v1.ProvisionStep{{Name: "a", Script: strings.Repeat("s", 65536)}}
			b.Spec.Env = []v1.EnvVar{{Name: "A", Value: inline(strings.Repeat("e", 32768))}}
		}, "spec", "at most 131072 characters in total"}),
		Entry("paths over the total budget", invalid{func(b *v1.Bottle) {
			b.Spec.PromptPath = "/" + strings.Repeat("p", 4000)
			b.Spec.Files = []v1.File{{Path: "/" + strings.Repeat("f", 4095), Inline: inline("1")}, {Path: "/g" + strings.Repeat("g", 100), Inline: inline("2")}}
		}, "spec", "at most 8192 characters in total"}),
	)

	It("accepts content at exactly the total budget, counted in characters", func() {
		b := newBottle(func(b *v1.Bottle) {
			b.Spec.PromptPath = "/p"
			b.Spec.Prompt = &v1.ContentSource{Inline: inline(strings.Repeat("p", 1))}
			b.Spec.Files = []v1.File{{Path: "/f", Inline: inline(strings.Repeat("f", 32767))}}
			// 65,536 four-byte characters: the largest script the CRD allows.
			b.Spec.Provision = []v1.ProvisionStep{{Name: "a", Script: strings.Repeat("\U0001F600", 65536)}}
			b.Spec.Env = []v1.EnvVar{{Name: "A", Value: inline(strings.Repeat("e", 32768))}}
		})
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
	})

	It("accepts promptPath equal to a files[] path when the prompt comes from that file", func() {
		b := newBottle(func(b *v1.Bottle) {
			b.Spec.PromptPath = "/home/node/prompt.md"
			b.Spec.Files = []v1.File{{Path: "/home/node/prompt.md", Inline: inline("be brief")}}
		})
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
	})

	It("defaults each field of a resources object that leaves some out", func() {
		b := newBottle(func(b *v1.Bottle) { b.Spec.Resources = v1.Resources{CPUs: 4} })
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		got := &v1.Bottle{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(b), got)).To(Succeed())
		Expect(got.Spec.Resources).To(Equal(v1.Resources{CPUs: 4, MemoryMiB: 4096}))
	})

	It("accepts recreatePolicy OnChange", func() {
		b := newBottle(func(b *v1.Bottle) { b.Spec.RecreatePolicy = v1.RecreateOnChange })
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
	})

	It("accepts a minimal Bottle and applies every default", func() {
		b := newBottle(func(b *v1.Bottle) {
			b.Spec.Files = []v1.File{{Path: "/home/node/a.txt", Inline: inline("")}}
			b.Spec.Provision = []v1.ProvisionStep{{Name: "hello", Script: "echo hi"}}
		})
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		got := &v1.Bottle{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(b), got)).To(Succeed())
		Expect(got.Spec.ExecUser).To(Equal("node"))
		Expect(got.Spec.Resources).To(BeZero(), "resources stay absent, so that a templated Bottle's can be told apart")
		Expect(got.Spec.Resources.OrDefault()).To(Equal(v1.Resources{CPUs: 2, MemoryMiB: 4096}))
		Expect(got.Spec.RunState).To(Equal(v1.RunStateRunning))
		Expect(got.Spec.RecreatePolicy).To(Equal(v1.RecreateNever))
		Expect(got.Spec.Files[0].Mode).To(Equal(ptr.To[int32](0o644)))
		Expect(got.Spec.Files[0].Inline).To(Equal(inline("")), "an empty inline file is content, not a missing source")
		Expect(got.Spec.Provision[0].TimeoutSeconds).To(Equal(int32(600)))
	})

	It("accepts a full Bottle at every limit", func() {
		b := newBottle(func(b *v1.Bottle) {
			b.Spec.MachineName = "A" + strings.Repeat("b_-c", 31) + "def"
			b.Spec.ExecUser = "_" + strings.Repeat("a", 31)
			b.Spec.PromptPath = "/home/node/.claude/prompt..md"
			b.Spec.Prompt = &v1.ContentSource{ConfigMapKeyRef: ref}
			b.Spec.Resources = v1.Resources{CPUs: 16, MemoryMiB: 262144}
			b.Spec.Network.AllowHosts = list("h%d.example.com", 64)
			b.Spec.Network.AllowCIDRs = append(list("10.0.%d.0/24", 63), "2001:db8::/32")
			b.Spec.Env = envs(64)
			b.Spec.Files = files(64)
			b.Spec.Provision = steps(32)
			b.Spec.RunState = v1.RunStateStopped
		})
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
	})

	Context("immutability", func() {
		var b *v1.Bottle
		BeforeEach(func() {
			b = newBottle(func(b *v1.Bottle) { b.Spec.MachineName = "fixed-name" })
			Expect(k8sClient.Create(ctx, b)).To(Succeed())
		})
		It("rejects a nodeName change", func() {
			b.Spec.NodeName = "node-b"
			err := k8sClient.Update(ctx, b)
			Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
			Expect(err.Error()).To(ContainSubstring("spec.nodeName"))
			Expect(err.Error()).To(ContainSubstring("nodeName is set once"))
		})
		It("rejects removing nodeName", func() {
			b.Spec.NodeName = ""
			Expect(k8sClient.Update(ctx, b)).To(MatchError(ContainSubstring("nodeName is set once")))
		})
		It("accepts a Bottle without nodeName, and sets it once", func() {
			unplaced := newBottle(func(b *v1.Bottle) { b.Spec.NodeName = "" })
			Expect(k8sClient.Create(ctx, unplaced)).To(Succeed())
			unplaced.Spec.NodeName = "node-c"
			Expect(k8sClient.Update(ctx, unplaced)).To(Succeed())
			unplaced.Spec.NodeName = "node-d"
			Expect(k8sClient.Update(ctx, unplaced)).To(MatchError(ContainSubstring("nodeName is set once")))
		})
		It("rejects a machineName change", func() {
			b.Spec.MachineName = "other-name"
			err := k8sClient.Update(ctx, b)
			Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
			Expect(err.Error()).To(ContainSubstring("spec.machineName"))
			Expect(err.Error()).To(ContainSubstring("machineName is immutable"))
		})
		It("rejects removing machineName and adding one later", func() {
			b.Spec.MachineName = ""
			Expect(k8sClient.Update(ctx, b)).To(MatchError(ContainSubstring("machineName is immutable")))

			unnamed := newBottle(nil)
			Expect(k8sClient.Create(ctx, unnamed)).To(Succeed())
			unnamed.Spec.MachineName = "late-name"
			Expect(k8sClient.Update(ctx, unnamed)).To(MatchError(ContainSubstring("machineName is immutable")))
		})
		It("allows changing mutable fields", func() {
			b.Spec.RunState = v1.RunStateStopped
			b.Spec.Provision = steps(2)
			Expect(k8sClient.Update(ctx, b)).To(Succeed())
		})
	})

	It("lists only one node's Bottles with a field selector on spec.nodeName", func() {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "fieldsel"}}
		Expect(k8sClient.Create(ctx, ns)).To(Succeed())
		for i, node := range []string{"n1", "n2", "n1", "n3"} {
			b := newBottle(func(b *v1.Bottle) { b.Namespace = ns.Name; b.Spec.NodeName = node })
			b.Name = fmt.Sprintf("sel-%d", i)
			Expect(k8sClient.Create(ctx, b)).To(Succeed())
		}
		var got v1.BottleList
		Expect(k8sClient.List(ctx, &got, client.InNamespace(ns.Name), client.MatchingFields{"spec.nodeName": "n1"})).To(Succeed())
		Expect(got.Items).To(HaveLen(2))
		for _, b := range got.Items {
			Expect(b.Spec.NodeName).To(Equal("n1"))
		}
	})
})
