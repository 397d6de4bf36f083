package placement

import (
	"context"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/agentlease"
)

// nodeNameIndex indexes Bottles by spec.nodeName, so a node's agent coming
// or going wakes exactly that node's Bottles.
const nodeNameIndex = "spec.nodeName"

// heartbeatTick is how often expiries are looked for: the delay between an
// agent's Lease running out and its Bottles being told.
const heartbeatTick = time.Second

// CacheOptions keep the cluster controller's cache to what it reads:
// reservation Pods (not every Pod of the cluster), the agents' Leases, and
// KVM nodes.
func CacheOptions(agentNamespace string) cache.Options {
	has := func(key string) labels.Selector {
		req, err := labels.NewRequirement(key, selection.Exists, nil)
		if err != nil {
			panic(err)
		}
		return labels.NewSelector().Add(*req)
	}
	return cache.Options{ByObject: map[client.Object]cache.ByObject{
		&corev1.Pod{}:           {Label: labels.SelectorFromSet(labels.Set{v1.LabelReservation: "true"})},
		&coordinationv1.Lease{}: {Label: has(agentlease.LabelNode), Namespaces: map[string]cache.Config{agentNamespace: {}}},
		&corev1.Node{}:          {Label: labels.SelectorFromSet(labels.Set{v1.LabelKVMNode: "true"})},
	}}
}

// SetupWithManager registers the Bottle placement controller, the Lease
// watcher that feeds the heartbeats, and the node labeller.
func (r *Reconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(ctx, &v1.Bottle{}, nodeNameIndex, func(o client.Object) []string {
		if n := o.(*v1.Bottle).Spec.NodeName; n != "" {
			return []string{n}
		}
		return nil
	}); err != nil {
		return err
	}

	// The heartbeat loop tells both the Bottles and the node labeller when
	// a node's agent comes or goes.
	bottlesOfNode := make(chan event.TypedGenericEvent[string], 64)
	nodes := make(chan event.TypedGenericEvent[string], 64)
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		r.Heartbeats.Run(ctx, r.AgentNamespace, heartbeatTick, func(node string) {
			for _, ch := range []chan event.TypedGenericEvent[string]{bottlesOfNode, nodes} {
				select {
				case ch <- event.TypedGenericEvent[string]{Object: node}:
				case <-ctx.Done():
					return
				}
			}
		})
		return nil
	})); err != nil {
		return err
	}

	toBottles := handler.TypedEnqueueRequestsFromMapFunc(func(ctx context.Context, node string) []reconcile.Request {
		return r.bottlesOn(ctx, node)
	})
	if err := ctrl.NewControllerManagedBy(mgr).
		Named("placement").
		For(&v1.Bottle{}).
		Owns(&corev1.Pod{}).
		WatchesRawSource(source.TypedChannel(bottlesOfNode, toBottles)).
		// Passes are short and mostly wait on the API server: a few in
		// parallel keep a burst of new Bottles from queueing.
		WithOptions(controller.Options{MaxConcurrentReconciles: 4}).
		Complete(r); err != nil {
		return err
	}

	if err := ctrl.NewControllerManagedBy(mgr).
		Named("heartbeat").
		For(&coordinationv1.Lease{}).
		Complete(&leaseReconciler{Client: mgr.GetClient(), heartbeats: r.Heartbeats}); err != nil {
		return err
	}

	nl := &nodeLabeller{Client: mgr.GetClient(), heartbeats: r.Heartbeats, namespace: r.AgentNamespace}
	toNode := handler.TypedEnqueueRequestsFromMapFunc(func(_ context.Context, node string) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: client.ObjectKey{Name: node}}}
	})
	return ctrl.NewControllerManagedBy(mgr).
		Named("node-schedulable").
		For(&corev1.Node{}).
		WatchesRawSource(source.TypedChannel(nodes, toNode)).
		Complete(nl)
}

func (r *Reconciler) bottlesOn(ctx context.Context, node string) []reconcile.Request {
	var list v1.BottleList
	if err := r.List(ctx, &list, client.MatchingFields{nodeNameIndex: node}); err != nil {
		return nil
	}
	out := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return out
}
