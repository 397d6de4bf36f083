package agent

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/activity"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
	"github.com/bot-bottle/bottle-controller/internal/steplog"
)

// BottleRunReconciler runs the BottleRuns of one node's Bottles, each at
// most once: the start is recorded in status (with an optimistic lock)
// before the command starts, so a run whose agent stopped mid-way is found
// started and unfinished, and marked Lost, never run again.
type BottleRunReconciler struct {
	client.Client
	// APIReader reads referenced ConfigMaps and Secrets, uncached.
	APIReader client.Reader
	Recorder  recorder.EventRecorder
	Machines  Machines
	// NodeName is the node this agent owns: it runs the runs of the Bottles
	// in its cache (NodeCacheOptions), i.e. bound to this node.
	NodeName string
	ExecMode smolvm.ExecMode
	// Logs keeps each run's full output, keyed by the run's UID; nil keeps
	// none.
	Logs StepLogs
	// Lease gates starting a run, as it gates steps; nil starts at once.
	Lease LeaseGate
	// ShutdownGrace is how long a running run may finish when the agent is
	// told to stop (drainContext), as a step may: a rollout then records
	// its result instead of leaving it for the next agent to mark Lost.
	ShutdownGrace time.Duration
	// DigestKey is the install's key (see BottleReconciler.DigestKey).
	DigestKey []byte
	// QueuePoll is how often a queued or waiting run looks again; 0 means
	// a second.
	QueuePoll time.Duration
	// Activity is the node's activity record (shared with the Bottle
	// reconciler): a run is use, and a run wakes an idle-stopped Bottle.
	Activity *activity.Tracker

	active  *activeRuns
	digests *sourceDigests
}

// runBottleIndex indexes runs by "namespace/bottle" they run in.
const runBottleIndex = "bottleRun.target"

// +kubebuilder:rbac:groups=agents.bot-bottle.dev,resources=bottleruns,verbs=get;list;watch;delete
// +kubebuilder:rbac:groups=agents.bot-bottle.dev,resources=bottleruns/status,verbs=patch;update

// SetupWithManager registers the reconciler.
func (r *BottleRunReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager, name string) error {
	if r.QueuePoll == 0 {
		r.QueuePoll = time.Second
	}
	r.active = newActiveRuns()
	r.digests = newSourceDigests()
	if err := mgr.GetFieldIndexer().IndexField(ctx, &v1.BottleRun{}, runBottleIndex, func(o client.Object) []string {
		run := o.(*v1.BottleRun)
		if t := run.TargetBottle(); t != "" {
			return []string{run.Namespace + "/" + t}
		}
		return nil
	}); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named(name).
		Watches(&v1.BottleRun{}, r.runEvents()).
		Watches(&v1.Bottle{}, r.bottleEvents(mgr.GetClient())).
		WithOptions(controller.Options{MaxConcurrentReconciles: DefaultMaxConcurrentReconciles}).
		Complete(r)
}

type runQueueT = workqueue.TypedRateLimitingInterface[reconcile.Request]

// runEvents cancels a running run when it is deleted (its pass holds the
// run's key, so the cancel must come from here) and drops its log.
func (r *BottleRunReconciler) runEvents() handler.EventHandler {
	enqueue := &handler.EnqueueRequestForObject{}
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q runQueueT) { enqueue.Create(ctx, e, q) },
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q runQueueT) {
			if !e.ObjectNew.GetDeletionTimestamp().IsZero() {
				r.active.cancelRun(e.ObjectNew.GetUID(), "the BottleRun was deleted")
			}
			enqueue.Update(ctx, e, q)
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q runQueueT) {
			r.active.cancelRun(e.Object.GetUID(), "the BottleRun was deleted")
			if r.Logs != nil {
				_ = r.Logs.Remove(string(e.Object.GetUID()))
			}
		},
		GenericFunc: func(ctx context.Context, e event.GenericEvent, q runQueueT) { enqueue.Generic(ctx, e, q) },
	}
}

