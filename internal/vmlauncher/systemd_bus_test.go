package vmlauncher

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/bot-bottle/bottle-controller/internal/smolvm"
	"github.com/bot-bottle/bottle-controller/internal/testutil"
)

// busConfig is the system bus of a Debian node reduced to what matters
// here: EXTERNAL authentication only, the default policy of
// /usr/share/dbus-1/system.conf (no name may be owned and no method called
// unless a rule allows it) and the rule systemd installs for root in
// org.freedesktop.systemd1.conf. The agent runs as root: the launcher gets
// what root gets on a node's bus.
const busConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
  </policy>
  <policy user="%d">
    <allow own="org.freedesktop.systemd1"/>
    <allow send_destination="org.freedesktop.systemd1"/>
  </policy>
</busconfig>
`

// privateBus runs a dbus-daemon for the test and returns its socket.
func privateBus(t *testing.T) string {
	t.Helper()
	daemon := testutil.RequireDBusDaemon(t)
	// A socket path holds 108 bytes; t.TempDir() can be longer.
	dir, err := os.MkdirTemp("", "bus-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	socket := filepath.Join(dir, "system_bus_socket")
	config := filepath.Join(dir, "system.conf")
	if err := os.WriteFile(config, fmt.Appendf(nil, busConfig, socket, os.Getuid()), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(daemon, "--config-file="+config, "--nofork", "--nopidfile", "--print-address")
	var stderr testutil.SyncBuffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	// The address is printed once the daemon listens.
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(addr, "unix:path="+socket) {
		t.Fatalf("dbus-daemon did not start: %q %v\n%s", addr, err, stderr.String())
	}
	return socket
}

func busContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func lookPath(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s: %v", name, err)
	}
	return p
}

// request is a launch of machine that runs argv.
func request(machine, state string, argv ...string) smolvm.LaunchRequest {
	return smolvm.LaunchRequest{Machine: machine, State: state, Argv: argv,
		Env: []string{"SMOLVM_DATA_DIR=/var/lib/bottle-controller/smolvm"}, CPUs: 2, MemoryMiB: 4096}
}

// startArgv is smolvm's argv for starting machine, with bin standing in
// for smolvm.
func startArgv(bin, machine string) []string {
	return []string{bin, "machine", "start", "--name", machine}
}

// TestSystemdLaunchSendsTheUnitSystemdReads runs the launcher's D-Bus path
// against a real dbus-daemon and checks the call as systemd receives it:
// method, signature, unit name, job mode, and every property with its
// D-Bus type and value, in order.
func TestSystemdLaunchSendsTheUnitSystemdReads(t *testing.T) {
	bus := privateBus(t)
	sd := serveSystemd(t, bus)
	trueBin := lookPath(t, "true")
	const machine = "bottle-ns-agent-1a2b"
	req := request(machine, smolvm.StateCreated, startArgv(trueBin, machine)...)
	if err := (&Systemd{Socket: bus, OverheadMiB: DefaultOverheadMiB}).Launch(busContext(t), req); err != nil {
		t.Fatal(err)
	}
	unit := "bottle-vm-" + machine + ".service"
	want := []sdCall{{
		Member:    "StartTransientUnit",
		Signature: "ssa(sv)a(sa(sv))",
		Unit:      unit,
		Mode:      "fail",
		Props: []sdProp{
			{"Description", "s", "bottle-controller VM " + machine},
			{"Type", "s", "forking"},
			// (sasb): path, argv with argv[0], ignore-failure off, so a
			// smolvm exiting non-zero fails the start job.
			{"ExecStart", "a(sasb)", []sdExec{{Path: trueBin, Argv: req.Argv, IgnoreFailure: false}}},
			{"Environment", "as", req.Env},
			{"MemoryMax", "t", uint64(4096+256) << 20},
			{"CPUQuotaPerSecUSec", "t", uint64(2_000_000)},
			{"KillMode", "s", "mixed"},
			{"CollectMode", "s", "inactive-or-failed"},
		},
	}}
	if got := sd.Calls(); !reflect.DeepEqual(got, want) {
		t.Fatalf("calls received by systemd\n got %#v\nwant %#v", got, want)
	}
	if st := sd.UnitState(unit); st != "active" {
		t.Fatalf("unit state %q after a done start job, want active", st)
	}

	// No extra environment is still an "as" (empty), never a missing or
	// differently typed property.
	req = request("noenv", smolvm.StateCreated, startArgv(trueBin, "noenv")...)
	req.Env = nil
	if err := (&Systemd{Socket: bus}).Launch(busContext(t), req); err != nil {
		t.Fatal(err)
	}
	calls := sd.Calls()
	for _, p := range calls[len(calls)-1].Props {
		if p.Name == "Environment" && (p.Signature != "as" || len(p.Value.([]string)) != 0) {
			t.Fatalf("Environment without entries: %#v", p)
		}
	}
}

// TestSystemdLaunchJobResults checks how the launcher reads the start job's
// JobRemoved signal: done is a start, anything else an error naming the
// unit and the result.
func TestSystemdLaunchJobResults(t *testing.T) {
	trueBin, falseBin, sleepBin := lookPath(t, "true"), lookPath(t, "false"), lookPath(t, "sleep")
	const unit = "bottle-vm-m.service"
	for _, tc := range []struct {
		name  string
		argv  []string
		setup func(*standIn)
		// timeout is the request's StartTimeout.
		timeout time.Duration
		// wantErr is the error's text, "" for none.
		wantErr string
		// wantState is the unit's state afterwards, "" for unloaded.
		wantState string
		journal   string
	}{
		{name: "done", argv: startArgv(trueBin, "m"), wantState: "active"},
		{
			// smolvm exits non-zero: the unit fails and, with
			// CollectMode=inactive-or-failed, is unloaded.
			name: "failed", argv: startArgv(falseBin, "m"),
			wantErr: "systemd launcher: start job of unit " + unit + ": failed (journalctl -u " + unit + ")",
			journal: "Control process exited",
		},
		{
			// TimeoutStartSec kills a smolvm that never returns; the job
			// result is failed (the unit's Result is timeout).
			name: "start timeout", argv: []string{sleepBin, "60"},
			setup:   func(s *standIn) { s.StartTimeout = 50 * time.Millisecond },
			wantErr: "systemd launcher: start job of unit " + unit + ": failed (journalctl -u " + unit + ")",
			journal: "start operation timed out",
		},
		{
			// A unit's own TimeoutStartSec (the driver's start deadline)
			// replaces systemd's default: a first start that pulls for
			// longer than the default is not killed.
			name: "start deadline beyond the default", argv: []string{sleepBin, "0.3"},
			setup:     func(s *standIn) { s.StartTimeout = 50 * time.Millisecond },
			timeout:   time.Minute,
			wantState: "active",
		},
		{
			// JobTimeoutSec ends the job alone; smolvm runs on.
			name: "job timeout", argv: []string{sleepBin, "60"},
			setup:     func(s *standIn) { s.JobTimeout = 50 * time.Millisecond },
			wantErr:   "systemd launcher: start job of unit " + unit + ": timeout (journalctl -u " + unit + ")",
			wantState: "activating",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bus := privateBus(t)
			sd := serveSystemd(t, bus, func(s *standIn) {
				if tc.setup != nil {
					tc.setup(s)
				}
			})
			req := request("m", smolvm.StateCreated, tc.argv...)
			req.StartTimeout = tc.timeout
			err := (&Systemd{Socket: bus}).Launch(busContext(t), req)
			if got := fmt.Sprint(err); tc.wantErr == "" && err != nil || tc.wantErr != "" && got != tc.wantErr {
				t.Fatalf("launch: %v, want %q", err, tc.wantErr)
			}
			if st := sd.UnitState(unit); st != tc.wantState {
				t.Fatalf("unit state %q, want %q", st, tc.wantState)
			}
			if j := sd.Journal(unit); !strings.Contains(j, tc.journal) {
				t.Fatalf("journal %q, want %q", j, tc.journal)
			}
			if m := sd.Members(); !reflect.DeepEqual(m, []string{"StartTransientUnit"}) {
				t.Fatalf("calls %q, want one StartTransientUnit", m)
			}
		})
	}

	// The launcher's context ends while systemd answers the call, or while
	// the job runs: either way the error is the context's, which the
	// driver classes as a cancellation or a timeout.
	for name, hook := range map[string]func(s *standIn, cancel func()){
		"during the call": func(s *standIn, cancel func()) { s.OnStartCall = func(string) { cancel() } },
		"during the job":  func(s *standIn, cancel func()) { s.OnStartJob = func(string) { cancel() } },
	} {
		t.Run("context canceled "+name, func(t *testing.T) {
			bus := privateBus(t)
			ctx, cancel := context.WithCancel(busContext(t))
			serveSystemd(t, bus, func(s *standIn) { hook(s, cancel) })
			err := (&Systemd{Socket: bus}).Launch(ctx, request("m", smolvm.StateCreated, sleepBin, "60"))
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("launch: %v, want context.Canceled", err)
			}
		})
	}
}

// launchWithLoadedUnit launches machine "m", in machineState, while systemd
// still has its unit loaded in unitState.
func launchWithLoadedUnit(t *testing.T, machineState, unitState, collect string, stopResult string) (*standIn, error) {
	t.Helper()
	bus := privateBus(t)
	sd := serveSystemd(t, bus, func(s *standIn) { s.StopResult = stopResult })
	sd.LeaveUnit("bottle-vm-m.service", unitState, collect)
	return sd, (&Systemd{Socket: bus}).Launch(busContext(t), request("m", machineState, startArgv(lookPath(t, "true"), "m")...))
}

// TestSystemdLaunchLoadedUnit covers a unit of the machine's name that
// systemd still has loaded when the start is asked for.
func TestSystemdLaunchLoadedUnit(t *testing.T) {
	const unit = "bottle-vm-m.service"
	restarted := []string{
		"StartTransientUnit: " + errUnitExists,
		"StopUnit",
		// The stop unloaded the unit: systemd answers NoSuchUnit, which
		// the launcher ignores.
		"ResetFailedUnit: " + errNoSuchUnit,
		"StartTransientUnit",
	}
	for _, state := range []string{smolvm.StateCreated, smolvm.StateStopped, smolvm.StateFailed} {
		t.Run("active unit of a "+state+" machine is stopped and started again", func(t *testing.T) {
			sd, err := launchWithLoadedUnit(t, state, "active", "inactive-or-failed", "")
			if err != nil {
				t.Fatal(err)
			}
			if m := sd.Members(); !reflect.DeepEqual(m, restarted) {
				t.Fatalf("calls\n got %q\nwant %q", m, restarted)
			}
			calls := sd.Calls()
			if calls[1].Unit != unit || calls[1].Mode != "replace" || calls[1].Signature != "ss" ||
				calls[2].Unit != unit || calls[2].Signature != "s" {
				t.Fatalf("stop and reset-failed: %#v %#v", calls[1], calls[2])
			}
			if !reflect.DeepEqual(calls[0].Props, calls[3].Props) {
				t.Fatalf("the second start asks for another unit:\n%#v\n%#v", calls[0].Props, calls[3].Props)
			}
			if st := sd.UnitState(unit); st != "active" {
				t.Fatalf("unit state %q, want active", st)
			}
		})
	}

	t.Run("failed unit kept loaded is reset before the new start", func(t *testing.T) {
		// A failed unit with CollectMode=inactive (systemd's default) stays
		// loaded after a stop until ResetFailedUnit unloads it.
		sd, err := launchWithLoadedUnit(t, smolvm.StateFailed, "failed", "inactive", "")
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"StartTransientUnit: " + errUnitExists, "StopUnit", "ResetFailedUnit", "StartTransientUnit"}
		if m := sd.Members(); !reflect.DeepEqual(m, want) {
			t.Fatalf("calls\n got %q\nwant %q", m, want)
		}
	})

	t.Run("unit of an unreachable machine is left alone", func(t *testing.T) {
		// Its VMM still runs: stopping the unit would kill it.
		sd, err := launchWithLoadedUnit(t, smolvm.StateUnreachable, "active", "inactive-or-failed", "")
		var de dbus.Error
		if !errors.As(err, &de) || de.Name != errUnitExists {
			t.Fatalf("launch: %#v, want systemd's UnitExists", err)
		}
		if m := sd.Members(); !reflect.DeepEqual(m, []string{"StartTransientUnit: " + errUnitExists}) {
			t.Fatalf("calls %q", m)
		}
		if st := sd.UnitState(unit); st != "active" {
			t.Fatalf("unit state %q, want active", st)
		}
	})

	t.Run("stale unit that does not stop", func(t *testing.T) {
		sd, err := launchWithLoadedUnit(t, smolvm.StateStopped, "active", "inactive-or-failed", "failed")
		if want := "systemd launcher: stop job of unit " + unit + ": failed (journalctl -u " + unit + ")"; fmt.Sprint(err) != want {
			t.Fatalf("launch: %v, want %q", err, want)
		}
		if m := sd.Members(); !reflect.DeepEqual(m, []string{"StartTransientUnit: " + errUnitExists, "StopUnit"}) {
			t.Fatalf("calls %q", m)
		}
	})
}

func TestSystemdLaunchWithoutABus(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "no_bus_socket")
	err := (&Systemd{Socket: socket}).Launch(busContext(t), request("m", smolvm.StateCreated, startArgv("/usr/bin/smolvm", "m")...))
	if err == nil || !strings.Contains(err.Error(), "connect to the system bus at "+socket) {
		t.Fatalf("launch without a bus: %v", err)
	}
	// A request that is no unit never reaches the bus.
	err = (&Systemd{Socket: socket}).Launch(busContext(t), request("-rf", smolvm.StateCreated, startArgv("/usr/bin/smolvm", "-rf")...))
	if err == nil || strings.Contains(err.Error(), "system bus") {
		t.Fatalf("bad name: %v", err)
	}
}
