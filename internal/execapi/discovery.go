package execapi

import (
	"net/http"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// The aggregated group is v1.SubresourceGroupVersion. Its only
// resources are the subresources; the aggregator creates the parent
// "bottles" entry in aggregated discovery.
var apiGroup = metav1.APIGroup{
	TypeMeta: metav1.TypeMeta{Kind: "APIGroup", APIVersion: "v1"},
	Name:     v1.SubresourceGroup,
	Versions: []metav1.GroupVersionForDiscovery{{GroupVersion: v1.SubresourceGroupVersion.String(), Version: v1.SubresourceVersion}},
	PreferredVersion: metav1.GroupVersionForDiscovery{
		GroupVersion: v1.SubresourceGroupVersion.String(), Version: v1.SubresourceVersion,
	},
}

// apiResources is built once from the subresources table.
var apiResources = apiResourceList()

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
