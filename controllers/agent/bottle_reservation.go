package agent

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// awaitReservation holds a Bottle that has no machine yet until the cluster
// controller reports its reservation Pod bound to this node (Scheduled=True):
// the VM's CPUs and memory are then accounted by kube-scheduler and the
// kubelet before the VM takes them. A machine that exists is never held
// back: the reservation may come and go (re-created after a resize, or the
// cluster controller is down) while the VM keeps running.
func (r *BottleReconciler) awaitReservation(s *scope) bool {
	if !r.RequireReservation || s.status().MachineState != "" {
		return false
	}
	c := meta.FindStatusCondition(s.status().Conditions, v1.ConditionScheduled)
	if c != nil && c.Status == "True" {
		return false
	}
	msg := fmt.Sprintf("waiting for reservation Pod %s to be bound to node %s before creating the machine",
		s.bottle.ReservationPodName(), r.NodeName)
	if c != nil {
		msg += fmt.Sprintf(" (Scheduled=%s, %s: %s)", c.Status, c.Reason, c.Message)
	}
	s.wait(v1.ReasonWaitingForReservation, msg)
	s.unreserved = true
	return true
}
