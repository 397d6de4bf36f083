package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

// GoldenMachines is the part of the smolvm driver a template's golden
// uses: a machine's life and the fork verbs. The real implementation is
// *smolvm.CLI.
type GoldenMachines interface {
	Machines
	Forks
}

var _ GoldenMachines = (*smolvm.CLI)(nil)

// Labels of a golden machine (its held slots inherit them: smolvm copies a
// golden's record into its clones). They are not a Bottle's LabelUID, so
// no Bottle ever takes a golden for its own machine.
const (
	labelTemplateUID = "agents.bot-bottle.dev/template-uid"
	// labelTemplateMachine is MachineDigest of the spec the golden was
	// made from: with the template's UID it names the golden.
	labelTemplateMachine = "agents.bot-bottle.dev/template-machine"
	// labelTemplateGeneration is the template's generation when the
	// golden was made (for people; nothing is keyed on it).
	labelTemplateGeneration = "agents.bot-bottle.dev/template-generation"
)

// TemplateReconciler keeps, on this node, the golden machine of each
// BottleTemplate whose pool.nodeSelector matches the node (or, under
// policy OnDemand, that a Bottle of the node names): it creates the
// golden, starts it forkable, runs the template's steps with a Bottle's
// ledger (planSteps, finishStep), puts it at its forkpoint and keeps
// pool.heldSlots held slots free. It writes only its node's entry of the
// template's status (server-side apply under FieldManagerAgentOn(node)).
// Each golden step's full output is kept as a Bottle's (golden_steplog.go).
type TemplateReconciler struct {
	client.Client
	// APIReader reads this node's Node (for its labels).
	APIReader client.Reader
	Machines  GoldenMachines
	NodeName  string
	ExecMode  smolvm.ExecMode
	// ResyncPeriod is how often a template is looked at again (slots
	// claimed meanwhile are replaced then); 0 means a minute.
	ResyncPeriod time.Duration
	// Lease gates work on the node's machines as for Bottles: no pass
	// starts, and no step, unless this agent holds the node's Lease.
	Lease LeaseGate
	// ShutdownGrace is how long a pass running a golden's step when the
	// agent is told to stop may finish it (drainContext), as for Bottles.
	ShutdownGrace time.Duration
	// TempDir is where file contents are materialised before `machine cp`.
	TempDir string
	// StepLogs keeps each golden step's full output on this node; nil
	// keeps none.
	StepLogs StepLogs

	// entries are the node entries this agent last applied, by template
	// name (dropped when the template is gone):
	// the cache may still hold an older one (a step's start without its
	// result), which must never be taken for the truth.
	mu      sync.Mutex
	entries map[types.NamespacedName]appliedEntry
	// running are the golden steps running now, cancelled by a template
	// edit or delete.
	running *goldenSteps
	// logged is the golden each template last had here, whose step logs
	// go when the template does (its UID is not known then).
	logged map[types.NamespacedName]loggedGolden
}

type loggedGolden struct {
	uid     types.UID
	machine string
}

// +kubebuilder:rbac:groups="",resources=nodes,verbs=get

// SetupWithManager registers the reconciler.
func (r *TemplateReconciler) SetupWithManager(mgr ctrl.Manager, name string) error {
	if r.ResyncPeriod == 0 {
		r.ResyncPeriod = time.Minute
	}
	r.entries = map[types.NamespacedName]appliedEntry{}
	r.logged = map[types.NamespacedName]loggedGolden{}
	r.running = newInflight(mustCancelGolden)
	return ctrl.NewControllerManagedBy(mgr).Named(name).For(&v1.BottleTemplate{}).
		// A Bottle of this node that took a slot, or went, wakes its
		// template: the slot is replaced, an old golden retired, now
		// rather than at the next resync.
		Watches(&v1.Bottle{}, handler.EnqueueRequestsFromMapFunc(templateOf), builder.WithPredicates(r.wakesTemplate())).
		Watches(&v1.BottleTemplate{}, goldenStepWatch(r.running)).
		Complete(r)
}

