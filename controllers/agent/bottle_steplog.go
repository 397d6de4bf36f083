package agent

import (
	"io"

	"github.com/bot-bottle/bottle-controller/internal/steplog"
)

// StepLogs is where the agent keeps each step's full output for
// `kubectl bottle logs` (internal/steplog); nil keeps none.
type StepLogs interface {
	Begin(uid, step string) (*steplog.Writer, error)
	// Prune drops the logs of steps not in keep.
	Prune(uid string, keep []string) error
	Remove(uid string) error
}

var _ StepLogs = (*steplog.Store)(nil)

// stepLog opens the log of the step about to run. The returned writer is nil
// when no log is kept (the step then runs without --stream); end closes it.
func (r *BottleReconciler) stepLog(s *scope, step string) (out io.Writer, end func()) {
	if r.StepLogs == nil {
		return nil, func() {}
	}
	// Logs of steps the spec no longer has can never be read again: drop
	// them before a new one grows.
	keep := make([]string, len(s.spec().Provision))
	for i, p := range s.spec().Provision {
		keep[i] = p.Name
	}
	if err := r.StepLogs.Prune(string(s.bottle.UID), keep); err != nil {
		s.log.Error(err, "cannot remove the logs of steps no longer in the spec")
	}
	w, err := r.StepLogs.Begin(string(s.bottle.UID), step)
	if err != nil {
		// The step runs anyway: a log is a convenience, the result is not.
		s.log.Error(err, "cannot keep the step's log", "step", step)
		return nil, func() {}
	}
	return w, func() { _ = w.Close() }
}

// removeStepLogs deletes the Bottle's step logs with it.
func (r *BottleReconciler) removeStepLogs(s *scope) {
	if r.StepLogs == nil {
		return
	}
	if err := r.StepLogs.Remove(string(s.bottle.UID)); err != nil {
		s.log.Error(err, "cannot remove the Bottle's step logs")
	}
}
