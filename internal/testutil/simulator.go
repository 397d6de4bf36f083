package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// SimulatorEnv names a prebuilt smolvm simulator. `make test` builds
// bin/smolvm-sim once and passes it here, so every package of one `go test`
// run shares one build.
const SimulatorEnv = "SMOLVM_SIM_BIN"

var (
	simOnce sync.Once
	simPath string
	simErr  error
)

// Simulator returns the path of the smolvm simulator: $SMOLVM_SIM_BIN when
// set, else a build of ./cmd/smolvm-sim into dir, made once per test binary
// (the first caller's dir is used; it must outlive the tests).
func Simulator(dir string) (string, error) {
	simOnce.Do(func() {
		if p := os.Getenv(SimulatorEnv); p != "" {
			abs, err := filepath.Abs(p)
			if err == nil {
				_, err = os.Stat(abs)
			}
			if err != nil {
				simErr = fmt.Errorf("%s=%s: %w", SimulatorEnv, p, err)
				return
			}
			simPath = abs
			return
		}
		out := filepath.Join(dir, "smolvm")
		// go test puts its own toolchain first in PATH.
		cmd := exec.Command("go", "build", "-o", out, "./cmd/smolvm-sim")
		cmd.Dir = RepoRoot()
		if b, err := cmd.CombinedOutput(); err != nil {
			simErr = fmt.Errorf("building the simulator: %v\n%s", err, b)
			return
		}
		simPath = out
	})
	return simPath, simErr
}

// RepoRoot is the repository's top directory, found from this file's path so
// tests work from any package directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// MainWithSimDir is a TestMain for a package whose tests use Simulator: it
// sets *dir to a temporary directory that outlives every test, runs them,
// removes it and exits.
func MainWithSimDir(m *testing.M, pattern string, dir *string) {
	d, err := os.MkdirTemp("", pattern)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*dir = d
	code := m.Run()
	_ = os.RemoveAll(d)
	os.Exit(code)
}
