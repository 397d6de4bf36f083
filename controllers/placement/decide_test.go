package placement

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

func TestDecideScheduled(t *testing.T) {
	live := Liveness{Live: true, Detail: "agent a1"}
	dead := Liveness{Detail: "no agent serves node n1"}
	for _, c := range []struct {
		name         string
		reservations bool
		node         string
		pod          podState
		agent        Liveness
		want         string // Status/Reason
		msg          string
	}{
		{"off, no node", false, "", podState{}, dead, "False/NodeNameRequired", "set spec.nodeName"},
		{"off, node with agent", false, "n1", podState{}, live, "True/Scheduled", "no reservation Pod"},
		{"off, node without agent", false, "n1", podState{}, dead, "False/NodeAgentUnavailable", "no agent serves"},
		{"waiting for the scheduler", true, "", podState{Name: "bottle-b"}, Liveness{}, "False/WaitingForScheduler", "waits for kube-scheduler"},
		{"no template yet", true, "", podState{Name: "bottle-b", TemplateMissing: "BottleTemplate ns/t does not exist"}, Liveness{}, "False/WaitingForTemplate", "ns/t does not exist"},
		{"unschedulable", true, "", podState{Name: "bottle-b", Unschedulable: "0/3 nodes are available: 3 Insufficient memory."}, Liveness{}, "False/Unschedulable", "3 Insufficient memory"},
		{"refused by admission, in its words", true, "", podState{Name: "bottle-b", Refused: `pods "bottle-b" is forbidden: error looking up service account team2/default: serviceaccount "default" not found`}, Liveness{}, "False/ReservationRefused", `serviceaccount "default" not found`},
		{"refused on a named node", true, "n1", podState{Name: "bottle-b", Refused: "exceeded quota"}, live, "False/ReservationRefused", "exceeded quota"},
		{"conflict wins", true, "n1", podState{Name: "bottle-b", Conflict: "Pod bottle-b exists"}, live, "False/ReservationConflict", "exists"},
		{"failed pod", true, "n1", podState{Name: "bottle-b", Node: "n1", Failed: "OutOfmemory: no room"}, live, "False/ReservationFailed", "OutOfmemory"},
		{"bound, agent live", true, "n1", podState{Name: "bottle-b", Node: "n1"}, live, "True/Scheduled", "bound to node n1, served by agent a1"},
		{"bound, agent gone", true, "n1", podState{Name: "bottle-b", Node: "n1"}, dead, "False/NodeAgentUnavailable", "no agent serves"},
		{"bound, its kubelet has not admitted it", true, "n1", podState{Name: "bottle-b", Node: "n1", Unadmitted: true}, live, "False/WaitingForKubelet", "bound to node n1; waiting for its kubelet to admit it"},
		{"named node, pod not bound yet", true, "n1", podState{Name: "bottle-b"}, live, "False/WaitingForScheduler", "waits for kube-scheduler to bind it to node n1"},
		{"named node too small", true, "n1", podState{Name: "bottle-b", Unschedulable: "0/3 nodes are available: 1 Insufficient cpu."}, live, "False/Unschedulable", "on node n1: 0/3 nodes are available: 1 Insufficient cpu."},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := decideScheduled(c.reservations, c.node, c.pod, c.agent)
			if got := string(v.Status) + "/" + v.Reason; got != c.want || !strings.Contains(v.Message, c.msg) {
				t.Errorf("got %s %q, want %s containing %q", got, v.Message, c.want, c.msg)
			}
		})
	}
}

