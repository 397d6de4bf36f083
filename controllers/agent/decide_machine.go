package agent

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

// Pure decisions about the machine: whose it is, what to do with its power,
// and whether it still matches the spec. Table tests in
// decide_machine_test.go.

type ownership int

const (
	machineMissing ownership = iota
	machineOurs
	machineForeign
)

// ownerOf says whether a machine is this Bottle's: the UID label, set at
// create, is what lets an agent adopt its machine after a restart and refuse
// to touch anyone else's.
func ownerOf(m *smolvm.Machine, uid string) ownership {
	switch {
	case m == nil:
		return machineMissing
	case m.Labels[v1.LabelUID] == uid:
		return machineOurs
	default:
		return machineForeign
	}
}

type powerAction int

const (
	// powerNone: the machine is as runState asks.
	powerNone powerAction = iota
	powerStart
	// powerRestart: stop then start; the only cure for a silent guest agent.
	powerRestart
	powerStop
	// powerWait: the machine is unreachable, but not for long enough to
	// restart it (DefaultUnreachableGrace).
	powerWait
)

// decidePower maps runState and smolvm's state to an action. unexpected is
// set when a machine this agent saw running went down on its own (a Warning
// event rather than a Normal one). An unreachable machine is restarted only
// once it has been unreachable for grace (unreachableFor).
func decidePower(want v1.RunState, state, lastSeen string, unreachableFor, grace time.Duration) (action powerAction, unexpected bool) {
	if want == v1.RunStateStopped {
		if state == smolvm.StateRunning || state == smolvm.StateUnreachable {
			return powerStop, false
		}
		return powerNone, false
	}
	unexpected = lastSeen == smolvm.StateRunning && state != smolvm.StateRunning
	switch state {
	case smolvm.StateRunning:
		return powerNone, false
	case smolvm.StateUnreachable:
		if unreachableFor < grace {
			return powerWait, false
		}
		// Past the grace the guest agent went silent on its own, whatever
		// the last pass recorded (it recorded the wait).
		return powerRestart, true
	default:
		return powerStart, unexpected
	}
}

// networkDigest identifies an egress allowlist independent of order; it is
// recorded as a machine label at create, because smolvm's status does not
// report the allowlist.
func networkDigest(n v1.Network) string {
	hosts, cidrs := slices.Clone(n.AllowHosts), slices.Clone(n.AllowCIDRs)
	slices.Sort(hosts)
	slices.Sort(cidrs)
	sum := sha256.Sum256([]byte(strings.Join(hosts, ",") + "|" + strings.Join(cidrs, ",")))
	return hex.EncodeToString(sum[:])[:16]
}

func describeNetwork(n v1.Network) string {
	if len(n.AllowHosts)+len(n.AllowCIDRs) == 0 {
		return "no network"
	}
	return "allowHosts " + fmt.Sprint(n.AllowHosts) + ", allowCIDRs " + fmt.Sprint(n.AllowCIDRs)
}

// decideResize says whether the machine differs from the spec only in
// size, which `machine update` changes on a stopped machine keeping its
// disk (smolvm:src/cli/machine.rs:4183-4266), and the values to set (0:
// unchanged). Any other difference needs a new machine.
func decideResize(spec *v1.BottleSpec, m *smolvm.Machine) (cpus, memMiB int, ok bool) {
	if len(machineDiffs(&spec.MachineSpec, m)) == 0 {
		return 0, 0, false
	}
	resized := *m
	res := spec.Resources.OrDefault()
	if m.CPUs != 0 && m.CPUs != int(res.CPUs) {
		cpus, resized.CPUs = int(res.CPUs), int(res.CPUs)
	}
	if m.MemoryMiB != 0 && m.MemoryMiB != int(res.MemoryMiB) {
		memMiB, resized.MemoryMiB = int(res.MemoryMiB), int(res.MemoryMiB)
	}
	if len(machineDiffs(&spec.MachineSpec, &resized)) > 0 {
		return 0, 0, false
	}
	return cpus, memMiB, true
}

type driftAction int

const (
	driftNone driftAction = iota
	// driftReport: keep the machine, say what is not applied (Stalled).
	driftReport
	// driftRecreate: delete the machine (its disk too) and start over.
	driftRecreate
)

// decideDrift turns the diffs into an action under spec.recreatePolicy.
func decideDrift(diffs []string, policy v1.RecreatePolicy) (driftAction, string) {
	if len(diffs) == 0 {
		return driftNone, ""
	}
	what := strings.Join(diffs, ", ")
	if policy == v1.RecreateOnChange {
		return driftRecreate, what + ": recreating the machine (recreatePolicy OnChange; its disk is lost) and provisioning it again"
	}
	return driftReport, what + ": smolvm cannot change an existing machine; the spec is not applied. " +
		"Set spec.recreatePolicy: OnChange to recreate it (its disk is lost), or delete and re-create the Bottle"
}

// failurePolicy is how a smolvm error is handled.
type failurePolicy struct {
	Reason string
	// Stall: only a human can fix it; retry slowly (RetryAfter) if at all.
	Stall bool
}

// decideFailure classifies a driver error: a host without KVM or a name
// smolvm refuses needs a human; a hung call is named as such; anything
// else is retried with the workqueue's backoff.
func decideFailure(class smolvm.ErrorClass) failurePolicy {
	switch class {
	case smolvm.ClassKVMUnavailable:
		return failurePolicy{Reason: v1.ReasonKVMUnavailable, Stall: stallReasons[v1.ReasonKVMUnavailable]}
	case smolvm.ClassInvalidName:
		return failurePolicy{Reason: v1.ReasonInvalidName, Stall: stallReasons[v1.ReasonInvalidName]}
	case smolvm.ClassUnresolvableHost:
		return failurePolicy{Reason: v1.ReasonAllowHostUnresolvable, Stall: stallReasons[v1.ReasonAllowHostUnresolvable]}
	case smolvm.ClassTimeout:
		return failurePolicy{Reason: v1.ReasonSmolvmTimeout}
	default:
		return failurePolicy{Reason: v1.ReasonSmolvmError}
	}
}

// holdStall decides whether a Bottle stalled by a failure only a human can
// clear (a host without KVM, a name smolvm refuses) stays stalled without
// asking smolvm again: yes while the spec is the one that stalled, no retry
// is asked for, and the retry period since the stall has not passed. Asking
// again on every event would flap the status between progress and Failed,
// and each write is an event that starts the next pass. It returns how long
// the hold lasts.
func holdStall(st *v1.BottleStatus, generation int64, retry retryRequest, now time.Time, period time.Duration) (*metav1.Condition, time.Duration) {
	c := meta.FindStatusCondition(st.Conditions, v1.ConditionStalled)
	if c == nil || c.Status != metav1.ConditionTrue || st.ObservedGeneration != generation || retry.Token != "" {
		return nil, 0
	}
	if !stallReasons[c.Reason] {
		return nil, 0
	}
	left := c.LastTransitionTime.Add(period).Sub(now)
	if left <= 0 {
		return nil, 0
	}
	return c, left
}

// stallReasons are the smolvm failures only a human can clear: decideFailure
// stalls on them and holdStall keeps them, from this one list.
var stallReasons = map[string]bool{v1.ReasonKVMUnavailable: true, v1.ReasonInvalidName: true,
	v1.ReasonAllowHostUnresolvable: true}
