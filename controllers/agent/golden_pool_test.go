package agent

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/bot-bottle/bottle-controller/internal/smolvm"
	"github.com/bot-bottle/bottle-controller/internal/testutil"
)

// A golden's pool against the simulator, as the decisions drive it: mark
// the forkpoint, keep two free slots, hand one out, replenish, fork on
// demand when none is free, and retire the golden only when nothing was
// handed out from it.
func TestGoldenPoolAgainstSimulator(t *testing.T) {
	testutil.RequireBwrap(t)
	sim, err := testutil.Simulator(simDir)
	if err != nil {
		t.Fatal(err)
	}
	cli := smolvm.New(sim, "SMOLVM_DATA_DIR="+filepath.Join(t.TempDir(), "data"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	const golden = "tpl-golden"
	pool := func() goldenPool {
		t.Helper()
		ms, err := cli.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return viewPool(golden, ms)
	}

	if c := decideClaim(pool(), nil); c.kind != claimWait {
		t.Fatalf("claim before the golden exists: %+v", c)
	}
	if err := cli.Create(ctx, smolvm.MachineSpec{Name: golden, Image: "node:22"}); err != nil {
		t.Fatal(err)
	}
	if err := cli.StartForkable(ctx, golden); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Exec(ctx, smolvm.ExecRequest{Machine: golden, Script: "echo tools > /opt/installed"}); err != nil {
		t.Fatal(err)
	}
	if err := markForkpoint(ctx, cli, golden); err != nil {
		t.Fatal(err)
	}

	fill := func(want int) {
		t.Helper()
		names := decideSlots(pool(), want)
		if n, err := fillSlots(ctx, cli, golden, names); err != nil || n != len(names) {
			t.Fatalf("fillSlots(%q): %d, %v", names, n, err)
		}
	}
	fill(2)
	if p := pool(); !reflect.DeepEqual(p.free, []string{golden + "-s0", golden + "-s1"}) || p.golden.State != smolvm.StateFrozen {
		t.Fatalf("after the first fill: %+v", p)
	}

	c := decideClaim(pool(), nil)
	if c.kind != claimSlot || c.slot != golden+"-s0" {
		t.Fatalf("claim: %+v", c)
	}
	if err := takeSlot(ctx, cli, c.slot, []smolvm.EnvVar{{Name: "BOTTLE", Value: "default/a"}}); err != nil {
		t.Fatal(err)
	}
	res, err := cli.Exec(ctx, smolvm.ExecRequest{Machine: c.slot, Script: `cat /opt/installed; echo "$BOTTLE"`})
	if err != nil || res.Stdout != "tools\ndefault/a\n" {
		t.Fatalf("the taken slot: %+v %v", res, err)
	}
	if err := takeSlot(ctx, cli, c.slot, nil); err == nil || errors.Is(err, errSlotLost) {
		t.Fatalf("taking a taken slot again: %v", err)
	}
	fill(2)
	p := pool()
	if !reflect.DeepEqual(p.free, []string{golden + "-s1", golden + "-s2"}) || !reflect.DeepEqual(p.taken, []string{golden + "-s0"}) {
		t.Fatalf("after replenishing: free %q taken %q", p.free, p.taken)
	}
	if retirable(p, 0) {
		t.Fatal("a golden with a taken slot must not be retired")
	}

	// Both free slots are being claimed by others: fork on demand.
	if c := decideClaim(p, map[string]bool{golden + "-s1": true, golden + "-s2": true}); c.kind != claimFork {
		t.Fatalf("claim with no slot left: %+v", c)
	}
	if err := forkFor(ctx, cli, golden, "bottle-b", []smolvm.EnvVar{{Name: "BOTTLE", Value: "default/b"}}); err != nil {
		t.Fatal(err)
	}
	res, err = cli.Exec(ctx, smolvm.ExecRequest{Machine: "bottle-b", Script: `cat /opt/installed; echo "$BOTTLE"`})
	if err != nil || res.Stdout != "tools\ndefault/b\n" {
		t.Fatalf("the on-demand clone: %+v %v", res, err)
	}

	// Once the Bottles' machines are gone, the golden goes with its free
	// slots, and nothing is left.
	for _, n := range []string{golden + "-s0", "bottle-b"} {
		if err := cli.Delete(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	if p := pool(); !retirable(p, 0) {
		t.Fatalf("not retirable: %+v", p)
	}
	if err := retireGolden(ctx, cli, golden); err != nil {
		t.Fatal(err)
	}
	if ms, err := cli.List(ctx); err != nil || len(ms) != 0 {
		t.Fatalf("left after retiring: %+v %v", ms, err)
	}
	if err := retireGolden(ctx, cli, golden); err != nil {
		t.Fatalf("retiring a golden that is gone: %v", err)
	}
}

// A slot forked from a golden that never reached its forkpoint is lost on
// release: takeSlot says so, so the caller deletes it.
func TestTakeSlotLost(t *testing.T) {
	testutil.RequireBwrap(t)
	sim, err := testutil.Simulator(simDir)
	if err != nil {
		t.Fatal(err)
	}
	cli := smolvm.New(sim, "SMOLVM_DATA_DIR="+filepath.Join(t.TempDir(), "data"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	if err := cli.Create(ctx, smolvm.MachineSpec{Name: "g", Image: "node:22"}); err != nil {
		t.Fatal(err)
	}
	if err := cli.StartForkable(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	// A plain fork freezes the golden without a forkpoint.
	if err := forkFor(ctx, cli, "g", "c", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := fillSlots(ctx, cli, "g", []string{"g-s0"}); err != nil {
		t.Fatal(err)
	}
	if err := takeSlot(ctx, cli, "g-s0", nil); !errors.Is(err, errSlotLost) {
		t.Fatalf("release of a slot without a forkpoint: %v, want errSlotLost", err)
	}
}
