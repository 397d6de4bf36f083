package placement

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// nodeLabeller keeps LabelSchedulable on each KVM node equal to whether its
// agent is live, so reservation Pods, which require it, only go to nodes
// whose agent can run them (as KubeVirt's kubevirt.io/schedulable).
type nodeLabeller struct {
	client.Client
	heartbeats *Heartbeats
	namespace  string
}

func (n *nodeLabeller) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	node := &corev1.Node{}
	if err := n.Get(ctx, req.NamespacedName, node); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	want := "false"
	if n.heartbeats.Of(node.Name, n.namespace).Live {
		want = "true"
	}
	if node.Labels[v1.LabelSchedulable] == want {
		return ctrl.Result{}, nil
	}
	patch := client.MergeFrom(node.DeepCopy())
	if node.Labels == nil {
		node.Labels = map[string]string{}
	}
	node.Labels[v1.LabelSchedulable] = want
	return ctrl.Result{}, n.Patch(ctx, node, patch, client.FieldOwner(v1.FieldManagerCluster))
}
