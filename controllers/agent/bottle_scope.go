package agent

import (
	"context"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

// scope is what one reconcile pass knows: the Bottle being changed, the
// status this agent last wrote, and what the pass learned from smolvm along
// the way.
type scope struct {
	log    logr.Logger
	bottle *v1.Bottle
	// before is the status the pass started from.
	before *v1.BottleStatus
	// written is the status as last applied (nil: never by this agent), so
	// writeStatus can skip a no-op.
	written *v1.BottleStatus

	machineName string
	// machine is smolvm's view of the machine; nil when it does not exist.
	machine *smolvm.Machine
	// sources reads the ConfigMaps and Secrets the files and env name, each
	// at most once per pass.
	sources *sources
	// ownerWaits lists, by missing owner, the files not copied yet because
	// their owner does not exist (a later step may create it).
	ownerWaits map[string][]string
	// retry is the retry request read from the annotations, if new.
	retry retryRequest
	// stop is the pass's context as controller-runtime gave it: done once
	// the agent is told to stop, while the pass drains (drainContext).
	stop context.Context

	// finalized is set once the finalizer is gone: the object may be too.
	finalized bool
	// unspoken: the pass writes no status (a new Bottle waiting for its
	// reservation, which the cluster controller reports first).
	unspoken bool

	// stalled is set by a phase that cannot make progress without a change
	// from a human (kstatus Stalled).
	stalled verdict
	// waiting says why the Bottle is not Ready yet while progress is
	// expected (kstatus Reconciling); the latest phase to speak wins.
	waiting verdict
	// notApplied says which spec fields the machine does not have.
	notApplied verdict
	// pending is set while a progress write is computed.
	pending bool
	// unreserved is set while the machine waits for the reservation Pod.
	unreserved bool
	// idleStopped: the machine is stopped for idleness (applyIdleStop).
	idleStopped bool
}

func (s *scope) wait(reason, message string) { s.waiting = verdict{reason, message} }

// waitForOwner notes a file left uncopied because its owner is missing.
func (s *scope) waitForOwner(f desiredFile) {
	if s.ownerWaits == nil {
		s.ownerWaits = map[string][]string{}
	}
	s.ownerWaits[f.owner] = append(s.ownerWaits[f.owner], f.path)
}
func (s *scope) stall(reason, message string) { s.stalled = verdict{reason, message} }

func (s *scope) spec() *v1.BottleSpec     { return &s.bottle.Spec }
func (s *scope) status() *v1.BottleStatus { return &s.bottle.Status }

// setCondition sets one condition, stamped with the generation it is for.
func (s *scope) setCondition(typ string, status metav1.ConditionStatus, reason, message string) {
	meta.SetStatusCondition(&s.status().Conditions, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: message,
		ObservedGeneration: s.bottle.Generation,
	})
}

// writtenPhase is the phase status last showed.
func (s *scope) writtenPhase() v1.Phase {
	if s.written == nil {
		return ""
	}
	return s.written.Phase
}

// execUser is the Bottle's exec user (API default for old objects).
func (s *scope) execUser() string { return s.bottle.ExecUser() }
