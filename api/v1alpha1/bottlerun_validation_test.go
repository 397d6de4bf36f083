package v1alpha1_test

import (
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

func newRun(mutate func(r *v1.BottleRun)) *v1.BottleRun {
	seq++
	r := &v1.BottleRun{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("r-%d", seq), Namespace: "default"},
		Spec: v1.BottleRunSpec{
			BottleRef: &v1.BottleReference{Name: "b"},
			Command:   []string{"echo", "hi"},
		},
	}
	if mutate != nil {
		mutate(r)
	}
	return r
}

var _ = Describe("BottleRun validation by the API server", func() {
	type invalid struct {
		mutate func(r *v1.BottleRun)
		field  string
		says   string
	}
	DescribeTable("rejects an invalid BottleRun with a message naming the field",
		func(c invalid) {
			expectInvalid(k8sClient.Create(ctx, newRun(c.mutate)), c.field, c.says)
		},
		Entry("neither bottleRef nor templateRef", invalid{func(r *v1.BottleRun) { r.Spec.BottleRef = nil }, "spec", "exactly one of bottleRef"}),
		Entry("both bottleRef and templateRef", invalid{func(r *v1.BottleRun) { r.Spec.TemplateRef = &v1.TemplateReference{Name: "t"} }, "spec", "exactly one of bottleRef"}),
		Entry("neither command nor script", invalid{func(r *v1.BottleRun) { r.Spec.Command = nil }, "spec", "exactly one of command"}),
		Entry("both command and script", invalid{func(r *v1.BottleRun) { r.Spec.Script = inline("true") }, "spec", "exactly one of command"}),
		Entry("script with a NUL", invalid{func(r *v1.BottleRun) { r.Spec.Command, r.Spec.Script = nil, inline("a\x00b") }, "spec.script", "NUL"}),
		Entry("bad user", invalid{func(r *v1.BottleRun) { r.Spec.User = "Root" }, "spec.user", "POSIX user name"}),
		Entry("bad bottle name", invalid{func(r *v1.BottleRun) { r.Spec.BottleRef.Name = "B_1" }, "spec.bottleRef.name", "DNS subdomain"}),
		Entry("timeout 0", invalid{func(r *v1.BottleRun) { r.Spec.TimeoutSeconds = -1 }, "spec.timeoutSeconds", "greater than or equal to 1"}),
		Entry("concurrency unknown", invalid{func(r *v1.BottleRun) { r.Spec.ConcurrencyPolicy = "Replace" }, "spec.concurrencyPolicy", `supported values: "Forbid", "Queue"`}),
		Entry("output path relative", invalid{func(r *v1.BottleRun) { r.Spec.Outputs = []v1.RunOutput{{Name: "a", Path: "x"}} }, "spec.outputs[0].path", "absolute path"}),
		Entry("output names not unique", invalid{func(r *v1.BottleRun) {
			r.Spec.Outputs = []v1.RunOutput{{Name: "a", Path: "/x"}, {Name: "a", Path: "/y"}}
		}, "spec.outputs", "outputs names must be unique"}),
		Entry("output over 64 KiB", invalid{func(r *v1.BottleRun) { r.Spec.Outputs = []v1.RunOutput{{Name: "a", Path: "/x", MaxBytes: 65537}} }, "spec.outputs[0].maxBytes", "less than or equal to 65536"}),
		Entry("env value and valueFrom", invalid{func(r *v1.BottleRun) {
			r.Spec.Env = []v1.EnvVar{{Name: "A", Value: inline("1"), ValueFrom: &v1.EnvVarSource{SecretKeyRef: &v1.KeyRef{Name: "s", Key: "k"}}}}
		}, "spec.env[0]", "exactly one of value or valueFrom"}),
	)

	It("defaults timeoutSeconds, concurrencyPolicy and output bounds, and refuses any spec change", func() {
		r := newRun(func(r *v1.BottleRun) { r.Spec.Outputs = []v1.RunOutput{{Name: "review", Path: "/tmp/review.md"}} })
		Expect(k8sClient.Create(ctx, r)).To(Succeed())
		Expect(r.Spec.TimeoutSeconds).To(Equal(int32(3600)))
		Expect(r.Spec.ConcurrencyPolicy).To(Equal(v1.ConcurrencyQueue))
		Expect(r.Spec.Outputs[0].MaxBytes).To(Equal(int32(16384)))
		r.Spec.Command = []string{"echo", "bye"}
		expectInvalid(k8sClient.Update(ctx, r), "spec", "spec is immutable")
	})
})
