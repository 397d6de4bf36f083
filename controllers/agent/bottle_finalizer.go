package agent

import (
	"context"
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// addFinalizer server-side applies the finalizer under the agent's field
// manager: no optimistic lock, and other finalizers are left alone
// (metadata.finalizers is a set). A Bottle deleted meanwhile is not
// re-created: its spec is required.
func (r *BottleReconciler) addFinalizer(ctx context.Context, b *v1.Bottle) error {
	u := b.ApplyObject()
	u.SetUID(b.UID)
	u.SetFinalizers([]string{v1.Finalizer})
	return r.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(v1.FieldManagerAgent), client.ForceOwnership)
}

// removeFinalizer removes only this agent's finalizer with a JSON patch
// that first tests it is where the cache saw it: no optimistic lock on the
// whole object, and a stale index fails the test instead of removing
// another controller's finalizer.
func (r *BottleReconciler) removeFinalizer(ctx context.Context, b *v1.Bottle) error {
	for i, f := range b.Finalizers {
		if f != v1.Finalizer {
			continue
		}
		path := fmt.Sprintf("/metadata/finalizers/%d", i)
		patch, err := json.Marshal([]map[string]any{
			{"op": "test", "path": path, "value": v1.Finalizer},
			{"op": "remove", "path": path},
		})
		if err != nil {
			return err
		}
		return r.Patch(ctx, b, client.RawPatch(types.JSONPatchType, patch))
	}
	return nil
}
