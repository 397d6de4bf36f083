package agent_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/testenv"
)

// statusWrites counts the versions of b a watch sees until stop is closed.
func statusWrites(b *v1.Bottle, stop <-chan struct{}) <-chan int {
	wc, err := client.NewWithWatch(cfg, client.Options{Scheme: testenv.Scheme()})
	Expect(err).NotTo(HaveOccurred())
	w, err := wc.Watch(ctx, &v1.BottleList{}, client.InNamespace(b.Namespace),
		client.MatchingFields{"metadata.name": b.Name}, &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: get(b).ResourceVersion}})
	Expect(err).NotTo(HaveOccurred())
	out := make(chan int, 1)
	go func() {
		defer GinkgoRecover()
		defer w.Stop()
		n := 0
		for {
			select {
			case ev, ok := <-w.ResultChan():
				if !ok {
					out <- n
					return
				}
				if ev.Type == watch.Modified {
					n++
				}
			case <-stop:
				out <- n
				return
			}
		}
	}()
	return out
}

// execCalls is how many `machine exec` calls the simulator's injected
// failure counter has seen on node.
func execCalls(node string) int {
	raw, err := os.ReadFile(filepath.Join(dataDir(node), "faults.json"))
	if err != nil {
		return 0
	}
	var counters map[string]struct {
		Used int `json:"used"`
	}
	Expect(json.Unmarshal(raw, &counters)).To(Succeed())
	return counters["exec"].Used
}

var _ = Describe("steps that fail in smolvm", func() {
	It("backs off per Bottle, exponentially, instead of re-running the step at once", func() {
		const node = "node-hot-loop"
		// Every exec fails as smolvm does when its guest agent drops the
		// connection, and smolvm cannot say whether the machine still runs
		// (status fails too): the driver then believes smolvm's error line
		// (a running machine would make it the guest's exit 1).
		a := startAgent(node, agentOptions{simEnv: []string{"SMOLVM_SIM_FAIL=exec=100000,status=100000"}, retryBase: 200 * time.Millisecond})
		defer a.stop()
		ns := newNamespace()
		b := bottle(ns, node, step("flaky", "echo never"))
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		Eventually(func() string {
			c := meta.FindStatusCondition(get(b).Status.Conditions, v1.ConditionProvisioned)
			if c == nil {
				return ""
			}
			return c.Reason
		}).Should(Equal(v1.ReasonSmolvmError))

		// Over a 4 s window, a backoff from 200 ms allows about 5 attempts
		// (0.2, 0.4, 0.8, 1.6, 3.2 s apart); the loop ran ~30 a second and
		// wrote status ~60 times a second.
		stop := make(chan struct{})
		writes := statusWrites(b, stop)
		before := execCalls(node)
		time.Sleep(4 * time.Second) // the observation window, not a wait for state
		close(stop)
		runs := execCalls(node) - before
		Expect(runs).To(BeNumerically(">=", 1), "it is retried, not stalled")
		Expect(runs).To(BeNumerically("<=", 6), "attempts in 4 s")
		Expect(<-writes).To(BeNumerically("<=", 3*runs+2), "status writes in 4 s")
	})

	It("stalls a step that can never run (a binary Secret in env) without a write loop", func() {
		const node = "node-nul-env"
		a := startAgent(node, agentOptions{})
		defer a.stop()
		ns := newNamespace()
		Expect(k8sClient.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "bin", Namespace: ns},
			Data:       map[string][]byte{"k": {'a', 0, 'b'}},
		})).To(Succeed())
		b := bottle(ns, node, step("uses-bin", "echo $BIN"))
		b.Spec.Env = []v1.EnvVar{{Name: "BIN", ValueFrom: &v1.EnvVarSource{SecretKeyRef: &v1.KeyRef{Name: "bin", Key: "k"}}}}
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		Eventually(phaseOf(b)).Should(Equal(v1.PhaseFailed))
		c := meta.FindStatusCondition(get(b).Status.Conditions, v1.ConditionStalled)
		Expect(c).NotTo(BeNil())
		Expect(c.Reason).To(Equal(v1.ReasonStepFailed))
		Expect(c.Message).To(ContainSubstring("NUL byte"))
		Expect(c.Message).To(ContainSubstring("kubectl bottle retry"))
		Expect(result(b, "uses-bin").Error).To(ContainSubstring("not run"))
		rv := get(b).ResourceVersion
		Consistently(func() string { return get(b).ResourceVersion }, 2*time.Second, 100*time.Millisecond).Should(Equal(rv),
			"a stalled step writes nothing more")
	})
})
