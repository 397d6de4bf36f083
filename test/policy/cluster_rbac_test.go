package policy

import (
	"context"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The cluster controller's ServiceAccount, as config/default ships it, may
// write what its manager writes: controller-runtime's leader election
// records a core/v1 Event (not events.k8s.io) in the Lease's namespace.
func TestClusterControllerMayRecordLeaderElection(t *testing.T) {
	e := start(t)
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:   "system:serviceaccount:" + agentNS + ":bottle-cluster-controller",
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + agentNS, "system:authenticated"},
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: agentNS, Verb: "create", Group: "", Version: "v1", Resource: "events",
		},
	}}
	got, err := e.kube.AuthorizationV1().SubjectAccessReviews().Create(context.Background(), sar, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !got.Status.Allowed {
		t.Fatalf("bottle-cluster-controller may not create core/v1 Events in %s: %s", agentNS, got.Status.Reason)
	}
}
