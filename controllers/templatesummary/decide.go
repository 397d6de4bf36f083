// Package templatesummary is the cluster controller's part of a
// BottleTemplate's status: the summary (observedGeneration, Ready,
// Reconciling, Stalled, goldenNodes, freeSlots) of the entries each node's
// agent writes into status.nodes. The agents never write it: each owns
// only its own entry (see BottleTemplateStatus).
package templatesummary

import (
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// Reasons of a template's conditions.
const (
	// ReasonGoldenReady: some node has a Ready golden of the current
	// generation (Ready=True).
	ReasonGoldenReady = "GoldenReady"
	// ReasonGoldenOnDemand: no node keeps a golden ahead of time (policy
	// OnDemand, no nodeSelector) and none has built one yet: the template
	// is usable (Ready=True), its first Bottle on a node builds it there.
	ReasonGoldenOnDemand = "GoldenOnDemand"
	// ReasonNoGolden: nodes should keep a golden (a nodeSelector) and none
	// has reported one of the current generation yet (Ready=False,
	// Reconciling=True).
	ReasonNoGolden = "NoGolden"
	// ReasonGoldenProvisioning: some node's golden is not at the current
	// generation yet, or is being provisioned (Reconciling=True).
	ReasonGoldenProvisioning = "GoldenProvisioning"
	// ReasonGoldenFailed: some node's golden of the current generation
	// failed (Stalled=True): edit the template or retry it.
	ReasonGoldenFailed = "GoldenFailed"
)

// verdict is one condition's status, reason and message.
type verdict struct {
	Status  metav1.ConditionStatus
	Reason  string
	Message string
}

// Summary is what the cluster controller writes into a template's status.
type Summary struct {
	GoldenNodes int32
	FreeSlots   int32
	Ready       verdict
	// Reconciling and Stalled are nil when the condition is not wanted (an
	// apply without it removes it).
	Reconciling, Stalled *verdict
}

// Summarize reads t's status.nodes against t's generation. A node counts
// as golden when its entry is Ready at the current generation; its free
// slots count then. An entry of an earlier generation counts for nothing:
// a selected node's agent moves it to the new generation as soon as it
// starts the new golden, and an on-demand node keeps its old one only for
// its clones. Any current-generation golden that Failed stalls the
// template; any being provisioned keeps it Reconciling. Ready says whether
// a Bottle of the template can start: from a ready golden somewhere, or,
// for a template no node keeps ahead of time, from one its node builds.
// The entry of a node whose agent is not live (live says; nil: every node
// is) counts for nothing either: no Bottle can be forked there.
func Summarize(t *v1.BottleTemplate, live func(node string) bool) Summary {
	var s Summary
	var ready, failed, busy, gone []string
	failMsg := ""
	nodes := slices.Clone(t.Status.Nodes)
	slices.SortFunc(nodes, func(a, b v1.TemplateNodeStatus) int { return strings.Compare(a.NodeName, b.NodeName) })
	for _, n := range nodes {
		switch {
		case live != nil && !live(n.NodeName):
			gone = append(gone, n.NodeName)
		case n.TemplateGeneration != t.Generation:
		case n.Phase == v1.PhaseReady:
			ready = append(ready, n.NodeName)
			s.FreeSlots += n.FreeSlots
		case n.Phase == v1.PhaseFailed:
			if failed == nil {
				failMsg = n.Message
			}
			failed = append(failed, n.NodeName)
		default:
			busy = append(busy, n.NodeName)
		}
	}
	s.GoldenNodes = int32(len(ready))
	gen := t.Generation

	switch {
	case len(failed) > 0:
		msg := fmt.Sprintf("golden machine of generation %d failed on %s", gen, nodeList(failed))
		if failMsg != "" {
			msg += ": " + failMsg
		}
		s.Stalled = &verdict{metav1.ConditionTrue, ReasonGoldenFailed, msg}
		s.Ready = verdict{metav1.ConditionFalse, ReasonGoldenFailed, msg}
	case len(busy) > 0:
		msg := fmt.Sprintf("golden machine of generation %d being provisioned on %s", gen, nodeList(busy))
		s.Reconciling = &verdict{metav1.ConditionTrue, ReasonGoldenProvisioning, msg}
		s.Ready = verdict{metav1.ConditionFalse, ReasonGoldenProvisioning, msg}
	case len(ready) == 0 && len(t.Spec.Pool.NodeSelector) > 0:
		msg := fmt.Sprintf("no node matching pool.nodeSelector has reported a golden machine of generation %d yet", gen)
		if len(gone) > 0 {
			msg += fmt.Sprintf(" (%s without a live agent)", nodeList(gone))
		}
		s.Reconciling = &verdict{metav1.ConditionTrue, ReasonNoGolden, msg}
		s.Ready = verdict{metav1.ConditionFalse, ReasonNoGolden, msg}
	case len(ready) == 0:
		s.Ready = verdict{metav1.ConditionTrue, ReasonGoldenOnDemand,
			fmt.Sprintf("no node keeps a golden machine of generation %d yet: the first Bottle of it on a node builds one there", gen)}
	}
	if len(ready) > 0 {
		s.Ready = verdict{metav1.ConditionTrue, ReasonGoldenReady,
			fmt.Sprintf("golden machine of generation %d ready on %s; %d free held slot(s)", gen, nodeList(ready), s.FreeSlots)}
	}
	return s
}

// nodeList names up to three nodes, then how many more.
func nodeList(nodes []string) string {
	const shown = 3
	word := "node"
	if len(nodes) > 1 {
		word = "nodes"
	}
	if len(nodes) <= shown {
		return word + " " + strings.Join(nodes, ", ")
	}
	return fmt.Sprintf("%s %s and %d more", word, strings.Join(nodes[:shown], ", "), len(nodes)-shown)
}
