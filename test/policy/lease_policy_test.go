package policy

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bot-bottle/bottle-controller/internal/agentlease"
	"github.com/bot-bottle/bottle-controller/internal/testenv"
)

const clusterSA = "bottle-cluster-controller"

// saClient authenticates as ServiceAccount sa of the agents' namespace
// with a token bound to no Pod.
func (e *env) saClient(t *testing.T, sa string) client.Client {
	t.Helper()
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr(int64(600))}}
	tok, err := e.kube.CoreV1().ServiceAccounts(agentNS).CreateToken(context.Background(), sa, req, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := rest.AnonymousClientConfig(e.cfg)
	cfg.BearerToken = tok.Status.Token
	c, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func lease(name, node, holder string) *coordinationv1.Lease {
	l := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: agentNS},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr(holder), LeaseDurationSeconds: ptr(int32(3600))},
	}
	if node != "" {
		l.Labels = map[string]string{agentlease.LabelNode: node}
	}
	return l
}

// testLeasesConfinedToOwnNode: an agent's token writes its own node's
// Lease only; the cluster controller's only its leader Lease. Before the
// policy, node A's agent could hold node B's Lease, the leader Lease, and
// heartbeat for any node.
func testLeasesConfinedToOwnNode(t *testing.T, e *env) {
	g := NewWithT(t)
	ctx := context.Background()
	const nodeL, nodeM = "node-l", "node-m"
	agentL, _ := e.tokenClient(t, e.agentPod(t, nodeL))

	// Policies reach the admission plugin through informers.
	ownOnly := "the Bottle agent of node node-l may write only the Lease bottle-system/bottle-agent-node-l"
	g.Eventually(func() error {
		err := agentL.Create(ctx, lease(agentlease.Name(nodeM), nodeM, "attacker"))
		if err == nil {
			_ = e.admin.Delete(ctx, lease(agentlease.Name(nodeM), "", ""))
		}
		return err
	}).WithTimeout(60 * time.Second).WithPolling(100 * time.Millisecond).Should(MatchError(ContainSubstring(ownOnly)))

	// Its own Lease: create and renew, labelled for its node.
	own := lease(agentlease.Name(nodeL), nodeL, "agent-node-l")
	g.Expect(agentL.Create(ctx, own)).To(Succeed())
	own.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
	g.Expect(agentL.Update(ctx, own)).To(Succeed())
	// Not relabelled as a heartbeat for another node.
	own.Labels[agentlease.LabelNode] = nodeM
	g.Expect(agentL.Update(ctx, own)).To(MatchError(ContainSubstring("must label its Lease agents.bot-bottle.dev/node=node-l")))

	// Another node's Lease, the cluster controller's, a decoy: refused.
	g.Expect(e.admin.Create(ctx, lease(agentlease.Name(nodeM), nodeM, "agent-node-m"))).To(Succeed())
	theirs := &coordinationv1.Lease{}
	g.Expect(agentL.Get(ctx, client.ObjectKey{Namespace: agentNS, Name: agentlease.Name(nodeM)}, theirs)).To(Succeed())
	theirs.Spec.HolderIdentity = ptr("attacker")
	g.Expect(agentL.Update(ctx, theirs)).To(MatchError(ContainSubstring(ownOnly)))
	g.Expect(agentL.Create(ctx, lease("bottle-cluster-controller", "", "attacker"))).To(MatchError(ContainSubstring(ownOnly)))
	g.Expect(agentL.Create(ctx, lease("decoy", nodeM, "attacker"))).To(MatchError(ContainSubstring(ownOnly)))
	err := agentL.Delete(ctx, own)
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "delete: %v", err)

	// A token bound to no Pod names no node.
	unbound, _ := e.tokenClient(t, nil)
	g.Expect(unbound.Create(ctx, lease("bottle-agent-x", "x", "x"))).To(MatchError(ContainSubstring("names no node")))

	// The cluster controller: its leader Lease, and no agent's.
	cluster := e.saClient(t, clusterSA)
	g.Expect(cluster.Create(ctx, lease("bottle-cluster-controller", "", "cluster-1"))).To(Succeed())
	g.Expect(cluster.Create(ctx, lease(agentlease.Name("node-n"), "node-n", "cluster-1"))).To(
		MatchError(ContainSubstring("the cluster controller may write only the Lease bottle-system/bottle-cluster-controller")))
	theirs = &coordinationv1.Lease{}
	g.Expect(cluster.Get(ctx, client.ObjectKey{Namespace: agentNS, Name: agentlease.Name(nodeM)}, theirs)).To(Succeed())
	theirs.Spec.HolderIdentity = ptr("cluster-1")
	err = cluster.Update(ctx, theirs)
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "the cluster controller updates an agent's Lease: %v", err)

	got := &coordinationv1.Lease{}
	g.Expect(e.admin.Get(ctx, client.ObjectKey{Namespace: agentNS, Name: agentlease.Name(nodeM)}, got)).To(Succeed())
	g.Expect(*got.Spec.HolderIdentity).To(Equal("agent-node-m"))
}