// wakesTemplate lets through the Bottle events that change what the node
// must keep of the Bottle's template: a Bottle that took its machine (a
// slot to replace), one that is going or gone (a golden to retire), and a
// new Bottle whose template has no golden here yet (policy OnDemand builds
// one for it). Any other change of a Bottle (its finalizer, Scheduled, its
// steps) would only make the template list the node's machines again, on
// the Bottle's way to Ready.
func (r *TemplateReconciler) wakesTemplate() predicate.Funcs {
	return predicate.Funcs{
		CreateFunc: func(e event.CreateEvent) bool {
			b, ok := e.Object.(*v1.Bottle)
			return ok && b.Spec.TemplateRef != nil && !r.keepsCurrentGolden(b)
		},
		UpdateFunc: func(e event.UpdateEvent) bool {
			old, okOld := e.ObjectOld.(*v1.Bottle)
			b, ok := e.ObjectNew.(*v1.Bottle)
			if !ok || !okOld || b.Spec.TemplateRef == nil {
				return false
			}
			return old.Status.MachineName != b.Status.MachineName ||
				!equality.Semantic.DeepEqual(old.Status.Template, b.Status.Template) ||
				old.DeletionTimestamp.IsZero() != b.DeletionTimestamp.IsZero()
		},
		DeleteFunc:  func(event.DeleteEvent) bool { return true },
		GenericFunc: func(event.GenericEvent) bool { return true },
	}
}

// keepsCurrentGolden says whether b's template, as cached, has this node's
// entry for its current golden.
func (r *TemplateReconciler) keepsCurrentGolden(b *v1.Bottle) bool {
	t := &v1.BottleTemplate{}
	if err := r.Get(context.Background(), types.NamespacedName{Namespace: b.Namespace, Name: b.Spec.TemplateRef.Name}, t); err != nil {
		return false
	}
	golden := GoldenMachineName(t)
	for _, n := range t.Status.Nodes {
		if n.NodeName == r.NodeName && n.GoldenMachine == golden {
			return true
		}
	}
	return false
}

// templateOf maps a templated Bottle to its template.
func templateOf(_ context.Context, o client.Object) []reconcile.Request {
	b, ok := o.(*v1.Bottle)
	if !ok || b.Spec.TemplateRef == nil {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: b.Namespace, Name: b.Spec.TemplateRef.Name}}}
}

// GoldenMachineName is the golden of a template's machine: one per
// MachineSpec, so an edit of the machine (image, resources, network, user,
// env, files, prompt, steps) makes a new golden and the old one's clones
// keep theirs, while an edit of the pool alone (held slots, selector,
// policy) keeps the golden and its steps' results.
func GoldenMachineName(t *v1.BottleTemplate) string {
	return goldenName(t.Namespace, t.Name, string(t.UID), MachineDigest(t.Spec.MachineSpec))
}

func goldenName(namespace, name, uid, machine string) string {
	return v1.MachineNameFor(namespace, name+"-g", uid+"/"+machine)
}

// goldenOf is the golden a machine's labels name: its own name for a
// golden, its golden's for a clone (smolvm copies a golden's record into
// its clones); "" for a machine without a golden's labels.
func goldenOf(m *smolvm.Machine) string {
	uid, mach := m.Labels[labelTemplateUID], m.Labels[labelTemplateMachine]
	if uid == "" || mach == "" {
		return ""
	}
	return goldenName(m.Labels[v1.LabelNamespace], m.Labels[v1.LabelName], uid, mach)
}

// MachineDigest identifies a template's machine: 16 hex digits of the
// SHA-256 of its MachineSpec as JSON (field order is the struct's, so the
// same spec always gives the same digest).
func MachineDigest(spec v1.MachineSpec) string {
	raw, _ := json.Marshal(spec) // a MachineSpec always marshals
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:8])
}

