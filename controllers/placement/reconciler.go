package placement

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// conflictRetry is how often a Bottle whose reservation name is taken
// looks again: the other Pod is not in the cache, so its deletion brings
// no event.
const conflictRetry = 10 * time.Second

// templateRetry is how often a templated Bottle whose template does not
// exist looks for it again.
const templateRetry = 10 * time.Second

// refusedRetry is how often a reservation Pod the API server refused is
// tried again (what refused it, a ServiceAccount or a quota, sends no event).
const refusedRetry = 10 * time.Second

// refused says whether a create failed because the API server decided
// against it (4xx other than conflicts and throttling), not because it
// could not be reached.
func refused(err error) bool {
	var s apierrors.APIStatus
	if err == nil || !errors.As(err, &s) {
		return false
	}
	code := s.Status().Code
	return code >= 400 && code < 500 && code != http.StatusConflict && code != http.StatusTooManyRequests
}

// failedRetry is how long a failed reservation Pod (refused by the kubelet)
// is left in place, for `kubectl describe`, before it is made again.
const failedRetry = 30 * time.Second

// Reconciler places one Bottle: its reservation Pod, its spec.nodeName, and
// the cluster controller's part of its status.
type Reconciler struct {
	// Client reads through the cache (Bottles, reservation Pods).
	client.Client
	// APIReader reads a Pod the cache does not hold: a name clash with a
	// Pod that is not a reservation.
	APIReader  client.Reader
	Recorder   recorder.EventRecorder
	Heartbeats *Heartbeats
	Options

	applies applies

	now func() time.Time
}

// The cluster controller's RBAC, generated into config/rbac/cluster.
// +kubebuilder:rbac:groups=agents.bot-bottle.dev,resources=bottles,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=agents.bot-bottle.dev,resources=bottles/status,verbs=patch
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// controller-runtime's leader election records its LeaderElection event as a
// core/v1 Event in the Lease's namespace.
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch,namespace=bottle-system
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch,namespace=bottle-system
// Its own leader-election Lease: RBAC cannot name what is created, so
// config/policy/agent_lease_scope.yaml confines create to that one too.
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=create,namespace=bottle-system
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=update,resourceNames=bottle-cluster-controller,namespace=bottle-system

// Reconcile makes the Bottle's reservation match its spec, copies the
// binding into spec.nodeName, and applies Scheduled (plus the overlay while
// no agent speaks for the Bottle).
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	b := &v1.Bottle{}
	if err := r.Get(ctx, req.NamespacedName, b); err != nil {
		if apierrors.IsNotFound(err) {
			r.applies.forget(req.NamespacedName)
			return ctrl.Result{}, r.deleteOrphan(ctx, req.NamespacedName)
		}
		return ctrl.Result{}, err
	}
	if !b.DeletionTimestamp.IsZero() {
		// The reservation stays while the agent takes the machine down;
		// it goes with the Bottle (owner reference, and deleteOrphan).
		return ctrl.Result{}, nil
	}
	now := r.clock()

	var (
		pod     podState
		requeue time.Duration
		err     error
	)
	if r.Reservations {
		pod, requeue, err = r.reconcilePod(ctx, b, now)
		if err != nil {
			return ctrl.Result{}, err
		}
		if b.Spec.NodeName == "" && pod.Node != "" {
			if err := r.bind(ctx, b, pod.Node); err != nil {
				return ctrl.Result{}, err
			}
		}
	}

	var agent Liveness
	if b.Spec.NodeName != "" {
		agent = r.Heartbeats.Of(b.Spec.NodeName, r.AgentNamespace)
	}
	if pod.Unschedulable != "" {
		pod.Unschedulable = withAgentsDown(pod.Unschedulable, r.nodesWithoutAgent(ctx))
	}
	sched := decideScheduled(r.Reservations, b.Spec.NodeName, pod, agent)
	ov, wait := decideOverlay(b, sched, agent.Live, since(b.Status.Conditions, sched, now), now, r.AgentGrace)
	if ov != nil && ov.RequeueAfter > 0 {
		wait = ov.RequeueAfter
	}
	if wait > 0 && (requeue == 0 || wait < requeue) {
		requeue = wait
	}
	if left := awaitBinding(b, pod, now); left > 0 {
		// The binding's event brings the first status; look again in
		// case it does not come. (The Pod's own create event lands here
		// too, before kube-scheduler has bound it.)
		return ctrl.Result{RequeueAfter: left}, nil
	}
	want := desiredStatus(b, sched, ov)
	if upToDate(b, want, ov) || (ov == nil && !holdsOverlay(b) && r.applies.justApplied(b, want, now)) {
		return ctrl.Result{RequeueAfter: requeue}, nil
	}
	if err := applyStatus(ctx, r.Client, b, want, guarded(b, ov)); err != nil {
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			// The Bottle changed (the agent wrote): its event brings it back.
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("applying status: %w", err)
	}
	r.applies.remember(b, want, now)
	r.scheduledEvent(b, sched)
	return ctrl.Result{RequeueAfter: requeue}, nil
}

