package agent

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

// egressRefused counts the refusals the agent read, by operation only:
// destinations are unbounded and live in status and events instead.
var egressRefused = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "bottle_egress_refusals_total",
	Help: "Outbound connections (connect), datagrams (sendto) and DNS queries (resolve) the machines' egress allowlists refused, as smolvm recorded them.",
}, []string{"operation"})

func init() { ctrlmetrics.Registry.MustRegister(egressRefused) }

// egressReadLimit is the --limit of each read: more than one resync period
// of refusals from a busy agent; beyond it the counts are lower bounds.
const egressReadLimit = 500

// egressReads is the agent's memory of each Bottle's machine's egress log:
// how far it has read and when it last asked.
type egressReads struct {
	mu sync.Mutex
	by map[types.NamespacedName]*egressRead
}

type egressRead struct {
	cursor egressCursor
	at     time.Time
	known  bool
}

func newEgressReads() *egressReads {
	return &egressReads{by: map[types.NamespacedName]*egressRead{}}
}

func (e *egressReads) get(key types.NamespacedName) egressRead {
	e.mu.Lock()
	defer e.mu.Unlock()
	if r := e.by[key]; r != nil {
		return *r
	}
	return egressRead{}
}

func (e *egressReads) set(key types.NamespacedName, r egressRead) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.by[key] = &r
}

func (e *egressReads) forget(key types.NamespacedName) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.by, key)
}

// reconcileEgress reads the refusals of a running machine with an
// allowlist, once per resync period (one `machine egress-events` per
// Bottle per period, on a pass the resync already makes), and surfaces the
// new ones: status.egressRefusals, a Warning event per destination, the
// counter. A failed read is logged and retried next period: it never holds
// up the Bottle.
func (r *BottleReconciler) reconcileEgress(ctx context.Context, s *scope) (bool, ctrl.Result, error) {
	spec := s.spec()
	st := s.status()
	if r.egress == nil || (len(spec.Network.AllowHosts) == 0 && len(spec.Network.AllowCIDRs) == 0) {
		return true, ctrl.Result{}, nil // no network: nothing to refuse
	}
	if s.machine == nil || s.machine.State != smolvm.StateRunning {
		return true, ctrl.Result{}, nil
	}
	key := types.NamespacedName{Namespace: s.bottle.Namespace, Name: s.bottle.Name}
	prev := r.egress.get(key)
	now := time.Now()
	// Three quarters of a period: the resync's own passes come one period
	// apart, give or take the queue, and each of them reads.
	if !prev.at.IsZero() && now.Sub(prev.at) < r.ResyncPeriod*3/4 {
		return true, ctrl.Result{}, nil
	}
	if !prev.known {
		prev.cursor = cursorFromStatus(st.EgressRefusals)
	}
	events, err := r.Machines.EgressEvents(ctx, s.machineName, egressReadLimit)
	if err != nil {
		s.log.Info("reading the machine's egress refusals failed; next resync tries again", "error", err.Error())
		r.egress.set(key, egressRead{cursor: prev.cursor, at: now, known: prev.known})
		return true, ctrl.Result{}, nil
	}
	fresh, next := newDenials(events, prev.cursor)
	r.egress.set(key, egressRead{cursor: next, at: now, known: true})
	if len(fresh) == 0 {
		return true, ctrl.Result{}, nil
	}
	tallies := tallyDenials(fresh)
	st.EgressRefusals = mergeRefusals(st.EgressRefusals, tallies, v1.MaxEgressRefusals)
	for _, t := range tallies {
		egressRefused.WithLabelValues(t.op).Add(float64(t.count))
	}
	window := r.ResyncPeriod
	if !prev.at.IsZero() {
		window = now.Sub(prev.at).Round(time.Second)
	}
	for _, e := range egressEvents(tallies, window) {
		r.event(s, corev1.EventTypeWarning, v1.ReasonEgressRefused, e.action, "%s", e.note)
	}
	return true, ctrl.Result{}, nil
}
