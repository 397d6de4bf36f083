package execapi

import (
	"net/http"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The aggregated group. Its only resources are the two subresources; the
// aggregator creates the parent "bottles" entry in aggregated discovery.
const (
	Group        = "subresources.agents.bot-bottle.dev"
	Version      = "v1alpha1"
	GroupVersion = Group + "/" + Version
)

// Subresource names as they appear in URLs and SubjectAccessReviews.
const (
	SubresourceExec   = "exec"
	SubresourceAttach = "attach"
)

var apiGroup = metav1.APIGroup{
	TypeMeta: metav1.TypeMeta{Kind: "APIGroup", APIVersion: "v1"},
	Name:     Group,
	Versions: []metav1.GroupVersionForDiscovery{{GroupVersion: GroupVersion, Version: Version}},
	PreferredVersion: metav1.GroupVersionForDiscovery{
		GroupVersion: GroupVersion, Version: Version,
	},
}

var apiResources = metav1.APIResourceList{
	TypeMeta:     metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"},
	GroupVersion: GroupVersion,
	APIResources: []metav1.APIResource{
		{Name: "bottles/" + SubresourceExec, Namespaced: true, Kind: "BottleExecOptions", Verbs: metav1.Verbs{"get", "create"}},
		{Name: "bottles/" + SubresourceAttach, Namespaced: true, Kind: "BottleAttachOptions", Verbs: metav1.Verbs{"get", "create"}},
	},
}

// Legacy discovery only: the aggregator asks for aggregated discovery first
// and falls back to /apis/GROUP/VERSION when it gets plain JSON.
func serveGroupList(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, &metav1.APIGroupList{
		TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"},
		Groups:   []metav1.APIGroup{apiGroup},
	})
}

func serveGroup(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, &apiGroup) }

func serveResources(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, &apiResources)
}