// reconcilePod creates the reservation Pod, or deletes one that no longer
// reserves what the Bottle needs, and reports what the Pod says.
func (r *Reconciler) reconcilePod(ctx context.Context, b *v1.Bottle, now time.Time) (podState, time.Duration, error) {
	facts, missing, err := r.machineOf(ctx, b)
	if err != nil {
		return podState{Name: b.ReservationPodName()}, 0, err
	}
	want := reservationPod(b, facts, r.Options)
	st := podState{Name: want.Name}
	pod := &corev1.Pod{}
	err = r.Get(ctx, client.ObjectKeyFromObject(want), pod)
	switch {
	case apierrors.IsNotFound(err) && missing != "":
		// No size to reserve yet; a template made later is seen then.
		st.TemplateMissing = missing
		return st, templateRetry, nil
	case apierrors.IsNotFound(err):
		return r.createPod(ctx, want)
	case err != nil:
		return st, 0, err
	case !ownedBy(pod, b):
		if isReservation(pod) {
			// An earlier Bottle of the same name: its Pod goes now.
			return st, 0, r.deletePod(ctx, pod, "it belongs to an earlier Bottle of the same name")
		}
		st.Conflict = fmt.Sprintf("Pod %s exists and is not this Bottle's reservation: rename or delete it", pod.Name)
		return st, conflictRetry, nil
	case !pod.DeletionTimestamp.IsZero():
		return st, 0, nil // being replaced: its deletion brings the Bottle back
	}
	if why := stale(pod, want, b.Spec.NodeName, b.Spec.TemplateRef != nil); why != "" {
		return st, 0, r.deletePod(ctx, pod, why)
	}
	st.Node, st.CreatedAt = pod.Spec.NodeName, pod.CreationTimestamp.Time
	if pod.Status.Phase == corev1.PodFailed {
		st.Failed = fmt.Sprintf("%s: %s", pod.Status.Reason, pod.Status.Message)
		age := now.Sub(pod.CreationTimestamp.Time)
		if age < failedRetry {
			return st, failedRetry - age, nil
		}
		return st, 0, r.deletePod(ctx, pod, "it failed: "+st.Failed)
	}
	if c := podScheduled(pod); c != nil && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
		st.Unschedulable = c.Message
	}
	if st.Node != "" {
		if st.Unadmitted, err = r.unadmitted(ctx, pod); err != nil {
			return st, 0, err
		}
	}
	return st, 0, nil
}

func podScheduled(pod *corev1.Pod) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == corev1.PodScheduled {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

func (r *Reconciler) createPod(ctx context.Context, want *corev1.Pod) (podState, time.Duration, error) {
	st := podState{Name: want.Name, Node: want.Spec.NodeName}
	err := r.Create(ctx, want, client.FieldOwner(v1.FieldManagerCluster))
	if apierrors.IsAlreadyExists(err) {
		// Not in the cache: not a reservation (or the cache lags).
		other := &corev1.Pod{}
		if gerr := r.APIReader.Get(ctx, client.ObjectKeyFromObject(want), other); gerr == nil && !isReservation(other) {
			st.Node, st.Conflict = "", fmt.Sprintf("Pod %s exists and is not this Bottle's reservation: rename or delete it", want.Name)
			return st, conflictRetry, nil
		}
		return st, time.Second, nil
	}
	if apierrors.IsInvalid(err) {
		// Only the Bottle's placement can make the Pod invalid: say so
		// on the Bottle, and wait for a new generation.
		st.Node, st.Invalid = "", err.Error()
		return st, 0, nil
	}
	if refused(err) {
		// Admission said no (a namespace without its default
		// ServiceAccount, a quota): the Bottle says so in the API server's
		// words, and the Pod is tried again later.
		st.Node, st.Refused = "", err.Error()
		return st, refusedRetry, nil
	}
	if err != nil {
		return st, 0, fmt.Errorf("creating reservation Pod %s: %w", want.Name, err)
	}
	log.FromContext(ctx).V(1).Info("created reservation Pod", "pod", want.Name, "node", want.Spec.NodeName)
	st.CreatedAt = r.clock()
	return st, 0, nil
}

func (r *Reconciler) deletePod(ctx context.Context, pod *corev1.Pod, why string) error {
	log.FromContext(ctx).Info("deleting reservation Pod", "pod", pod.Name, "reason", why)
	// No grace: the Pod runs only pause, and its resources are free for
	// the scheduler the moment it is gone from the API (a kubelet that
	// is down would otherwise hold them until it returns).
	err := r.Delete(ctx, pod, client.Preconditions{UID: &pod.UID}, client.GracePeriodSeconds(0))
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return err
}

// deleteOrphan deletes the reservation of a Bottle that is gone. The
// garbage collector does the same from the owner reference; doing it here
// too frees the node at once, and where no garbage collector runs.
func (r *Reconciler) deleteOrphan(ctx context.Context, key types.NamespacedName) error {
	name := (&v1.Bottle{ObjectMeta: metav1.ObjectMeta{Name: key.Name}}).ReservationPodName()
	pod := &corev1.Pod{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: key.Namespace, Name: name}, pod); err != nil {
		return client.IgnoreNotFound(err)
	}
	if !isReservation(pod) || !pod.DeletionTimestamp.IsZero() {
		return nil
	}
	return r.deletePod(ctx, pod, "its Bottle is gone")
}

