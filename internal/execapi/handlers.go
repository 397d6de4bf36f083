package execapi

import (
	"context"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// requesterHeader carries the authorized user's name from the gateway to the
// agent, for the agent's logs and its per-user session cap: the agent trusts
// the gateway's SubjectAccessReview, and only the gateway identity may call
// it (agentCaller).
const requesterHeader = "X-Bottle-Exec-Requester"

// agentPathPrefix is the agent endpoint, reachable with an exec-CA client
// certificate only.
const agentPathPrefix = "/agent/" + v1.SubresourceVersion

// serveGateway is the aggregated API's exec and attach: authorize, find
// the Bottle, then run the session here or on the Bottle's node.
func (s *Server) serveGateway(w http.ResponseWriter, r *http.Request) {
	u := userFrom(r)
	sub := r.PathValue("subresource")
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		writeAPIStatus(w, statusError(http.StatusMethodNotAllowed, metav1.StatusReasonMethodNotAllowed,
			"%s is not supported on bottles/%s", r.Method, sub))
		return
	}
	ns, name := r.PathValue("namespace"), r.PathValue("name")
	// The Bottle is read while the user's permission is checked: two
	// round trips to the API server at once, not one after the other. What
	// the read found is told only to an allowed user.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	bottle := make(chan bottleRead, 1)
	go func() {
		b, err := s.sessionBottle(ctx, ns, name)
		bottle <- bottleRead{b, err}
	}()
	if err := s.authorize(ctx, u, ns, name, sub); err != nil {
		s.log.V(1).Info("denied", "bottle", ns+"/"+name, "subresource", sub, "user", u.GetName())
		writeAPIStatus(w, err)
		return
	}
	sr, err := parseSessionRequest(r)
	if err != nil {
		writeAPIStatus(w, err)
		return
	}
	read := <-bottle
	b, err := read.b, read.err
	if err != nil {
		writeAPIStatus(w, err)
		return
	}
	release, err := s.sessions.acquire(u.GetName())
	if err != nil {
		writeTooMany(w, err)
		return
	}
	defer release()
	node := b.NodeName()
	if node == s.opts.NodeName {
		s.serveSession(w, r, b, sr, u.GetName())
		return
	}
	s.proxyToAgent(w, r, node, sr, u.GetName())
}

type bottleRead struct {
	b   *v1.Bottle
	err error
}

// serveAgent runs an exec or attach session the gateway of another node
// authorized.
func (s *Server) serveAgent(w http.ResponseWriter, r *http.Request) {
	sr, err := parseSessionRequest(r)
	if err != nil {
		writeAPIStatus(w, err)
		return
	}
	b, ok := s.localBottle(w, r, s.sessionBottle, sr.namespace, sr.name)
	if !ok {
		return
	}
	requester := r.Header.Get(requesterHeader)
	release, err := s.sessions.acquire(requester)
	if err != nil {
		writeTooMany(w, err)
		return
	}
	defer release()
	s.serveSession(w, r, b, sr, requester)
}

// readBottle reads the Bottle from the API server (not a cache: the
// manager's cache holds only this node's Bottles).
func (s *Server) readBottle(ctx context.Context, ns, name string) (*v1.Bottle, error) {
	b := &v1.Bottle{}
	if err := s.reader.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, b); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, statusError(http.StatusNotFound, metav1.StatusReasonNotFound,
				"%s %q not found", bottlesGR.String(), name)
		}
		return nil, statusError(http.StatusInternalServerError, metav1.StatusReasonInternalError,
			"cannot read bottle %q: %v", name, err)
	}
	return b, nil
}

// sessionBottle reads the Bottle and requires that a machine may run.
func (s *Server) sessionBottle(ctx context.Context, ns, name string) (*v1.Bottle, error) {
	b, err := s.readBottle(ctx, ns, name)
	if err != nil {
		return nil, err
	}
	if err := sessionRefusal(b); err != nil {
		return nil, err
	}
	return b, nil
}

// localBottle reads, on the agent endpoint, the Bottle a gateway forwarded a
// request for (with read: readBottle, or sessionBottle for a session) and
// requires it to be this node's; when either fails it has answered, and ok
// is false.
func (s *Server) localBottle(w http.ResponseWriter, r *http.Request,
	read func(ctx context.Context, ns, name string) (*v1.Bottle, error), ns, name string) (b *v1.Bottle, ok bool) {
	b, err := read(r.Context(), ns, name)
	if err == nil {
		err = s.onThisNode(b)
	}
	if err != nil {
		writeAPIStatus(w, err)
		return nil, false
	}
	return b, true
}

// onThisNode refuses, on the agent endpoint, a Bottle of another node.
func (s *Server) onThisNode(b *v1.Bottle) error {
	if node := b.NodeName(); node != s.opts.NodeName {
		return statusError(http.StatusConflict, metav1.StatusReasonConflict,
			"bottle %q runs on node %q, not on %q", b.Name, node, s.opts.NodeName)
	}
	return nil
}

func serveNotFound(w http.ResponseWriter, r *http.Request) {
	writeAPIStatus(w, statusError(http.StatusNotFound, metav1.StatusReasonNotFound,
		"the server could not find the requested resource"))
}

func serveHealthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte("ok"))
}
