package execapi

import (
	"fmt"
	"net/http"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// sessionRefusal says why no exec or attach session can start in b, or nil
// when one may: wherever a machine may run (Creating, Starting,
// CopyingFiles, Provisioning, Ready, Failed, or no status yet), so a shell
// can debug a failed or hung step. It decides from the Bottle alone (no
// smolvm call, no extra round trip); when the machine turns out not to run,
// smolvm's refusal reaches the client as the session's final status.
func sessionRefusal(b *v1.Bottle) error {
	phase := b.Status.Phase
	switch {
	case b.DeletionTimestamp != nil:
		return conflict("bottle %q is being deleted (phase %s): no new sessions", b.Name, phaseName(phase))
	case b.Spec.RunState == v1.RunStateStopped:
		return conflict("bottle %q has no running machine: runState is Stopped: set it to Running "+
			"(kubectl patch bottle %s --type merge -p '{\"spec\":{\"runState\":\"Running\"}}')", b.Name, b.Name)
	case idleStopped(b):
		// Not refused: the Bottle's agent starts it again (wakeIdle).
	case phase == v1.PhaseStopped:
		return conflict("bottle %q has no running machine (phase Stopped) while its agent starts it again: "+
			"wait with kubectl bottle wait %s --for=Ready", b.Name, b.Name)
	case phase == v1.PhasePending:
		return conflict("bottle %q has no machine yet (phase Pending%s): wait with kubectl bottle wait %s --for=Provisioning",
			b.Name, conditionMessage(b), b.Name)
	case phase == v1.PhaseDeleting:
		return conflict("bottle %q is being deleted (phase Deleting): no new sessions", b.Name)
	}
	if b.NodeName() == "" {
		return conflict("bottle %q has no node", b.Name)
	}
	return nil
}

func phaseName(p v1.Phase) string {
	if p == "" {
		return "unknown"
	}
	return string(p)
}

// conditionMessage is ": <Ready message>" when there is one.
func conditionMessage(b *v1.Bottle) string {
	for _, c := range b.Status.Conditions {
		if c.Type == v1.ConditionReady && c.Message != "" {
			return ": " + c.Message
		}
	}
	return ""
}

func conflict(format string, args ...any) error {
	return statusError(http.StatusConflict, metav1.StatusReasonConflict, "%s", fmt.Sprintf(format, args...))
}
