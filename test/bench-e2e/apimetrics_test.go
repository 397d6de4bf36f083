package main

import (
	"reflect"
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

func TestParseLabels(t *testing.T) {
	got := parseLabels(`code="201",component="apiserver",resource="bottles",subresource="status",verb="APPLY"`)
	if got["verb"] != "APPLY" || got["resource"] != "bottles" || got["subresource"] != "status" {
		t.Fatalf("parseLabels = %v", got)
	}
}
