// Package agent holds the node agent: the node-local Bottle, BottleTemplate and
// BottleRun reconcilers (the cluster controller is the sibling package placement).
package agent

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/activity"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

// BottleReconciler drives the machines of the Bottles bound to one node.
type BottleReconciler struct {
	// Client reads through the manager's cache (this node's Bottles only)
	// and writes to the API server.
	client.Client
	// APIReader reads uncached: a Bottle the first time this agent sees it
	// (see expectations) and referenced ConfigMaps and Secrets, on demand.
	APIReader client.Reader
	Recorder  recorder.EventRecorder
	Machines  Machines

	// NodeName is the node this agent owns.
	NodeName string
	// ExecMode is how steps switch user in the guest.
	ExecMode smolvm.ExecMode
	// ResyncPeriod is how often every Bottle's machine is checked for
	// drift, with one `machine ls` for the node (see resync).
	ResyncPeriod time.Duration
	// SourceRetryPeriod is how soon a Bottle waiting for a missing ConfigMap
	// or Secret looks again.
	SourceRetryPeriod time.Duration
	// TempDir is where file contents are materialised before `machine cp`.
	TempDir string
	// MaxConcurrentReconciles bounds parallel passes (and so parallel steps
	// and smolvm processes); 0 means DefaultMaxConcurrentReconciles.
	MaxConcurrentReconciles int
	// DigestKey keys the digests of Secret content in status.files
	// (HMAC-SHA256). Share one key across the install (LoadDigestKey) so
	// digests survive agent restarts; without one, a random key per process
	// is used and Secret files are copied again after a restart.
	DigestKey []byte
	// StepLogs keeps each step's full output on this node; nil keeps none.
	StepLogs StepLogs
	// RequireReservation holds a Bottle without a machine until its
	// reservation Pod is bound to this node (the cluster controller's
	// Scheduled=True). Off when the install runs without reservations.
	RequireReservation bool
	// UnreachableGrace is how long a machine smolvm reports unreachable is
	// left alone before it is restarted; 0 means DefaultUnreachableGrace.
	UnreachableGrace time.Duration
	// Lease gates new work on the node's Lease; nil starts work at once
	// (tests that run one agent per node).
	Lease LeaseGate
	// ShutdownGrace is how long a pass running a step when the agent is
	// told to stop may go on to finish it and record its result
	// (drainContext); 0 cuts the step off at once. The manager's
	// GracefulShutdownTimeout must exceed it.
	ShutdownGrace time.Duration
	// Activity is the node's record of sessions, steps and runs, for
	// spec.lifecycle.stopAfterIdle and waking an idle-stopped Bottle; nil
	// never stops a Bottle for idleness.
	Activity *activity.Tracker
	// SlotOrphanGrace is how long a released held slot no Bottle names is
	// left before the resync deletes it; 0 means DefaultSlotOrphanGrace.
	SlotOrphanGrace time.Duration
	// SmolvmRetryBase and SmolvmRetryMax bound the per-Bottle exponential
	// backoff after a smolvm failure (zero: the defaults).
	SmolvmRetryBase, SmolvmRetryMax time.Duration

	// bottleMemory is what the agent remembers of each Bottle.
	bottleMemory
	view *machineView
	// unreachable times how long each machine has been unreachable.
	unreachable *unreachableClock
	// sourceDigests is what the node's Bottles last read of their
	// ConfigMaps and Secrets (versions and digests, never values).
	sourceDigests *sourceDigests
	// claims are the held slots being handed out to templated Bottles.
	claims claims
	// sweep finds released slots no Bottle names.
	sweep slotSweep
	// startedAt is when this agent process set up: a Bottle's idle time
	// counts from it at the latest.
	startedAt time.Time
}

// DefaultMaxConcurrentReconciles: a pass spends nearly all its time waiting
// for its VM (a boot, a step, a copy), not on the agent's CPU, so workers
// are cheap goroutines that each hold at most one smolvm process. 32 lets a
// node bring up a few dozen Bottles at once (50 with a 2 s boot finish in
// about two boot times, not fifty), and keeps workers free for other
// Bottles while many long steps run; it still bounds how many smolvm
// processes (and VM boots) run on the node at once.
const DefaultMaxConcurrentReconciles = 32

