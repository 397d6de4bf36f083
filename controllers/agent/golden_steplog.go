package agent

import (
	"io"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/bot-bottle/bottle-controller/internal/steplog"
)

// A golden's step logs are kept as a Bottle's are (bottle_steplog.go), under
// steplog.GoldenKey(template UID, golden machine) in place of a Bottle's
// UID: a template has a golden per node and per machine spec, and the exec
// API (bottletemplates/log) reads the one the node's entry names. They go
// when the golden stops being the node's entry's (a machine edit makes a
// new golden and ledger, the node stops keeping one, the template goes);
// the sweep at leadership removes those of goldens no entry names.

// goldenStepLog opens the log of the golden's step about to run; end
// closes it. The writer is nil when no log is kept.
func (r *TemplateReconciler) goldenStepLog(g *golden, step string) (out io.Writer, end func()) {
	if r.StepLogs == nil {
		return nil, func() {}
	}
	key := steplog.GoldenKey(string(g.t.UID), g.name)
	keep := make([]string, len(g.t.Spec.Provision))
	for i, p := range g.t.Spec.Provision {
		keep[i] = p.Name
	}
	if err := r.StepLogs.Prune(key, keep); err != nil {
		goldenLog(g).Error(err, "cannot remove the logs of golden steps no longer in the spec")
	}
	w, err := r.StepLogs.Begin(key, step)
	if err != nil {
		// The step runs anyway: a log is a convenience, the result is not.
		goldenLog(g).Error(err, "cannot keep the golden step's log", "step", step)
		return nil, func() {}
	}
	return w, func() { _ = w.Close() }
}

// removeGoldenLogs drops the logs of a golden that is no longer the node's
// entry's: nothing can ask for them any more.
func (r *TemplateReconciler) removeGoldenLogs(uid types.UID, goldenMachine string) {
	if r.StepLogs == nil || uid == "" || goldenMachine == "" {
		return
	}
	if err := r.StepLogs.Remove(steplog.GoldenKey(string(uid), goldenMachine)); err != nil {
		log.Log.WithName("template").Error(err, "cannot remove a golden's step logs", "golden", goldenMachine)
	}
}

func goldenLog(g *golden) logr.Logger {
	return log.Log.WithName("template").WithValues("template", g.t.Namespace+"/"+g.t.Name, "golden", g.name)
}

// forgetGoldenLogs drops the logs of the golden the template key last had
// on this node.
func (r *TemplateReconciler) forgetGoldenLogs(key types.NamespacedName) {
	r.mu.Lock()
	l, ok := r.logged[key]
	delete(r.logged, key)
	r.mu.Unlock()
	if ok {
		r.removeGoldenLogs(l.uid, l.machine)
	}
}
