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

// PluginEnv names a prebuilt kubectl-bottle, as SimulatorEnv does the
// simulator (make bench builds bin/kubectl-bottle).
const PluginEnv = "KUBECTL_BOTTLE_BIN"

var (
	simulator = binary{env: SimulatorEnv, pkg: "./cmd/smolvm-sim", name: "smolvm"}
	plugin    = binary{env: PluginEnv, pkg: "./cmd/kubectl-bottle", name: "kubectl-bottle"}
)

// Simulator returns the path of the smolvm simulator: $SMOLVM_SIM_BIN when
// set, else a build of ./cmd/smolvm-sim into dir, made once per test binary
// (the first caller's dir is used; it must outlive the tests).
func Simulator(dir string) (string, error) { return simulator.build(dir) }

// Plugin returns the path of kubectl-bottle, as Simulator does.
func Plugin(dir string) (string, error) { return plugin.build(dir) }

// binary is a command of this repository that tests run as a process.
type binary struct {
	env, pkg, name string

	once sync.Once
	bin  string
	err  error
}

func (b *binary) build(dir string) (string, error) {
	b.once.Do(func() {
		if p := os.Getenv(b.env); p != "" {
			abs, err := filepath.Abs(p)
			if err == nil {
				_, err = os.Stat(abs)
			}
			if err != nil {
				b.err = fmt.Errorf("%s=%s: %w", b.env, p, err)
				return
			}
			b.bin = abs
			return
		}
		out := filepath.Join(dir, b.name)
		// go test puts its own toolchain first in PATH.
		cmd := exec.Command("go", "build", "-o", out, b.pkg)
		cmd.Dir = RepoRoot()
		if log, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("building %s: %v\n%s", b.pkg, err, log)
			return
		}
		b.bin = out
	})
	return b.bin, b.err
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
