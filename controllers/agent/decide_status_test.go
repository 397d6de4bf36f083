package agent

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

func TestSummarize(t *testing.T) {
	running := summaryInput{RunState: v1.RunStateRunning, MachineName: "m", MachineState: smolvm.StateRunning,
		MachineReady: true, FilesReady: true, Provisioned: true}
	with := func(mut func(*summaryInput)) summaryInput {
		in := running
		mut(&in)
		return in
	}
	failed := verdict{v1.ReasonStepFailed, "step x failed"}
	notApplied := verdict{v1.ReasonRecreateRequired, "spec.image not applied"}
	cases := []struct {
		name string
		in   summaryInput
		want summary
	}{
		{"ready", running, summary{Phase: v1.PhaseReady, ReadyTrue: true,
			Ready: verdict{v1.ReasonReady, "machine running, files in place, provisioning done"}}},
		{"new Bottle: reconciling from the first write", summaryInput{RunState: v1.RunStateRunning, MachineName: "m",
			Waiting: verdict{v1.ReasonProgressing, "reconciling generation 1"}},
			summary{Phase: v1.PhaseCreating, Ready: verdict{v1.ReasonProgressing, "reconciling generation 1"},
				Reconciling: verdict{v1.ReasonProgressing, "reconciling generation 1"}}},
		{"no machine name yet", summaryInput{RunState: v1.RunStateRunning},
			summary{Phase: v1.PhasePending, Ready: verdict{v1.ReasonProgressing, "phase Pending"}, Reconciling: verdict{v1.ReasonProgressing, "phase Pending"}}},
		{"starting", with(func(in *summaryInput) { in.MachineState, in.MachineReady = smolvm.StateCreated, false }),
			summary{Phase: v1.PhaseStarting, Ready: verdict{v1.ReasonProgressing, "phase Starting"}, Reconciling: verdict{v1.ReasonProgressing, "phase Starting"}}},
		{"copying", with(func(in *summaryInput) { in.FilesReady = false }),
			summary{Phase: v1.PhaseCopyingFiles, Ready: verdict{v1.ReasonProgressing, "phase CopyingFiles"}, Reconciling: verdict{v1.ReasonProgressing, "phase CopyingFiles"}}},
		{"files wait for an owner a step creates", with(func(in *summaryInput) {
			in.FilesReady, in.FilesWaitForSteps, in.Provisioned = false, true, false
		}), summary{Phase: v1.PhaseProvisioning, Ready: verdict{v1.ReasonProgressing, "phase Provisioning"}, Reconciling: verdict{v1.ReasonProgressing, "phase Provisioning"}}},
		{"a step runs", with(func(in *summaryInput) {
			in.Provisioned, in.Waiting = false, verdict{v1.ReasonProvisioning, `running step "a" (1/1) as node`}
		}), summary{Phase: v1.PhaseProvisioning, Ready: verdict{v1.ReasonProvisioning, `running step "a" (1/1) as node`},
			Reconciling: verdict{v1.ReasonProvisioning, `running step "a" (1/1) as node`}}},
		{"about to act: never Ready, whatever the conditions say from before", with(func(in *summaryInput) {
			in.Pending, in.Waiting = true, verdict{v1.ReasonProgressing, "reconciling generation 2"}
		}), summary{Phase: v1.PhaseProvisioning, Ready: verdict{v1.ReasonProgressing, "reconciling generation 2"},
			Reconciling: verdict{v1.ReasonProgressing, "reconciling generation 2"}}},
		{"stalled", with(func(in *summaryInput) { in.Provisioned, in.Stalled = false, failed }),
			summary{Phase: v1.PhaseFailed, Ready: failed, Stalled: failed}},
		{"error without a reason", with(func(in *summaryInput) { in.Err = "boom" }),
			summary{Phase: v1.PhaseProvisioning, Ready: verdict{v1.ReasonReconcileError, "boom"}, Reconciling: verdict{v1.ReasonReconcileError, "boom"}}},
		{"stopped as asked is Ready", with(func(in *summaryInput) {
			in.RunState, in.MachineState, in.MachineReady = v1.RunStateStopped, smolvm.StateStopped, false
		}), summary{Phase: v1.PhaseStopped, ReadyTrue: true, Ready: verdict{v1.ReasonMachineStopped, "machine stopped as runState asks; its disk is kept"}}},
		{"stopping is not Ready yet", with(func(in *summaryInput) {
			in.RunState, in.MachineReady, in.Waiting = v1.RunStateStopped, false, verdict{v1.ReasonMachineStopped, "stopping machine m"}
		}), summary{Phase: v1.PhaseStarting, Ready: verdict{v1.ReasonMachineStopped, "stopping machine m"}, Reconciling: verdict{v1.ReasonMachineStopped, "stopping machine m"}}},
		{"spec not applied: never green", with(func(in *summaryInput) { in.NotApplied = notApplied }),
			summary{Phase: v1.PhaseFailed, Ready: notApplied, Stalled: notApplied}},
		{"spec not applied while work is pending: reconciling", with(func(in *summaryInput) {
			in.NotApplied, in.Provisioned, in.Waiting = notApplied, false, verdict{v1.ReasonProvisioning, "step"}
		}), summary{Phase: v1.PhaseProvisioning, Ready: verdict{v1.ReasonProvisioning, "step"}, Reconciling: verdict{v1.ReasonProvisioning, "step"}}},
		{"deleting", with(func(in *summaryInput) {
			in.Deleting, in.Waiting = true, verdict{v1.ReasonDeletionBlocked, "cannot delete"}
		}),
			summary{Phase: v1.PhaseDeleting, Ready: verdict{v1.ReasonDeletionBlocked, "cannot delete"}, Reconciling: verdict{v1.ReasonDeletionBlocked, "cannot delete"}}},
		{"deleting a stalled Bottle reconciles", with(func(in *summaryInput) { in.Deleting, in.Stalled = true, failed }),
			summary{Phase: v1.PhaseDeleting, Ready: verdict{v1.ReasonProgressing, "phase Deleting"}, Reconciling: verdict{v1.ReasonProgressing, "phase Deleting"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := summarize(tc.in)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("summarize =\n %+v\nwant\n %+v", got, tc.want)
			}
			// kstatus' invariant: exactly one of Ready, Reconciling, Stalled.
			n := 0
			for _, b := range []bool{got.ReadyTrue, got.Reconciling.set(), got.Stalled.set()} {
				if b {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%d of Ready/Reconciling/Stalled are true: %+v", n, got)
			}
		})
	}
}

func TestTailForStatus(t *testing.T) {
	escaped := func(s string) int {
		raw, _ := json.Marshal(s)
		return len(raw) - 2
	}
	cases := []struct {
		name, in string
		budget   int
		want     string
	}{
		{"fits", "hello\nworld\n", 100, "hello\nworld\n"},
		{"cut starts at a line boundary", "first line\nsecond\n", 10, "second\n"},
		{"cut exactly at a boundary keeps the line", "aaaa\nbbbb\n", 6, "bbbb\n"},
		{"one long line is cut mid-line", strings.Repeat("x", 50), 10, strings.Repeat("x", 10)},
		{"escaped characters count 6", strings.Repeat("<", 10), 12, "<<"},
		{"invalid UTF-8 is replaced", "ok\xff", 100, "ok\uFFFD"},
		{"DEL, C1 controls and non-characters are replaced", "a\x7fb\u0085c\u009fd\uffffe\ufffe", 100, "a\uFFFDb\uFFFDc\uFFFDd\uFFFDe\uFFFD"},
		{"C0 controls stay (JSON escapes them)", "a\x01b\tc", 100, "a\x01b\tc"},
	}
	for _, tc := range cases {
		got := tailForStatus(tc.in, tc.budget)
		if got != tc.want {
			t.Errorf("%s: tailForStatus = %q, want %q", tc.name, got, tc.want)
		}
		if escaped(got) > tc.budget || !utf8.ValidString(got) {
			t.Errorf("%s: %q is %d bytes escaped (budget %d)", tc.name, got, escaped(got), tc.budget)
		}
	}
	// Server-side apply bodies are read as YAML: every possible byte of
	// output must survive JSON encoding and a YAML read.
	var all strings.Builder
	for b := 0; b < 256; b++ {
		all.WriteByte(byte(b))
	}
	all.WriteString("\u0080\u0085\u009f\ufffe\uffff\u2028")
	raw, _ := json.Marshal(map[string]string{"stdout": tailForStatus(all.String(), OutputTail)})
	if _, err := yaml.YAMLToJSON(raw); err != nil {
		t.Errorf("a tail of every byte is refused as YAML: %v", err)
	}
	// A worst case: 4 KiB of '<' escapes to 24 KiB; the tail keeps 4 KiB escaped.
	big := tailForStatus(strings.Repeat("<", OutputTail), OutputTail)
	if escaped(big) > OutputTail || len(big) != OutputTail/6 {
		t.Errorf("'<' tail: %d chars, %d escaped", len(big), escaped(big))
	}
}

func TestTooLargeStatus(t *testing.T) {
	cases := []struct {
		err  error
		want bool
	}{
		{apierrors.NewRequestEntityTooLargeError("limit is 3145728"), true},
		{apierrors.NewInternalError(errors.New("etcdserver: request is too large")), true},
		{apierrors.NewConflict(schema.GroupResource{Resource: "bottles"}, "b", errors.New("changed")), false},
		{errors.New("connection refused"), false},
	}
	for _, tc := range cases {
		if got := isTooLarge(tc.err); got != tc.want {
			t.Errorf("isTooLarge(%v) = %t, want %t", tc.err, got, tc.want)
		}
	}
	st := &v1.BottleStatus{ExecResults: []v1.ExecResult{{Name: "a", Stdout: "out", Stderr: "err"}, {Name: "b"}}}
	trimTails(st)
	if r := st.ExecResults[0]; r.Stdout != "" || r.Stderr != "" || !r.Truncated || st.ExecResults[1].Truncated {
		t.Errorf("trimTails: %+v", st.ExecResults)
	}
}

func TestPhaseEventWanted(t *testing.T) {
	cases := []struct {
		from, to v1.Phase
		want     bool
	}{
		{"", v1.PhasePending, false},
		{"", v1.PhaseCreating, false},
		{v1.PhasePending, v1.PhaseCreating, false},
		{v1.PhaseCreating, v1.PhaseStarting, false},
		{v1.PhaseStarting, v1.PhaseCopyingFiles, false},
		{v1.PhaseCopyingFiles, v1.PhaseProvisioning, false},
		{v1.PhaseProvisioning, v1.PhaseReady, true},
		{v1.PhaseCreating, v1.PhaseFailed, true},
		{v1.PhaseReady, v1.PhaseStopped, true},
		{v1.PhaseReady, v1.PhaseProvisioning, true},
		{v1.PhaseReady, v1.PhaseStarting, true},
		{v1.PhaseFailed, v1.PhaseCreating, true},
		{v1.PhaseStopped, v1.PhaseStarting, false},
		{v1.PhaseReady, v1.PhaseReady, false},
		{v1.PhaseFailed, v1.PhaseFailed, false},
		{v1.PhaseProvisioning, v1.PhaseDeleting, false},
	}
	for _, c := range cases {
		if got := phaseEventWanted(c.from, c.to); got != c.want {
			t.Errorf("phaseEventWanted(%q, %q) = %v, want %v", c.from, c.to, got, c.want)
		}
	}
}
