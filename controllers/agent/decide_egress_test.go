package agent

import (
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

func denial(sec int, op, dest string) smolvm.EgressDenial {
	return smolvm.EgressDenial{Timestamp: fmt.Sprintf("2026-08-13T02:31:%02dZ", sec), Operation: op, Dest: dest}
}

func at(sec int) time.Time { return time.Date(2026, 8, 13, 2, 31, sec, 0, time.UTC) }

func TestNewDenials(t *testing.T) {
	log := []smolvm.EgressDenial{
		denial(1, "connect", "10.0.0.1:443"),
		denial(2, "resolve", "pypi.org"),
		denial(2, "resolve", "pypi.org"),
		{Timestamp: "", Operation: "connect", Dest: "10.0.0.9:1"},
		denial(3, "connect", "10.0.0.1:443"),
	}
	for _, tc := range []struct {
		name   string
		events []smolvm.EgressDenial
		cursor egressCursor
		fresh  int
		next   egressCursor
	}{
		{"first read takes everything with a timestamp", log, egressCursor{}, 4, egressCursor{at(3), 1}},
		{"nothing new", log, egressCursor{at(3), 1}, 0, egressCursor{at(3), 1}},
		{"a second record in the cursor's second is new", append(log, denial(3, "resolve", "x.org")), egressCursor{at(3), 1}, 1, egressCursor{at(3), 2}},
		{"mid-second cursor", log, egressCursor{at(2), 1}, 2, egressCursor{at(3), 1}},
		{"after a restart, the status's second counts as read", log, cursorFromStatus([]v1.EgressRefusal{{LastSeen: metav1.NewTime(at(2))}}), 1, egressCursor{at(3), 1}},
		{"a recreated machine's empty log", nil, egressCursor{at(3), 1}, 0, egressCursor{at(3), 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fresh, next := newDenials(tc.events, tc.cursor)
			if len(fresh) != tc.fresh || !next.at.Equal(tc.next.at) || next.n != tc.next.n {
				t.Fatalf("fresh %v next %+v, want %d fresh and %+v", fresh, next, tc.fresh, tc.next)
			}
		})
	}
}

func TestMergeRefusalsKeepsTheMostRecentDistinctDestinations(t *testing.T) {
	var fresh []smolvm.EgressDenial
	for i := 0; i < 20; i++ {
		fresh = append(fresh, denial(i, "connect", fmt.Sprintf("10.0.0.%d:443", i)))
	}
	fresh = append(fresh, denial(30, "resolve", "pypi.org"), denial(31, "resolve", "pypi.org"))
	old := []v1.EgressRefusal{{Operation: "resolve", Destination: "pypi.org", Count: 5, FirstSeen: metav1.NewTime(at(0)), LastSeen: metav1.NewTime(at(0))}}
	got := mergeRefusals(old, tallyDenials(fresh), v1.MaxEgressRefusals)
	if len(got) != v1.MaxEgressRefusals {
		t.Fatalf("%d refusals, want the bound %d", len(got), v1.MaxEgressRefusals)
	}
	if got[0].Key() != "resolve pypi.org" || got[0].Count != 7 || !got[0].FirstSeen.Time.Equal(at(0)) || !got[0].LastSeen.Time.Equal(at(31)) {
		t.Fatalf("most recent first, counts summed: %+v", got[0])
	}
	if got[len(got)-1].Destination != "10.0.0.5:443" {
		t.Fatalf("the oldest destinations are dropped first: last is %+v", got[len(got)-1])
	}
}

func TestEgressEventNotes(t *testing.T) {
	var fresh []smolvm.EgressDenial
	for i := 0; i < 12; i++ {
		fresh = append(fresh, denial(1, "connect", "10.0.0.1:443"))
	}
	fresh = append(fresh, denial(2, "resolve", "pypi.org"))
	notes := egressNotes(tallyDenials(fresh), 5*time.Minute)
	want := []string{"refused resolve pypi.org ×1 in the last 5m0s", "refused connect to 10.0.0.1:443 ×12 in the last 5m0s"}
	if fmt.Sprint(notes) != fmt.Sprint(want) {
		t.Fatalf("notes %q, want %q", notes, want)
	}
	fresh = nil
	for i := 0; i < 8; i++ {
		fresh = append(fresh, denial(i, "connect", fmt.Sprintf("10.0.0.%d:443", i)))
	}
	notes = egressNotes(tallyDenials(fresh), time.Minute)
	if len(notes) != maxEgressEventsPerRead+1 || notes[maxEgressEventsPerRead] != "refused 3 more destinations ×3 in the last 1m0s (kubectl bottle egress lists them)" {
		t.Fatalf("events are bounded per read: %q", notes)
	}
}

func egressNotes(tallies []egressTally, window time.Duration) []string {
	var notes []string
	actions := map[string]bool{}
	for _, e := range egressEvents(tallies, window) {
		notes = append(notes, e.note)
		if actions[e.action] {
			panic("two events of one read share an action: Kubernetes would fold them into one series")
		}
		actions[e.action] = true
	}
	return notes
}
