package agent

import (
	"context"

	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// mustCancelGolden says why a step running in golden must stop ("": it
// runs on): the template went, or its machine changed, so the golden is
// no longer the one to provision.
func mustCancelGolden(golden string, t *v1.BottleTemplate) string {
	switch {
	case t == nil:
		return "the template was deleted"
	case !t.DeletionTimestamp.IsZero():
		return "the template is being deleted"
	case GoldenMachineName(t) != golden:
		return "the template's machine was edited: a new golden is made"
	}
	return ""
}

// goldenSteps are the golden steps running on this node, by template UID,
// with the golden each runs in (inflight, as for Bottles).
type goldenSteps = inflight[*v1.BottleTemplate, string]

// goldenStepWatch feeds template events to steps; it enqueues nothing.
func goldenStepWatch(steps *goldenSteps) handler.TypedEventHandler[client.Object, reconcile.Request] {
	return handler.Funcs{
		UpdateFunc: func(_ context.Context, e event.UpdateEvent, _ workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			if t, ok := e.ObjectNew.(*v1.BottleTemplate); ok {
				steps.observe(t.UID, t)
			}
		},
		DeleteFunc: func(_ context.Context, e event.DeleteEvent, _ workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			steps.gone(e.Object.GetUID())
		},
	}
}
