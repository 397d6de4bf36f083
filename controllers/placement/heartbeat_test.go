package placement

import (
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bot-bottle/bottle-controller/internal/agentlease"
)

func TestHeartbeats(t *testing.T) {
	clock := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	h := NewHeartbeats(15 * time.Second)
	h.now = func() time.Time { return clock }
	lease := func(holder string, renewed time.Time) *coordinationv1.Lease {
		return &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: agentlease.Name("n1"), Labels: map[string]string{agentlease.LabelNode: "n1"}},
			Spec:       coordinationv1.LeaseSpec{HolderIdentity: &holder, RenewTime: &metav1.MicroTime{Time: renewed}},
		}
	}
	if l := h.Of("n1", "ns"); l.Live || !strings.Contains(l.Detail, "no agent Lease ns/bottle-agent-n1") {
		t.Fatalf("unknown node: %+v", l)
	}
	// A renewal time far in the past (a skewed clock) still counts from
	// when it was seen.
	renewed := clock.Add(-time.Hour)
	h.Observe(lease("a1", renewed))
	if l := h.Of("n1", "ns"); !l.Live || !l.Until.Equal(clock.Add(15*time.Second)) {
		t.Fatalf("just seen: %+v", l)
	}
	if got := h.changed("ns"); len(got) != 1 || got[0] != "n1" {
		t.Fatalf("changed = %v, want [n1]", got)
	}
	clock = clock.Add(14 * time.Second)
	h.Observe(lease("a1", renewed)) // the same version again: not a renewal
	clock = clock.Add(time.Second)
	if l := h.Of("n1", "ns"); l.Live || !strings.Contains(l.Detail, "stopped renewing") {
		t.Fatalf("expired: %+v", l)
	}
	if got := h.changed("ns"); len(got) != 1 {
		t.Fatalf("expiry not reported: %v", got)
	}
	if got := h.changed("ns"); len(got) != 0 {
		t.Fatalf("reported twice: %v", got)
	}
	// Released by an agent shutting down: live for one more timeout.
	h.Observe(lease("", clock))
	if l := h.Of("n1", "ns"); !l.Live {
		t.Fatalf("a released Lease counts as a renewal: %+v", l)
	}
	h.ForgetLease(agentlease.Name("n1"))
	if l := h.Of("n1", "ns"); l.Live {
		t.Fatalf("deleted Lease: %+v", l)
	}
}

// TestHeartbeatIgnoresDecoys: a Lease labelled for a node but not named
// for it is no heartbeat of that node.
func TestHeartbeatIgnoresDecoys(t *testing.T) {
	h := NewHeartbeats(15 * time.Second)
	holder := "attacker"
	h.Observe(&coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: "decoy", Labels: map[string]string{agentlease.LabelNode: "n2"}},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &holder, RenewTime: &metav1.MicroTime{Time: time.Now()}},
	})
	if l := h.Of("n2", "ns"); l.Live {
		t.Fatalf("a decoy Lease made node n2 live: %+v", l)
	}
}
