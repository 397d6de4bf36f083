package v1alpha1_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// escaped is n characters that JSON stores as 6 bytes each (\u003c): the
// worst case for every string the budget counts in characters.
func escaped(n int) string { return strings.Repeat("<", n) }

// fill returns a string of exactly n characters starting with prefix.
func fill(prefix string, n int, pad string) string {
	return prefix + strings.Repeat(pad, n-len(prefix))
}

// worstCaseBottle has every list at its maximum, every budgeted total at its
// limit, made of characters JSON escapes, and the longest names the CRD
// allows everywhere else.
func worstCaseBottle(name string) *v1.Bottle {
	longRef := func(i int) *v1.KeyRef {
		return &v1.KeyRef{Name: fill(fmt.Sprintf("r%d.", i), 253, "a"), Key: fill(fmt.Sprintf("k%d.", i), 253, "b")}
	}
	b := &v1.Bottle{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: v1.BottleSpec{
			NodeName:       fill("node.", 253, "a"),
			MachineName:    "A" + strings.Repeat("b_-c", 31) + "def",
			RunState:       v1.RunStateRunning,
			RecreatePolicy: v1.RecreateOnChange,
			MachineSpec: v1.MachineSpec{
				Image:      fill("registry.example.com/", 512, "i"),
				ExecUser:   "_" + strings.Repeat("a", 31),
				PromptPath: "/" + escaped(v1.MaxPathChars-64*127-1),
				Resources:  v1.Resources{CPUs: 16, MemoryMiB: 262144},
				Network: v1.Network{
					AllowHosts: list(fill("h%02d.", 253, "a"), 64),
					AllowCIDRs: list("2001:db8:aaaa:bbbb:cccc:dddd:eeee:%04x/128", 64),
				},
			},
		},
	}
	for i := range 64 {
		b.Spec.Env = append(b.Spec.Env, v1.EnvVar{Name: fill(fmt.Sprintf("E%02d_", i), 256, "X"), Value: ptr.To(escaped(256))})
		f := v1.File{Path: "/" + fmt.Sprintf("%02d", i) + escaped(124), Mode: ptr.To[int32](0o777), Owner: "_" + strings.Repeat("o", 31)}
		switch {
		case i == 0:
			f.Inline = ptr.To(escaped(1024))
		case i%2 == 0:
			f.ConfigMapKeyRef = longRef(i)
		default:
			f.SecretKeyRef = longRef(i)
		}
		b.Spec.Files = append(b.Spec.Files, f)
	}
	for i := range 32 {
		script := escaped(1024)
		if i == 0 {
			script = escaped(65536)
		}
		b.Spec.Provision = append(b.Spec.Provision, v1.ProvisionStep{
			Name: fill(fmt.Sprintf("s%02d-", i), 63, "a"), Script: script, User: "_" + strings.Repeat("u", 31), TimeoutSeconds: 86400})
	}
	// The prompt takes what the other content leaves of the budget.
	used := 0
	for _, e := range b.Spec.Env {
		used += len(*e.Value)
	}
	for _, f := range b.Spec.Files {
		if f.Inline != nil {
			used += len(*f.Inline)
		}
	}
	for _, s := range b.Spec.Provision {
		used += len(s.Script)
	}
	b.Spec.Prompt = &v1.ContentSource{Inline: ptr.To(escaped(v1.MaxContentChars - used))}
	return b
}

// worstCaseStatus is the largest status the agent writes for b: every file
// and step recorded, both tails of every step at MaxTailJSONBytes, and the
// agent's short ASCII messages at a generous 1 KiB.
func worstCaseStatus(b *v1.Bottle) v1.BottleStatus {
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	micro := metav1.NewMicroTime(time.Now())
	tail := escaped(v1.MaxTailJSONBytes / 6)
	st := v1.BottleStatus{
		Phase: v1.PhaseFailed, ObservedGeneration: 1 << 40,
		NodeName: b.Spec.NodeName, MachineName: b.Spec.MachineName, MachineState: "unreachable",
	}
	for _, t := range []string{v1.ConditionReady, v1.ConditionMachineReady, v1.ConditionFilesReady,
		v1.ConditionProvisioned, v1.ConditionReconciling, v1.ConditionStalled, "MachineUpToDate"} {
		st.Conditions = append(st.Conditions, metav1.Condition{Type: t, Status: metav1.ConditionFalse,
			ObservedGeneration: 1 << 40, LastTransitionTime: now, Reason: fill("Reason", 128, "R"), Message: fill("msg ", 1024, "m")})
	}
	paths := []string{b.Spec.PromptPath}
	for _, f := range b.Spec.Files {
		paths = append(paths, f.Path)
	}
	for _, p := range paths {
		st.Files = append(st.Files, v1.FileStatus{Path: p, SHA256: strings.Repeat("f", 64), Bytes: 1 << 40,
			Mode: 0o777, Owner: "_" + strings.Repeat("o", 31), CopiedAt: &now})
	}
	for _, s := range b.Spec.Provision {
		st.ExecResults = append(st.ExecResults, v1.ExecResult{Name: s.Name, User: s.User, ExitCode: ptr.To[int32](-1),
			Stdout: tail, Stderr: tail, StdoutBytes: 1 << 40, StderrBytes: 1 << 40, Truncated: true,
			StartedAt: &micro, FinishedAt: &micro, ScriptSHA256: strings.Repeat("a", 64), Error: fill("smolvm exec: ", 1024, "e")})
	}
	// A guest chooses the names it resolves: every refused destination at
	// its longest, every character escaped.
	for i := range v1.MaxEgressRefusals {
		st.EgressRefusals = append(st.EgressRefusals, v1.EgressRefusal{Operation: v1.EgressResolve,
			Destination: fmt.Sprintf("%02d", i) + escaped(298), Count: 1 << 40, FirstSeen: now, LastSeen: now})
	}
	return st
}

