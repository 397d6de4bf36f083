package agentlease

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// fakeLock answers reads from rec (err when set) and records writes.
type fakeLock struct {
	rec    *resourcelock.LeaderElectionRecord
	err    error
	writes int
}

func (f *fakeLock) Get(context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	if f.err != nil {
		return nil, nil, f.err
	}
	r := *f.rec
	raw, _ := json.Marshal(r)
	return &r, raw, nil
}
func (f *fakeLock) Create(_ context.Context, r resourcelock.LeaderElectionRecord) error {
	return f.Update(context.Background(), r)
}
func (f *fakeLock) Update(_ context.Context, r resourcelock.LeaderElectionRecord) error {
	if f.err != nil {
		return f.err
	}
	f.writes++
	f.rec = &r
	return nil
}
func (f *fakeLock) RecordEvent(string) {}
func (f *fakeLock) Identity() string   { return "agent-a" }
func (f *fakeLock) Describe() string   { return "ns/lease" }

type testClock struct{ t time.Time }

func (c *testClock) now() time.Time      { return c.t }
func (c *testClock) add(d time.Duration) { c.t = c.t.Add(d) }

func newTestElector(f *fakeLock) (*Elector, *testClock) {
	clk := &testClock{t: time.Unix(1000, 0)}
	e := NewElector(&Lock{Interface: f, log: logr.Discard()}, 3*time.Second, 2*time.Second, 250*time.Millisecond, logr.Discard())
	e.now = clk.now
	return e, clk
}

var errUnreachable = errors.New("context deadline exceeded")

// TestElectorOutage: renewals failing past the renew deadline stop new
// work but never end the hold; the first renewal after resumes it.
func TestElectorOutage(t *testing.T) {
	f := &fakeLock{rec: &resourcelock.LeaderElectionRecord{HolderIdentity: "agent-a", LeaseDurationSeconds: 3}}
	e, clk := newTestElector(f)
	ctx := context.Background()
	if err := e.tryOnce(ctx); err != nil || !e.Held() {
		t.Fatalf("first renewal: err %v, held %v", err, e.Held())
	}
	f.err = errUnreachable
	for range 40 { // 10 s of failures
		clk.add(250 * time.Millisecond)
		if err := e.tryOnce(ctx); err != nil {
			t.Fatalf("an outage ended the hold: %v", err)
		}
	}
	if e.Held() {
		t.Fatal("new work may start 10 s after the last renewal")
	}
	if err := e.Readyz()(nil); err == nil {
		t.Fatal("an adrift agent is ready")
	}
	f.err = nil
	clk.add(250 * time.Millisecond)
	if err := e.tryOnce(ctx); err != nil || !e.Held() {
		t.Fatalf("renewal after the outage: err %v, held %v", err, e.Held())
	}
}

// TestElectorYields: a holder that reads another holder gives way.
func TestElectorYields(t *testing.T) {
	f := &fakeLock{rec: &resourcelock.LeaderElectionRecord{HolderIdentity: "agent-a", LeaseDurationSeconds: 3}}
	e, _ := newTestElector(f)
	ctx := context.Background()
	if err := e.tryOnce(ctx); err != nil {
		t.Fatal(err)
	}
	f.rec = &resourcelock.LeaderElectionRecord{HolderIdentity: "agent-b", LeaseDurationSeconds: 3}
	if err := e.tryOnce(ctx); !errors.Is(err, ErrDeposed) {
		t.Fatalf("tryOnce = %v, want ErrDeposed", err)
	}
	if e.Held() {
		t.Fatal("a deposed agent still starts work")
	}
	select {
	case <-e.Deposed():
	default:
		t.Fatal("Deposed is not closed: a stopping agent would drain steps the new holder may run")
	}
}

// TestStandbyOutageRestartsItsClock: a standby takes a Lease only after
// reading it unchanged for its whole duration; a failed read in between
// is no evidence the holder died.
func TestStandbyOutageRestartsItsClock(t *testing.T) {
	f := &fakeLock{rec: &resourcelock.LeaderElectionRecord{HolderIdentity: "agent-b", LeaseDurationSeconds: 3}}
	e, clk := newTestElector(f)
	ctx := context.Background()
	step := func(d time.Duration, fail bool) {
		t.Helper()
		clk.add(d)
		f.err = nil
		if fail {
			f.err = errUnreachable
		}
		if err := e.tryOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	step(0, false)
	step(2*time.Second, false)
	step(500*time.Millisecond, true) // the API server is out of reach
	step(500*time.Millisecond, false)
	step(2*time.Second, false) // 3 s after the first read, 2 s after the outage
	if f.writes != 0 || e.Held() {
		t.Fatal("the standby took the Lease counting an outage as the holder's silence")
	}
	step(time.Second, false)
	if f.writes != 1 || !e.Held() || f.rec.HolderIdentity != "agent-a" || f.rec.LeaderTransitions != 1 {
		t.Fatalf("the standby did not take a Lease silent for its duration: writes %d, record %+v", f.writes, f.rec)
	}
}
