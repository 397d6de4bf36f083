package agent

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// Label values are bounded: phases and outcomes, never object names.
var (
	bottlesByPhase = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "bottle_phase_bottles",
		Help: "Bottles on this node by phase.",
	}, []string{"phase"})
	timeToReady = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "bottle_time_to_ready_seconds",
		Help:    "Time from a Bottle becoming not Ready (or being created) to Ready.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 14),
	})
	stepDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "bottle_provision_step_duration_seconds",
		Help:    "Provisioning step run time by result (succeeded, failed, timeout, cancelled, error).",
		Buckets: prometheus.ExponentialBuckets(0.05, 2, 16),
	}, []string{"result"})
)

func init() {
	ctrlmetrics.Registry.MustRegister(bottlesByPhase, timeToReady, stepDuration)
}

// phaseTracker turns per-object phases into per-phase counts.
type phaseTracker struct {
	mu     sync.Mutex
	phases map[types.NamespacedName]v1.Phase
}

func newPhaseTracker() *phaseTracker {
	return &phaseTracker{phases: map[types.NamespacedName]v1.Phase{}}
}

// observe counts a written status; prev is the status written before it.
func (t *phaseTracker) observe(s *scope, prev *v1.BottleStatus) {
	if t == nil {
		return
	}
	key := client.ObjectKeyFromObject(s.bottle)
	phase := s.status().Phase
	t.mu.Lock()
	old, had := t.phases[key]
	t.phases[key] = phase
	t.mu.Unlock()
	if !had || old != phase {
		if had {
			bottlesByPhase.WithLabelValues(string(old)).Dec()
		}
		bottlesByPhase.WithLabelValues(string(phase)).Inc()
	}

	var before *metav1.Condition
	if prev != nil {
		before = meta.FindStatusCondition(prev.Conditions, v1.ConditionReady)
	}
	if meta.IsStatusConditionTrue(s.status().Conditions, v1.ConditionReady) && (before == nil || before.Status != "True") {
		since := s.bottle.CreationTimestamp.Time
		if before != nil {
			since = before.LastTransitionTime.Time
		}
		timeToReady.Observe(time.Since(since).Seconds())
	}
}

func (t *phaseTracker) forget(key types.NamespacedName) {
	if t == nil {
		return
	}
	t.mu.Lock()
	old, had := t.phases[key]
	delete(t.phases, key)
	t.mu.Unlock()
	if had {
		bottlesByPhase.WithLabelValues(string(old)).Dec()
	}
}
