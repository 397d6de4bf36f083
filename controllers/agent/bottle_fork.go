package agent

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

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

// claims are the held slots this agent is handing out right now: a slot
// stays listed as free until its release is done.
type claims struct {
	mu sync.Mutex
	m  map[string]bool
}

func (c *claims) take(slot string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]bool{}
	}
	if c.m[slot] {
		return false
	}
	c.m[slot] = true
	return true
}

func (c *claims) done(slot string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, slot)
}

func (c *claims) snapshot() map[string]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]bool, len(c.m))
	for k := range c.m {
		out[k] = true
	}
	return out
}

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
		goldenName(s.bottle.Namespace, t.Name, m.Labels[labelTemplateUID], m.Labels[labelTemplateMachine]) == t.GoldenMachine {
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
		st.Template, st.Files, st.ExecResults = nil, nil, nil
		s.machineName = v1.MachineNameFor(s.bottle.Namespace, s.bottle.Name, string(s.bottle.UID))
		if s.bottle.Spec.MachineName != "" {
			s.machineName = s.bottle.Spec.MachineName
		}
		st.MachineName = s.machineName
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
	ms, err := r.listMachines(ctx)
	if err != nil {
		return r.smolvmFailure(s, v1.ConditionMachineReady, "list", err)
	}
	pool := viewPool(golden, ms)
	c := decideClaim(pool, r.claims.snapshot())
	if c.kind == claimSlot && s.bottle.Spec.MachineName != "" {
		// A slot's name is its own: a Bottle that names its machine is
		// forked under that name.
		c = claim{kind: claimFork}
	}
	origin := &v1.TemplateOrigin{Name: t.Name, Generation: t.Generation, GoldenMachine: golden}
	for _, step := range t.Spec.Provision {
		origin.Steps = append(origin.Steps, v1.InheritedStep{Name: step.Name, ScriptSHA256: stepDigest(step.Script)})
	}
	switch c.kind {
	case claimWait:
		return r.waitForGolden(s, c.reason)
	case claimSlot:
		if !r.claims.take(c.slot) {
			return false, ctrl.Result{RequeueAfter: immediateRequeue}, nil
		}
		err := takeSlot(ctx, forks, c.slot, nil)
		r.claims.done(c.slot)
		if errors.Is(err, errSlotLost) {
			// Never handed out again: delete it, and try the next one.
			_ = r.Machines.Delete(ctx, c.slot)
			return false, ctrl.Result{RequeueAfter: immediateRequeue}, nil
		}
		if err != nil {
			return r.smolvmFailure(s, v1.ConditionMachineReady, "release held slot "+c.slot+" for", err)
		}
		s.machineName, origin.HeldSlot = c.slot, true
		r.event(s, corev1.EventTypeNormal, v1.ReasonMachineCreated, "Create", "took held slot %s of golden %s", c.slot, golden)
	case claimFork:
		err := forkFor(ctx, forks, golden, s.machineName, nil)
		if err != nil {
			return r.smolvmFailure(s, v1.ConditionMachineReady, "fork", err)
		}
		r.event(s, corev1.EventTypeNormal, v1.ReasonMachineCreated, "Create", "forked machine %s from golden %s", s.machineName, golden)
	}
	st.MachineName, st.Template = s.machineName, origin
	st.Files, st.ExecResults = nil, nil
	// What the fork made is known: the golden's record (labels, image,
	// resources) under the clone's name, running.
	s.machine = cloneMachine(pool.golden)
	s.machine.Name, s.machine.State, s.machine.PID = s.machineName, smolvm.StateRunning, 0
	s.machine.Forkable, s.machine.ForkpointHeld = false, false
	r.view.saw(s.machineName, s.machine)
	st.MachineState = smolvm.StateRunning
	return true, ctrl.Result{}, nil
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
