package execapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// bottlesGR names Bottles in error messages the way the API server does.
var bottlesGR = schema.GroupResource{Group: v1.GroupVersion.Group, Resource: "bottles"}

// statusError builds an error carrying an HTTP code and a Kubernetes reason,
// whose message is exactly msg (apierrors' constructors add prefixes that
// read badly here).
func statusError(code int32, reason metav1.StatusReason, format string, args ...any) *apierrors.StatusError {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status:  metav1.StatusFailure,
		Code:    code,
		Reason:  reason,
		Message: fmt.Sprintf(format, args...),
	}}
}

func badRequest(format string, args ...any) *apierrors.StatusError {
	return statusError(http.StatusBadRequest, metav1.StatusReasonBadRequest, format, args...)
}

// writeAPIStatus answers with err as a Kubernetes Status object, which client-go
// turns back into an apierrors.StatusError (also for failed WebSocket
// handshakes).
func writeAPIStatus(w http.ResponseWriter, err error) {
	var se apierrors.APIStatus
	if !errors.As(err, &se) {
		se = apierrors.NewInternalError(err)
	}
	st := se.Status()
	st.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	if st.Code == 0 {
		st.Code = http.StatusInternalServerError
	}
	writeJSON(w, int(st.Code), &st)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(body)
}