// bind records the node kube-scheduler chose in spec.nodeName. The CRD
// lets it be set only while empty, so a race with a user setting another
// node fails instead of moving the Bottle.
// unadmitted says whether pod, bound to its node, still waits for that
// node's kubelet: the kubelet sets the Pod's start time once it admitted
// it, and fails it when it does not. A node without a kubelet (its Node
// reports no kubelet version: a node object alone, as in tests and
// without a kubelet on a real cluster) has nothing to wait for: the
// scheduler's binding is the word.
func (r *Reconciler) unadmitted(ctx context.Context, pod *corev1.Pod) (bool, error) {
	if pod.Status.StartTime != nil || pod.Status.Phase != corev1.PodPending {
		return false, nil
	}
	node := &corev1.Node{}
	if err := r.Get(ctx, client.ObjectKey{Name: pod.Spec.NodeName}, node); err != nil {
		return false, client.IgnoreNotFound(err)
	}
	return node.Status.NodeInfo.KubeletVersion != "", nil
}

func (r *Reconciler) bind(ctx context.Context, b *v1.Bottle, node string) error {
	patch := client.MergeFrom(b.DeepCopy())
	b.Spec.NodeName = node
	if err := r.Patch(ctx, b, patch, client.FieldOwner(v1.FieldManagerCluster)); err != nil {
		return fmt.Errorf("setting spec.nodeName to %s: %w", node, err)
	}
	r.event(b, corev1.EventTypeNormal, v1.ReasonScheduled, "Bind", "bound to node %s by reservation Pod %s", node, b.ReservationPodName())
	return nil
}

// scheduledEvent records a change of the Scheduled verdict.
func (r *Reconciler) scheduledEvent(b *v1.Bottle, v conditionVerdict) {
	c := meta.FindStatusCondition(b.Status.Conditions, v1.ConditionScheduled)
	if c != nil && c.Status == v.Status && c.Reason == v.Reason {
		return
	}
	typ := corev1.EventTypeNormal
	if v.Status != metav1.ConditionTrue && v.Reason != v1.ReasonWaitingForScheduler {
		typ = corev1.EventTypeWarning
	}
	r.event(b, typ, v.Reason, "Schedule", "%s", v.Message)
}

func (r *Reconciler) event(b *v1.Bottle, typ, reason, action, note string, args ...any) {
	if r.Recorder != nil {
		r.Recorder.Eventf(b, nil, typ, reason, action, note, args...)
	}
}

func (r *Reconciler) clock() time.Time {
	if r.now != nil {
		return r.now()
	}
	return time.Now()
}

// nodesWithoutAgent lists the KVM nodes whose agent is not live (labelled
// unschedulable by nodeLabeller), from the cache; nil when it cannot tell.
func (r *Reconciler) nodesWithoutAgent(ctx context.Context) []string {
	var nodes corev1.NodeList
	if err := r.List(ctx, &nodes, client.MatchingLabels{v1.LabelKVMNode: "true", v1.LabelSchedulable: "false"}); err != nil {
		return nil
	}
	names := make([]string, 0, len(nodes.Items))
	for i := range nodes.Items {
		names = append(names, nodes.Items[i].Name)
	}
	return names
}
