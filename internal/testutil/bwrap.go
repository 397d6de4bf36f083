package testutil

import (
	"errors"
	"os"
	"os/exec"
	"testing"
)

// BwrapMissing says why the smolvm simulator cannot sandbox here, or nil. It
// honours SMOLVM_SIM_BWRAP, the bwrap the simulator itself uses when set.
func BwrapMissing() error {
	if p := os.Getenv("SMOLVM_SIM_BWRAP"); p != "" {
		if _, err := exec.LookPath(p); err != nil {
			return errors.New("SMOLVM_SIM_BWRAP=" + p + " is not an executable: " + err.Error())
		}
		return nil
	}
	if _, err := exec.LookPath("bwrap"); err != nil {
		return errors.New("simulator tests need bubblewrap (bwrap); install it (hack/ensure-deps.sh, or apt-get install bubblewrap)")
	}
	return nil
}

// InCI reports whether the tests run under CI, where nothing may be skipped
// for lack of tools.
func InCI() bool { return os.Getenv("CI") != "" }

// RequireBwrap skips a test that needs the smolvm simulator's sandbox when
// bubblewrap is missing, except under CI, where a missing bwrap must fail the
// run instead of hiding every simulator test. Ginkgo suites call
// BwrapMissing themselves (Skip or Fail).
func RequireBwrap(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the simulator's sandbox (bwrap): skipped under -short (make test-unit)")
	}
	if err := BwrapMissing(); err != nil {
		if InCI() {
			t.Fatalf("bwrap (bubblewrap) is required in CI: %v", err)
		}
		t.Skip(err.Error())
	}
}
