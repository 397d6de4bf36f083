package execapi

import (
	"net/http"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// bottleruns/log serves a BottleRun's full output, as bottles/log does a
// step's: GET .../bottleruns/NAME/log?follow=true&tailLines=N&timestamps=true.
// The kube-apiserver authorizes `get` on bottleruns/log in the aggregated
// group before proxying. The log lives on the node whose agent ran the run
// (status.nodeName), keyed by the run's UID, so it outlives a fresh Bottle
// made for the run; it goes with the run.

var bottleRunsGR = schema.GroupResource{Group: v1.GroupVersion.Group, Resource: v1.BottleRunResource}

// runLogRequest parses a run log request and reads its run; when either
// fails it has answered, and ok is false.
func (s *Server) runLogRequest(w http.ResponseWriter, r *http.Request) (*logRequest, *v1.BottleRun, bool) {
	run := &v1.BottleRun{}
	lr, ok := s.logRequestFor(w, r, bottleRunsGR, run)
	return lr, run, ok
}

// serveRunLogGateway serves the log here or proxies to the run's node.
func (s *Server) serveRunLogGateway(w http.ResponseWriter, r *http.Request) {
	lr, run, ok := s.runLogRequest(w, r)
	if !ok {
		return
	}
	node := run.Status.NodeName
	if run.Status.StartedAt == nil || node == "" {
		writeStatus(w, statusError(http.StatusNotFound, metav1.StatusReasonNotFound,
			"bottlerun %q has not started yet (phase %s): it has no log", run.Name, runPhaseName(run)))
		return
	}
	s.serveHereOrProxy(w, r, lr, node, &sessionRequest{namespace: run.Namespace, name: run.Name,
		subresource: v1.SubresourceLog, resource: v1.BottleRunResource}, func() { s.serveRunLog(w, r, run, lr) })
}

// serveRunLogAgent serves a run log request a gateway forwarded.
func (s *Server) serveRunLogAgent(w http.ResponseWriter, r *http.Request) {
	lr, run, ok := s.runLogRequest(w, r)
	if !ok {
		return
	}
	if run.Status.NodeName != s.opts.NodeName {
		writeStatus(w, statusError(http.StatusConflict, metav1.StatusReasonConflict,
			"bottlerun %q ran on node %q, not on %q", run.Name, run.Status.NodeName, s.opts.NodeName))
		return
	}
	s.serveForwarded(w, r, lr, func() { s.serveRunLog(w, r, run, lr) })
}

func (s *Server) serveRunLog(w http.ResponseWriter, r *http.Request, run *v1.BottleRun, lr *logRequest) {
	if s.opts.StepLogs == nil {
		writeStatus(w, statusError(http.StatusServiceUnavailable, metav1.StatusReasonServiceUnavailable,
			"the agent of node %q keeps no logs (--step-log-dir is off)", s.opts.NodeName))
		return
	}
	uid := string(run.UID)
	if !s.opts.StepLogs.Has(uid, v1.RunLogStep) {
		writeStatus(w, statusError(http.StatusNotFound, metav1.StatusReasonNotFound,
			"bottlerun %q has no log on node %q (phase %s)", run.Name, s.opts.NodeName, runPhaseName(run)))
		return
	}
	s.copyLog(w, r, uid, v1.RunLogStep, lr, "bottlerun", run.Namespace+"/"+run.Name)
}

func runPhaseName(run *v1.BottleRun) string {
	if run.Status.Phase == "" {
		return "none yet"
	}
	return string(run.Status.Phase)
}