// bottleEvents wakes a Bottle's runs when it changes (Ready, bound to this
// node) and cancels its active run when it is deleted or stopped.
func (r *BottleRunReconciler) bottleEvents(c client.Reader) handler.EventHandler {
	wake := func(ctx context.Context, b client.Object, q runQueueT) {
		var runs v1.BottleRunList
		if err := c.List(ctx, &runs, client.InNamespace(b.GetNamespace()),
			client.MatchingFields{runBottleIndex: b.GetNamespace() + "/" + b.GetName()}); err != nil {
			return
		}
		for _, run := range runs.Items {
			q.Add(reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&run)})
		}
	}
	cancelIfGone := func(b *v1.Bottle) {
		key := client.ObjectKeyFromObject(b)
		switch {
		case !b.DeletionTimestamp.IsZero():
			r.active.cancelBottle(key, "the Bottle is being deleted")
		case b.Spec.RunState == v1.RunStateStopped:
			r.active.cancelBottle(key, "the Bottle's runState is Stopped")
		}
	}
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q runQueueT) { wake(ctx, e.Object, q) },
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q runQueueT) {
			if b, ok := e.ObjectNew.(*v1.Bottle); ok {
				cancelIfGone(b)
			}
			wake(ctx, e.ObjectNew, q)
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q runQueueT) {
			r.active.cancelBottle(client.ObjectKeyFromObject(e.Object), "the Bottle was deleted")
			wake(ctx, e.Object, q)
		},
	}
}

// Reconcile moves one run along: wait, start (once), record the end, and
// delete it when its TTL is up.
func (r *BottleRunReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	stop := ctx
	ctx, cancelDrain := drainContext(ctx, r.ShutdownGrace, deposedOf(r.Lease))
	defer cancelDrain()
	run := &v1.BottleRun{}
	if err := r.Get(ctx, req.NamespacedName, run); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !run.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	if retry := pendingRetry(run.Annotations, run.Status.LastHandledRetry); retry.Token != "" && run.Finished() && run.Status.NodeName == r.NodeName {
		// Asked for explicitly (kubectl annotate, a pipeline): the
		// finished run starts over, its old result replaced, once per
		// token. Its agent (the one that ran it) handles it.
		return ctrl.Result{}, r.resetForRetry(ctx, run, retry.Token)
	}
	target := run.TargetBottle()
	b := &v1.Bottle{}
	var bottleErr error
	if target == "" {
		bottleErr = apierrors.NewNotFound(v1.GroupVersion.WithResource(v1.BottleResource).GroupResource(), "")
	} else {
		bottleErr = r.Get(ctx, types.NamespacedName{Namespace: run.Namespace, Name: target}, b)
	}
	if bottleErr != nil {
		if !apierrors.IsNotFound(bottleErr) {
			return ctrl.Result{}, bottleErr
		}
		// Not one of this node's Bottles: another agent's run, unless this
		// agent ran it (its Bottle since deleted).
		if run.Status.NodeName == r.NodeName && run.Finished() {
			return r.expire(ctx, run)
		}
		if run.Status.NodeName == r.NodeName && run.Status.StartedAt != nil {
			b = nil
		} else {
			return ctrl.Result{}, nil
		}
	}

	var active string
	var mine bool
	var queue []string
	if b != nil {
		active, mine = r.active.active(client.ObjectKeyFromObject(b), run.UID)
		var runs v1.BottleRunList
		if err := r.List(ctx, &runs, client.InNamespace(run.Namespace),
			client.MatchingFields{runBottleIndex: run.Namespace + "/" + target}); err != nil {
			return ctrl.Result{}, err
		}
		queue = runQueue(runs.Items)
	} else {
		_, mine = r.active.active(types.NamespacedName{}, run.UID)
		b = &v1.Bottle{ObjectMeta: metav1.ObjectMeta{Name: target, Namespace: run.Namespace}}
	}
	plan := decideRun(run, b, active, mine, queue)
	switch plan.Action {
	case runFinished:
		return r.expire(ctx, run)
	case runLost:
		// The cache may lag behind this agent's own record of the end:
		// only the API server's copy, and a write locked to it, may say
		// Lost.
		fresh := &v1.BottleRun{}
		if err := r.APIReader.Get(ctx, req.NamespacedName, fresh); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
		if fresh.Finished() || fresh.Status.StartedAt == nil {
			return ctrl.Result{}, nil
		}
		err := r.finishLocked(ctx, fresh, true, func(st *v1.BottleRunStatus) {
			st.Reason, st.Message = v1.ReasonRunLost, plan.Why
		})
		return ctrl.Result{}, client.IgnoreNotFound(err)
	case runForbidden:
		return ctrl.Result{}, r.finish(ctx, run, func(st *v1.BottleRunStatus) {
			st.Reason, st.Message = v1.ReasonRunConcurrencyForbidden, plan.Why
		})
	case runWake:
		if r.Activity != nil {
			r.Activity.Wake(client.ObjectKeyFromObject(b), b.UID)
		}
		if err := r.pending(ctx, run, b, plan.Why); err != nil {
			return ctrl.Result{}, err
		}
		return ctrl.Result{RequeueAfter: r.QueuePoll}, nil
	case runWait:
		if run.Status.StartedAt != nil {
			return ctrl.Result{}, nil
		}
		if err := r.pending(ctx, run, b, plan.Why); err != nil {
			return ctrl.Result{}, err
		}
		// Queue and readiness are rechecked: a Bottle's events wake its
		// runs, and the poll covers a run ahead that ends.
		return ctrl.Result{RequeueAfter: r.QueuePoll}, nil
	}
	return r.start(ctx, stop, run, b)
}