func TestDecideOverlay(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	grace := time.Minute
	bottle := func(node, readyReason string, deleting bool) *v1.Bottle {
		b := &v1.Bottle{Spec: v1.BottleSpec{NodeName: node}}
		if readyReason != "" {
			b.Status.Conditions = []metav1.Condition{{Type: v1.ConditionReady, Status: metav1.ConditionTrue, Reason: readyReason}}
		}
		if deleting {
			b.DeletionTimestamp = &metav1.Time{Time: now}
		}
		return b
	}
	yes := conditionVerdict{metav1.ConditionTrue, v1.ReasonScheduled, "bound"}
	unavailable := conditionVerdict{metav1.ConditionFalse, v1.ReasonNodeAgentUnavailable, "gone"}
	for _, c := range []struct {
		name       string
		b          *v1.Bottle
		sched      conditionVerdict
		live       bool
		since      time.Time
		want       string // "" = no overlay, else Ready reason + phase (+ " stalled")
		requeueFor time.Duration
		wait       time.Duration // no overlay yet; look again then
	}{
		{"agent speaks", bottle("n1", v1.ReasonReady, false), yes, true, now, "", 0, 0},
		{"deleting", bottle("n1", v1.ReasonNodeAgentUnavailable, true), unavailable, false, now, "", 0, 0},
		{"not placed", bottle("", "", false), conditionVerdict{metav1.ConditionFalse, v1.ReasonUnschedulable, "0/3"}, false, now, "Unschedulable Pending", 0, 0},
		{"placed just now, agent live: its own first word comes next", bottle("n1", "", false), yes, true, now, "", 0, agentFirstWord},
		{"placed 2 s ago, agent live, not a word yet", bottle("n1", "", false), yes, true, now.Add(-2 * time.Second), "", 0, agentFirstWord - 2*time.Second},
		{"placed, agent live, silent too long", bottle("n1", "", false), yes, true, now.Add(-agentFirstWord), "WaitingForNodeAgent Pending", 0, 0},
		{"placed, still the cluster's word", bottle("n1", v1.ReasonNodeAgentUnavailable, false), yes, true, now, "WaitingForNodeAgent Pending", 0, 0},
		{"agent gone, in grace", bottle("n1", v1.ReasonReady, false), unavailable, false, now.Add(-20 * time.Second), "NodeAgentUnavailable Unknown", 40 * time.Second, 0},
		{"agent gone, past grace", bottle("n1", v1.ReasonReady, false), unavailable, false, now.Add(-2 * time.Minute), "NodeAgentUnavailable Failed stalled", 0, 0},
		{"no node name and no reservations", bottle("", "", false), conditionVerdict{metav1.ConditionFalse, v1.ReasonNodeNameRequired, "set it"}, false, now, "NodeNameRequired Failed stalled", 0, 0},
		{"conflict", bottle("", "", false), conditionVerdict{metav1.ConditionFalse, v1.ReasonReservationConflict, "taken"}, false, now, "ReservationConflict Failed stalled", 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			ov, wait := decideOverlay(c.b, c.sched, c.live, c.since, now, grace)
			if wait != c.wait {
				t.Errorf("wait %s, want %s", wait, c.wait)
			}
			got := ""
			if ov != nil {
				got = ov.Ready.Reason + " " + string(ov.Phase)
				if ov.Stalled {
					got += " stalled"
				}
				if ov.Ready.Status != metav1.ConditionFalse {
					t.Errorf("overlay Ready is %s, want False", ov.Ready.Status)
				}
				if ov.RequeueAfter != c.requeueFor {
					t.Errorf("requeue after %s, want %s", ov.RequeueAfter, c.requeueFor)
				}
			}
			if got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestAwaitBinding(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	fresh := &v1.Bottle{}
	spoken := &v1.Bottle{Status: v1.BottleStatus{Conditions: []metav1.Condition{{Type: v1.ConditionScheduled}}}}
	waiting := podState{Name: "p", CreatedAt: now.Add(-time.Second)}
	for _, c := range []struct {
		name string
		b    *v1.Bottle
		pod  podState
		want time.Duration
	}{
		{"a new Bottle's Pod waits for its binding", fresh, waiting, firstStatusDelay - time.Second},
		{"its Pod made this pass", fresh, podState{Name: "p", CreatedAt: now}, firstStatusDelay},
		{"waited long enough", fresh, podState{Name: "p", CreatedAt: now.Add(-firstStatusDelay)}, 0},
		{"bound", fresh, podState{Name: "p", Node: "n1", CreatedAt: now}, 0},
		{"unschedulable is said at once", fresh, podState{Name: "p", Unschedulable: "0/1", CreatedAt: now}, 0},
		{"refused is said at once", fresh, podState{Name: "p", Refused: "quota"}, 0},
		{"no Pod: template missing", fresh, podState{Name: "p", TemplateMissing: "no t"}, 0},
		{"the Bottle has a status already", spoken, waiting, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := awaitBinding(c.b, c.pod, now); got != c.want {
				t.Errorf("awaitBinding = %s, want %s", got, c.want)
			}
		})
	}
}

func TestReservationPod(t *testing.T) {
	o := DefaultOptions()
	b := &v1.Bottle{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "b", UID: "u1"},
		Spec: v1.BottleSpec{
			Placement: &v1.Placement{NodeSelector: map[string]string{"zone": "a", v1.LabelKVMNode: "false"},
				Tolerations: []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpExists}}},
			MachineSpec: v1.MachineSpec{
				Resources: v1.Resources{CPUs: 2, MemoryMiB: 4096},
			},
		}}
	p := ReservationPod(b, o)
	req := p.Spec.Containers[0].Resources.Requests
	if !req.Cpu().Equal(resource.MustParse("2100m")) || !req.Memory().Equal(resource.MustParse("4352Mi")) {
		t.Errorf("requests %v, want 2100m CPU and 4352Mi", req)
	}
	if lim := p.Spec.Containers[0].Resources.Limits; !lim.Memory().Equal(*req.Memory()) || !lim.Cpu().Equal(*req.Cpu()) {
		t.Errorf("limits %v differ from requests %v: the Pod would not be Guaranteed", lim, req)
	}
	// pause as non-root, read-only, with no capabilities (docs/placement.md).
	if sc := p.Spec.Containers[0].SecurityContext; sc == nil || !*sc.RunAsNonRoot || !*sc.ReadOnlyRootFilesystem ||
		*sc.AllowPrivilegeEscalation || sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" ||
		len(sc.Capabilities.Add) != 0 || p.Spec.Containers[0].Image != o.PauseImage {
		t.Errorf("the reservation container is not pause, non-root, read-only and without capabilities: %+v", p.Spec.Containers[0])
	}
	// The Bottle's own selector cannot lift the KVM and live-agent rules.
	want := map[string]string{"zone": "a", v1.LabelKVMNode: "true", v1.LabelSchedulable: "true"}
	for k, v := range want {
		if p.Spec.NodeSelector[k] != v {
			t.Errorf("nodeSelector %v, want %v", p.Spec.NodeSelector, want)
		}
	}
	if len(p.Spec.Tolerations) != 1 || p.Spec.NodeName != "" || *p.Spec.AutomountServiceAccountToken {
		t.Errorf("unexpected spec %+v", p.Spec)
	}
	if ref := metav1.GetControllerOf(p); ref == nil || ref.UID != "u1" || !*ref.BlockOwnerDeletion {
		t.Errorf("owner reference %+v", ref)
	}

	b.Spec.NodeName = "n1"
	pinned := ReservationPod(b, o)
	// Naming the node does not skip kube-scheduler: the Pod is pinned by
	// affinity and keeps the KVM, schedulable and placement rules.
	if pinned.Spec.NodeName != "" || pinnedTo(pinned) != "n1" || pinned.Spec.NodeSelector[v1.LabelKVMNode] != "true" ||
		pinned.Spec.NodeSelector[v1.LabelSchedulable] != "true" || len(pinned.Spec.Tolerations) != 1 {
		t.Errorf("a Bottle naming its node gets a Pod the scheduler binds there, got %+v", pinned.Spec)
	}
	if why := stale(p, pinned, "n1", false); why == "" {
		t.Error("an unbound, unpinned Pod is stale once the Bottle names a node")
	}
	if why := stale(pinned, pinned, "n1", false); why != "" {
		t.Errorf("a Pod pinned to the named node is not stale, got %q", why)
	}
	p.Spec.NodeName = "n1"
	if why := stale(p, pinned, "n1", false); why != "" {
		t.Errorf("a Pod bound to the named node is not stale, got %q", why)
	}
	b.Spec.Placement.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{
			{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"a"}}}},
			{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"b"}}}},
		}}}}
	if got := pinnedTo(ReservationPod(b, o)); got != "n1" {
		t.Errorf("every alternative term of the author's affinity must carry the node, got %q", got)
	}
	b.Spec.Resources.MemoryMiB = 8192
	if why := stale(p, ReservationPod(b, o), "n1", false); !strings.Contains(why, "resources") {
		t.Errorf("a resize makes the Pod stale, got %q", why)
	}
	// A templated Bottle's bound Pod keeps its size: its fork is the size
	// of the golden it came from, whatever the template says now.
	if why := stale(p, reservationPod(b, machineFacts{size: v1.Resources{CPUs: 8, MemoryMiB: 16384}}, o), "n1", true); why != "" {
		t.Errorf("a template's new size made a templated Bottle's bound Pod stale: %q", why)
	}
	p.Spec.NodeName = ""
	if why := stale(p, reservationPod(b, machineFacts{size: v1.Resources{CPUs: 8, MemoryMiB: 16384}}, o), "", true); !strings.Contains(why, "resources") {
		t.Errorf("an unbound templated reservation follows its template's size, got %q", why)
	}
}

