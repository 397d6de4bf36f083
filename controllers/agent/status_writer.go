package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// records is what this agent knows of each Bottle's status, by UID: the
// status it last computed (known) and the one it last wrote (written).
//
// Only this agent writes a Bottle's status (one agent per node holds the
// node's Lease), so what it computed is the truth even when the cache has
// not caught up with its last write, or when the write failed: a step that
// ran is never run again because the cache lagged (the "expectations" of
// the ReplicaSet controller). A Bottle seen for the first time is read
// uncached once; after that every pass reads the cache.
type records struct {
	mu sync.Mutex
	m  map[types.UID]*record
}

type record struct{ known, written *v1.BottleStatus }

func newRecords() *records { return &records{m: map[types.UID]*record{}} }

func (r *records) get(uid types.UID) (known, written *v1.BottleStatus, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec, ok := r.m[uid]
	if !ok {
		return nil, nil, false
	}
	return rec.known.DeepCopy(), rec.written.DeepCopy(), true
}

func (r *records) remember(uid types.UID, known *v1.BottleStatus, written bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec, ok := r.m[uid]
	if !ok {
		rec = &record{}
		r.m[uid] = rec
	}
	rec.known = known.DeepCopy()
	if written {
		rec.written = known.DeepCopy()
	}
}

func (r *records) forget(uid types.UID) {
	r.mu.Lock()
	delete(r.m, uid)
	r.mu.Unlock()
}

// writeStatus is the one status writer, called at each phase change, when
// a step starts and finishes, and at the end of every pass. It summarises,
// stamps observedGeneration, and applies the status when it differs from
// what this agent last wrote. A step's result is applied without any
// optimistic lock, so whatever else changed on the Bottle meanwhile
// (labels, annotations, spec), it is recorded.
func (r *BottleReconciler) writeStatus(ctx context.Context, s *scope, reconcileErr error) error {
	s.applySummary(summarize(s.summaryInput(reconcileErr)))
	st := s.status()
	st.ObservedGeneration = s.bottle.Generation
	r.records.remember(s.bottle.UID, st, false)
	if s.written != nil && equality.Semantic.DeepEqual(*v1.AgentStatus(s.written), *v1.AgentStatus(st)) {
		return nil
	}
	err := r.applyStatus(ctx, s.bottle, st)
	if err != nil && isTooLarge(err) {
		// The API server refuses the status: keep every result but drop the
		// tails, say so, and never run anything again because of it.
		trimTails(st)
		msg := fmt.Sprintf("the API server refused the Bottle's status as too large (%v); output tails were dropped", err)
		s.stall(v1.ReasonStatusTooLarge, msg)
		s.applySummary(summarize(s.summaryInput(reconcileErr)))
		r.records.remember(s.bottle.UID, st, false)
		err = r.applyStatus(ctx, s.bottle, st)
	}
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("applying status: %w", err)
	}
	r.records.remember(s.bottle.UID, st, true)
	r.phaseEvent(s, s.writtenPhase())
	r.metrics.observe(s, s.written)
	s.written = st.DeepCopy()
	return nil
}

// applyStatus server-side applies the agent's fields of status
// (v1.AgentStatus: everything but the conditions other writers own).
func (r *BottleReconciler) applyStatus(ctx context.Context, b *v1.Bottle, st *v1.BottleStatus) error {
	u, err := b.AgentStatusApplyObject(st)
	if err != nil {
		return err
	}
	return r.Status().Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(v1.FieldManagerAgent), client.ForceOwnership)
}

// isTooLarge recognises both refusals: the API server's request limit (413)
// and etcd's ("etcdserver: request is too large").
func isTooLarge(err error) bool {
	return apierrors.IsRequestEntityTooLargeError(err) || strings.Contains(err.Error(), "request is too large")
}

func trimTails(st *v1.BottleStatus) {
	for i := range st.ExecResults {
		r := &st.ExecResults[i]
		if r.Stdout != "" || r.Stderr != "" {
			r.Stdout, r.Stderr, r.Truncated = "", "", true
		}
	}
}

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
