package v1alpha1

import "k8s.io/apimachinery/pkg/runtime/schema"

// BottleResource is the Bottle's resource name in URLs, RBAC rules and
// SubjectAccessReviews.
const BottleResource = "bottles"

// The exec API (internal/execapi) serves bottles/exec, bottles/attach,
// bottles/log, bottleruns/log and bottletemplates/log as an aggregated API
// in its own group; the kubectl plugin calls it there.
const (
	SubresourceGroup   = "subresources." + GroupName
	SubresourceVersion = "v1alpha1"
	SubresourceExec    = "exec"
	SubresourceAttach  = "attach"
	SubresourceLog     = "log"
)

// SubresourceGroupVersion is the aggregated API's group-version.
var SubresourceGroupVersion = schema.GroupVersion{Group: SubresourceGroup, Version: SubresourceVersion}