// pending writes Pending with why, if that is news.
func (r *BottleRunReconciler) pending(ctx context.Context, run *v1.BottleRun, b *v1.Bottle, why string) error {
	st := run.Status.DeepCopy()
	st.Phase, st.BottleName, st.Reason, st.Message = v1.RunPhasePending, b.Name, v1.ReasonRunWaiting, why
	// The claim: from now on only this node's agent may write the run
	// (config/policy/agent_run_scope.yaml).
	st.NodeName = r.NodeName
	st.ObservedGeneration = run.Generation
	setRunCondition(st, run.Generation, v1.ConditionReconciling, v1.ReasonRunWaiting, why)
	return r.patchStatus(ctx, run, st, false)
}

// start records the start, runs the command, reads the outputs and records
// the end. ctx outlives the agent's stop by ShutdownGrace (drainContext);
// stop is the pass's own context, ended once the agent is told to stop.
func (r *BottleRunReconciler) start(ctx, stop context.Context, run *v1.BottleRun, b *v1.Bottle) (ctrl.Result, error) {
	logger := log.FromContext(ctx)
	if !leaseHeld(r.Lease) {
		return ctrl.Result{RequeueAfter: r.QueuePoll}, nil
	}
	if stopping(stop) {
		// The agent is stopping: start nothing new; the next agent will.
		return ctrl.Result{}, nil
	}
	key := client.ObjectKeyFromObject(b)
	env, err := sourcesIn(r.APIReader, r.digests, r.DigestKey, run.Namespace).env(ctx, runEnv(b.Spec.Env, run.Spec.Env))
	if err != nil {
		if isSourceMissing(err) {
			return ctrl.Result{RequeueAfter: 5 * r.QueuePoll}, r.pending(ctx, run, b, err.Error())
		}
		return ctrl.Result{}, err
	}
	if !r.active.claim(key, run.UID, run.Name) {
		return ctrl.Result{RequeueAfter: r.QueuePoll}, nil
	}
	runCtx, release := r.active.start(ctx, run.UID)
	defer release()
	if r.Activity != nil {
		defer r.Activity.Begin(b.UID)()
	}

	user := runUser(run, b)
	started := metav1.NowMicro()
	st := run.Status.DeepCopy()
	st.Phase, st.BottleName, st.NodeName, st.User = v1.RunPhaseRunning, b.Name, r.NodeName, user
	st.StartedAt, st.Reason = &started, v1.ReasonRunStarted
	st.Message = fmt.Sprintf("running in Bottle %q as %s", b.Name, user)
	st.ObservedGeneration = run.Generation
	setRunCondition(st, run.Generation, v1.ConditionReconciling, v1.ReasonRunStarted, st.Message)
	// The log exists before the status says started, so a reader who saw
	// the start finds it (kubectl bottle run follows it at once).
	var out *logOut
	if r.Logs != nil {
		if w, err := r.Logs.Begin(string(run.UID), v1.RunLogStep); err == nil {
			out = &logOut{w: w}
		} else {
			logger.Error(err, "cannot keep the run's log")
		}
	}
	// The ledger first: with the optimistic lock, a stale cache (another
	// agent, or this one before a restart, already started it) makes this
	// write fail, and nothing runs.
	if err := r.patchStatus(ctx, run, st, true); err != nil {
		out.close()
		return ctrl.Result{}, err
	}
	run.Status = *st
	r.event(run, corev1.EventTypeNormal, v1.ReasonRunStarted, "Run", "started in Bottle %q as %s", b.Name, user)

	req := smolvm.ExecRequest{
		Machine: b.MachineName(), User: user, Env: env,
		Timeout:     time.Duration(run.Spec.TimeoutSeconds) * time.Second,
		Mode:        r.ExecMode,
		OutputLimit: OutputTail,
	}
	if out != nil {
		req.Output = out.w
	}
	if run.Spec.Script != nil {
		req.Script = *run.Spec.Script
	} else {
		req.Argv = run.Spec.Command
	}
	res, execErr := r.Machines.Exec(runCtx, req)
	why := cancelReason(runCtx)
	if ctx.Err() != nil {
		// The agent stopped and the run outlasted ShutdownGrace: the end
		// stays unrecorded, and the next agent marks the run Lost (never
		// runs it again).
		out.close()
		logger.Info("the agent is stopping: run cut off; it will be marked Lost", "run", run.Name)
		return ctrl.Result{}, ctx.Err()
	}
	outcome := classifyStep(res.ExitCode, execErr, why)
	var outputs []v1.RunOutputResult
	if outcome != outcomeCancelled && outcome != outcomeError {
		outputs = r.readOutputs(ctx, run, b.MachineName(), user)
	}
	out.close()
	err = r.finish(ctx, run, func(st *v1.BottleRunStatus) {
		st.Stdout, st.Stderr = tailForStatus(res.Stdout, OutputTail), tailForStatus(res.Stderr, OutputTail)
		st.StdoutBytes, st.StderrBytes = res.StdoutBytes, res.StderrBytes
		st.Truncated = res.Truncated || len(st.Stdout) < len(res.Stdout) || len(st.Stderr) < len(res.Stderr)
		st.Outputs = outputs
		switch outcome {
		case outcomeSucceeded:
			st.ExitCode = new(int32(res.ExitCode))
			st.Reason, st.Message = v1.ReasonRunSucceeded, "exited 0"
		case outcomeFailed:
			st.ExitCode = new(int32(res.ExitCode))
			st.Reason, st.Message = v1.ReasonRunNonZeroExit, fmt.Sprintf("exited with code %d", res.ExitCode)
		case outcomeTimeout:
			st.ExitCode = new(int32(124))
			st.Reason, st.Message = v1.ReasonRunTimedOut, fmt.Sprintf("timed out after %ds", run.Spec.TimeoutSeconds)
		case outcomeCancelled:
			st.Reason, st.Message = v1.ReasonRunCancelled, cancelledError(why)
		case outcomeRefused:
			st.Reason, st.Message = v1.ReasonRunRefused, fmt.Sprintf("not run: %v", execErr)
		default:
			// smolvm failed: whether the command ran is unknown, and it
			// is not run again.
			st.Reason, st.Message = v1.ReasonSmolvmError, fmt.Sprintf("smolvm failed: %v", execErr)
		}
	})
	if apierrors.IsNotFound(err) {
		return ctrl.Result{}, nil // deleted while it ran
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	return r.expire(ctx, run)
}

// finish records the end of a run: what set fills in, then the phase and
// conditions that follow from its reason.
func (r *BottleRunReconciler) finish(ctx context.Context, run *v1.BottleRun, set func(st *v1.BottleRunStatus)) error {
	return r.finishLocked(ctx, run, false, set)
}

// finishLocked is finish, optionally with an optimistic lock on the run.
func (r *BottleRunReconciler) finishLocked(ctx context.Context, run *v1.BottleRun, lock bool, set func(st *v1.BottleRunStatus)) error {
	st := run.Status.DeepCopy()
	set(st)
	now := metav1.NowMicro()
	st.FinishedAt, st.ObservedGeneration = &now, run.Generation
	meta.RemoveStatusCondition(&st.Conditions, v1.ConditionReconciling)
	if st.Reason == v1.ReasonRunSucceeded {
		st.Phase = v1.RunPhaseSucceeded
		setRunCondition(st, run.Generation, v1.ConditionComplete, st.Reason, st.Message)
		r.event(run, corev1.EventTypeNormal, st.Reason, "Run", "%s", st.Message)
	} else {
		st.Phase = v1.RunPhaseFailed
		setRunCondition(st, run.Generation, v1.ConditionFailed, st.Reason, st.Message)
		// kstatus reads Stalled=True as Failed (Flux's wait, Argo CD).
		setRunCondition(st, run.Generation, v1.ConditionStalled, st.Reason, st.Message)
		r.event(run, corev1.EventTypeWarning, st.Reason, "Run", "%s", st.Message)
	}
	if st.NodeName == "" {
		st.NodeName = r.NodeName
	}
	if err := r.patchStatus(ctx, run, st, lock); err != nil {
		return err
	}
	run.Status = *st
	return nil
}

// expire deletes a finished run once its TTL is up.
func (r *BottleRunReconciler) expire(ctx context.Context, run *v1.BottleRun) (ctrl.Result, error) {
	left, ok := ttlLeft(run, time.Now())
	if !ok {
		return ctrl.Result{}, nil
	}
	if left > 0 {
		return ctrl.Result{RequeueAfter: left}, nil
	}
	err := r.Delete(ctx, run, client.Preconditions{UID: &run.UID}, client.PropagationPolicy(metav1.DeletePropagationBackground))
	return ctrl.Result{}, client.IgnoreNotFound(err)
}

// readOutputs reads spec.outputs as the run's user, each bounded: the
// path and bound are argv of a fixed script, never spliced into it.
func (r *BottleRunReconciler) readOutputs(ctx context.Context, run *v1.BottleRun, machine, user string) []v1.RunOutputResult {
	var outs []v1.RunOutputResult
	for _, o := range run.Spec.Outputs {
		limit := int(o.MaxBytes)
		if limit == 0 {
			limit = 16384
		}
		res, err := r.Machines.Exec(ctx, smolvm.ExecRequest{
			Machine: machine, User: user, Mode: r.ExecMode,
			Argv:        []string{"sh", "-c", `wc -c < "$1" && head -c "$2" -- "$1"`, "sh", o.Path, strconv.Itoa(limit)},
			Timeout:     time.Minute,
			OutputLimit: limit + 64,
		})
		got := v1.RunOutputResult{Name: o.Name}
		switch {
		case err != nil:
			got.Error = fmt.Sprintf("cannot read %s: %v", o.Path, err)
		case res.ExitCode != 0:
			got.Error = fmt.Sprintf("cannot read %s: %s", o.Path, strings.TrimSpace(tailForStatus(res.Stderr, 512)))
		default:
			size, content, _ := strings.Cut(res.Stdout, "\n")
			got.Bytes, _ = strconv.ParseInt(strings.TrimSpace(size), 10, 64)
			got.Content = toValidUTF8(content)
			got.Truncated = got.Bytes > int64(len(content))
		}
		outs = append(outs, got)
	}
	return outs
}

// patchStatus writes st as the run's status; lock makes the write fail if
// the run changed since it was read (the start's compare-and-swap).
func (r *BottleRunReconciler) patchStatus(ctx context.Context, run *v1.BottleRun, st *v1.BottleRunStatus, lock bool) error {
	if !lock && equalRunStatus(&run.Status, st) {
		return nil
	}
	next := run.DeepCopy()
	next.Status = *st
	p := client.MergeFrom(run)
	if lock {
		p = client.MergeFromWithOptions(run, client.MergeFromWithOptimisticLock{})
	}
	if err := r.Status().Patch(ctx, next, p); err != nil {
		return err
	}
	run.Status, run.ResourceVersion = *st, next.ResourceVersion
	return nil
}

func equalRunStatus(a, b *v1.BottleRunStatus) bool {
	if a.Phase != b.Phase || a.Reason != b.Reason || a.Message != b.Message || a.BottleName != b.BottleName || a.NodeName != b.NodeName ||
		a.ObservedGeneration != b.ObservedGeneration || len(a.Conditions) != len(b.Conditions) {
		return false
	}
	for i := range a.Conditions {
		x, y := a.Conditions[i], b.Conditions[i]
		if x.Type != y.Type || x.Status != y.Status || x.Reason != y.Reason || x.Message != y.Message {
			return false
		}
	}
	return a.StartedAt.Equal(b.StartedAt) && a.FinishedAt.Equal(b.FinishedAt)
}

// setRunCondition sets a condition True: a run's conditions are only ever
// True or absent (as a Job's).
func setRunCondition(st *v1.BottleRunStatus, gen int64, typ, reason, msg string) {
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{
		Type: typ, Status: metav1.ConditionTrue, Reason: reason, Message: msg, ObservedGeneration: gen,
	})
}

