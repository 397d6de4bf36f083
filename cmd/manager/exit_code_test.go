package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A flag the manager cannot parse, or a value it refuses before starting,
// ends it with exit code 2 and one line on stderr; a problem found while
// starting (here a --smolvm-root that is not there) with exit code 1
// through the log, as docs/agent.md#flags says.
func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	// A kubeconfig that loads (nothing connects before the failure): without
	// one, ctrl.GetConfigOrDie would exit 1 for its own reason.
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"unknown flag", []string{"--node-name=n", "--no-such-flag"}, 2, "flag provided but not defined: -no-such-flag"},
		{"bad value", []string{"--node-name=n", "--exec-mode=weird"}, 2, "--exec-mode must be login or direct"},
		{"missing flag", []string{}, 2, "--node-name is required"},
		{"missing smolvm root", []string{"--node-name=n", "--smolvm-root=" + filepath.Join(dir, "no-such-root"),
			"--smolvm-path=/opt/smolvm/bin/smolvm", "--copy-source-dir=/run/x",
			"--metrics-bind-address=0", "--health-probe-bind-address=0", "--exec-bind-address=0"}, 1, "--smolvm-root:"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], c.args...)
			cmd.Env = append(os.Environ(), runMainEnv+"=1", "KUBECONFIG="+kubeconfig, "NODE_NAME=")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != c.code {
				t.Fatalf("exit: %v, want code %d; stderr:\n%s", err, c.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), c.stderr) {
				t.Errorf("stderr lacks %q:\n%s", c.stderr, stderr.String())
			}
			if c.code == 2 && strings.Count(strings.TrimSpace(stderr.String()), "\n") != 0 {
				t.Errorf("a refused flag takes more than one line:\n%s", stderr.String())
			}
		})
	}
}