func TestGuarded(t *testing.T) {
	owning := func(manager, subresource, fields string) *v1.Bottle {
		return &v1.Bottle{ObjectMeta: metav1.ObjectMeta{ManagedFields: []metav1.ManagedFieldsEntry{{
			Manager: manager, Subresource: subresource, Operation: metav1.ManagedFieldsOperationApply,
			FieldsV1: metav1.NewFieldsV1(fields),
		}}}}
	}
	ready := `{"f:status":{"f:conditions":{"k:{\"type\":\"Ready\"}":{}}}}`
	scheduled := `{"f:status":{"f:conditions":{"k:{\"type\":\"Scheduled\"}":{}}}}`
	ov := &overlay{Phase: v1.PhasePending}
	cases := []struct {
		name string
		b    *v1.Bottle
		ov   *overlay
		want bool
	}{
		{"Scheduled alone, nothing to release", owning(v1.FieldManagerCluster, "status", scheduled), nil, false},
		{"a new Bottle, no fields at all", &v1.Bottle{}, nil, false},
		{"the agent owns Ready", owning(v1.FieldManagerAgent, "status", ready), nil, false},
		{"writing the overlay", &v1.Bottle{}, ov, true},
		{"releasing the overlay it holds", owning(v1.FieldManagerCluster, "status", ready), nil, true},
		{"rewriting the overlay it holds", owning(v1.FieldManagerCluster, "status", ready), ov, true},
	}
	for _, c := range cases {
		if got := guarded(c.b, c.ov); got != c.want {
			t.Errorf("%s: guarded = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestWithAgentsDown(t *testing.T) {
	const msg = "0/4 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 3 Insufficient cpu."
	for _, c := range []struct {
		name string
		down []string
		want string
	}{
		{"every agent live", nil, msg},
		{"one down", []string{"n1"}, msg + " (no live node agent on KVM node(s) n1, so they take no Bottle"},
		{"sorted", []string{"n2", "n1"}, "KVM node(s) n1, n2, so"},
		{"bounded", []string{"a", "b", "c", "d", "e", "f", "g"}, "KVM node(s) a, b, c, d, e and 2 more, so"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := withAgentsDown(msg, c.down); !strings.Contains(got, c.want) || !strings.HasPrefix(got, msg) {
				t.Errorf("got %q, want it to start with the scheduler's words and contain %q", got, c.want)
			}
		})
	}
}
