package main

import (
	"reflect"
	"strings"
	"testing"
)

func TestWritesSince(t *testing.T) {
	before := apiRequests{"POST pods": 2, "GET pods": 10, "APPLY bottles/status": 5}
	after := apiRequests{"POST pods": 7, "GET pods": 30, "APPLY bottles/status": 5, "PATCH bottles": 3, "WATCH bottles": 4}
	want := map[string]int{"POST pods": 5, "PATCH bottles": 3}
	if got := after.writesSince(before); !reflect.DeepEqual(got, want) {
		t.Fatalf("writesSince = %v, want %v", got, want)
	}
}

func TestAPIRequestCountsFromText(t *testing.T) {
	text := `# TYPE apiserver_request_total counter
apiserver_request_total{code="201",component="apiserver",resource="bottles",subresource="status",verb="APPLY"} 3
apiserver_request_total{code="409",component="apiserver",resource="bottles",subresource="status",verb="APPLY"} 1
apiserver_request_total{code="200",component="apiserver",resource="pods",subresource="",verb="POST"} 2
`
	got, err := parseAPIRequests(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	want := apiRequests{"APPLY bottles/status": 4, "POST pods": 2}
	if !reflect.DeepEqual(got.requests, want) {
		t.Fatalf("parseAPIRequests = %v, want %v", got.requests, want)
	}
}

func TestWriteMillis(t *testing.T) {
	text := `# TYPE apiserver_request_total counter
apiserver_request_total{code="201",resource="bottles",subresource="status",verb="APPLY"} 4
apiserver_request_total{code="200",resource="pods",subresource="",verb="GET"} 9
# TYPE apiserver_request_duration_seconds histogram
apiserver_request_duration_seconds_bucket{resource="bottles",subresource="status",verb="APPLY",le="+Inf"} 4
apiserver_request_duration_seconds_sum{resource="bottles",subresource="status",verb="APPLY"} 0.05
apiserver_request_duration_seconds_count{resource="bottles",subresource="status",verb="APPLY"} 4
apiserver_request_duration_seconds_bucket{resource="pods",subresource="",verb="GET",le="+Inf"} 9
apiserver_request_duration_seconds_sum{resource="pods",subresource="",verb="GET"} 0.9
apiserver_request_duration_seconds_count{resource="pods",subresource="",verb="GET"} 9
`
	after, err := parseAPIRequests(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	before := apiScrape{requests: apiRequests{"APPLY bottles/status": 2}, seconds: apiRequests{"APPLY bottles/status": 0.03}}
	got := after.writeMillis(before)
	if len(got) != 1 || got["APPLY bottles/status"] < 9.99 || got["APPLY bottles/status"] > 10.01 {
		t.Fatalf("writeMillis = %v, want APPLY bottles/status 10 ms (two writes, 20 ms)", got)
	}
}