// Reconcile moves this node's golden of one template towards its spec, and
// deletes the goldens it no longer needs once nothing forked from them is
// left.
func (r *TemplateReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	if err := awaitLease(ctx, r.Lease); err != nil {
		return ctrl.Result{}, err
	}
	stop := ctx
	ctx, cancelDrain := drainContext(ctx, r.ShutdownGrace, deposedOf(r.Lease))
	defer cancelDrain()
	ls := newPassListing(r.Machines.List)
	t := &v1.BottleTemplate{}
	if err := r.Get(ctx, req.NamespacedName, t); err != nil {
		if !apierrors.IsNotFound(err) {
			return ctrl.Result{}, err
		}
		// Gone: its goldens go with their last clone, their logs now.
		r.forgetGoldenLogs(req.NamespacedName)
		r.mu.Lock()
		delete(r.entries, req.NamespacedName) // nothing is left to apply it to
		r.mu.Unlock()
		kept, err := r.retireOld(ctx, ls, req.Namespace, req.Name, "")
		if err != nil || len(kept) > 0 {
			return ctrl.Result{RequeueAfter: r.ResyncPeriod}, err
		}
		return ctrl.Result{}, nil
	}
	keep, err := r.keepsGolden(ctx, ls, t)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !keep || !t.DeletionTimestamp.IsZero() {
		kept, err := r.retireOld(ctx, ls, t.Namespace, t.Name, "")
		if err != nil {
			return ctrl.Result{}, err
		}
		return ctrl.Result{RequeueAfter: r.ResyncPeriod}, r.leave(ctx, t, kept)
	}
	g := &golden{t: t, name: GoldenMachineName(t), stop: stop, ls: ls}
	if g.entry, err = r.entryOf(ctx, t, g.name); err != nil {
		return ctrl.Result{}, err
	}
	r.mu.Lock()
	r.logged[req.NamespacedName] = loggedGolden{uid: t.UID, machine: g.name}
	r.mu.Unlock()
	g.written = g.entry.DeepCopy()
	res, err := r.reconcileGolden(ctx, g)
	if err == nil {
		var kept []v1.RetiredGolden
		if kept, err = r.retireOld(ctx, ls, t.Namespace, t.Name, g.name); err == nil {
			g.entry.RetiredGoldens = kept
		}
	}
	if werr := r.writeEntry(ctx, g); werr != nil && err == nil {
		err = werr
	}
	log.FromContext(ctx).V(1).Info("golden reconciled", "golden", g.name, "phase", g.entry.Phase,
		"freeSlots", g.entry.FreeSlots, "retired", len(g.entry.RetiredGoldens))
	if err == nil && res.IsZero() {
		res.RequeueAfter = r.ResyncPeriod
	}
	return res, err
}

// golden is one pass over a template's golden on this node.
type golden struct {
	t    *v1.BottleTemplate
	name string
	// stop is the pass's context as controller-runtime gave it: once it
	// ends the agent is stopping, and no further step starts.
	stop    context.Context
	entry   *v1.TemplateNodeStatus
	written *v1.TemplateNodeStatus
	// ls is the pass's one `machine ls`.
	ls *passListing
}

func (g *golden) set(phase v1.Phase, reason, format string, args ...any) {
	g.entry.Phase, g.entry.Reason, g.entry.Message = phase, reason, fmt.Sprintf(format, args...)
}

// keepsGolden says whether this node keeps a golden of t: its
// pool.nodeSelector matches the node's labels (ahead of any Bottle), or,
// under policy OnDemand, a Bottle of this node names t, or this node
// already has t's current golden (it is kept until t changes or goes).
func (r *TemplateReconciler) keepsGolden(ctx context.Context, ls *passListing, t *v1.BottleTemplate) (bool, error) {
	selected, err := r.selects(ctx, t)
	if err != nil || selected || t.Spec.Pool.Policy == v1.PoolSelected {
		return selected, err
	}
	var bottles v1.BottleList
	if err := r.List(ctx, &bottles, client.InNamespace(t.Namespace)); err != nil {
		return false, err
	}
	for _, b := range bottles.Items {
		if b.Spec.TemplateRef != nil && b.Spec.TemplateRef.Name == t.Name && b.Spec.NodeName == r.NodeName {
			return true, nil
		}
	}
	m, err := machineIn(ctx, ls, GoldenMachineName(t))
	return m != nil, err
}

// selects says whether t's pool.nodeSelector matches this node.
func (r *TemplateReconciler) selects(ctx context.Context, t *v1.BottleTemplate) (bool, error) {
	if len(t.Spec.Pool.NodeSelector) == 0 {
		return false, nil
	}
	node := &corev1.Node{}
	if err := r.APIReader.Get(ctx, types.NamespacedName{Name: r.NodeName}, node); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, err
	}
	return labels.SelectorFromSet(t.Spec.Pool.NodeSelector).Matches(labels.Set(node.Labels)), nil
}

// appliedEntry is the node entry this agent last applied to a template,
// and which template of that name it was.
type appliedEntry struct {
	uid   types.UID
	entry *v1.TemplateNodeStatus
}

