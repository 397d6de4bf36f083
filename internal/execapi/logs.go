package execapi

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/steplog"
)

// bottles/log serves the provisioning steps' full output, like pods/log:
// GET .../bottles/NAME/log?step=S&follow=true&tailLines=N&timestamps=true.
// The kube-apiserver authorizes `get` on bottles/log in the aggregated group
// before proxying; the gateway checks nothing more (a plain GET, unlike the
// WebSocket sessions whose GET must be re-checked as create). A follow
// takes a session slot (followSlot).

// logRequest is a log request's parameters.
type logRequest struct {
	step       string
	follow     bool
	tailLines  int64
	timestamps bool
}

func parseLogRequest(r *http.Request) (*logRequest, error) {
	q := r.URL.Query()
	lr := &logRequest{step: q.Get("step"), tailLines: -1}
	var err error
	if lr.follow, err = boolParam(q, "follow", false); err != nil {
		return nil, err
	}
	if lr.timestamps, err = boolParam(q, "timestamps", false); err != nil {
		return nil, err
	}
	if v := q.Get("tailLines"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return nil, badRequest("tailLines must be a number >= 0, not %q", v)
		}
		lr.tailLines = n
	}
	return lr, nil
}

// serveLogGateway: the Bottle's steps ran on its node, whose agent keeps
// their logs; serve them here or proxy there.
func (s *Server) serveLogGateway(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		writeStatus(w, statusError(http.StatusMethodNotAllowed, metav1.StatusReasonMethodNotAllowed,
			"%s is not supported on bottles/log", r.Method))
		return
	}
	lr, err := parseLogRequest(r)
	if err != nil {
		writeStatus(w, err)
		return
	}
	ns, name := r.PathValue("namespace"), r.PathValue("name")
	b, err := s.readBottle(r.Context(), ns, name)
	if err != nil {
		writeStatus(w, err)
		return
	}
	s.serveHereOrProxy(w, r, lr, b.NodeName(), &sessionRequest{namespace: ns, name: name, subresource: v1.SubresourceLog},
		func() { s.serveLog(w, r, b) })
}

// serveHereOrProxy takes a follow's session slot, then serves a log with
// here when node is this one (or none yet), else proxies the request to
// node's agent.
func (s *Server) serveHereOrProxy(w http.ResponseWriter, r *http.Request, lr *logRequest, node string, sr *sessionRequest, here func()) {
	release, err := s.followSlot(lr, userFrom(r).GetName())
	if err != nil {
		writeTooMany(w, err)
		return
	}
	defer release()
	if node == "" || node == s.opts.NodeName {
		here()
		return
	}
	s.proxyToAgent(w, r, node, sr, userFrom(r).GetName())
}

// serveForwarded serves, with serve, a log request a gateway forwarded,
// taking a follow's session slot for the user it names.
func (s *Server) serveForwarded(w http.ResponseWriter, r *http.Request, lr *logRequest, serve func()) {
	release, err := s.followSlot(lr, r.Header.Get(requesterHeader))
	if err != nil {
		writeTooMany(w, err)
		return
	}
	defer release()
	serve()
}

// logRequestFor parses a log request and reads the object its path names
// into obj; when either fails it has answered, and ok is false.
func (s *Server) logRequestFor(w http.ResponseWriter, r *http.Request, gr schema.GroupResource, obj client.Object) (lr *logRequest, ok bool) {
	lr, err := parseLogRequest(r)
	if err != nil {
		writeStatus(w, err)
		return nil, false
	}
	name := r.PathValue("name")
	err = s.reader.Get(r.Context(), types.NamespacedName{Namespace: r.PathValue("namespace"), Name: name}, obj)
	switch {
	case apierrors.IsNotFound(err):
		writeStatus(w, statusError(http.StatusNotFound, metav1.StatusReasonNotFound, "%s %q not found", gr.String(), name))
		return nil, false
	case err != nil:
		writeStatus(w, statusError(http.StatusInternalServerError, metav1.StatusReasonInternalError, "cannot read %s %q: %v", gr.Resource, name, err))
		return nil, false
	}
	return lr, true
}

// serveLogAgent serves a log request a gateway forwarded.
func (s *Server) serveLogAgent(w http.ResponseWriter, r *http.Request) {
	b, err := s.readBottle(r.Context(), r.PathValue("namespace"), r.PathValue("name"))
	if err != nil {
		writeStatus(w, err)
		return
	}
	if err := s.onThisNode(b); err != nil {
		writeStatus(w, err)
		return
	}
	lr, err := parseLogRequest(r)
	if err != nil {
		writeStatus(w, err)
		return
	}
	s.serveForwarded(w, r, lr, func() { s.serveLog(w, r, b) })
}

