package agent_test

import (
	"context"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// readCounts counts uncached reads by what was read: "ConfigMap" (the whole
// object) or "ConfigMap metadata".
type readCounts struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *readCounts) of(what string) func() int {
	return func() int {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.m[what]
	}
}

type countingAPIReader struct {
	client.Reader
	counts *readCounts
}

func (r countingAPIReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	what := ""
	switch o := obj.(type) {
	case *corev1.ConfigMap:
		what = "ConfigMap"
	case *corev1.Secret:
		what = "Secret"
	case *metav1.PartialObjectMetadata:
		what = o.GetObjectKind().GroupVersionKind().Kind + " metadata"
	}
	r.counts.mu.Lock()
	r.counts.m[what]++
	r.counts.mu.Unlock()
	return r.Reader.Get(ctx, key, obj, opts...)
}

var _ = Describe("ConfigMaps and Secrets of idle Bottles", Ordered, func() {
	const node = "node-sources"
	var (
		a     *testAgent
		reads = &readCounts{m: map[string]int{}}
	)
	BeforeAll(func() { a = startAgent(node, agentOptions{resync: time.Second, apiReads: reads}) })
	AfterAll(func() { a.stop() })

	It("are read again only when their resourceVersion changed; each resync reads their metadata", func() {
		ns := newNamespace()
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: ns}, Data: map[string]string{"f": "one"}}
		Expect(k8sClient.Create(ctx, cm)).To(Succeed())
		b := bottle(ns, node)
		b.Spec.Files = []v1.File{{Path: "/home/node/f", Owner: "node", ConfigMapKeyRef: &v1.KeyRef{Name: "cfg", Key: "f"}}}
		b.Spec.PromptPath = "/home/node/prompt.md"
		b.Spec.Prompt = &v1.ContentSource{ConfigMapKeyRef: &v1.KeyRef{Name: "cfg", Key: "f"}}
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		Eventually(phaseOf(b)).Should(Equal(v1.PhaseReady))
		machine := get(b).Status.MachineName

		full, meta := reads.of("ConfigMap"), reads.of("ConfigMap metadata")
		before := full()
		m0 := meta()
		Eventually(meta).Should(BeNumerically(">=", m0+2), "resyncs confirm the version")
		Consistently(full, 3*time.Second, 100*time.Millisecond).Should(Equal(before), "an unchanged ConfigMap is not read again")

		cm.Data["f"] = "two"
		Expect(k8sClient.Update(ctx, cm)).To(Succeed())
		Eventually(guestPoll(node, machine, "cat /home/node/f /home/node/prompt.md")).Should(Equal("twotwo"))
		Expect(full()).To(BeNumerically(">", before), "the new version is read")
		after := full()
		Consistently(full, 3*time.Second, 100*time.Millisecond).Should(Equal(after), "the new version is not read again while unchanged")
		Expect(phaseOf(b)()).To(Equal(v1.PhaseReady))
	})
})