// of is the entry if it was applied to t itself (not to an earlier
// template of the same name).
func (a appliedEntry) of(t *v1.BottleTemplate) *v1.TemplateNodeStatus {
	if a.entry == nil || a.uid != t.UID {
		return nil
	}
	return a.entry
}

// entryOf is this node's entry of t's status, for the golden named golden:
// the one this agent last applied, else (first sight by this process) the
// API server's, read uncached; a golden of another generation starts a
// new entry (its own ledger).
func (r *TemplateReconciler) entryOf(ctx context.Context, t *v1.BottleTemplate, golden string) (*v1.TemplateNodeStatus, error) {
	r.mu.Lock()
	known := r.entries[client.ObjectKeyFromObject(t)].of(t)
	r.mu.Unlock()
	if known == nil {
		fresh := &v1.BottleTemplate{}
		if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(t), fresh); err != nil {
			return nil, client.IgnoreNotFound(err)
		}
		for _, n := range fresh.Status.Nodes {
			if n.NodeName == r.NodeName {
				known = n.DeepCopy()
			}
		}
	}
	if known != nil && known.GoldenMachine != golden {
		// A new golden, a new ledger: the old one's logs could never be
		// asked for again.
		r.removeGoldenLogs(t.UID, known.GoldenMachine)
	}
	if known != nil && known.GoldenMachine == golden {
		// The same golden serves every generation of the same machine
		// (a pool edit): the entry says it is current.
		e := known.DeepCopy()
		e.TemplateGeneration = t.Generation
		return e, nil
	}
	return &v1.TemplateNodeStatus{NodeName: r.NodeName, GoldenMachine: golden, TemplateGeneration: t.Generation,
		Phase: v1.PhasePending}, nil
}

// leave says that this node keeps no golden of t any more: its entry goes
// once no golden of t is left here; until then it lists the goldens kept
// for their clones, at generation 0, which counts for no generation (no
// Bottle is placed or forked here for it).
func (r *TemplateReconciler) leave(ctx context.Context, t *v1.BottleTemplate, kept []v1.RetiredGolden) error {
	had := false
	for _, n := range t.Status.Nodes {
		if n.NodeName == r.NodeName {
			had = true
			r.removeGoldenLogs(t.UID, n.GoldenMachine)
		}
	}
	r.forgetGoldenLogs(client.ObjectKeyFromObject(t))
	r.mu.Lock()
	known := r.entries[client.ObjectKeyFromObject(t)].of(t) != nil
	r.mu.Unlock()
	if !had && !known && len(kept) == 0 {
		return nil
	}
	var entry *v1.TemplateNodeStatus
	if len(kept) > 0 {
		entry = &v1.TemplateNodeStatus{NodeName: r.NodeName, Phase: v1.PhaseDeleting, Reason: v1.ReasonMachineDeleted,
			Message:        fmt.Sprintf("this node keeps no golden of the template; %d earlier golden(s) kept for their clones", len(kept)),
			RetiredGoldens: kept}
	}
	u, err := t.NodeStatusApplyObject(entry)
	if err != nil {
		return err
	}
	if err := r.Status().Apply(ctx, client.ApplyConfigurationFromUnstructured(u),
		client.FieldOwner(v1.FieldManagerAgentOn(r.NodeName)), client.ForceOwnership); err != nil {
		return client.IgnoreNotFound(err)
	}
	r.mu.Lock()
	if entry == nil {
		delete(r.entries, client.ObjectKeyFromObject(t))
	} else {
		r.entries[client.ObjectKeyFromObject(t)] = appliedEntry{uid: t.UID, entry: entry}
	}
	r.mu.Unlock()
	return nil
}

// writeEntry applies this node's entry when it changed.
func (r *TemplateReconciler) writeEntry(ctx context.Context, g *golden) error {
	if equality.Semantic.DeepEqual(g.entry, g.written) {
		return nil
	}
	u, err := g.t.NodeStatusApplyObject(g.entry)
	if err != nil {
		return err
	}
	if err := r.Status().Apply(ctx, client.ApplyConfigurationFromUnstructured(u),
		client.FieldOwner(v1.FieldManagerAgentOn(r.NodeName)), client.ForceOwnership); err != nil {
		return err
	}
	g.written = g.entry.DeepCopy()
	r.mu.Lock()
	r.entries[client.ObjectKeyFromObject(g.t)] = appliedEntry{uid: g.t.UID, entry: g.entry.DeepCopy()}
	r.mu.Unlock()
	return nil
}

