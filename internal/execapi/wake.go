package execapi

import (
	"context"
	"net/http"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// DefaultWakeTimeout is how long a session waits for an idle-stopped Bottle
// to be Ready again: a machine start, plus the agent's pass.
const DefaultWakeTimeout = 2 * time.Minute

// wakePoll is how often the Bottle is read while it wakes.
const wakePoll = 200 * time.Millisecond

// idleStopped says whether the agent stopped the Bottle for idleness
// (spec.lifecycle.stopAfterIdle): a session starts it again.
func idleStopped(b *v1.Bottle) bool {
	return b.Status.Lifecycle != nil && b.Status.Lifecycle.IdleStoppedAt != nil &&
		b.Spec.RunState != v1.RunStateStopped && b.DeletionTimestamp == nil
}

// wakeIdle asks the agent's Bottle reconciler (same process: the session
// runs on the Bottle's node) to start the idle-stopped Bottle, and waits
// until it is Ready again, so `kubectl bottle attach` just works.
func (s *Server) wakeIdle(ctx context.Context, b *v1.Bottle) (*v1.Bottle, error) {
	if s.opts.Activity == nil {
		return nil, conflict("bottle %q was stopped for idleness and this agent cannot start it again: "+
			"set spec.runState to Stopped and back to Running", b.Name)
	}
	key := types.NamespacedName{Namespace: b.Namespace, Name: b.Name}
	s.opts.Activity.Wake(key, b.UID)
	s.log.Info("waking idle-stopped bottle for a session", "bottle", key.String())
	ctx, cancel := context.WithTimeout(ctx, s.opts.WakeTimeout)
	defer cancel()
	t := time.NewTicker(wakePoll)
	defer t.Stop()
	for {
		cur, err := s.readBottle(ctx, key.Namespace, key.Name)
		if err != nil {
			return nil, err
		}
		if !idleStopped(cur) && cur.Status.Phase == v1.PhaseReady {
			return cur, nil
		}
		if cur.DeletionTimestamp != nil || cur.Spec.RunState == v1.RunStateStopped {
			// Deleted or stopped on purpose meanwhile: say so as for any
			// session.
			return nil, sessionRefusal(cur)
		}
		select {
		case <-ctx.Done():
			return nil, statusError(http.StatusGatewayTimeout, metav1.StatusReasonTimeout,
				"bottle %q was stopped for idleness and is not Ready again after %s (phase %s)", b.Name, s.opts.WakeTimeout, phaseName(cur.Status.Phase))
		case <-t.C:
		}
	}
}
