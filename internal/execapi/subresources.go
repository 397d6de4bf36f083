package execapi

import (
	"net/http"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// subresource is one resource of the aggregated API: its discovery entry
// and the two handlers that serve it, the gateway's (the API server calls
// it for a user) and the agent's (another node's gateway calls it).
type subresource struct {
	parent, name string // e.g. bottles, exec
	kind         string // the options kind discovery names
	verbs        metav1.Verbs
	// method restricts both routes; empty lets the handler answer a wrong
	// method with a Status (as kubectl reads it).
	method         string
	gateway, agent func(*Server, http.ResponseWriter, *http.Request)
}

// subresources is the one list of what the exec API serves: discovery,
// the routes and the "try …" hint all read it.
var subresources = []subresource{
	{parent: v1.BottleResource, name: v1.SubresourceExec, kind: "BottleExecOptions",
		verbs: metav1.Verbs{"get", "create"}, gateway: (*Server).serveGateway, agent: (*Server).serveAgent},
	{parent: v1.BottleResource, name: v1.SubresourceAttach, kind: "BottleAttachOptions",
		verbs: metav1.Verbs{"get", "create"}, gateway: (*Server).serveGateway, agent: (*Server).serveAgent},
	{parent: v1.BottleResource, name: v1.SubresourceLog, kind: "BottleLogOptions",
		verbs: metav1.Verbs{"get"}, gateway: (*Server).serveLogGateway, agent: (*Server).serveLogAgent},
	{parent: v1.BottleRunResource, name: v1.SubresourceLog, kind: "BottleRunLogOptions",
		verbs: metav1.Verbs{"get"}, method: http.MethodGet, gateway: (*Server).serveRunLogGateway, agent: (*Server).serveRunLogAgent},
	{parent: v1.BottleTemplateResource, name: v1.SubresourceLog, kind: "BottleTemplateLogOptions",
		verbs: metav1.Verbs{"get"}, method: http.MethodGet, gateway: (*Server).serveTemplateLogGateway, agent: (*Server).serveTemplateLogAgent},
}

func (sr subresource) resource() string { return sr.parent + "/" + sr.name }

// pattern is the route of sr under prefix (the aggregated group-version or
// the agent endpoint). The handlers read the subresource as a path value,
// as from a wildcard.
func (sr subresource) pattern(prefix string) string {
	p := prefix + "/namespaces/{namespace}/" + sr.parent + "/{name}/" + sr.name
	if sr.method != "" {
		p = sr.method + " " + p
	}
	return p
}

func (sr subresource) bind(s *Server, h func(*Server, http.ResponseWriter, *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.SetPathValue("subresource", sr.name)
		h(s, w, r)
	}
}

// apiResourceList is the discovery document of the group-version.
func apiResourceList() metav1.APIResourceList {
	l := metav1.APIResourceList{
		TypeMeta:     metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"},
		GroupVersion: v1.SubresourceGroupVersion.String(),
	}
	for _, sr := range subresources {
		l.APIResources = append(l.APIResources, metav1.APIResource{
			Name: sr.resource(), Namespaced: true, Kind: sr.kind, Verbs: sr.verbs})
	}
	return l
}

// subresourceNames lists the subresources of parent, for messages.
func subresourceNames(parent string) string {
	var names []string
	for _, sr := range subresources {
		if sr.parent == parent {
			names = append(names, sr.name)
		}
	}
	switch len(names) {
	case 0:
		return ""
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// serveUnknownSubresource answers a Bottle subresource the table lacks.
func serveUnknownSubresource(w http.ResponseWriter, r *http.Request) {
	writeStatus(w, statusError(http.StatusNotFound, metav1.StatusReasonNotFound,
		"the server could not find the requested resource: %s/%s (try %s)",
		v1.BottleResource, r.PathValue("subresource"), subresourceNames(v1.BottleResource)))
}