func (r *TemplateReconciler) reconcileGolden(ctx context.Context, g *golden) (ctrl.Result, error) {
	m, err := machineIn(ctx, g.ls, g.name)
	if err != nil {
		return r.smolvmFailure(g, "list", err)
	}
	if m == nil {
		g.set(v1.PhaseCreating, v1.ReasonProgressing, "creating golden machine %s", g.name)
		if err := r.writeEntry(ctx, g); err != nil {
			return ctrl.Result{}, err
		}
		err := r.Machines.Create(ctx, r.machineSpec(g))
		g.ls.changed()
		if err != nil && !smolvm.IsAlreadyExists(err) {
			return r.smolvmFailure(g, "create", err)
		}
		m = &smolvm.Machine{Name: g.name, State: smolvm.StateCreated}
	}
	switch {
	case m.State == smolvm.StateFrozen:
		// Forked before: its steps ran, and a frozen guest runs nothing.
	case m.State == smolvm.StateRunning && !m.Forkable:
		g.set(v1.PhaseFailed, v1.ReasonSmolvmError,
			"golden machine %s runs but was not started forkable (someone started it by hand?): stop it and the agent starts it again", g.name)
		return ctrl.Result{}, nil
	case m.State != smolvm.StateRunning:
		g.set(v1.PhaseStarting, v1.ReasonMachineStarting, "starting golden machine %s forkable", g.name)
		if err := r.writeEntry(ctx, g); err != nil {
			return ctrl.Result{}, err
		}
		err := r.Machines.StartForkable(ctx, g.name)
		g.ls.changed()
		if err != nil {
			return r.smolvmFailure(g, "start", err)
		}
		fallthrough
	default:
		if done, res, err := r.provision(ctx, g); !done {
			return res, err
		}
		// Always, even with no held slots wanted now: the first fork
		// freezes the golden for good, and a slot of a golden frozen
		// without a forkpoint can never be released.
		if err := markForkpoint(ctx, r.Machines, g.name); err != nil {
			return r.smolvmFailure(g, "mark the forkpoint of", err)
		}
	}
	return r.keepSlots(ctx, g)
}

// machineIn is the named machine of the pass's listing (nil: none).
func machineIn(ctx context.Context, ls *passListing, name string) (*smolvm.Machine, error) {
	ms, err := ls.get(ctx)
	if err != nil {
		return nil, err
	}
	return viewPool(name, ms).golden, nil
}

func (r *TemplateReconciler) machineSpec(g *golden) smolvm.MachineSpec {
	return createRequest(g.name, &g.t.Spec.MachineSpec, map[string]string{
		labelTemplateUID:        string(g.t.UID),
		labelTemplateMachine:    MachineDigest(g.t.Spec.MachineSpec),
		labelTemplateGeneration: strconv.FormatInt(g.t.Generation, 10),
		v1.LabelNamespace:       g.t.Namespace,
		v1.LabelName:            g.t.Name,
	})
}

