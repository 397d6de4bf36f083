package agent_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/steplog"
)

var _ = Describe("A BottleTemplate golden step's log", func() {
	It("keeps every byte of a golden's step, is replaced when the step is retried, and goes with the golden", func() {
		const node = "node-golden-logs"
		poolNode(node, "logs")
		store, err := steplog.New(GinkgoT().TempDir(), steplog.DefaultLimit)
		Expect(err).NotTo(HaveOccurred())
		a := startTemplateAgentOpts(node, templateAgentOptions{period: time.Second, stepLogs: store})
		DeferCleanup(a.stop)
		ns := newNamespace()
		tpl := &v1.BottleTemplate{
			ObjectMeta: metav1.ObjectMeta{Name: "tools", Namespace: ns},
			Spec: v1.BottleTemplateSpec{
				MachineSpec: v1.MachineSpec{
					Image: "node:22",
					Provision: []v1.ProvisionStep{
						// Printable (base64), far more than status keeps.
						step("big", "head -c 750000 /dev/urandom | base64 > /tmp/big; cat /tmp/big"),
						step("flaky", `if [ -e /tmp/ran ]; then echo second-run; else touch /tmp/ran; echo first-run; exit 3; fi`),
					},
				},
				Pool: v1.TemplatePool{NodeSelector: map[string]string{"pool": "logs"}, HeldSlots: 1},
			},
		}
		Expect(k8sClient.Create(ctx, tpl)).To(Succeed())
		Eventually(nodeEntry(tpl, node)).Should(And(HaveField("Phase", v1.PhaseFailed), HaveField("Reason", v1.ReasonStepFailed)))
		entry := nodeEntry(tpl, node)(Default)
		golden := entry.GoldenMachine
		key := steplog.GoldenKey(string(get2(tpl).UID), golden)
		read := func(step string) string {
			var out bytes.Buffer
			Expect(store.Copy(ctx, &out, key, step, steplog.ReadOptions{TailLines: -1})).To(Succeed())
			return out.String()
		}

		By("the big step's whole output is kept, where status holds its tail")
		big := read("big")
		Expect(len(big)).To(BeNumerically(">", 1000000))
		Expect(len(entry.ExecResults[0].Stdout)).To(BeNumerically("<", len(big)/10), "status keeps a tail only")
		Expect(big).To(HaveSuffix(entry.ExecResults[0].Stdout))
		sum := sha256.Sum256([]byte(big))
		Expect(hex.EncodeToString(sum[:])).To(Equal(strings.Fields(guest(node, golden, "sha256sum < /tmp/big"))[0]))
		Expect(read("flaky")).To(Equal("first-run\n"))

		By("a retried step's log is replaced by the new run's")
		cur := get2(tpl)
		cur.Annotations = map[string]string{v1.AnnotationRetry: "1"}
		Expect(k8sClient.Update(ctx, cur)).To(Succeed())
		Eventually(nodeEntry(tpl, node)).Should(HaveField("Phase", v1.PhaseReady))
		Expect(read("flaky")).To(Equal("second-run\n"))
		Expect(read("big")).To(Equal(big), "the step that did not run again keeps its log")

		By("a machine edit makes a new golden, whose logs replace the old one's")
		cur = get2(tpl)
		cur.Spec.Provision = []v1.ProvisionStep{step("small", "echo from-the-new-golden")}
		Expect(k8sClient.Update(ctx, cur)).To(Succeed())
		Eventually(func(g Gomega) {
			e := nodeEntry(tpl, node)(g)
			g.Expect(e.GoldenMachine).NotTo(Equal(golden))
			g.Expect(e.Phase).To(Equal(v1.PhaseReady))
		}).Should(Succeed())
		newKey := steplog.GoldenKey(string(get2(tpl).UID), nodeEntry(tpl, node)(Default).GoldenMachine)
		var small bytes.Buffer
		Expect(store.Copy(ctx, &small, newKey, "small", steplog.ReadOptions{TailLines: -1})).To(Succeed())
		Expect(small.String()).To(Equal("from-the-new-golden\n"))
		Expect(store.Has(key, "big")).To(BeFalse(), "the old golden's logs went with its entry")

		By("the template's logs go with it")
		Expect(k8sClient.Delete(ctx, get2(tpl))).To(Succeed())
		Eventually(func() bool { return store.Has(newKey, "small") }).Should(BeFalse())
	})
})
