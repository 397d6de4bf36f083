package agent_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/controllers/agent"
)

var _ = Describe("Copies a guest user cannot redirect", Ordered, func() {
	const node = "node-links"
	var a *testAgent
	BeforeAll(func() { a = startAgent(node, agentOptions{resync: 2 * time.Second}) })
	AfterAll(func() { a.stop() })

	filesReady := func(b *v1.Bottle) func() string {
		return func() string {
			c := meta.FindStatusCondition(get(b).Status.Conditions, v1.ConditionFilesReady)
			if c == nil {
				return ""
			}
			return c.Reason + ": " + c.Message
		}
	}

	It("refuses to write through ~/.claude -> /etc planted by the exec user, and writes once it is gone", func() {
		ns := newNamespace()
		b := bottle(ns, node)
		b.Spec.Files = []v1.File{{Path: "/home/node/.claude/settings.json", Owner: "node", Mode: ptr.To[int32](0o600), Inline: ptr.To("{}")}}
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		Eventually(phaseOf(b)).Should(Equal(v1.PhaseReady))
		machine := get(b).Status.MachineName
		Expect(guest(node, machine, "stat -c '%U %a' /home/node/.claude /home/node/.claude/settings.json")).To(Equal("node 755\nnode 600\n"))

		By("the exec user replacing ~/.claude with a link to /etc, then the file changing")
		guest(node, machine, `runuser -u node -- sh -c 'rm -rf /home/node/.claude && ln -s /etc /home/node/.claude'`)
		orig := get(b)
		changed := orig.DeepCopy()
		changed.Spec.Files[0].Inline = ptr.To(`{"changed": true}`)
		Expect(k8sClient.Patch(ctx, changed, client.MergeFrom(orig))).To(Succeed())

		Eventually(filesReady(b)).Should(Equal(v1.ReasonUnsafePath + ": file /home/node/.claude/settings.json: " +
			"refusing to write /home/node/.claude/settings.json: /home/node/.claude is a symbolic link a non-root user could have made"))
		Expect(guest(node, machine, "ls /etc/settings.json 2>&1 || true")).To(ContainSubstring("No such file"))
		Eventually(guestPoll(node, machine, agent.NoStagedCopies)).Should(Equal("0\n"), "the staged copy is removed")
		Expect(eventReasons(b)()).To(ContainElement(v1.ReasonUnsafePath))

		By("the link gone: the directory is made again for node and the file lands")
		guest(node, machine, "rm /home/node/.claude")
		Eventually(phaseOf(b)).Should(Equal(v1.PhaseReady))
		Expect(guest(node, machine, "stat -c '%U %a' /home/node/.claude /home/node/.claude/settings.json; cat /home/node/.claude/settings.json")).
			To(Equal("node 755\nnode 600\n{\"changed\": true}"))
	})

	It("replaces a link at the file's own name instead of writing through it", func() {
		ns := newNamespace()
		b := bottle(ns, node)
		b.Spec.Files = []v1.File{{Path: "/home/node/notes", Owner: "node", Inline: ptr.To("one")}}
		Expect(k8sClient.Create(ctx, b)).To(Succeed())
		Eventually(phaseOf(b)).Should(Equal(v1.PhaseReady))
		machine := get(b).Status.MachineName
		passwd := guest(node, machine, "cat /etc/passwd")

		guest(node, machine, `runuser -u node -- sh -c 'rm /home/node/notes && ln -s /etc/passwd /home/node/notes'`)
		orig := get(b)
		changed := orig.DeepCopy()
		changed.Spec.Files[0].Inline = ptr.To("two")
		Expect(k8sClient.Patch(ctx, changed, client.MergeFrom(orig))).To(Succeed())
		Eventually(guestPoll(node, machine, "cat /home/node/notes")).Should(Equal("two"))
		Expect(guest(node, machine, "cat /etc/passwd")).To(Equal(passwd))
		Expect(guest(node, machine, "stat -c '%F %U' /home/node/notes")).To(Equal("regular file node\n"))
	})
})
