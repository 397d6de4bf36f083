package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

// A templated Bottle (spec.templateRef) is a fork of its node's golden of
// the template: it takes a free held slot when there is one (the slot's
// name becomes its machine name), else a clone is forked for it on demand
// under its own machine name, else it waits, saying why. Its own files,
// env and steps then run in that machine as for any Bottle.

// ReasonWaitingForGolden: a templated Bottle waits for its node's golden.
const ReasonWaitingForGolden = "WaitingForGolden"

// goldenWait is how soon a Bottle waiting for its golden looks again.
const goldenWait = 2 * time.Second

// machineOwner says whether m is the Bottle's machine. A fork carries its
// golden's labels, not the Bottle's UID (smolvm has no way to label a
// clone): it is the Bottle's when it is the machine its status names and
// its labels name the golden its status names.
func machineOwner(s *scope, m *smolvm.Machine) ownership {
	t := s.status().Template
	if s.bottle.Spec.TemplateRef == nil || t == nil || m == nil {
		return ownerOf(m, string(s.bottle.UID))
	}
	if m.Labels[v1.LabelNamespace] == s.bottle.Namespace && m.Labels[v1.LabelName] == t.Name &&
		goldenOf(m) == t.GoldenMachine {
		return machineOurs
	}
	return machineForeign
}

// reconcileForkedMachine is reconcileMachine for a templated Bottle.
func (r *BottleReconciler) reconcileForkedMachine(ctx context.Context, s *scope) (bool, ctrl.Result, error) {
	st := s.status()
	if st.Template != nil {
		m, err := r.view.lookup(ctx, s.machineName)
		if err != nil {
			return r.smolvmFailure(s, v1.ConditionMachineReady, "status", err)
		}
		switch machineOwner(s, m) {
		case machineOurs:
			if m.ForkpointHeld {
				// The claim was recorded but its release did not happen
				// (the agent stopped, or smolvm failed): release it now.
				return r.releaseClaimed(ctx, s, m)
			}
			s.machine = m
			st.MachineState = m.State
			return true, ctrl.Result{}, nil
		case machineForeign:
			msg := fmt.Sprintf("machine %q does not look like the fork of %s it was; leaving it alone", s.machineName, st.Template.GoldenMachine)
			s.setCondition(v1.ConditionMachineReady, metav1.ConditionFalse, v1.ReasonNameConflict, msg)
			s.stall(v1.ReasonNameConflict, msg)
			return false, ctrl.Result{}, nil
		}
		// The fork is gone (deleted behind the agent's back): fork again,
		// from the template as it is now, and provision from scratch.
		r.event(s, corev1.EventTypeWarning, v1.ReasonMachineRecreated, "Create",
			"machine %s was gone; forking the Bottle again from its template", s.machineName)
		st.Files, st.ExecResults = nil, nil
		r.unclaim(s)
	}
	return r.fork(ctx, s)
}