// applied converts obj for a server-side apply, the way kubectl and the
// agent send it.
func applied(obj client.Object) *unstructured.Unstructured {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	Expect(err).NotTo(HaveOccurred())
	u := &unstructured.Unstructured{Object: m}
	u.SetAPIVersion(v1.GroupVersion.String())
	u.SetKind("Bottle")
	u.SetResourceVersion("")
	u.SetCreationTimestamp(metav1.Time{})
	return u
}

// worstCaseTemplated is worstCaseBottle forked from a template: without
// the image, resources and network only a template may set, and with the
// longest templateRef, and a status naming 32 inherited steps.
func worstCaseTemplated(name string) (*v1.Bottle, v1.BottleStatus) {
	b := worstCaseBottle(name)
	b.Spec.Image, b.Spec.Resources, b.Spec.Network = "", v1.Resources{}, v1.Network{}
	b.Spec.TemplateRef = &v1.TemplateReference{Name: fill("tpl.", 253, "t")}
	st := worstCaseStatus(b)
	st.Template = &v1.TemplateOrigin{Name: b.Spec.TemplateRef.Name, Generation: 1 << 40,
		GoldenMachine: "G" + strings.Repeat("g", 127), HeldSlot: true}
	for i := range 32 {
		st.Template.Steps = append(st.Template.Steps, v1.InheritedStep{Name: fill(fmt.Sprintf("t%02d-", i), 63, "a"), ScriptSHA256: strings.Repeat("b", 64)})
	}
	return b, st
}

var _ = Describe("Bottle size budget", func() {
	It("stores the largest templated Bottle with its largest status in etcd", func() {
		b, st := worstCaseTemplated("worst-case-templated")
		Expect(k8sClient.Apply(ctx, client.ApplyConfigurationFromUnstructured(applied(b)), client.FieldOwner("gitops"), client.ForceOwnership)).To(Succeed())
		withStatus := b.DeepCopy()
		withStatus.Status = st
		u := applied(withStatus)
		delete(u.Object, "spec")
		Expect(k8sClient.Status().Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner("bottle-agent"), client.ForceOwnership)).To(Succeed())
		got := &v1.Bottle{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(b), got)).To(Succeed())
		Expect(got.Status.Template.Steps).To(HaveLen(32))
		stored, err := json.Marshal(got)
		Expect(err).NotTo(HaveOccurred())
		GinkgoWriter.Printf("worst-case templated Bottle: %d bytes stored of etcd's %d\n", len(stored), v1.EtcdMaxObjectBytes)
		Expect(len(stored)).To(BeNumerically("<", v1.EtcdMaxObjectBytes))
	})

	It("stores the largest valid Bottle with its largest status in etcd", func() {
		b := worstCaseBottle("worst-case")
		By("applying the spec server-side, as a GitOps tool does")
		Expect(k8sClient.Apply(ctx, client.ApplyConfigurationFromUnstructured(applied(b)), client.FieldOwner("gitops"), client.ForceOwnership)).To(Succeed())

		By("applying the largest status the agent can write, under its own field manager")
		withStatus := b.DeepCopy()
		withStatus.Status = worstCaseStatus(b)
		u := applied(withStatus)
		delete(u.Object, "spec")
		Expect(k8sClient.Status().Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner("bottle-agent"), client.ForceOwnership)).To(Succeed())

		got := &v1.Bottle{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(b), got)).To(Succeed())
		Expect(got.Status.ExecResults).To(HaveLen(32))
		Expect(got.Status.Files).To(HaveLen(65))
		Expect(got.Status.EgressRefusals).To(HaveLen(v1.MaxEgressRefusals))
		stored, err := json.Marshal(got)
		Expect(err).NotTo(HaveOccurred())
		spec, _ := json.Marshal(got.Spec)
		status, _ := json.Marshal(got.Status)
		managed, _ := json.Marshal(got.ManagedFields)
		GinkgoWriter.Printf("worst-case Bottle: %d bytes stored (spec %d, status %d, managedFields %d) of etcd's %d\n",
			len(stored), len(spec), len(status), len(managed), v1.EtcdMaxObjectBytes)
		Expect(len(stored)).To(BeNumerically("<", v1.EtcdMaxObjectBytes))
	})
})
