package agent

import (
	"testing"
	"time"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

func TestReleasedSlots(t *testing.T) {
	labels := map[string]string{v1.LabelNamespace: "ns", v1.LabelName: "tools", labelTemplateUID: "u1", labelTemplateMachine: "d1"}
	g := goldenName("ns", "tools", "u1", "d1")
	ms := []smolvm.Machine{
		{Name: g, Labels: labels, Forkable: true, State: smolvm.StateFrozen},
		{Name: slotName(g, 0), Labels: labels, ForkpointHeld: true},
		{Name: slotName(g, 2), Labels: labels},
		{Name: slotName(g, 1), Labels: labels},
		{Name: "bottle-on-demand", Labels: labels},                  // forked on demand: the Bottle's own name
		{Name: slotName("other", 0), Labels: labels},                // named after no golden its labels name
		{Name: slotName(g, 3), Labels: map[string]string{"a": "b"}}, // not a golden's record
	}
	got := releasedSlots(ms)
	want := []string{slotName(g, 1), slotName(g, 2)}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("releasedSlots = %v, want %v", got, want)
	}
}

func TestDecideOrphans(t *testing.T) {
	now := time.Unix(1000, 0)
	const grace = time.Minute
	for _, tc := range []struct {
		name     string
		released []string
		owned    map[string]bool
		suspects map[string]time.Time
		wantDel  []string
		wantNext map[string]time.Time
	}{
		{name: "owned slots are never suspects", released: []string{"s0"}, owned: map[string]bool{"s0": true},
			suspects: map[string]time.Time{"s0": now.Add(-time.Hour)}, wantNext: map[string]time.Time{}},
		{name: "a first sighting is only a suspect", released: []string{"s0"},
			wantNext: map[string]time.Time{"s0": now}},
		{name: "seen unowned for less than the grace: kept", released: []string{"s0"},
			suspects: map[string]time.Time{"s0": now.Add(-grace + time.Second)}, wantNext: map[string]time.Time{"s0": now.Add(-grace + time.Second)}},
		{name: "seen unowned for the grace: deleted", released: []string{"s0", "s1"},
			suspects: map[string]time.Time{"s0": now.Add(-grace)}, wantDel: []string{"s0"}, wantNext: map[string]time.Time{"s1": now}},
		{name: "a suspect gone from the listing is forgotten", released: nil,
			suspects: map[string]time.Time{"s0": now.Add(-time.Hour)}, wantNext: map[string]time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			del, next := decideOrphans(tc.released, tc.owned, tc.suspects, now, grace)
			if len(del) != len(tc.wantDel) {
				t.Fatalf("del = %v, want %v", del, tc.wantDel)
			}
			for i := range del {
				if del[i] != tc.wantDel[i] {
					t.Fatalf("del = %v, want %v", del, tc.wantDel)
				}
			}
			if len(next) != len(tc.wantNext) {
				t.Fatalf("next = %v, want %v", next, tc.wantNext)
			}
			for k, v := range tc.wantNext {
				if !next[k].Equal(v) {
					t.Fatalf("next = %v, want %v", next, tc.wantNext)
				}
			}
		})
	}
}