// provision lands the template's files and runs its steps in the golden
// with a Bottle's ledger: planSteps decides, finishStep records, each start
// and result is applied before the next step.
func (r *TemplateReconciler) provision(ctx context.Context, g *golden) (bool, ctrl.Result, error) {
	execUser := g.t.Spec.ExecUser
	if execUser == "" {
		execUser = v1.DefaultExecUser
	}
	steps := g.t.Spec.Provision
	// A retry is for a golden still provisioning or failed: a frozen one
	// (forked) runs nothing, and is made again by editing the template.
	retry := pendingRetry(g.t.Annotations, g.entry.LastHandledRetry)
	for {
		waits, ok, res, err := r.goldenFiles(ctx, g, execUser)
		if !ok {
			return false, res, err
		}
		plan := planSteps(execUser, steps, g.entry.ExecResults, retry)
		if plan.RetryHandled {
			g.entry.LastHandledRetry, retry = retry.Token, retryRequest{}
		}
		g.entry.ExecResults = g.entry.ExecResults[:plan.Keep]
		switch plan.Action {
		case stepsDone:
			if len(waits) > 0 {
				v, _ := ownerWaitVerdict(waits, false)
				g.set(v1.PhaseFailed, v.Reason, "%s", v.Message)
				return false, ctrl.Result{}, nil
			}
			return true, ctrl.Result{}, nil
		case stepBlocked:
			res := g.entry.ExecResults[plan.Index]
			g.set(v1.PhaseFailed, v1.ReasonStepFailed, "step %q (%d/%d) %s; to run it again, set the template's "+v1.AnnotationRetry+" annotation to a new value, or edit the step",
				res.Name, plan.Index+1, len(steps), stepOutcomeText(res))
			return false, ctrl.Result{}, nil
		}
		if !leaseHeld(r.Lease) || stopping(g.stop) {
			// Start no step without the Lease, nor once the agent is
			// stopping: the next pass (or agent) goes on from here.
			return false, ctrl.Result{RequeueAfter: immediateRequeue}, nil
		}
		step := steps[plan.Index]
		env, err := r.env(ctx, g)
		if err != nil {
			g.set(v1.PhaseFailed, v1.ReasonSourceNotFound, "%v", err)
			return false, ctrl.Result{RequeueAfter: r.ResyncPeriod}, nil
		}
		user := stepUser(execUser, step)
		started := metav1.NowMicro()
		result := v1.ExecResult{Name: step.Name, User: user, ScriptSHA256: stepDigest(step.Script),
			TimeoutSeconds: step.TimeoutSeconds, StartedAt: &started}
		g.entry.ExecResults = append(g.entry.ExecResults, result)
		g.set(v1.PhaseProvisioning, v1.ReasonProvisioning, "running step %q (%d/%d) as %s", step.Name, plan.Index+1, len(steps), user)
		if err := r.writeEntry(ctx, g); err != nil {
			g.entry.ExecResults = g.entry.ExecResults[:plan.Index]
			return false, ctrl.Result{}, err
		}
		stepCtx, release := r.running.start(ctx, g.t.UID, g.name)
		logOut, endLog := r.goldenStepLog(g, step.Name)
		// An edit may have landed between this pass's read and the
		// registration; later ones reach it through the watch.
		latest := &v1.BottleTemplate{}
		if err := r.Get(ctx, client.ObjectKeyFromObject(g.t), latest); err == nil {
			r.running.observe(g.t.UID, latest)
		} else if apierrors.IsNotFound(err) {
			r.running.gone(g.t.UID)
		}
		out, execErr := r.Machines.Exec(stepCtx, smolvm.ExecRequest{
			Machine: g.name, User: user, Script: step.Script, Env: env,
			Timeout: time.Duration(step.TimeoutSeconds) * time.Second, Mode: r.ExecMode, OutputLimit: OutputTail,
			Output: logOut,
		})
		why := cancelReason(stepCtx)
		release()
		endLog()
		if ctx.Err() != nil {
			return false, ctrl.Result{}, ctx.Err()
		}
		outcome := classifyStep(out.ExitCode, execErr, why)
		if outcome == outcomeError {
			g.entry.ExecResults = g.entry.ExecResults[:plan.Index]
			return r.smolvmFailureStep(g, step.Name, execErr)
		}
		finishStep(&g.entry.ExecResults[plan.Index], out, outcome, why, execErr, metav1.NowMicro())
		if why != "" {
			// The golden is no longer wanted: record the cancellation;
			// the next pass goes to the new golden, or retires this one.
			g.set(v1.PhaseFailed, v1.ReasonStepFailed, "step %q %s", step.Name, cancelledError(why))
			return false, ctrl.Result{RequeueAfter: immediateRequeue}, nil
		}
	}
}

// env resolves the template's env (its namespace's ConfigMaps and Secrets).
func (r *TemplateReconciler) env(ctx context.Context, g *golden) ([]smolvm.EnvVar, error) {
	if len(g.t.Spec.Env) == 0 {
		return nil, nil
	}
	return sourcesIn(r.APIReader, nil, nil, g.t.Namespace).env(ctx, g.t.Spec.Env)
}

