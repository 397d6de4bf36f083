package vmlauncher

import (
	"context"
	"errors"
	"fmt"

	sdbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"

	"github.com/bot-bottle/bottle-controller/internal/smolvm"
)

// DefaultSystemBusSocket is the host's system bus as the DaemonSet mounts it.
const DefaultSystemBusSocket = "/run/dbus/system_bus_socket"

// Systemd launches each `machine start` in a transient unit on the host's
// systemd. It holds no connection: one is made per start, which is rare, so
// a restarted dbus-daemon or systemd never leaves the agent with a dead one.
type Systemd struct {
	// Socket is the path of the system bus socket (DefaultSystemBusSocket).
	Socket string
	// OverheadMiB is added to the VM's memory for MemoryMax.
	OverheadMiB int
}

var _ smolvm.Launcher = (*Systemd)(nil)

func (s *Systemd) socket() string {
	if s.Socket == "" {
		return DefaultSystemBusSocket
	}
	return s.Socket
}

// Launch starts the unit and waits for its start job: for a forking unit the
// job ends when smolvm exits, so "done" means smolvm started the VM.
func (s *Systemd) Launch(ctx context.Context, req smolvm.LaunchRequest) error {
	err := s.launch(ctx, req)
	// The connection is closed when ctx ends, so a call in flight fails
	// with a network error: report the context's, which the driver classes
	// as a timeout or a cancellation.
	if err != nil && ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		return fmt.Errorf("systemd launcher: %w (%v)", ctx.Err(), err)
	}
	return err
}

func (s *Systemd) launch(ctx context.Context, req smolvm.LaunchRequest) error {
	unit, err := UnitFor(req, s.OverheadMiB)
	if err != nil {
		return err
	}
	conn, err := sdbus.NewConnection(func() (*dbus.Conn, error) { return dial(ctx, s.socket()) })
	if err != nil {
		return fmt.Errorf("systemd launcher: connect to the system bus at %s: %w", s.socket(), err)
	}
	defer conn.Close()

	err = startAndWait(ctx, conn, unit)
	if isUnitExists(err) && req.State != smolvm.StateUnreachable {
		// A unit left from an earlier start whose VMM is gone (the caller
		// checked the machine is not running) but that systemd has not
		// collected yet: stop it, forget a failed state, start again once.
		// An unreachable machine still has its VMM: its unit is never
		// stopped here, the start fails with systemd's UnitExists.
		if serr := stopAndWait(ctx, conn, unit.Name); serr != nil {
			return serr
		}
		_ = conn.ResetFailedUnitContext(ctx, unit.Name)
		err = startAndWait(ctx, conn, unit)
	}
	return err
}

// systemdBusName is the name systemd owns on the system bus.
const systemdBusName = "org.freedesktop.systemd1"

// Check says whether systemd owns its name on the bus, without starting
// anything: asking the bus (NameHasOwner) never triggers activation, which on
// a bus without systemd fails with an activation helper's exit code instead.
// The agent runs it at start, so a node without systemd says so on its
// Bottles rather than failing every start.
func (s *Systemd) Check(ctx context.Context) error {
	conn, err := dial(ctx, s.socket())
	if err != nil {
		return fmt.Errorf("systemd launcher: connect to the system bus at %s: %w", s.socket(), err)
	}
	defer func() { _ = conn.Close() }()
	var owned bool
	if err := conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0, systemdBusName).Store(&owned); err != nil {
		return fmt.Errorf("systemd launcher: asking the system bus at %s for %s: %w", s.socket(), systemdBusName, err)
	}
	if !owned {
		return fmt.Errorf("systemd launcher: no systemd on the system bus at %s (%s has no owner): --vm-launcher=systemd runs each VM in a transient unit of the host's systemd; run the agent on a systemd node, or with --vm-launcher=direct (VMs then stop with the agent)", s.socket(), systemdBusName)
	}
	return nil
}

func dial(ctx context.Context, socket string) (*dbus.Conn, error) {
	c, err := dbus.Dial("unix:path="+socket, dbus.WithContext(ctx))
	if err != nil {
		return nil, err
	}
	if err := c.Auth(nil); err != nil {
		_ = c.Close()
		return nil, err
	}
	if err := c.Hello(); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

func startAndWait(ctx context.Context, conn *sdbus.Conn, u Unit) error {
	ch := make(chan string, 1)
	if _, err := conn.StartTransientUnitContext(ctx, u.Name, "fail", u.Properties(), ch); err != nil {
		// Name systemd: a bus without it answers with the bus's own
		// words (e.g. an activation helper's exit code), which say
		// nothing of systemd.
		return fmt.Errorf("systemd launcher: start transient unit %s: %w", u.Name, err)
	}
	return waitJob(ctx, ch, u.Name, "start")
}

func stopAndWait(ctx context.Context, conn *sdbus.Conn, name string) error {
	ch := make(chan string, 1)
	if _, err := conn.StopUnitContext(ctx, name, "replace", ch); err != nil {
		return fmt.Errorf("systemd launcher: stop stale unit %s: %w", name, err)
	}
	return waitJob(ctx, ch, name, "stop")
}

func waitJob(ctx context.Context, ch <-chan string, name, what string) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case result := <-ch:
		if result != "done" {
			return fmt.Errorf("systemd launcher: %s job of unit %s: %s (journalctl -u %s)", what, name, result, name)
		}
		return nil
	}
}

func isUnitExists(err error) bool {
	var de dbus.Error
	if errors.As(err, &de) {
		return de.Name == "org.freedesktop.systemd1.UnitExists"
	}
	var dp *dbus.Error
	return errors.As(err, &dp) && dp.Name == "org.freedesktop.systemd1.UnitExists"
}
