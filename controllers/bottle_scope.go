package controllers

import (
	"github.com/go-logr/logr"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

// scope is what one reconcile pass knows: the Bottle being changed, the
// status it started from, and what it learned from smolvm along the way.
type scope struct {
	log    logr.Logger
	bottle *v1.Bottle
	// before is the status as read, so the deferred patch can skip a no-op.
	before *v1.BottleStatus

	machineName string
	// machine is smolvm's view of the machine; nil when it does not exist.
	machine *smolvm.Machine
	// sources reads the ConfigMaps and Secrets the files and env name, each
	// at most once per pass.
	sources *sources

	// finalized is set once the finalizer is gone: the object may be too.
	finalized bool

	// stalledReason/Message are set by a phase that cannot make progress
	// without a change from a human (kstatus Stalled).
	stalledReason  string
	stalledMessage string

	// waitingReason/Message describe why the Bottle is not Ready yet while
	// progress is still expected (kstatus Reconciling).
	waitingReason  string
	waitingMessage string
}

func (s *scope) wait(reason, message string) {
	if s.waitingReason == "" {
		s.waitingReason, s.waitingMessage = reason, message
	}
}

func (s *scope) stall(reason, message string) {
	s.stalledReason, s.stalledMessage = reason, message
}

func (s *scope) stalled() bool { return s.stalledReason != "" }

func (s *scope) spec() *v1.BottleSpec     { return &s.bottle.Spec }
func (s *scope) status() *v1.BottleStatus { return &s.bottle.Status }