// fork gets the Bottle its machine from its node's golden.
func (r *BottleReconciler) fork(ctx context.Context, s *scope) (bool, ctrl.Result, error) {
	st := s.status()
	t := &v1.BottleTemplate{}
	key := types.NamespacedName{Namespace: s.bottle.Namespace, Name: s.bottle.Spec.TemplateRef.Name}
	if err := r.Get(ctx, key, t); err != nil {
		if !apierrors.IsNotFound(err) {
			return false, ctrl.Result{}, err
		}
		return r.waitForGolden(s, fmt.Sprintf("BottleTemplate %s not found", key.Name))
	}
	forks, ok := r.Machines.(Forks)
	if !ok {
		return r.waitForGolden(s, "this agent's smolvm driver cannot fork")
	}
	golden := GoldenMachineName(t)
	if why := goldenNotReady(t, r.NodeName, golden); why != "" {
		return r.waitForGolden(s, why)
	}
	c, pool, err := r.decideFork(ctx, golden, s.bottle.Spec.MachineName != "")
	if err != nil {
		return r.smolvmFailure(s, v1.ConditionMachineReady, "list", err)
	}
	origin := &v1.TemplateOrigin{Name: t.Name, Generation: t.Generation, GoldenMachine: golden}
	for _, step := range t.Spec.Provision {
		origin.Steps = append(origin.Steps, v1.InheritedStep{Name: step.Name, ScriptSHA256: stepDigest(step.Script)})
	}
	switch c.kind {
	case claimWait:
		return r.waitForGolden(s, c.reason)
	case claimSlot:
		s.machineName, origin.HeldSlot = c.slot, true
	}
	st.MachineName, st.Template = s.machineName, origin
	st.Files, st.ExecResults = nil, nil
	if c.kind == claimSlot {
		// The slot is released first and named in the pass's next status
		// write (its Ready, or its first step's start): one write for the
		// Bottle, not two. Until then this agent's claims hold it; an
		// agent that stops in between leaves a released slot no Bottle
		// names, which the resync deletes (slot_sweep.go), and the Bottle
		// takes another. A release that fails is named by the write that
		// reports it, and the next pass (or agent) finishes it.
		return r.release(ctx, s, forks, c.slot, pool.golden)
	}
	// An on-demand fork is named before smolvm makes it: an agent that
	// stops right after the fork finds it named in the Bottle's status and
	// adopts it, rather than leaving a clone under the Bottle's machine
	// name that carries the golden's labels and so looks like no Bottle's.
	msg := fmt.Sprintf("forking machine %s from golden %s", s.machineName, golden)
	if err := r.progress(ctx, s, v1.ReasonProgressing, msg); err != nil {
		return false, ctrl.Result{}, err
	}
	if err := forkFor(ctx, forks, golden, s.machineName, nil); err != nil {
		return r.smolvmFailure(s, v1.ConditionMachineReady, "fork", err)
	}
	r.event(s, corev1.EventTypeNormal, v1.ReasonMachineCreated, "Create", "forked machine %s from golden %s", s.machineName, golden)
	r.forked(s, pool.golden)
	return true, ctrl.Result{}, nil
}

// release hands the held slot the Bottle's status names (and this agent
// holds in its claims) to the Bottle.
func (r *BottleReconciler) release(ctx context.Context, s *scope, forks Forks, slot string, golden *smolvm.Machine) (bool, ctrl.Result, error) {
	err := takeSlot(ctx, forks, slot, nil)
	// Once the Bottle's status names it, the slot is never handed to
	// another Bottle by this agent, whatever the release did.
	r.claims.done(slot, true, time.Now())
	switch {
	case errors.Is(err, errSlotLost):
		// Never handed out again: delete it, and try the next one.
		_ = r.Machines.Delete(ctx, slot)
		r.unclaim(s)
		return false, ctrl.Result{RequeueAfter: immediateRequeue}, nil
	case errors.Is(err, errSlotGone):
		// Not a free slot after all (taken or deleted outside this
		// agent since the list): list again and take the next one, at
		// once rather than after a backoff.
		r.claims.gone(r.view.now())
		r.unclaim(s)
		return false, ctrl.Result{RequeueAfter: immediateRequeue}, nil
	case err != nil:
		// The status keeps naming the slot: the next pass releases it.
		return r.smolvmFailure(s, v1.ConditionMachineReady, "release held slot "+slot+" for", err)
	}
	r.event(s, corev1.EventTypeNormal, v1.ReasonMachineCreated, "Create", "took held slot %s of golden %s", slot, s.status().Template.GoldenMachine)
	r.forked(s, golden)
	return true, ctrl.Result{}, nil
}

// releaseClaimed finishes a claim whose release did not happen: m is the
// slot the Bottle's status names, still held.
func (r *BottleReconciler) releaseClaimed(ctx context.Context, s *scope, m *smolvm.Machine) (bool, ctrl.Result, error) {
	forks, ok := r.Machines.(Forks)
	if !ok {
		return r.waitForGolden(s, "this agent's smolvm driver cannot fork")
	}
	if !r.claims.hold(m.Name) {
		// Being released by another pass of this Bottle right now.
		return false, ctrl.Result{RequeueAfter: immediateRequeue}, nil
	}
	// The slot's record is its golden's (labels, image, resources) under
	// its own name: smolvm registers a clone so. No lookup of the golden.
	return r.release(ctx, s, forks, m.Name, m)
}