// Only the verbs the agent uses (it writes with patches). ConfigMaps and
// Secrets are not here: config/source-access grants them per namespace.
// +kubebuilder:rbac:groups=agents.bot-bottle.dev,resources=bottles,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=agents.bot-bottle.dev,resources=bottles/status,verbs=patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// SetupWithManager registers the reconciler. The manager's cache must be
// restricted to this node's Bottles (see NodeCacheOptions).
func (r *BottleReconciler) SetupWithManager(mgr ctrl.Manager, name string) error {
	if r.ResyncPeriod == 0 {
		r.ResyncPeriod = time.Minute
	}
	if r.SourceRetryPeriod == 0 {
		r.SourceRetryPeriod = 30 * time.Second
	}
	if r.MaxConcurrentReconciles == 0 {
		r.MaxConcurrentReconciles = DefaultMaxConcurrentReconciles
	}
	if r.SlotOrphanGrace == 0 {
		r.SlotOrphanGrace = DefaultSlotOrphanGrace
	}
	if r.SmolvmRetryBase == 0 {
		r.SmolvmRetryBase = DefaultSmolvmRetryBase
	}
	if r.SmolvmRetryMax == 0 {
		r.SmolvmRetryMax = DefaultSmolvmRetryMax
	}
	if err := r.prepareStart(mgr.GetLogger()); err != nil {
		return err
	}
	r.bottleMemory = bottleMemory{
		expectations: newExpectations(),
		steps:        newInflight(mustCancel),
		owners:       newMissingOwners(r.ResyncPeriod),
		backoff:      newBackoffs(r.SmolvmRetryBase, r.SmolvmRetryMax),
		metrics:      newPhaseTracker(),
		egress:       newEgressReads(),
		activity:     r.Activity,
	}
	r.view = newMachineView(r.listMachines, min(maxViewAge, r.ResyncPeriod))
	r.unreachable = newUnreachableClock()
	if r.UnreachableGrace == 0 {
		r.UnreachableGrace = DefaultUnreachableGrace
	}
	r.sourceDigests = newSourceDigests()
	r.startedAt = time.Now()
	b := ctrl.NewControllerManagedBy(mgr).
		Named(name).
		Watches(&v1.Bottle{}, r.bottleEvents()).
		WatchesRawSource(r.resync(mgr.GetLogger().WithValues("controller", name))).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.MaxConcurrentReconciles})
	if r.Activity != nil {
		wake, err := r.wakeSource(mgr)
		if err != nil {
			return err
		}
		b = b.WatchesRawSource(wake)
	}
	return b.Complete(r)
}

// bottleEvents enqueues every Bottle event, and first lets the registry of
// running steps cancel one the new version no longer wants: the pass running
// it holds the Bottle's key, so the cancel must come from here.
func (r *BottleReconciler) bottleEvents() handler.EventHandler {
	enqueue := &handler.EnqueueRequestForObject{}
	type queue = workqueue.TypedRateLimitingInterface[reconcile.Request]
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q queue) { enqueue.Create(ctx, e, q) },
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q queue) {
			if b, ok := e.ObjectNew.(*v1.Bottle); ok {
				r.steps.observe(b.UID, b)
			}
			enqueue.Update(ctx, e, q)
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q queue) {
			r.forget(e.Object.GetUID(), client.ObjectKeyFromObject(e.Object))
			enqueue.Delete(ctx, e, q)
		},
		GenericFunc: func(ctx context.Context, e event.GenericEvent, q queue) { enqueue.Generic(ctx, e, q) },
	}
}

// immediateRequeue is the RequeueAfter of a pass that stops on purpose and
// wants the next one at once: a step ended and the Bottle changed meanwhile,
// a step was cancelled, a held slot or the Lease was busy. RequeueAfter
// rather than Requeue (deprecated): controller-runtime puts a RequeueAfter
// item back after the delay and forgets its backoff, while Requeue goes
// through the rate limiter, whose per-item delay grows with every requeue,
// so a Bottle running many steps would wait longer before each.
const immediateRequeue = time.Millisecond

// phase is one step of the lifecycle. It returns done=false when later
// phases must wait (the machine is not running yet, a file is missing...).
type phase func(ctx context.Context, s *scope) (done bool, res ctrl.Result, err error)

