package agent

import (
	"k8s.io/apimachinery/pkg/types"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/activity"
)

// bottleMemory is everything this agent remembers of each of its node's
// Bottles between passes, in one place so that one forget drops all of it
// when the Bottle goes. Some registries are keyed by UID (a Bottle deleted
// and made again under its name starts afresh), others by name (the
// metrics and the egress cursor, forgotten where only the name is known).
// What is keyed by machine (the machine view, the unreachable clock) is the
// node's memory of its machines, not of a Bottle, and is not here.
type bottleMemory struct {
	// expectations are the statuses known and last written, by UID.
	expectations *expectations
	// steps are the running steps, by UID.
	steps *inflight[*v1.Bottle, runningStep]
	// owners are the guest users files wait for, by UID.
	owners *missingOwners
	// backoff is the wait after a smolvm failure, by UID.
	backoff *backoffs
	// metrics are the phases counted in the gauge, by name.
	metrics *phaseTracker
	// egress are the egress log cursors, by name.
	egress *egressReads
	// activity is the node's record of sessions, steps and runs (the
	// reconciler's Activity), by UID; nil without one.
	activity *activity.Tracker
}

// forget drops all that is remembered of the Bottle with this UID and name,
// and cancels its running step (the step's entry goes when it ends). It is
// called when the Bottle's deletion is seen, when its deletion is done, and
// when a pass finds it gone; a zero uid (a pass that only knows the name)
// forgets what is kept by name.
func (m *bottleMemory) forget(uid types.UID, key types.NamespacedName) {
	if uid != "" {
		m.steps.gone(uid)
		m.expectations.forget(uid)
		m.owners.forget(uid)
		m.backoff.forget(uid)
		if m.activity != nil {
			m.activity.Forget(uid)
		}
	}
	m.metrics.forget(key)
	m.egress.forget(key)
}
