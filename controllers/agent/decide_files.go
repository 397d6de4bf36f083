package agent

import (
	"fmt"
	"slices"
	"strings"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// ownerWaitVerdict says what files waiting for their owner mean: while a
// step is still to run it may create the user, so wait (and say which
// files wait for whom); once none is left, only a human can help.
func ownerWaitVerdict(waits map[string][]string, stepsPending bool) (verdict, bool) {
	owners := make([]string, 0, len(waits))
	for o := range waits {
		owners = append(owners, o)
	}
	slices.Sort(owners)
	parts := make([]string, 0, len(owners))
	for _, o := range owners {
		parts = append(parts, fmt.Sprintf("user %q does not exist yet for %s", o, strings.Join(waits[o], ", ")))
	}
	what := strings.Join(parts, "; ")
	if stepsPending {
		return verdict{v1.ReasonWaitingForOwner, what + "; copying once a provisioning step creates it"}, false
	}
	return verdict{v1.ReasonOwnerNotFound, what + "; no provisioning step is left to create it: " +
		"create the user in a step, or change the owner (or execUser)"}, true
}

// mergeFileStatus lists, in spec order, the files known to be in the guest.
func mergeFileStatus(want []desiredFile, have, copied map[string]v1.FileStatus) []v1.FileStatus {
	var out []v1.FileStatus
	for _, f := range want {
		if c, ok := copied[f.path]; ok {
			out = append(out, c)
		} else if h, ok := have[f.path]; ok && f.inPlace(h) {
			out = append(out, h)
		}
	}
	return out
}
