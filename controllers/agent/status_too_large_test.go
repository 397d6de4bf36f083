package agent_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// The API server refuses a status over its request limit (413) or etcd's
// ("request is too large"). Tails are bounded, so only a Bottle near every
// other limit at once gets there; here the API server's answer is injected
// for any status carrying the marker a step prints, as the real one would
// answer a status that large.
var _ = Describe("A status the API server refuses as too large", Ordered, func() {
	const node, marker = "node-too-large", "OUTPUT-THE-API-SERVER-REFUSES"
	var (
		a  *testAgent
		mu sync.Mutex
		// applies are the status applies in order: "refused" for each
		// refusal, the applied object's JSON otherwise.
		applies []string
	)
	BeforeAll(func() {
		a = startAgent(node, agentOptions{resync: time.Second, statusApply: func(ctx context.Context, c client.Client, sub string, obj runtime.ApplyConfiguration, opts ...client.SubResourceApplyOption) error {
			raw, err := json.Marshal(obj)
			Expect(err).NotTo(HaveOccurred())
			mu.Lock()
			defer mu.Unlock()
			if strings.Contains(string(raw), marker) {
				applies = append(applies, "refused")
				return apierrors.NewRequestEntityTooLargeError("limit is 3145728")
			}
			applies = append(applies, string(raw))
			return c.SubResource(sub).Apply(ctx, obj, opts...)
		}})
	})
	AfterAll(func() { a.stop() })

	It("drops the tails, says StatusTooLarge, and runs nothing again because of it", func() {
		ns := newNamespace()
		b := bottle(ns, node,
			step("loud", "echo run >> /home/node/loud-runs; echo "+marker),
			step("after", "echo run >> /home/node/after-runs"))
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		Eventually(phaseOf(b)).Should(Equal(v1.PhaseReady))

		By("the write after the refusal: Stalled with StatusTooLarge, the result without its tails")
		mu.Lock()
		seen := append([]string(nil), applies...)
		mu.Unlock()
		i := 0
		for i < len(seen) && seen[i] != "refused" {
			i++
		}
		Expect(i).To(BeNumerically("<", len(seen)-1), "a status was refused and another applied after it")
		Expect(seen[i+1]).To(And(
			ContainSubstring(`"reason":"StatusTooLarge"`),
			ContainSubstring("the API server refused the Bottle's status as too large"),
			ContainSubstring(`"name":"loud"`), ContainSubstring(`"truncated":true`),
		))

		By("the next passes go on from the kept result: no step ran twice")
		machine := get(b).Status.MachineName
		Expect(guest(node, machine, "cat /home/node/loud-runs /home/node/after-runs")).To(Equal("run\nrun\n"))
		r := result(b, "loud")
		Expect(r.ExitCode).To(HaveValue(BeZero()), "the result is kept")
		Expect(r.Stdout).To(BeEmpty(), "the dropped tail stays dropped")
		Expect(r.Truncated).To(BeTrue())
	})
})
