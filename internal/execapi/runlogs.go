package execapi

import (
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/steplog"
)

// bottleruns/log serves a BottleRun's full output, as bottles/log does a
// step's: GET .../bottleruns/NAME/log?follow=true&tailLines=N&timestamps=true.
// The kube-apiserver authorizes `get` on bottleruns/log in the aggregated
// group before proxying. The log lives on the node whose agent ran the run
// (status.nodeName), keyed by the run's UID, so it outlives a fresh Bottle
// made for the run; it goes with the run.

var bottleRunsGR = schema.GroupResource{Group: v1.GroupVersion.Group, Resource: v1.BottleRunResource}

func (s *Server) readRun(r *http.Request) (*v1.BottleRun, error) {
	run := &v1.BottleRun{}
	name := r.PathValue("name")
	err := s.reader.Get(r.Context(), types.NamespacedName{Namespace: r.PathValue("namespace"), Name: name}, run)
	if apierrors.IsNotFound(err) {
		return nil, statusError(http.StatusNotFound, metav1.StatusReasonNotFound, "%s %q not found", bottleRunsGR.String(), name)
	}
	if err != nil {
		return nil, statusError(http.StatusInternalServerError, metav1.StatusReasonInternalError, "cannot read bottlerun %q: %v", name, err)
	}
	return run, nil
}

// runLogRequest parses a run log request and reads its run; when either
// fails it has answered, and ok is false.
func (s *Server) runLogRequest(w http.ResponseWriter, r *http.Request) (lr *logRequest, run *v1.BottleRun, ok bool) {
	lr, err := parseLogRequest(r)
	if err != nil {
		writeAPIStatus(w, err)
		return nil, nil, false
	}
	if run, err = s.readRun(r); err != nil {
		writeAPIStatus(w, err)
		return nil, nil, false
	}
	return lr, run, true
}

// serveRunLogGateway serves the log here or proxies to the run's node.
func (s *Server) serveRunLogGateway(w http.ResponseWriter, r *http.Request) {
	lr, run, ok := s.runLogRequest(w, r)
	if !ok {
		return
	}
	node := run.Status.NodeName
	if run.Status.StartedAt == nil || node == "" {
		writeAPIStatus(w, statusError(http.StatusNotFound, metav1.StatusReasonNotFound,
			"bottlerun %q has not started yet (phase %s): it has no log", run.Name, runPhaseName(run)))
		return
	}
	release, err := s.followSlot(lr, userFrom(r).GetName())
	if err != nil {
		writeTooMany(w, err)
		return
	}
	defer release()
	if node == s.opts.NodeName {
		s.serveRunLog(w, r, run, lr)
		return
	}
	s.proxyToAgent(w, r, node, &sessionRequest{namespace: run.Namespace, name: run.Name,
		subresource: v1.SubresourceLog, resource: v1.BottleRunResource}, userFrom(r).GetName())
}

// serveRunLogAgent serves a run log request a gateway forwarded.
func (s *Server) serveRunLogAgent(w http.ResponseWriter, r *http.Request) {
	lr, run, ok := s.runLogRequest(w, r)
	if !ok {
		return
	}
	if run.Status.NodeName != s.opts.NodeName {
		writeAPIStatus(w, statusError(http.StatusConflict, metav1.StatusReasonConflict,
			"bottlerun %q ran on node %q, not on %q", run.Name, run.Status.NodeName, s.opts.NodeName))
		return
	}
	release, err := s.followSlot(lr, r.Header.Get(requesterHeader))
	if err != nil {
		writeTooMany(w, err)
		return
	}
	defer release()
	s.serveRunLog(w, r, run, lr)
}

func (s *Server) serveRunLog(w http.ResponseWriter, r *http.Request, run *v1.BottleRun, lr *logRequest) {
	if s.opts.StepLogs == nil {
		writeAPIStatus(w, statusError(http.StatusServiceUnavailable, metav1.StatusReasonServiceUnavailable,
			"the agent of node %q keeps no logs (--step-log-dir is off)", s.opts.NodeName))
		return
	}
	uid := string(run.UID)
	if !s.opts.StepLogs.Has(uid, v1.RunLogStep) {
		writeAPIStatus(w, statusError(http.StatusNotFound, metav1.StatusReasonNotFound,
			"bottlerun %q has no log on node %q (phase %s)", run.Name, s.opts.NodeName, runPhaseName(run)))
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	err := s.opts.StepLogs.Copy(r.Context(), w, uid, v1.RunLogStep, steplog.ReadOptions{
		Follow: lr.follow, TailLines: lr.tailLines, Timestamps: lr.timestamps,
		Flush: func() { _ = rc.Flush() },
	})
	if err != nil && r.Context().Err() == nil {
		s.log.V(1).Info("run log stream ended early", "bottlerun", run.Namespace+"/"+run.Name, "reason", err.Error())
	}
}

func runPhaseName(run *v1.BottleRun) string {
	if run.Status.Phase == "" {
		return "none yet"
	}
	return string(run.Status.Phase)
}
