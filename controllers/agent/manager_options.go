package agent

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// NodeCacheOptions restricts the manager's cache to one node's Bottles,
// filtered server-side by the spec.nodeName selectable field, so an agent's
// memory does not grow with the Bottles of other nodes.
func NodeCacheOptions(nodeName string) cache.Options {
	return cache.Options{
		ByObject: map[client.Object]cache.ByObject{
			&v1.Bottle{}: {Field: fields.OneTermEqualSelector("spec.nodeName", nodeName)},
		},
	}
}

// UncachedObjects are never cached: Secrets and ConfigMaps are read on
// demand through the API reader, so no cluster-wide informer holds them.
func UncachedObjects() []client.Object {
	return []client.Object{&corev1.Secret{}, &corev1.ConfigMap{}}
}

// ManagerOptions are the manager options every agent needs, in production
// (cmd/manager) and in tests alike: the scheme, the cache scoped to this
// node's Bottles (NodeCacheOptions) and Secrets and ConfigMaps kept out of it
// (UncachedObjects). Callers add addresses, logger and the like.
func ManagerOptions(scheme *runtime.Scheme, nodeName string) ctrl.Options {
	return ctrl.Options{
		Scheme: scheme,
		Cache:  NodeCacheOptions(nodeName),
		Client: client.Options{Cache: &client.CacheOptions{DisableFor: UncachedObjects()}},
	}
}
