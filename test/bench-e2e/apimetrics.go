package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"k8s.io/client-go/rest"
)

// apiRequests counts the API server's requests by "VERB resource[/sub]"
// (apiserver_request_total, every response code added up).
type apiRequests map[string]float64

// apiScrape is one read of the API server's metrics: its requests, and the
// seconds it spent on them (apiserver_request_duration_seconds' sum, from
// the request's arrival to its response), by the same keys.
type apiScrape struct {
	requests, seconds apiRequests
}

// writeVerbs are the verbs of apiserver_request_total that change objects.
var writeVerbs = map[string]bool{"POST": true, "PUT": true, "PATCH": true, "APPLY": true, "DELETE": true}

// apiRequestCounts reads the API server's /metrics.
func apiRequestCounts(ctx context.Context, cfg *rest.Config) (apiScrape, error) {
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return apiScrape{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(cfg.Host, "/")+"/metrics", nil)
	if err != nil {
		return apiScrape{}, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return apiScrape{}, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return apiScrape{}, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return parseAPIRequests(resp.Body)
}

// parseAPIRequests reads an apiScrape from Prometheus text exposition.
func parseAPIRequests(r io.Reader) (apiScrape, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return apiScrape{}, fmt.Errorf("API server metrics: %w", err)
	}
	out := apiScrape{requests: apiRequests{}, seconds: apiRequests{}}
	for _, m := range fams["apiserver_request_total"].GetMetric() {
		out.requests[requestKey(m)] += m.GetCounter().GetValue()
	}
	for _, m := range fams["apiserver_request_duration_seconds"].GetMetric() {
		out.seconds[requestKey(m)] += m.GetHistogram().GetSampleSum()
	}
	return out, nil
}

// requestKey is "VERB resource[/sub]" of one of the API server's series.
func requestKey(m *dto.Metric) string {
	key := label(m, "verb") + " " + label(m, "resource")
	if sub := label(m, "subresource"); sub != "" {
		key += "/" + sub
	}
	return key
}

// writeMillis is the API server's mean time per write request made after
// before, by key, in milliseconds.
func (after apiScrape) writeMillis(before apiScrape) map[string]float64 {
	out := map[string]float64{}
	for k, n := range after.requests.writesSince(before.requests) {
		out[k] = (after.seconds[k] - before.seconds[k]) / float64(n) * 1e3
	}
	return out
}

// writesSince are the write requests made after before, by key.
func (after apiRequests) writesSince(before apiRequests) map[string]int {
	out := map[string]int{}
	for k, n := range after {
		verb, _, _ := strings.Cut(k, " ")
		if d := int(n - before[k]); writeVerbs[verb] && d > 0 {
			out[k] = d
		}
	}
	return out
}
