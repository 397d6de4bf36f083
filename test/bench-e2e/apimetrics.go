package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"k8s.io/client-go/rest"
)

// apiRequests counts the API server's requests by "VERB resource[/sub]"
// (apiserver_request_total, every response code added up).
type apiRequests map[string]float64

// writeVerbs are the verbs of apiserver_request_total that change objects.
var writeVerbs = map[string]bool{"POST": true, "PUT": true, "PATCH": true, "APPLY": true, "DELETE": true}

// apiRequestCounts reads the API server's /metrics.
func apiRequestCounts(ctx context.Context, cfg *rest.Config) (apiRequests, error) {
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(cfg.Host, "/")+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return parseAPIRequests(resp.Body)
}

// parseAPIRequests reads apiRequests from Prometheus text exposition.
func parseAPIRequests(r io.Reader) (apiRequests, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("API server metrics: %w", err)
	}
	out := apiRequests{}
	for _, m := range fams["apiserver_request_total"].GetMetric() {
		key := label(m, "verb") + " " + label(m, "resource")
		if sub := label(m, "subresource"); sub != "" {
			key += "/" + sub
		}
		out[key] += m.GetCounter().GetValue()
	}
	return out, nil
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