func (r *BottleRunReconciler) event(run *v1.BottleRun, eventType, reason, action, note string, args ...any) {
	if r.Recorder != nil {
		r.Recorder.Eventf(run, nil, eventType, reason, action, note, args...)
	}
}

// logOut is a run's log writer; close is safe on nil.
type logOut struct{ w *steplog.Writer }

func (o *logOut) close() {
	if o != nil {
		_ = o.w.Close()
	}
}

// resetForRetry clears a finished run's result so it runs again, recording
// the retry token in the same locked write: a token runs the run once.
func (r *BottleRunReconciler) resetForRetry(ctx context.Context, run *v1.BottleRun, token string) error {
	st := &v1.BottleRunStatus{
		Phase: v1.RunPhasePending, ObservedGeneration: run.Generation, BottleName: run.Status.BottleName,
		Reason: v1.ReasonRunWaiting, Message: fmt.Sprintf("retry %q requested", token), LastHandledRetry: token,
	}
	if run.Spec.BottleRef != nil {
		// A Bottle never changes node; a fresh one may land elsewhere.
		st.NodeName = run.Status.NodeName
	}
	setRunCondition(st, run.Generation, v1.ConditionReconciling, v1.ReasonRunWaiting, st.Message)
	next := run.DeepCopy()
	next.Status = *st
	// A merge patch cannot remove fields it does not name: replace the
	// whole status, locked to the version read.
	return client.IgnoreNotFound(r.Status().Update(ctx, next))
}
