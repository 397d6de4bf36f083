package agent_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/steplog"
	"github.com/bot-bottle/bottle-controller/internal/testutil"
)

var _ = Describe("Step logs", Ordered, func() {
	const node = "node-logs"
	var (
		a     *testAgent
		store *steplog.Store
	)
	BeforeAll(func() {
		var err error
		store, err = steplog.New(GinkgoT().TempDir(), steplog.DefaultLimit)
		Expect(err).NotTo(HaveOccurred())
		a = startAgent(node, agentOptions{stepLogs: store})
	})
	AfterAll(func() { a.stop() })
	AfterEach(func() {
		if CurrentSpecReport().Failed() {
			dumpBottles()
			logs := a.logs.String()
			GinkgoWriter.Printf("agent log (tail):\n%s\n", logs[max(0, len(logs)-4000):])
		}
	})

	It("keeps every byte of a step, follows a running step live, and goes with the Bottle", func() {
		ns := newNamespace()
		b := bottle(ns, node,
			// Printable (base64): status keeps a tail of it too, and the
			// agent's status apply rejects control characters today.
			step("big", "head -c 3750000 /dev/urandom | base64 > /tmp/big; cat /tmp/big"),
			step("slow", "echo waiting-line; sleep 4; echo after"),
		)
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		uid := string(get(b).UID)

		// -f shows the line while the step still sleeps, and ends with it.
		Eventually(func() bool { return store.Has(uid, "slow") }).Should(BeTrue())
		followed := &testutil.SyncBuffer{}
		done := make(chan error, 1)
		go func() {
			done <- store.Copy(context.Background(), followed, uid, "slow", steplog.ReadOptions{TailLines: -1, Follow: true})
		}()
		Eventually(followed.String).Should(Equal("waiting-line\n"))
		Expect(result(b, "slow").FinishedAt).To(BeNil(), "the step must still run while its line is seen")
		Eventually(done).Should(Receive(BeNil()))
		Expect(followed.String()).To(Equal("waiting-line\nafter\n"))
		Eventually(phaseOf(b)).Should(Equal(v1.PhaseReady))

		// The 5 MB step reads back byte for byte.
		var big bytes.Buffer
		Expect(store.Copy(ctx, &big, uid, "big", steplog.ReadOptions{TailLines: -1})).To(Succeed())
		Expect(big.Len()).To(BeNumerically(">", 5000000))
		sum := sha256.Sum256(big.Bytes())
		guestSum := strings.Fields(guest(node, get(b).Status.MachineName, "sha256sum < /tmp/big"))[0]
		Expect(hex.EncodeToString(sum[:])).To(Equal(guestSum))

		Expect(k8sClient.Delete(ctx, b)).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(b), &v1.Bottle{}))
		}).Should(BeTrue())
		Expect(store.Has(uid, "big")).To(BeFalse())
	})

	It("drops the log of a step renamed in the spec (it could never be read again)", func() {
		ns := newNamespace()
		b := bottle(ns, node, step("out-1", "echo one"))
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		Eventually(phaseOf(b)).Should(Equal(v1.PhaseReady))
		uid := string(get(b).UID)
		Expect(store.Has(uid, "out-1")).To(BeTrue())

		got := get(b)
		got.Spec.Provision[0].Name = "out-2"
		Expect(k8sClient.Update(ctx, got)).To(Succeed())
		Eventually(func() bool { return store.Has(uid, "out-2") }).Should(BeTrue())
		Expect(store.Has(uid, "out-1")).To(BeFalse())
	})
})
