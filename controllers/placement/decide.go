package placement

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// podState is what the decisions need of a Bottle's reservation Pod.
type podState struct {
	Name string
	// Node is where the Pod is bound ("" while it waits).
	Node string
	// Conflict: a Pod of the reservation's name that is not this Bottle's.
	Conflict string
	// Invalid: the API server refused the Pod (a bad spec.placement).
	Invalid string
	// Refused: the API server refused to create the Pod otherwise
	// (admission: a missing ServiceAccount, a quota), in its words.
	Refused string
	// Failed: the kubelet refused or ended the Pod (phase Failed).
	Failed string
	// Unschedulable: kube-scheduler's PodScheduled=False message.
	Unschedulable string
	// Unadmitted: the Pod is bound to a node that runs a kubelet, which has
	// not admitted it yet (no start time, not running).
	Unadmitted bool
	// TemplateMissing: the Bottle's template does not exist, so no Pod
	// can be sized for it.
	TemplateMissing string
	// CreatedAt is when the Pod was made.
	CreatedAt time.Time
}

// firstStatusDelay is how long a new Bottle whose reservation Pod waits for
// kube-scheduler goes without a status of the cluster controller's: the
// binding usually comes well within it and brings Scheduled=True, so
// WaitingForScheduler would be a write nobody reads.
const firstStatusDelay = 3 * time.Second

// awaitBinding is how long a new Bottle's first status can still wait for
// its Pod's binding (0: write it now). Only a Pod that simply waits, of a
// Bottle with no status yet, waits: anything the Bottle must be told
// (unschedulable, refused, a conflict) is written at once.
func awaitBinding(b *v1.Bottle, pod podState, now time.Time) time.Duration {
	waiting := pod.Node == "" && pod.Conflict == "" && pod.Invalid == "" && pod.Refused == "" && pod.Failed == "" &&
		pod.Unschedulable == "" && pod.TemplateMissing == "" && !pod.CreatedAt.IsZero()
	if !waiting || b.Status.ObservedGeneration != 0 || len(b.Status.Conditions) != 0 {
		return 0
	}
	return max(pod.CreatedAt.Add(firstStatusDelay).Sub(now), 0)
}

// conditionVerdict is one condition's status, reason and message (the agent's
// verdict is a reason and message alone).
type conditionVerdict struct {
	Status          metav1.ConditionStatus
	Reason, Message string
}

// decideScheduled is the Scheduled condition: True once the reservation is
// bound to the Bottle's node, that node's kubelet (when it runs one)
// admitted it, and the node's agent is live. The kubelet's admission is
// what says the VM's CPUs and memory are the node's to give: a Pod it
// refuses (OutOfcpu) ends Failed instead.
func decideScheduled(reservations bool, nodeName string, pod podState, agent Liveness) conditionVerdict {
	no := func(reason, format string, args ...any) conditionVerdict {
		return conditionVerdict{metav1.ConditionFalse, reason, fmt.Sprintf(format, args...)}
	}
	switch {
	case !reservations && nodeName == "":
		return no(v1.ReasonNodeNameRequired, "this install runs without reservation Pods (--reservations=false), so nothing places Bottles: set spec.nodeName")
	case pod.TemplateMissing != "":
		return no(v1.ReasonWaitingForTemplate, "%s", pod.TemplateMissing)
	case pod.Invalid != "":
		return no(v1.ReasonInvalidPlacement, "the API server refused reservation Pod %s, fix spec.placement: %s", pod.Name, pod.Invalid)
	case pod.Refused != "":
		return no(v1.ReasonReservationRefused, "the API server refused reservation Pod %s (retrying): %s", pod.Name, pod.Refused)
	case pod.Conflict != "":
		return no(v1.ReasonReservationConflict, "%s", pod.Conflict)
	case pod.Failed != "":
		return no(v1.ReasonReservationFailed, "reservation Pod %s failed: %s", pod.Name, pod.Failed)
	case nodeName == "" && pod.Unschedulable != "":
		return no(v1.ReasonUnschedulable, "%s", pod.Unschedulable)
	case nodeName == "":
		return no(v1.ReasonWaitingForScheduler, "reservation Pod %s waits for kube-scheduler", pod.Name)
	case !agent.Live:
		return no(v1.ReasonNodeAgentUnavailable, "%s", agent.Detail)
	case !reservations:
		return conditionVerdict{metav1.ConditionTrue, v1.ReasonScheduled, fmt.Sprintf("on node %s (spec.nodeName; no reservation Pod in this install), served by %s", nodeName, agent.Detail)}
	case pod.Node != nodeName && pod.Unschedulable != "":
		return no(v1.ReasonUnschedulable, "on node %s: %s", nodeName, pod.Unschedulable)
	case pod.Node != nodeName:
		return no(v1.ReasonWaitingForScheduler, "reservation Pod %s waits for kube-scheduler to bind it to node %s", pod.Name, nodeName)
	case pod.Unadmitted:
		return no(v1.ReasonWaitingForKubelet, "reservation Pod %s is bound to node %s; waiting for its kubelet to admit it", pod.Name, nodeName)
	}
	return conditionVerdict{metav1.ConditionTrue, v1.ReasonScheduled, fmt.Sprintf("reservation Pod %s bound to node %s, served by %s", pod.Name, nodeName, agent.Detail)}
}