// followSlot takes a session slot for a follow: it holds a connection for
// as long as the step runs (up to a day), like an exec session, so it
// counts against the same per-node and per-user caps; a plain read does
// not.
func (s *Server) followSlot(lr *logRequest, user string) (func(), error) {
	if !lr.follow {
		return func() {}, nil
	}
	return s.sessions.acquire(user)
}

func (s *Server) serveLog(w http.ResponseWriter, r *http.Request, b *v1.Bottle) {
	lr, err := parseLogRequest(r)
	if err != nil {
		writeStatus(w, err)
		return
	}
	if s.opts.StepLogs == nil {
		writeStatus(w, statusError(http.StatusServiceUnavailable, metav1.StatusReasonServiceUnavailable,
			"the agent of node %q keeps no step logs (--step-log-dir is off)", s.opts.NodeName))
		return
	}
	step, err := s.pickStep(b, lr.step)
	if err != nil {
		writeStatus(w, err)
		return
	}
	uid := string(b.UID)
	if !s.opts.StepLogs.Has(uid, step) {
		writeStatus(w, logError(b, step, steplog.ErrNotFound))
		return
	}
	s.copyLog(w, r, uid, step, lr, "bottle", b.Namespace+"/"+b.Name)
}

// copyLog answers with the log of step under key (a Bottle's or run's UID,
// or a golden's key): kind and name say whose, in the agent's log.
func (s *Server) copyLog(w http.ResponseWriter, r *http.Request, key, step string, lr *logRequest, kind, name string) {
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush() // a follower sees the response before the first line
	err := s.opts.StepLogs.Copy(r.Context(), w, key, step, steplog.ReadOptions{
		Follow: lr.follow, TailLines: lr.tailLines, Timestamps: lr.timestamps,
		Flush: func() { _ = rc.Flush() },
	})
	if err != nil && r.Context().Err() == nil {
		s.log.V(1).Info("log stream ended early", kind, name, "step", step, "reason", err.Error())
	}
}

// pickStep is the step asked for, else the one this agent began last, else
// the last with a recorded result.
func (s *Server) pickStep(b *v1.Bottle, asked string) (string, error) {
	names := make([]string, 0, len(b.Spec.Provision))
	for _, st := range b.Spec.Provision {
		names = append(names, st.Name)
	}
	if asked != "" {
		if !slices.Contains(names, asked) && !slices.ContainsFunc(b.Status.ExecResults, func(r v1.ExecResult) bool { return r.Name == asked }) {
			if t := b.Status.Template; t != nil && slices.ContainsFunc(t.Steps, func(st v1.InheritedStep) bool { return st.Name == asked }) {
				// The fork inherited the step: it ran in the template's
				// golden, whose log is the template's.
				return "", statusError(http.StatusNotFound, metav1.StatusReasonNotFound,
					"step %q of bottle %q ran in the golden of template %q, not in the bottle: its log is the template's (kubectl bottle logs --template %s --node %s --step %s)",
					asked, b.Name, t.Name, t.Name, b.NodeName(), asked)
			}
			return "", statusError(http.StatusNotFound, metav1.StatusReasonNotFound,
				"bottle %q has no step %q (its steps: %s)", b.Name, asked, orNone(names))
		}
		return asked, nil
	}
	if step, ok := s.opts.StepLogs.Latest(string(b.UID)); ok {
		return step, nil
	}
	if n := len(b.Status.ExecResults); n > 0 {
		return b.Status.ExecResults[n-1].Name, nil
	}
	return "", statusError(http.StatusNotFound, metav1.StatusReasonNotFound,
		"bottle %q has not run a provisioning step yet (its steps: %s)", b.Name, orNone(names))
}

func logError(b *v1.Bottle, step string, err error) error {
	if errors.Is(err, steplog.ErrNotFound) {
		return statusError(http.StatusNotFound, metav1.StatusReasonNotFound,
			"step %q of bottle %q has no log on node %q: it has not run there yet (phase %s)", step, b.Name, b.NodeName(), phaseName(b.Status.Phase))
	}
	return statusError(http.StatusInternalServerError, metav1.StatusReasonInternalError, "reading the log of step %q: %v", step, err)
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}
