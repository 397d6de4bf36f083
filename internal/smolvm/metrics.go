package smolvm

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	commandDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "smolvm_command_duration_seconds",
		Help: "Duration of smolvm CLI invocations by driver verb.",
		// From a status call (tens of ms) to a long agent exec.
		Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800},
	}, []string{"verb"})

	commandFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "smolvm_command_failures_total",
		Help: "smolvm CLI failures by driver verb and error class. A guest command's non-zero exit is not a failure.",
	}, []string{"verb", "class"})
)

func init() {
	metrics.Registry.MustRegister(commandDuration, commandFailures)
}

// observe records one invocation; err is the driver's returned error.
func observe(verb string, d time.Duration, err error) {
	commandDuration.WithLabelValues(verb).Observe(d.Seconds())
	if err != nil {
		commandFailures.WithLabelValues(verb, string(ClassOf(err))).Inc()
	}
}
