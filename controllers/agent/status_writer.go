package agent

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

// expectations are what this agent knows of each Bottle's status, by UID: the
// status it last computed (known) and the one it last wrote (written).
//
// Only this agent writes a Bottle's status (one agent per node holds the
// node's Lease), so what it computed is the truth even when the cache has
// not caught up with its last write, or when the write failed: a step that
// ran is never run again because the cache lagged (the expectations of
// the ReplicaSet controller). A Bottle seen for the first time is read
// uncached once; after that every pass reads the cache.
type expectations struct {
	mu sync.Mutex
	m  map[types.UID]*expectation
}

type expectation struct{ known, written *v1.BottleStatus }

func newExpectations() *expectations { return &expectations{m: map[types.UID]*expectation{}} }

func (r *expectations) get(uid types.UID) (known, written *v1.BottleStatus, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec, ok := r.m[uid]
	if !ok {
		return nil, nil, false
	}
	return rec.known.DeepCopy(), rec.written.DeepCopy(), true
}

func (r *expectations) remember(uid types.UID, known *v1.BottleStatus, written bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec, ok := r.m[uid]
	if !ok {
		rec = &expectation{}
		r.m[uid] = rec
	}
	rec.known = known.DeepCopy()
	if written {
		rec.written = known.DeepCopy()
	}
}

// machines are the machines the known statuses name.
func (r *expectations) machines() map[string]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]bool, len(r.m))
	for _, rec := range r.m {
		if rec.known != nil && rec.known.MachineName != "" {
			out[rec.known.MachineName] = true
		}
	}
	return out
}

func (r *expectations) forget(uid types.UID) {
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
	r.expectations.remember(s.bottle.UID, st, false)
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
		r.expectations.remember(s.bottle.UID, st, false)
		err = r.applyStatus(ctx, s.bottle, st)
	}
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("applying status: %w", err)
	}
	r.expectations.remember(s.bottle.UID, st, true)
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

// toValidUTF8 makes guest text safe for status: invalid bytes become U+FFFD
// (the API server rejects strings that are not UTF-8), and so do DEL, the C1
// controls and U+FFFE/U+FFFF. JSON leaves those unescaped and the API
// server's server-side apply path reads the body as YAML, which refuses them
// ("control characters are not allowed"): one such byte in a step's output
// would otherwise make every status write fail. C0 controls are kept; JSON
// escapes them.
func toValidUTF8(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if strings.IndexFunc(s, yamlUnsafe) < 0 {
		return s
	}
	return strings.Map(func(r rune) rune {
		if yamlUnsafe(r) {
			return '\uFFFD'
		}
		return r
	}, s)
}

func yamlUnsafe(r rune) bool {
	return (r >= 0x7f && r <= 0x9f) || r == 0xfffe || r == 0xffff
}

// tailForStatus is the end of s, made safe for status, that fits budget
// bytes once JSON-escaped, starting at a line boundary when one lies within
// it (smolvm.TailWithin).
func tailForStatus(s string, budget int) string {
	return smolvm.TailWithin(toValidUTF8(s), budget)
}

// summaryInput collects the pass's findings.
func (s *scope) summaryInput(reconcileErr error) summaryInput {
	st := s.status()
	isTrue := func(typ string) bool { return meta.IsStatusConditionTrue(st.Conditions, typ) }
	in := summaryInput{
		Deleting: !s.bottle.DeletionTimestamp.IsZero(),
		RunState: s.spec().RunState, MachineName: st.MachineName, MachineState: st.MachineState,
		MachineReady: isTrue(v1.ConditionMachineReady), FilesReady: isTrue(v1.ConditionFilesReady),
		Provisioned: isTrue(v1.ConditionProvisioned),
		FilesWaitForSteps: meta.IsStatusConditionFalse(st.Conditions, v1.ConditionFilesReady) &&
			meta.FindStatusCondition(st.Conditions, v1.ConditionFilesReady).Reason == v1.ReasonWaitingForOwner,
		Stalled: s.stalled, Waiting: s.waiting, NotApplied: s.notApplied, Pending: s.pending,
		Unreserved: s.unreserved, IdleStopped: s.idleStopped,
	}
	if reconcileErr != nil {
		in.Err = reconcileErr.Error()
	}
	return in
}

// applySummary writes the summary into status.
func (s *scope) applySummary(sum summary) {
	st := s.status()
	st.Phase = sum.Phase
	ready := metav1.ConditionFalse
	if sum.ReadyTrue {
		ready = metav1.ConditionTrue
	}
	s.setCondition(v1.ConditionReady, ready, sum.Ready.Reason, sum.Ready.Message)
	for typ, v := range map[string]verdict{v1.ConditionReconciling: sum.Reconciling, v1.ConditionStalled: sum.Stalled} {
		if v.set() {
			s.setCondition(typ, metav1.ConditionTrue, v.Reason, v.Message)
		} else {
			meta.RemoveStatusCondition(&st.Conditions, typ)
		}
	}
}

// phaseEvent records the transitions a reader of `kubectl events` needs
// beside the action events (see phaseEventWanted).
func (r *BottleReconciler) phaseEvent(s *scope, from v1.Phase) {
	to := s.status().Phase
	if !phaseEventWanted(from, to) {
		return
	}
	if from == "" {
		from = "None"
	}
	ready := meta.FindStatusCondition(s.status().Conditions, v1.ConditionReady)
	msg := ""
	if ready != nil {
		msg = ready.Message
	}
	eventType := "Normal"
	if to == v1.PhaseFailed {
		eventType = "Warning"
	}
	r.event(s, eventType, "Phase"+string(to), "Reconcile", "phase %s -> %s: %s", from, to, msg)
}

// progress writes status now, saying what the pass is about to do: a new
// phase or step is visible while it runs, not when the pass ends.
func (r *BottleReconciler) progress(ctx context.Context, s *scope, reason, message string) error {
	s.wait(reason, message)
	s.pending = true
	defer func() { s.pending = false }()
	return r.writeStatus(ctx, s, nil)
}

// retryProgress is progress before a smolvm call, except when the call
// failed last time and this pass retries it: the status keeps saying so
// (its message ends "retrying") until the call succeeds. Announcing the
// call again would flap the status on every retry, and each write wakes the
// Bottle at once, past the workqueue's backoff.
func (r *BottleReconciler) retryProgress(ctx context.Context, s *scope, cond, reason, message string) error {
	c := meta.FindStatusCondition(s.before.Conditions, cond)
	if c != nil && c.Status == metav1.ConditionFalse && (c.Reason == v1.ReasonSmolvmError || c.Reason == v1.ReasonSmolvmTimeout) {
		return nil
	}
	return r.progress(ctx, s, reason, message)
}
