package smolvm

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// pidnsChildEnv marks the test binary re-run in a new PID namespace.
const pidnsChildEnv = "SMOLVM_TEST_PIDNS_CHILD"

// An agent in its own PID namespace (a container without hostPID) whose
// root's /proc is the node's is refused, naming hostPID; one that shares the
// namespace of the root's /proc passes.
func TestCheckRootPIDNamespace(t *testing.T) {
	if os.Getenv(pidnsChildEnv) != "" {
		// The child: pid 1 of a new PID namespace, /proc still the
		// parent's procfs, as an agent container's /host/proc is the node's.
		fmt.Print(CheckRootPIDNamespace("/"))
		os.Exit(0)
	}
	if err := CheckRootPIDNamespace("/"); err != nil {
		t.Fatalf("the test's own namespace: %v", err)
	}
	if err := CheckRootPIDNamespace(t.TempDir()); err != nil {
		t.Fatalf("a root without a procfs: %v", err)
	}
	if os.Geteuid() != 0 {
		t.Skip("SKIP: a new PID namespace needs root; run the tests as root to check the hostPID refusal")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCheckRootPIDNamespace$")
	cmd.Env = append(os.Environ(), pidnsChildEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child in a new PID namespace: %v\n%s", err, out)
	}
	for _, want := range []string{"the agent is pid 1 here", "hostPID: true"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("child in a new PID namespace said %q, want it to contain %q", out, want)
		}
	}
}