// stallsAtOnce are Scheduled reasons only a human can clear.
var stallsAtOnce = map[string]bool{v1.ReasonNodeNameRequired: true, v1.ReasonReservationConflict: true, v1.ReasonInvalidPlacement: true}

// overlay is what the cluster controller says in the agent's fields while
// no agent speaks for the Bottle.
type overlay struct {
	Ready conditionVerdict
	// Stalled (kstatus Failed) rather than Reconciling (InProgress).
	Stalled bool
	// Phase to show.
	Phase v1.Phase
	// RequeueAfter is when the verdict turns by itself (the grace ends).
	RequeueAfter time.Duration
}

// agentFirstWord is how long a newly placed Bottle whose node's agent is
// live goes without the overlay: the agent's own first status (within a
// few hundred milliseconds on a healthy node) is the next word, so the
// overlay, and the write that takes it back, would be two API writes per
// Bottle that nobody reads. Until either comes, status.observedGeneration
// is still 0: kstatus and Argo CD's check say "in progress".
const agentFirstWord = 5 * time.Second

// decideOverlay returns the overlay, nil when an agent speaks for the
// Bottle: it is placed, its node's agent is live, and that agent has
// written Ready since the cluster controller last did. since is when the
// Scheduled verdict's reason began. A Bottle just placed on a node whose
// agent is live, with no Ready yet, gets no overlay for agentFirstWord:
// wait is when to look again.
func decideOverlay(b *v1.Bottle, sched conditionVerdict, agentLive bool, since, now time.Time, grace time.Duration) (ov *overlay, wait time.Duration) {
	if !b.DeletionTimestamp.IsZero() {
		return nil, 0
	}
	ready := meta.FindStatusCondition(b.Status.Conditions, v1.ConditionReady)
	asserted := ready != nil && !v1.ClusterReason(ready.Reason)
	if b.Spec.NodeName != "" && agentLive && asserted {
		return nil, 0
	}
	if b.Spec.NodeName != "" && agentLive && ready == nil && sched.Status == metav1.ConditionTrue {
		if left := since.Add(agentFirstWord).Sub(now); left > 0 {
			return nil, left
		}
	}
	ov = &overlay{Ready: conditionVerdict{metav1.ConditionFalse, sched.Reason, sched.Message}}
	if sched.Status == metav1.ConditionTrue {
		ov.Ready = conditionVerdict{metav1.ConditionFalse, v1.ReasonWaitingForNodeAgent,
			fmt.Sprintf("on node %s; waiting for its agent to take the Bottle up", b.Spec.NodeName)}
	}
	switch {
	case stallsAtOnce[sched.Reason]:
		ov.Stalled = true
	case sched.Reason == v1.ReasonNodeAgentUnavailable:
		if left := since.Add(grace).Sub(now); left > 0 {
			ov.RequeueAfter = left
		} else {
			ov.Stalled = true
			ov.Ready.Message += fmt.Sprintf(" (for more than %s)", grace)
		}
	}
	switch {
	case ov.Stalled:
		ov.Phase = v1.PhaseFailed
	case ov.Ready.Reason == v1.ReasonNodeAgentUnavailable:
		ov.Phase = v1.PhaseUnknown
	default:
		ov.Phase = v1.PhasePending
	}
	return ov, 0
}

// since is when the Scheduled verdict v began: the current condition's
// transition time when it already says the same, else now.
func since(conds []metav1.Condition, v conditionVerdict, now time.Time) time.Time {
	c := meta.FindStatusCondition(conds, v1.ConditionScheduled)
	if c != nil && c.Status == v.Status && c.Reason == v.Reason {
		return c.LastTransitionTime.Time
	}
	return now
}

// maxNamedNodes bounds the node names withAgentsDown spells out.
const maxNamedNodes = 5

// withAgentsDown adds to kube-scheduler's message which KVM nodes have no
// live agent. The scheduler only says those nodes "didn't match Pod's node
// affinity/selector" (their LabelSchedulable is false), which names neither
// the agent nor what to do.
func withAgentsDown(msg string, down []string) string {
	if len(down) == 0 {
		return msg
	}
	slices.Sort(down)
	named := strings.Join(down[:min(len(down), maxNamedNodes)], ", ")
	if more := len(down) - maxNamedNodes; more > 0 {
		named += fmt.Sprintf(" and %d more", more)
	}
	return fmt.Sprintf("%s (no live node agent on KVM node(s) %s, so they take no Bottle: see kubectl -n bottle-system get pods -l app.kubernetes.io/component=agent)", msg, named)
}
