package execapi

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestSubresourceTable(t *testing.T) {
	if got := subresourceNames("bottles"); got != "exec, attach or log" {
		t.Errorf("bottles' subresources = %q", got)
	}
	seen := map[string]bool{}
	for _, r := range apiResources.APIResources {
		if seen[r.Name] {
			t.Errorf("%s listed twice in discovery", r.Name)
		}
		seen[r.Name] = true
	}
	for _, want := range []string{"bottles/exec", "bottles/attach", "bottles/log", "bottleruns/log", "bottletemplates/log"} {
		if !seen[want] {
			t.Errorf("discovery lacks %s (has %v)", want, seen)
		}
	}
}

// Every route of the table is registered without a conflict, and a
// request that reaches none still gets a Status.
func TestHandlerRoutesEverySubresource(t *testing.T) {
	h := (&Server{}).Handler()
	mux, ok := h.(*http.ServeMux)
	if !ok {
		t.Fatalf("Handler is a %T", h)
	}
	gv := "/apis/subresources.agents.bot-bottle.dev/v1alpha1"
	for _, sr := range subresources {
		for _, prefix := range []string{gv, agentPathPrefix} {
			r := httptest.NewRequest(http.MethodGet, prefix+"/namespaces/ns/"+sr.parent+"/b/"+sr.name, nil)
			if _, pattern := mux.Handler(r); pattern != sr.pattern(prefix) {
				t.Errorf("%s under %s routes to %q", sr.resource(), prefix, pattern)
			}
		}
	}
	r := httptest.NewRequest(http.MethodGet, gv+"/namespaces/ns/bottles/b/portforward", nil)
	if _, pattern := mux.Handler(r); pattern != gv+"/namespaces/{namespace}/bottles/{name}/{subresource}" {
		t.Errorf("an unknown subresource routes to %q", pattern)
	}
}
