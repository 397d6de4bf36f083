package vmlauncher

import (
	"path/filepath"
	"strings"
	"testing"
)

// Check passes only where systemd owns its name on the bus, and says what
// is missing otherwise: no bus at all, or a bus without systemd (where a
// start would fail with the bus's activation error, naming neither).
func TestSystemdCheck(t *testing.T) {
	t.Run("no bus", func(t *testing.T) {
		socket := filepath.Join(t.TempDir(), "no_bus_socket")
		err := (&Systemd{Socket: socket}).Check(busContext(t))
		if err == nil || !strings.Contains(err.Error(), "connect to the system bus at "+socket) {
			t.Fatalf("check without a bus: %v", err)
		}
	})
	bus := privateBus(t)
	err := (&Systemd{Socket: bus}).Check(busContext(t))
	for _, want := range []string{"no systemd on the system bus at " + bus, "--vm-launcher=direct"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("check on a bus without systemd: %v, want it to say %q", err, want)
		}
	}
	sd := serveSystemd(t, bus)
	if err := (&Systemd{Socket: bus}).Check(busContext(t)); err != nil {
		t.Fatalf("check with systemd on the bus: %v", err)
	}
	if m := sd.Members(); len(m) != 0 {
		t.Fatalf("the check called systemd: %q", m)
	}
}
