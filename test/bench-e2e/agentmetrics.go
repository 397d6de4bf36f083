package main

import (
	"context"
	"fmt"
	"io"
	"net/http"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// smolvmDuration is the smolvm driver's histogram of its calls, timed
// around each process (internal/smolvm/metrics.go): the agent's, and the
// benchmark's own for the work by hand, which uses the same driver.
const smolvmDuration = "smolvm_command_duration_seconds"

// nodeWideVerbs name no machine: a resync's ls and the version check.
var nodeWideVerbs = map[string]bool{"list": true, "version": true}

// agentSmolvmSeconds reads the agent's metrics: the seconds its machine
// calls took as the agent saw them, from starting the process to reaping
// it. Between two reads around a single Bottle, that is the Bottle's
// smolvm time with process start and exit counted as smolvm's, the way a
// person timing each command sees it.
func (d *devEnv) agentSmolvmSeconds(ctx context.Context) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.agentMetrics, nil)
	if err != nil {
		return 0, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer func() { _ = res.Body.Close() }()
	if res.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("agent metrics %s: %s", d.agentMetrics, res.Status)
	}
	return textMachineCallSeconds(res.Body)
}

// handSmolvmSeconds is the same for the calls made by hand, from this
// process's own registry.
func handSmolvmSeconds() (float64, error) {
	fams, err := metrics.Registry.Gather()
	if err != nil {
		return 0, err
	}
	for _, f := range fams {
		if f.GetName() == smolvmDuration {
			return machineCallSeconds(f), nil
		}
	}
	return 0, nil
}

// textMachineCallSeconds reads machineCallSeconds from Prometheus text
// exposition.
func textMachineCallSeconds(r io.Reader) (float64, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return 0, fmt.Errorf("agent metrics: %w", err)
	}
	f, ok := fams[smolvmDuration]
	if !ok {
		return 0, nil
	}
	return machineCallSeconds(f), nil
}

// machineCallSeconds sums the histogram over the verbs that work on a
// machine.
func machineCallSeconds(f *dto.MetricFamily) float64 {
	var total float64
	for _, m := range f.GetMetric() {
		if !nodeWideVerbs[label(m, "verb")] {
			total += m.GetHistogram().GetSampleSum()
		}
	}
	return total
}

// label is the value of m's label name ("" without one).
func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
