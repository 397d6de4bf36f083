package agent

import (
	"reflect"
	"strings"
	"testing"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

func TestMergeFileStatus(t *testing.T) {
	a := desiredFile{path: "/a", mode: 0o644, sha256: "aa"}
	b := desiredFile{path: "/b", mode: 0o600, owner: "node", sha256: "bb"}
	c := desiredFile{path: "/c", mode: 0o644, sha256: "cc"}
	fs := func(f desiredFile) v1.FileStatus {
		return v1.FileStatus{Path: f.path, SHA256: f.sha256, Mode: f.mode, Owner: f.owner}
	}
	stale := fs(b)
	stale.SHA256 = "old"
	cases := []struct {
		name         string
		want         []desiredFile
		have, copied map[string]v1.FileStatus
		out          []v1.FileStatus
	}{
		{"nothing yet", []desiredFile{a, b}, nil, nil, nil},
		{"in spec order, copied or already in place", []desiredFile{a, b, c},
			map[string]v1.FileStatus{"/c": fs(c)}, map[string]v1.FileStatus{"/b": fs(b), "/a": fs(a)},
			[]v1.FileStatus{fs(a), fs(b), fs(c)}},
		{"a stale record is dropped until copied", []desiredFile{a, b},
			map[string]v1.FileStatus{"/a": fs(a), "/b": stale}, nil, []v1.FileStatus{fs(a)}},
		{"a file gone from spec is dropped", []desiredFile{a},
			map[string]v1.FileStatus{"/a": fs(a), "/c": fs(c)}, nil, []v1.FileStatus{fs(a)}},
	}
	for _, tc := range cases {
		if got := mergeFileStatus(tc.want, tc.have, tc.copied); !reflect.DeepEqual(got, tc.out) {
			t.Errorf("%s: mergeFileStatus = %+v, want %+v", tc.name, got, tc.out)
		}
	}
}

func TestOwnerWaitVerdict(t *testing.T) {
	waits := map[string][]string{"agent": {"/home/agent/.claude/prompt.md", "/home/agent/notes"}, "bob": {"/b"}}
	v, stall := ownerWaitVerdict(waits, true)
	if stall || v.Reason != v1.ReasonWaitingForOwner ||
		v.Message != `user "agent" does not exist yet for /home/agent/.claude/prompt.md, /home/agent/notes; user "bob" does not exist yet for /b; copying once a provisioning step creates it` {
		t.Errorf("steps pending: %+v %t", v, stall)
	}
	v, stall = ownerWaitVerdict(waits, false)
	if !stall || v.Reason != v1.ReasonOwnerNotFound || !strings.Contains(v.Message, "no provisioning step is left") {
		t.Errorf("no steps left: %+v %t", v, stall)
	}
}
