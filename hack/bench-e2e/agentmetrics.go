package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// smolvmDurationSum is the agent driver's histogram of its smolvm calls,
// timed around each process (internal/smolvm/metrics.go).
const smolvmDurationSum = "smolvm_command_duration_seconds_sum"

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
	return machineCallSeconds(res.Body)
}

// machineCallSeconds sums smolvmDurationSum over the verbs that work on a
// machine, from Prometheus text exposition.
func machineCallSeconds(r io.Reader) (float64, error) {
	var total float64
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, smolvmDurationSum+"{")
		if !ok {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok {
			return 0, fmt.Errorf("agent metrics: cannot read %q", line)
		}
		verb := ""
		for _, l := range strings.Split(labels, ",") {
			if v, ok := strings.CutPrefix(l, `verb="`); ok {
				verb = strings.TrimSuffix(v, `"`)
			}
		}
		if nodeWideVerbs[verb] {
			continue
		}
		v, err := strconv.ParseFloat(strings.Fields(value)[0], 64)
		if err != nil {
			return 0, fmt.Errorf("agent metrics: %q: %w", line, err)
		}
		total += v
	}
	return total, sc.Err()
}
