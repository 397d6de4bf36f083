package execapi

import (
	"net/http"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/steplog"
)

// bottletemplates/log serves a template golden's steps' full output, as
// bottles/log does a Bottle's:
// GET .../bottletemplates/NAME/log?node=N&step=S&follow=true&tailLines=N&timestamps=true.
// A template has a golden per node, each with its own ledger (the node's
// entry of status.nodes) and its own logs on that node
// (steplog.GoldenKey): node names which one, and may be left out when only
// one node has a golden. The kube-apiserver authorizes `get` on
// bottletemplates/log in the aggregated group before proxying.

var bottleTemplatesGR = schema.GroupResource{Group: v1.GroupVersion.Group, Resource: v1.BottleTemplateResource}

// templateLogRequest parses a template log request and reads its
// template; when either fails it has answered, and ok is false.
func (s *Server) templateLogRequest(w http.ResponseWriter, r *http.Request) (*logRequest, *v1.BottleTemplate, bool) {
	t := &v1.BottleTemplate{}
	lr, ok := s.logRequestFor(w, r, bottleTemplatesGR, t)
	return lr, t, ok
}

// goldenNodes are the nodes whose entry names a golden, in status order.
func goldenNodes(t *v1.BottleTemplate) []string {
	var nodes []string
	for _, n := range t.Status.Nodes {
		if n.GoldenMachine != "" {
			nodes = append(nodes, n.NodeName)
		}
	}
	return nodes
}

// goldenNode is the node whose golden's log is asked for: the one named,
// else the only node with a golden.
func goldenNode(t *v1.BottleTemplate, asked string) (string, error) {
	nodes := goldenNodes(t)
	switch {
	case asked != "" && slices.Contains(nodes, asked):
		return asked, nil
	case asked != "":
		return "", statusError(http.StatusNotFound, metav1.StatusReasonNotFound,
			"bottletemplate %q has no golden on node %q (its goldens are on: %s)", t.Name, asked, orNone(nodes))
	case len(nodes) == 0:
		return "", statusError(http.StatusNotFound, metav1.StatusReasonNotFound,
			"bottletemplate %q has no golden on any node yet: it has no log", t.Name)
	case len(nodes) > 1:
		return "", badRequest("bottletemplate %q has goldens on several nodes (%s): name one with node= (kubectl bottle logs --template %s --node NODE)",
			t.Name, orNone(nodes), t.Name)
	}
	return nodes[0], nil
}

// goldenEntry is node's entry of t when it names a golden.
func goldenEntry(t *v1.BottleTemplate, node string) *v1.TemplateNodeStatus {
	for i := range t.Status.Nodes {
		if n := &t.Status.Nodes[i]; n.NodeName == node && n.GoldenMachine != "" {
			return n
		}
	}
	return nil
}

// serveTemplateLogGateway serves the log here or proxies to the golden's
// node.
func (s *Server) serveTemplateLogGateway(w http.ResponseWriter, r *http.Request) {
	lr, t, ok := s.templateLogRequest(w, r)
	if !ok {
		return
	}
	node, err := goldenNode(t, r.URL.Query().Get("node"))
	if err != nil {
		writeStatus(w, err)
		return
	}
	s.serveHereOrProxy(w, r, lr, node, &sessionRequest{namespace: t.Namespace, name: t.Name,
		subresource: v1.SubresourceLog, resource: v1.BottleTemplateResource}, func() { s.serveTemplateLog(w, r, t, goldenEntry(t, node), lr) })
}

// serveTemplateLogAgent serves a template log request a gateway forwarded:
// the log of this node's golden.
func (s *Server) serveTemplateLogAgent(w http.ResponseWriter, r *http.Request) {
	lr, t, ok := s.templateLogRequest(w, r)
	if !ok {
		return
	}
	entry := goldenEntry(t, s.opts.NodeName)
	if entry == nil {
		writeStatus(w, statusError(http.StatusConflict, metav1.StatusReasonConflict,
			"bottletemplate %q has no golden on node %q", t.Name, s.opts.NodeName))
		return
	}
	s.serveForwarded(w, r, lr, func() { s.serveTemplateLog(w, r, t, entry, lr) })
}

func (s *Server) serveTemplateLog(w http.ResponseWriter, r *http.Request, t *v1.BottleTemplate, entry *v1.TemplateNodeStatus, lr *logRequest) {
	if s.opts.StepLogs == nil {
		writeStatus(w, statusError(http.StatusServiceUnavailable, metav1.StatusReasonServiceUnavailable,
			"the agent of node %q keeps no step logs (--step-log-dir is off)", s.opts.NodeName))
		return
	}
	key := steplog.GoldenKey(string(t.UID), entry.GoldenMachine)
	step, err := s.pickGoldenStep(t, entry, key, lr.step)
	if err != nil {
		writeStatus(w, err)
		return
	}
	if !s.opts.StepLogs.Has(key, step) {
		writeStatus(w, statusError(http.StatusNotFound, metav1.StatusReasonNotFound,
			"step %q of bottletemplate %q has no log on node %q: its golden has not run it yet (phase %s)",
			step, t.Name, s.opts.NodeName, phaseName(entry.Phase)))
		return
	}
	s.copyLog(w, r, key, step, lr, "bottletemplate", t.Namespace+"/"+t.Name)
}

// pickGoldenStep is pickStep for a golden: the step asked for, else the one
// this agent began last, else the last with a result in the node's entry.
func (s *Server) pickGoldenStep(t *v1.BottleTemplate, entry *v1.TemplateNodeStatus, key, asked string) (string, error) {
	names := make([]string, 0, len(t.Spec.Provision))
	for _, st := range t.Spec.Provision {
		names = append(names, st.Name)
	}
	if asked != "" {
		if !slices.Contains(names, asked) && !slices.ContainsFunc(entry.ExecResults, func(r v1.ExecResult) bool { return r.Name == asked }) {
			return "", statusError(http.StatusNotFound, metav1.StatusReasonNotFound,
				"bottletemplate %q has no step %q (its steps: %s)", t.Name, asked, orNone(names))
		}
		return asked, nil
	}
	if step, ok := s.opts.StepLogs.Latest(key); ok {
		return step, nil
	}
	if n := len(entry.ExecResults); n > 0 {
		return entry.ExecResults[n-1].Name, nil
	}
	return "", statusError(http.StatusNotFound, metav1.StatusReasonNotFound,
		"the golden of bottletemplate %q on node %q has not run a provisioning step yet (its steps: %s)", t.Name, entry.NodeName, orNone(names))
}