// Reconcile moves one Bottle towards its spec. Status is written by one
// writer (writeStatus): at the first sight of a generation, at each phase
// change, around each step, and once at the end.
func (r *BottleReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	// While the Lease cannot be renewed, no pass starts; the passes
	// running (a step) go on.
	if err := awaitLease(ctx, r.Lease); err != nil {
		return ctrl.Result{}, err
	}
	// A pass that runs when the agent is told to stop finishes its step
	// (drainContext); stop is how it knows to start no other.
	stop := ctx
	ctx, cancelDrain := drainContext(ctx, r.ShutdownGrace, deposedOf(r.Lease))
	defer cancelDrain()
	cached := &v1.Bottle{}
	if err := r.Get(ctx, req.NamespacedName, cached); err != nil {
		if apierrors.IsNotFound(err) {
			// What a pass that raced with the delete event left by name.
			r.forget("", req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if cached.Spec.NodeName != r.NodeName {
		return ctrl.Result{}, nil
	}

	// The finalizer goes on before any machine exists, so no machine can
	// outlive its Bottle. It is added while the status is read: a new
	// Bottle's first status then comes one round trip sooner.
	finalizer := make(chan error, 1)
	needFinalizer := cached.DeletionTimestamp.IsZero() && !controllerutil.ContainsFinalizer(cached, v1.Finalizer)
	if needFinalizer {
		go func() { finalizer <- r.addFinalizer(ctx, cached) }()
	} else {
		finalizer <- nil
	}
	bottle, written, err := r.load(ctx, cached)
	if ferr := <-finalizer; ferr != nil {
		return ctrl.Result{}, fmt.Errorf("adding finalizer: %w", ferr)
	}
	if err != nil || bottle == nil {
		return ctrl.Result{}, err
	}
	if needFinalizer {
		controllerutil.AddFinalizer(bottle, v1.Finalizer)
	}

	s := &scope{
		log: log.FromContext(ctx), bottle: bottle, before: bottle.Status.DeepCopy(), written: written,
		machineName: bottle.MachineName(),
		sources:     r.newSources(bottle.Namespace),
		retry:       pendingRetry(bottle.Annotations, bottle.Status.LastHandledRetry),
		stop:        stop,
	}
	st := s.status()
	st.NodeName, st.MachineName = r.NodeName, s.machineName

	defer func() {
		if s.finalized || s.unspoken {
			return
		}
		if err := r.writeStatus(ctx, s, retErr); err != nil && retErr == nil && ctx.Err() == nil {
			retErr = err
		}
	}()

	if !bottle.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, s)
	}

	r.applyIdleStop(s)

	if r.awaitReservation(s) {
		// The cluster controller's status write wakes this Bottle up. While
		// no one has said anything yet (no Ready), the agent has nothing to
		// add: the cluster controller speaks first about the reservation,
		// and an early word here would cost it a second write.
		s.unspoken = meta.FindStatusCondition(cached.Status.Conditions, v1.ConditionReady) == nil
		return ctrl.Result{}, nil
	}

	// Progress from the first second: a new Bottle, or a new generation,
	// says so before the first smolvm call. A Bottle about to be forked
	// says so with its claim instead (fork), in the same one write.
	forking := bottle.Spec.TemplateRef != nil && st.Template == nil
	if (st.ObservedGeneration != bottle.Generation || st.Phase == "") && !forking {
		msg := fmt.Sprintf("reconciling generation %d", bottle.Generation)
		if st.MachineState == "" {
			// The same words as createMachine's, so that write is a no-op.
			msg = creatingMessage(s)
		}
		if err := r.progress(ctx, s, v1.ReasonProgressing, msg); err != nil {
			return ctrl.Result{}, err
		}
	}

	if c, left := holdStall(st, bottle.Generation, s.retry, time.Now(), kvmRetryPeriod); c != nil {
		s.stall(c.Reason, c.Message)
		return ctrl.Result{RequeueAfter: left}, nil
	}
	if left := r.backoff.left(bottle.UID, bottle.Generation, s.retry, time.Now()); left > 0 {
		// A smolvm call failed a moment ago: no call, and no write.
		s.holdStatus()
		return ctrl.Result{RequeueAfter: left}, nil
	}

	phases := []phase{r.reconcileMachine, r.reconcilePower, r.reconcileEgress, r.reconcileFiles, r.reconcileProvision}
	for _, p := range phases {
		done, res, err := p(ctx, s)
		if err != nil || !done {
			return res, err
		}
	}
	// Everything is in place; the resync looks again for drift.
	r.backoff.forget(bottle.UID)
	return r.idleCheck(s), nil
}

// load overlays what this agent knows of the Bottle's status on the cached
// object. written is the status as this agent last applied it; nil makes
// the pass write its status whatever it finds.
func (r *BottleReconciler) load(ctx context.Context, cached *v1.Bottle) (*v1.Bottle, *v1.BottleStatus, error) {
	b := cached.DeepCopy()
	known, written, ok := r.expectations.get(b.UID)
	if !ok {
		// First sight by this agent process: the cache may lag behind the
		// previous agent's last write, so read once from the API server.
		if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(b), b); err != nil {
			return nil, nil, client.IgnoreNotFound(err)
		}
		written = b.Status.DeepCopy()
		r.expectations.remember(b.UID, &b.Status, true)
	} else {
		// What this agent computed is the truth for its own fields; the
		// conditions other writers own (Scheduled) come from the object.
		b.Status = *known
		b.Status.Conditions = mergeForeign(known.Conditions, cached.Status.Conditions)
	}
	if clusterSpeaks(cached) || clusterSpeaks(b) {
		// The cluster controller spoke for the Bottle while no agent did
		// (before placement, or while this node's agent was down): say
		// what this agent knows now, even if it wrote the same before.
		written = nil
	}
	return b, written, nil
}

func (r *BottleReconciler) event(s *scope, eventType, reason, action, note string, args ...any) {
	if r.Recorder != nil {
		r.Recorder.Eventf(s.bottle, nil, eventType, reason, action, note, args...)
	}
}