// unclaim forgets a claim that came to nothing: the Bottle's machine is
// decided again, under its own name.
func (r *BottleReconciler) unclaim(s *scope) {
	st := s.status()
	st.Template = nil
	s.machineName = v1.MachineNameFor(s.bottle.Namespace, s.bottle.Name, string(s.bottle.UID))
	if s.bottle.Spec.MachineName != "" {
		s.machineName = s.bottle.Spec.MachineName
	}
	st.MachineName = s.machineName
}

// forked records what a fork or a release made: the golden's record
// (labels, image, resources) under the clone's name, running.
func (r *BottleReconciler) forked(s *scope, golden *smolvm.Machine) {
	s.machine = cloneMachine(golden)
	s.machine.Name, s.machine.State, s.machine.PID = s.machineName, smolvm.StateRunning, 0
	s.machine.Forkable, s.machine.ForkpointHeld = false, false
	r.view.saw(s.machineName, s.machine)
	s.status().MachineState = smolvm.StateRunning
}

// decideFork picks how the Bottle gets its machine from golden and takes
// the slot it picks. The machine view's listing serves when it is recent
// (slotListMaxAge) and shows a free slot; any other answer is checked
// against a listing begun now. Bottles claiming at once share the view's
// one listing. named: the Bottle
// names its machine, so it is forked under that name, never given a slot
// (a slot's name is its own).
func (r *BottleReconciler) decideFork(ctx context.Context, golden string, named bool) (claim, goldenPool, error) {
	recorded, err := r.recordedSlots(ctx, golden)
	if err != nil {
		return claim{}, goldenPool{}, err
	}
	decide := func(ms []smolvm.Machine, listedAt time.Time) (claim, goldenPool) {
		pool := viewPool(golden, ms)
		if named {
			pool.free = nil
		}
		return r.claims.decide(pool, listedAt, recorded), pool
	}
	now := r.view.now()
	ms, listedAt, err := r.view.listing(ctx, r.claims.listedAfter(now))
	if err != nil {
		return claim{}, goldenPool{}, err
	}
	if c, pool := decide(ms, listedAt); c.kind == claimSlot || !listedAt.Before(now) {
		return c, pool, nil
	}
	if ms, listedAt, err = r.view.listing(ctx, now); err != nil {
		return claim{}, goldenPool{}, err
	}
	c, pool := decide(ms, listedAt)
	return c, pool, nil
}

// recordedSlots are golden's slots that Bottles of this node name as
// theirs in their status (from the cache, which holds this node's only).
func (r *BottleReconciler) recordedSlots(ctx context.Context, golden string) (map[string]bool, error) {
	var bottles v1.BottleList
	if err := r.List(ctx, &bottles, client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for i := range bottles.Items {
		t := bottles.Items[i].Status.Template
		if t != nil && t.HeldSlot && t.GoldenMachine == golden {
			out[bottles.Items[i].Status.MachineName] = true
		}
	}
	return out, nil
}

// goldenNotReady says why the node's golden of t cannot be forked yet ("":
// it can): its entry in the template's status must say Ready for this very
// golden.
func goldenNotReady(t *v1.BottleTemplate, node, golden string) string {
	for _, n := range t.Status.Nodes {
		if n.NodeName != node || n.GoldenMachine != golden {
			continue
		}
		if n.Phase == v1.PhaseReady {
			return ""
		}
		return fmt.Sprintf("golden machine %s of BottleTemplate %s on node %s is %s: %s", golden, t.Name, node, n.Phase, n.Message)
	}
	return fmt.Sprintf("no golden machine of BottleTemplate %s (generation %d) on node %s yet", t.Name, t.Generation, node)
}

func (r *BottleReconciler) waitForGolden(s *scope, why string) (bool, ctrl.Result, error) {
	s.setCondition(v1.ConditionMachineReady, metav1.ConditionFalse, ReasonWaitingForGolden, why)
	s.wait(ReasonWaitingForGolden, why)
	return false, ctrl.Result{RequeueAfter: goldenWait}, nil
}
