package execapi

import (
	"context"
	"fmt"
	"net/http"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/user"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// authorize asks the API server whether u may `create bottles/<sub>` on the
// Bottle. The verb is create whatever the HTTP method: a WebSocket upgrade is
// a GET, and `get` must never be enough to run commands (the lesson of
// pods/exec). The `user` query parameter of exec is covered by the same
// permission: whoever may exec may exec as any guest user.
func (s *Server) authorize(ctx context.Context, u user.Info, namespace, name, sub string) error {
	extra := make(map[string]authorizationv1.ExtraValue, len(u.GetExtra()))
	for k, v := range u.GetExtra() {
		extra[k] = authorizationv1.ExtraValue(v)
	}
	attrs := &authorizationv1.ResourceAttributes{
		Namespace:   namespace,
		Verb:        "create",
		Group:       v1.GroupVersion.Group,
		Resource:    "bottles",
		Subresource: sub,
		Name:        name,
	}
	review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		ResourceAttributes: attrs,
		User:               u.GetName(),
		Groups:             u.GetGroups(),
		Extra:              extra,
		UID:                u.GetUID(),
	}}
	res, err := s.kube.AuthorizationV1().SubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
	if err != nil {
		return statusError(http.StatusInternalServerError, metav1.StatusReasonInternalError,
			"cannot check authorization: %v", err)
	}
	if res.Status.Allowed && !res.Status.Denied {
		return nil
	}
	msg := fmt.Sprintf("User %q cannot create resource \"bottles/%s\" in API group %q in the namespace %q",
		u.GetName(), sub, attrs.Group, namespace)
	if res.Status.Reason != "" {
		msg += ": " + res.Status.Reason
	}
	return statusError(http.StatusForbidden, metav1.StatusReasonForbidden,
		"%s %q is forbidden: %s", bottlesGR.String(), name, msg)
}
