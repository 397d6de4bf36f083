package testutil

import (
	"os/exec"
	"testing"
)

// RequireDBusDaemon returns the path of dbus-daemon, which the systemd
// launcher's tests run as a private bus. When it is missing the test is
// skipped, except under CI, where the run fails instead of hiding those
// tests.
func RequireDBusDaemon(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("dbus-daemon")
	if err != nil {
		msg := "the systemd launcher's D-Bus tests need dbus-daemon; install it (hack/ensure-deps.sh, or apt-get install dbus-daemon): " + err.Error()
		if InCI() {
			t.Fatal("dbus-daemon is required in CI: " + msg)
		}
		t.Skip(msg)
	}
	return p
}
