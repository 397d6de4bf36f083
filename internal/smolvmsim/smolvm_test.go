package smolvmsim

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bot-bottle/bottle-controller/internal/testutil"
)

// The test binary doubles as the simulator: run through a symlink named
// "smolvm" it is the CLI, and mounted as runuser in a sandbox it is runuser,
// exactly like the built binary.
var simBin string

func TestMain(m *testing.M) {
	// The test binary is the simulator too, under the names Main knows.
	switch filepath.Base(os.Args[0]) {
	case "runuser", VMMName, forkReadyName, "smolvm":
		os.Exit(Main())
	}
	dir, err := os.MkdirTemp("", "smolvm-sim-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	exe, err := os.Executable()
	if err == nil {
		err = os.Symlink(exe, filepath.Join(dir, "smolvm"))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	simBin = filepath.Join(dir, "smolvm")
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// sim runs simulator invocations against one data dir.
type sim struct {
	t    testing.TB
	data string
	env  []string
}

func newSim(t testing.TB, env ...string) *sim {
	t.Helper()
	testutil.RequireBwrap(t)
	return &sim{t: t, data: t.TempDir(), env: env}
}

type result struct {
	stdout, stderr string
	code           int
}

func (s *sim) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, simBin, args...)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SMOLVM_") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(append(env, "SMOLVM_DATA_DIR="+s.data), s.env...)
	return cmd
}

func (s *sim) runIn(stdin string, args ...string) result {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := s.command(ctx, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		s.t.Fatalf("running smolvm %q: %v", args, err)
	}
	return result{stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()}
}

func (s *sim) run(args ...string) result {
	s.t.Helper()
	return s.runIn("", args...)
}

// ok runs a command that must succeed and returns its stdout.
func (s *sim) ok(args ...string) string {
	s.t.Helper()
	r := s.run(args...)
	if r.code != 0 {
		s.t.Fatalf("smolvm %q: exit %d, stderr %q", args, r.code, r.stderr)
	}
	return r.stdout
}

func (s *sim) running(name string) {
	s.t.Helper()
	s.ok("machine", "create", "--name", name, "--image", "node:22")
	s.ok("machine", "start", "--name", name)
}

func expect(t testing.TB, what string, got result, stdout, stderr string, code int) {
	t.Helper()
	if got.stdout != stdout || got.stderr != stderr || got.code != code {
		t.Fatalf("%s:\n got stdout %q stderr %q exit %d\nwant stdout %q stderr %q exit %d",
			what, got.stdout, got.stderr, got.code, stdout, stderr, code)
	}
}
