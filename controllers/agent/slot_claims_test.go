package agent

import (
	"testing"
	"time"

	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

func slotPool(free ...string) goldenPool {
	return goldenPool{name: "g", golden: &smolvm.Machine{Name: "g", State: smolvm.StateFrozen}, free: free}
}

// Bottles deciding at once from the same list never pick the same slot.
func TestClaimsNeverPickASlotTwice(t *testing.T) {
	var c claims
	listed := time.Now()
	p := slotPool("g-s0", "g-s1")
	a, b := c.decide(p, listed, nil), c.decide(p, listed, nil)
	if a.kind != claimSlot || b.kind != claimSlot || a.slot == b.slot {
		t.Fatalf("decide twice = %+v, %+v; want two different slots", a, b)
	}
	if d := c.decide(p, listed, nil); d.kind != claimFork {
		t.Fatalf("third decide with both slots being released = %+v, want an on-demand fork", d)
	}
}

// A slot handed out stays skipped until a list begun after its release no
// longer shows it free; a failed release gives it back.
func TestClaimsRememberHandedOutSlotsUntilAListCatchesUp(t *testing.T) {
	var c claims
	before := time.Now()
	p := slotPool("g-s0")
	if d := c.decide(p, before, nil); d.slot != "g-s0" {
		t.Fatalf("decide = %+v, want g-s0", d)
	}
	released := before.Add(time.Millisecond)
	c.done("g-s0", true, released)

	// A list begun before the release still shows the slot free.
	if d := c.decide(p, before, nil); d.kind == claimSlot {
		t.Fatalf("decide from a list older than the release = %+v, want no slot", d)
	}
	// A list begun after it that still shows it free (impossible for
	// smolvm, but the record is kept): still skipped.
	if d := c.decide(p, released.Add(time.Millisecond), nil); d.kind == claimSlot {
		t.Fatalf("decide = %+v, want no slot", d)
	}
	// A later list without it: forgotten.
	c.decide(slotPool(), released.Add(time.Millisecond), nil)
	if _, ok := c.handedOut["g-s0"]; ok {
		t.Fatal("a handed-out slot is still remembered after a newer list stopped showing it")
	}

	// A failed release: the slot may be picked again.
	p = slotPool("g-s1")
	if d := c.decide(p, time.Now(), nil); d.slot != "g-s1" {
		t.Fatalf("decide = %+v, want g-s1", d)
	}
	c.done("g-s1", false, time.Now())
	if d := c.decide(p, time.Now(), nil); d.slot != "g-s1" {
		t.Fatalf("decide after a failed release = %+v, want g-s1 again", d)
	}
}

// A claim whose listing is stale lists again after the slot it found gone.
func TestClaimsListAfterASlotFoundGone(t *testing.T) {
	var c claims
	now := time.Now()
	if got := c.listedAfter(now); !got.Equal(now.Add(-slotListMaxAge)) {
		t.Fatalf("listedAfter = %v, want slotListMaxAge before now", got)
	}
	c.gone(now)
	if got := c.listedAfter(now.Add(time.Second)); !got.Equal(now) {
		t.Fatalf("listedAfter after a slot found gone = %v, want %v", got, now)
	}
	if got := c.listedAfter(now.Add(slotListMaxAge + time.Second)); !got.Equal(now.Add(time.Second)) {
		t.Fatalf("listedAfter later = %v, want slotListMaxAge before then", got)
	}
}