// keepSlots forks held slots until pool.heldSlots are free, and counts
// them in the entry. The golden is Ready once its steps succeeded.
func (r *TemplateReconciler) keepSlots(ctx context.Context, g *golden) (ctrl.Result, error) {
	ms, err := g.ls.get(ctx)
	if err != nil {
		return r.smolvmFailure(g, "list", err)
	}
	want := int(g.t.Spec.Pool.HeldSlots)
	if names := decideSlots(viewPool(g.name, ms), want); len(names) > 0 {
		_, err = fillSlots(ctx, r.Machines, g.name, names)
		g.ls.changed()
		if err != nil {
			return r.smolvmFailure(g, "fork a held slot", err)
		}
		ms, err = g.ls.get(ctx)
		if err != nil {
			return r.smolvmFailure(g, "list", err)
		}
	}
	p := viewPool(g.name, ms)
	g.entry.FreeSlots = int32(len(p.free))
	g.entry.HeldSlots = int32(len(p.free) + len(p.taken))
	g.entry.Clones = int32(len(p.taken) + forkedOnDemand(g.name, p.golden, ms))
	g.set(v1.PhaseReady, v1.ReasonProvisioned, "golden machine %s is provisioned (%d step(s)); %d of %d held slot(s) free",
		g.name, len(g.t.Spec.Provision), len(p.free), want)
	return ctrl.Result{}, nil
}

// smolvmFailure records a failed smolvm call; the pass is retried with the
// workqueue's backoff.
func (r *TemplateReconciler) smolvmFailure(g *golden, what string, err error) (ctrl.Result, error) {
	g.set(g.entry.Phase, v1.ReasonSmolvmError, "%s golden machine %s: %v; retrying", what, g.name, err)
	log.Log.WithName("template").Info("smolvm call failed", "template", g.t.Namespace+"/"+g.t.Name, "golden", g.name, "what", what, "error", err.Error())
	return ctrl.Result{RequeueAfter: time.Second}, nil
}

func (r *TemplateReconciler) smolvmFailureStep(g *golden, step string, err error) (bool, ctrl.Result, error) {
	res, ferr := r.smolvmFailure(g, "exec step "+step+" in", err)
	return false, res, ferr
}

// retireOld deletes this node's goldens of the template namespace/name but
// current (a golden of an earlier generation, of a template that is gone,
// or of a node the template no longer selects) once retirable says nothing
// forked from them is left: its free slots go with it (delete --cascade).
// It returns the ones kept for their clones. Goldens and their clones are
// told apart by name: a clone carries its golden's labels, and the
// golden's name follows from them.
func (r *TemplateReconciler) retireOld(ctx context.Context, ls *passListing, namespace, name, current string) ([]v1.RetiredGolden, error) {
	ms, err := ls.get(ctx)
	if err != nil {
		return nil, err
	}
	type old struct {
		gen    string
		clones int // machines forked from it that are not its slots
	}
	goldens := map[string]*old{}
	var forked []smolvm.Machine
	for _, m := range ms {
		g := goldenOf(&m)
		if g == "" || m.Labels[v1.LabelNamespace] != namespace || m.Labels[v1.LabelName] != name {
			continue
		}
		if m.Name == g {
			if g != current {
				goldens[g] = &old{gen: m.Labels[labelTemplateGeneration]}
			}
			continue
		}
		forked = append(forked, m)
	}
	for _, m := range forked {
		g := goldenOf(&m)
		if o := goldens[g]; o != nil {
			if _, slot := slotIndex(g, m.Name); !slot {
				o.clones++
			}
		}
	}
	var kept []v1.RetiredGolden
	for g, o := range goldens {
		p := viewPool(g, ms)
		if retirable(p, o.clones) {
			ls.changed()
			if err := retireGolden(ctx, r.Machines, g); err != nil {
				return nil, err
			}
			continue
		}
		gen, _ := strconv.ParseInt(o.gen, 10, 64)
		kept = append(kept, v1.RetiredGolden{MachineName: g, TemplateGeneration: gen, Clones: int32(len(p.taken) + o.clones)})
	}
	sort.Slice(kept, func(i, j int) bool { return kept[i].MachineName < kept[j].MachineName })
	return kept, nil
}

// forkedOnDemand counts golden's clones that are not its slots: machines
// with its labels (a clone's are its golden's) and another name.
func forkedOnDemand(golden string, g *smolvm.Machine, ms []smolvm.Machine) int {
	if g == nil {
		return 0
	}
	n := 0
	for _, m := range ms {
		if _, slot := slotIndex(golden, m.Name); slot || m.Name == golden {
			continue
		}
		if m.Labels[labelTemplateUID] != "" && m.Labels[labelTemplateUID] == g.Labels[labelTemplateUID] &&
			m.Labels[labelTemplateMachine] == g.Labels[labelTemplateMachine] {
			n++
		}
	}
	return n
}
