package agent

import (
	"reflect"
	"testing"

	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

func TestSlotIndex(t *testing.T) {
	for name, want := range map[string]int{"g-s0": 0, "g-s7": 7, "g-s12": 12} {
		if k, ok := slotIndex("g", name); !ok || k != want {
			t.Errorf("slotIndex(g, %q) = %d, %v; want %d", name, k, ok, want)
		}
	}
	for _, name := range []string{"g", "g-s", "g-s01", "g-sx", "g-s-1", "g2-s0", "g-s0-x", "h-s0", "g-s1a"} {
		if k, ok := slotIndex("g", name); ok {
			t.Errorf("slotIndex(g, %q) = %d: not a slot", name, k)
		}
	}
	if got := slotName("golden-a", 3); got != "golden-a-s3" {
		t.Fatalf("slotName: %q", got)
	}
	if _, ok := slotIndex("golden-a", slotName("golden-a", 3)); !ok {
		t.Fatal("slotName is not read back")
	}
}

func TestViewPool(t *testing.T) {
	ms := []smolvm.Machine{
		{Name: "g-s2", State: smolvm.StateRunning, ForkpointHeld: true},
		{Name: "g", State: smolvm.StateFrozen, Forkable: true},
		{Name: "g-s0", State: smolvm.StateRunning},
		{Name: "g-s1", State: smolvm.StateRunning, ForkpointHeld: true},
		{Name: "other-s0", State: smolvm.StateRunning, ForkpointHeld: true},
		{Name: "bottle-x", State: smolvm.StateRunning},
	}
	p := viewPool("g", ms)
	if p.golden == nil || p.golden.Name != "g" {
		t.Fatalf("golden: %+v", p.golden)
	}
	if !reflect.DeepEqual(p.free, []string{"g-s1", "g-s2"}) || !reflect.DeepEqual(p.taken, []string{"g-s0"}) {
		t.Fatalf("free %q taken %q", p.free, p.taken)
	}
}

func TestDecideSlots(t *testing.T) {
	frozen := smolvm.Machine{Name: "g", State: smolvm.StateFrozen, Forkable: true}
	fresh := smolvm.Machine{Name: "g", State: smolvm.StateRunning, Forkable: true}
	plain := smolvm.Machine{Name: "g", State: smolvm.StateRunning}
	held := func(n string) smolvm.Machine {
		return smolvm.Machine{Name: n, State: smolvm.StateRunning, ForkpointHeld: true}
	}
	taken := func(n string) smolvm.Machine { return smolvm.Machine{Name: n, State: smolvm.StateRunning} }
	tests := []struct {
		name string
		ms   []smolvm.Machine
		want int
		fork []string
	}{
		{"no golden", nil, 2, nil},
		{"golden not forkable", []smolvm.Machine{plain}, 2, nil},
		{"golden stopped", []smolvm.Machine{{Name: "g", State: smolvm.StateStopped}}, 2, nil},
		{"fresh golden", []smolvm.Machine{fresh}, 2, []string{"g-s0", "g-s1"}},
		{"full", []smolvm.Machine{frozen, held("g-s0"), held("g-s1")}, 2, nil},
		{"more than wanted", []smolvm.Machine{frozen, held("g-s0"), held("g-s1"), held("g-s2")}, 2, nil},
		{"replenish around taken numbers", []smolvm.Machine{frozen, taken("g-s0"), held("g-s1"), taken("g-s2")}, 3,
			[]string{"g-s3", "g-s4"}},
		{"reuse a gone number", []smolvm.Machine{frozen, held("g-s1")}, 2, []string{"g-s0"}},
		{"zero wanted", []smolvm.Machine{frozen}, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := decideSlots(viewPool("g", tt.ms), tt.want); !reflect.DeepEqual(got, tt.fork) {
				t.Fatalf("decideSlots = %q, want %q", got, tt.fork)
			}
		})
	}
}

func TestDecideClaim(t *testing.T) {
	frozen := smolvm.Machine{Name: "g", State: smolvm.StateFrozen, Forkable: true}
	s0 := smolvm.Machine{Name: "g-s0", State: smolvm.StateRunning, ForkpointHeld: true}
	s1 := smolvm.Machine{Name: "g-s1", State: smolvm.StateRunning, ForkpointHeld: true}
	tests := []struct {
		name   string
		ms     []smolvm.Machine
		skip   map[string]bool
		want   claimKind
		slot   string
		reason string
	}{
		{"free slot", []smolvm.Machine{frozen, s1, s0}, nil, claimSlot, "g-s0", ""},
		{"first free one being claimed", []smolvm.Machine{frozen, s0, s1}, map[string]bool{"g-s0": true}, claimSlot, "g-s1", ""},
		{"every free one being claimed", []smolvm.Machine{frozen, s0}, map[string]bool{"g-s0": true}, claimFork, "", ""},
		{"no slot", []smolvm.Machine{frozen}, nil, claimFork, "", ""},
		{"no golden", nil, nil, claimWait, "", "golden machine g does not exist on this node yet"},
		{"golden provisioning", []smolvm.Machine{{Name: "g", State: smolvm.StateCreated}}, nil, claimWait, "",
			"golden machine g is created"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := decideClaim(viewPool("g", tt.ms), tt.skip)
			if c.kind != tt.want || c.slot != tt.slot || c.reason != tt.reason {
				t.Fatalf("decideClaim = %+v, want kind %d slot %q reason %q", c, tt.want, tt.slot, tt.reason)
			}
		})
	}
}

func TestRetirable(t *testing.T) {
	frozen := smolvm.Machine{Name: "g", State: smolvm.StateFrozen}
	free := smolvm.Machine{Name: "g-s0", State: smolvm.StateRunning, ForkpointHeld: true}
	taken := smolvm.Machine{Name: "g-s1", State: smolvm.StateRunning}
	if !retirable(viewPool("g", []smolvm.Machine{frozen, free}), 0) {
		t.Error("a golden with only free slots and no clones must be retirable")
	}
	if retirable(viewPool("g", []smolvm.Machine{frozen, free, taken}), 0) {
		t.Error("a golden with a taken slot is not retirable")
	}
	if retirable(viewPool("g", []smolvm.Machine{frozen}), 1) {
		t.Error("a golden with a Bottle's clone is not retirable")
	}
	if retirable(viewPool("g", nil), 0) {
		t.Error("a missing golden is not retirable")
	}
}
