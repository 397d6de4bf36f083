package kubectlbottle

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
)

// explainUnreachable turns "the exec API could not be reached" -- the
// kube-apiserver's 503 when the agent behind the APIService is down (one
// node: gateway and agent are the same process), or the gateway's 502 for
// another node's agent -- into one line naming the Bottle's node. It reads
// the Bottle only on that failure path.
func (o *options) explainUnreachable(ctx context.Context, ns, name string, err error) error {
	cause, ok := unreachableCause(err)
	if !ok {
		return err
	}
	if strings.HasPrefix(cause, "the agent on node ") {
		return errors.New(cause) // the gateway named it already
	}
	node := "?"
	if c, cerr := o.bottleClient(); cerr == nil {
		if b, err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}); err == nil {
			node = b.Spec.NodeName
			if b.Status.NodeName != "" {
				node = b.Status.NodeName
			}
		}
	}
	return fmt.Errorf("the agent on node %q is unreachable (%s)", node, cause)
}

// unreachableCause recognises a failure to reach the exec API's backend
// and returns its shortest useful description.
func unreachableCause(err error) (string, bool) {
	if err == nil {
		return "", false
	}
	var se *apierrors.StatusError
	if errors.As(err, &se) {
		st := se.Status()
		if st.Code != http.StatusBadGateway && st.Code != http.StatusServiceUnavailable {
			return "", false
		}
		msg := st.Message
		if st.Details != nil {
			for _, c := range st.Details.Causes {
				if strings.Contains(c.Message, "error trying to reach service") {
					msg = c.Message
				}
			}
		}
		return shortCause(msg), true
	}
	msg := err.Error()
	if strings.Contains(msg, "error trying to reach service") ||
		strings.Contains(msg, "bad handshake") && (strings.Contains(msg, "(502 ") || strings.Contains(msg, "(503 ")) {
		return shortCause(msg), true
	}
	return "", false
}

func shortCause(msg string) string {
	if _, after, ok := strings.Cut(msg, "error trying to reach service: "); ok {
		msg = after
	}
	return strings.TrimSpace(strings.ReplaceAll(msg, "\n", " "))
}
