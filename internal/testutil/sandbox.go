package testutil

import (
	"os"
	"os/exec"
	"testing"
)

// RequireBwrap skips a test that needs the smolvm simulator's sandbox when
// bubblewrap is missing, except under CI, where a missing bwrap must fail the
// run instead of hiding every simulator test.
func RequireBwrap(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("bwrap"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("bwrap (bubblewrap) is required in CI: %v", err)
		}
		t.Skip("simulator tests need bubblewrap (bwrap); install it (hack/ensure-deps.sh, or apt-get install bubblewrap)")
	}
}
