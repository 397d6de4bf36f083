package vmlauncher

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/bot-bottle/bottle-controller/internal/smolvm"
	"github.com/bot-bottle/bottle-controller/internal/testutil"
)

// TestSystemdLauncherStartsASimulatedMachine starts a machine the way the
// agent does with --vm-launcher=systemd: smolvm.CLI.Start with this
// launcher, over a real dbus-daemon, to the stand-in systemd, which runs the
// unit's ExecStart (the smolvm simulator) with the unit's environment only.
// The machine runs afterwards, and smolvm's own failure comes back as the
// start job's.
func TestSystemdLauncherStartsASimulatedMachine(t *testing.T) {
	bus := privateBus(t)
	sd := serveSystemd(t, bus)
	testutil.RequireBwrap(t)
	sim, err := testutil.Simulator(simDir)
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"SMOLVM_DATA_DIR=" + t.TempDir()}
	if b := os.Getenv("SMOLVM_SIM_BWRAP"); b != "" {
		// A unit gets no environment but its own.
		env = append(env, "SMOLVM_SIM_BWRAP="+b)
	}
	cli := smolvm.New(sim, env...)
	cli.Launcher = &Systemd{Socket: bus, OverheadMiB: DefaultOverheadMiB}
	ctx := busContext(t)
	const name = "sd-sim"
	const unit = "bottle-vm-" + name + ".service"
	if err := cli.Create(ctx, smolvm.MachineSpec{Name: name, Image: "node:22", CPUs: 2, MemoryMiB: 2048}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Delete(ctx, name) })

	if err := cli.Start(ctx, name); err != nil {
		t.Fatalf("start: %v\njournal:\n%s", err, sd.Journal(unit))
	}
	m, err := cli.Status(ctx, name)
	if err != nil || m.State != smolvm.StateRunning || m.PID == 0 {
		t.Fatalf("status after a start through systemd: %+v %v", m, err)
	}
	if err := syscall.Kill(m.PID, 0); err != nil {
		t.Fatalf("VMM %d: %v", m.PID, err)
	}
	// smolvm ran in the unit: its output is in the unit's journal.
	if j := sd.Journal(unit); !strings.Contains(j, fmt.Sprintf("Machine '%s' running (PID: %d)", name, m.PID)) {
		t.Fatalf("journal of %s: %q", unit, j)
	}
	calls := sd.Calls()
	if len(calls) != 1 {
		t.Fatalf("calls %q", sd.Members())
	}
	props := map[string]any{}
	for _, p := range calls[0].Props {
		props[p.Name] = p.Value
	}
	wantExec := []sdExec{{Path: sim, Argv: []string{sim, "machine", "start", "--name", name}}}
	if !reflect.DeepEqual(props["ExecStart"], wantExec) || !reflect.DeepEqual(props["Environment"], env) ||
		props["MemoryMax"] != uint64(2048+256)<<20 || props["CPUQuotaPerSecUSec"] != uint64(2_000_000) {
		t.Fatalf("unit from the machine's record: %#v", props)
	}

	// A running machine is not launched again.
	if err := cli.Start(ctx, name); err != nil || len(sd.Calls()) != 1 {
		t.Fatalf("start of a running machine: %v, calls %q", err, sd.Members())
	}

	// smolvm failing in the unit fails the start job; the agent's error
	// points at the unit's journal, which holds smolvm's message.
	if err := cli.Stop(ctx, name); err != nil {
		t.Fatal(err)
	}
	failing := smolvm.New(sim, append(env, "SMOLVM_SIM_FAIL=start=1")...)
	failing.Launcher = cli.Launcher
	err = failing.Start(ctx, name)
	var se *smolvm.Error
	if !errors.As(err, &se) || !strings.Contains(se.Message, "start job of unit "+unit+": failed (journalctl -u "+unit+")") {
		t.Fatalf("start failing in smolvm: %v", err)
	}
	if j := sd.Journal(unit); !strings.Contains(j, "guest agent did not become ready (simulated fault)") {
		t.Fatalf("journal of %s: %q", unit, j)
	}
	if st := sd.UnitState(unit); st != "" {
		t.Fatalf("failed unit still loaded (%s): CollectMode frees the name", st)
	}
	if err := failing.Start(ctx, name); err != nil {
		t.Fatalf("start after the failure: %v\njournal:\n%s", err, sd.Journal(unit))
	}
	if m, err := cli.Status(ctx, name); err != nil || m.State != smolvm.StateRunning {
		t.Fatalf("status: %+v %v", m, err)
	}
	// The stand-in does not see the VMM exit on `machine stop` (real
	// systemd would unload the unit then): the start after the stop went
	// through the launcher's stale-unit path, the one after the failure did
	// not.
	want := []string{
		"StartTransientUnit",
		"StartTransientUnit: " + errUnitExists, "StopUnit", "ResetFailedUnit: " + errNoSuchUnit, "StartTransientUnit",
		"StartTransientUnit",
	}
	if got := sd.Members(); !reflect.DeepEqual(got, want) {
		t.Fatalf("calls\n got %q\nwant %q", got, want)
	}
}
