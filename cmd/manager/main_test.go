package main

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestParseFlags(t *testing.T) {
	t.Setenv("NODE_NAME", "")
	for _, c := range []struct {
		args []string
		err  string
	}{
		{[]string{}, "--node-name is required"},
		{[]string{"--node-name=n", "--exec-mode=weird"}, "--exec-mode must be login or direct"},
		{[]string{"--node-name=n", "--max-concurrent-reconciles=0"}, "at least 1"},
		{[]string{"--node-name=n", "--resync-period=10ms"}, "at least 1s"},
		{[]string{"--node-name=n", "--no-such-flag"}, "flag provided but not defined"},
		{[]string{"--node-name=n", "extra"}, `unexpected argument "extra"`},
		{[]string{"--node-name=n", "--exec-agent-address=nonsense"}, "want NODE=HOST:PORT"},
		{[]string{"--node-name=n", "--exec-keepalive=1ms"}, "--exec-keepalive must be at least 100ms"},
		{[]string{"--node-name=n", "--exec-idle-timeout=10ms"}, "--exec-idle-timeout must be at least 1s"},
		{[]string{"--node-name=n", "--exec-max-sessions-per-user=0"}, "must be at least 1"},
		{[]string{"--node-name=n", "--exec-max-sessions=600"}, "must be below --exec-max-connections (512)"},
		{[]string{"--node-name=n", "--exec-gateway-client-names= , "}, "at least one common name"},
		{[]string{"--node-name=n", "--exec-max-sessions=4", "--exec-max-sessions-per-user=2", "--exec-gateway-client-names=gw-a,gw-b"}, ""},
		{[]string{"--node-name=n", "--smolvm-status-timeout=1ms"}, "--smolvm-status-timeout must be at least 100ms"},
		{[]string{"--node-name=n", "--smolvm-copy-timeout-per-mib=-1s"}, "must not be negative"},
		{[]string{"--node-name=n", "--smolvm-start-timeout=10m", "--smolvm-exec-timeout=1h"}, ""},
		{[]string{"--node-name=n", "--lease-namespace="}, "--lease-namespace must not be empty"},
		{[]string{"--node-name=n", "--lease-duration=10s"}, "--lease-duration (10s) must be longer than --lease-renew-deadline (10s)"},
		{[]string{"--node-name=n", "--lease-renew-deadline=2s"}, "must be more than 1.2 × --lease-retry-period"},
		{[]string{"--node-name=n", "--lease-retry-period=0s"}, "--lease-retry-period must be positive"},
		{[]string{"--node-name=n", "--lease-duration=3s", "--lease-renew-deadline=2s", "--lease-retry-period=250ms"}, ""},
		{[]string{"--node-name=n", "--vm-launcher=docker"}, "--vm-launcher must be direct or systemd"},
		{[]string{"--node-name=n", "--vm-launcher=systemd"}, "needs an absolute --smolvm-path"},
		{[]string{"--node-name=n", "--vm-launcher=systemd", "--smolvm-path=/opt/smolvm/bin/smolvm"}, ""},
		{[]string{"--node-name=n", "--smolvm-root=host"}, "--smolvm-root must be an absolute path"},
		{[]string{"--node-name=n", "--smolvm-root=/host"}, "--smolvm-root needs an absolute --smolvm-path"},
		{[]string{"--node-name=n", "--smolvm-root=/host", "--smolvm-path=/opt/smolvm/bin/smolvm", "--smolvm-data-dir=smolvm"}, "needs an absolute --smolvm-data-dir"},
		{[]string{"--node-name=n", "--smolvm-root=/host", "--smolvm-path=/opt/smolvm/bin/smolvm"}, "--smolvm-root needs --copy-source-dir"},
		{[]string{"--node-name=n", "--smolvm-root=/host", "--smolvm-path=/opt/smolvm/bin/smolvm", "--copy-source-dir=run/x"}, "--copy-source-dir must be an absolute path"},
		{[]string{"--node-name=n", "--copy-source-dir=x"}, "--copy-source-dir must be an absolute path"},
		{[]string{"--node-name=n", "--smolvm-root=/host", "--smolvm-path=/opt/smolvm/bin/smolvm", "--copy-source-dir=/run/x", "--smolvm-data-dir=/var/lib/smolvm"}, ""},
		{[]string{"--node-name=n"}, ""},
		{[]string{"--node-name=n", "--exec-bind-address=0", "--exec-cert-dir="}, ""},
		{[]string{"--mode=placement"}, "--mode must be agent or cluster"},
		{[]string{"--mode=cluster"}, ""},
		{[]string{"--mode=cluster", "--reservations=false", "--leader-elect=false"}, ""},
		{[]string{"--mode=cluster", "--reservation-overhead-cpu=lots"}, "--reservation-overhead-cpu"},
		{[]string{"--mode=cluster", "--reservation-overhead-memory=-1Gi"}, "must not be negative"},
		{[]string{"--mode=cluster", "--agent-timeout=10ms"}, "the agent timeout must be at least 1s"},
		{[]string{"--mode=cluster", "--pause-image="}, "the pause image must not be empty"},
	} {
		_, err := parseFlags(c.args)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%v: unexpected error %v", c.args, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%v: error %v, want one containing %q", c.args, err, c.err)
		case err != nil && strings.Contains(err.Error(), "\n"):
			t.Errorf("%v: error is not one line: %q", c.args, err)
		}
	}
}

func TestNodeNameFromEnvironment(t *testing.T) {
	t.Setenv("NODE_NAME", "from-downward-api")
	o, err := parseFlags(nil)
	if err != nil || o.nodeName != "from-downward-api" {
		t.Fatalf("got %+v, %v", o, err)
	}
}

func TestLeaseNamespaceFromEnvironment(t *testing.T) {
	t.Setenv("POD_NAMESPACE", "agents")
	t.Setenv("POD_NAME", "agent-x1")
	o, err := parseFlags([]string{"--node-name=n"})
	if err != nil || o.lease.namespace != "agents" || o.lease.identity != "agent-x1" {
		t.Fatalf("got %+v, %v", o, err)
	}
}

func TestHelpIsNotAnError(t *testing.T) {
	if _, err := parseFlags([]string{"-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("got %v", err)
	}
}

// The root is checked on the machine before anything starts, and the copy
// source directory is made under it, where the agent writes and smolvm
// reads.
func TestSmolvmRootPrepare(t *testing.T) {
	root := t.TempDir()
	file := filepath.Join(root, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		opts smolvmRootOptions
		dir  string
		err  string
	}{
		{smolvmRootOptions{}, "", ""},
		{smolvmRootOptions{root: filepath.Join(root, "missing"), copyDir: "/run/x"}, "", "--smolvm-root: smolvm root: stat"},
		{smolvmRootOptions{root: file, copyDir: "/run/x"}, "", "--smolvm-root: smolvm root " + strconv.Quote(file) + " is not a directory"},
		{smolvmRootOptions{root: root, copyDir: "/file/x"}, "", "--copy-source-dir: mkdir"},
		{smolvmRootOptions{root: root, copyDir: "/run/bottle-controller/files"}, filepath.Join(root, "run/bottle-controller/files"), ""},
	} {
		dir, err := c.opts.prepare()
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%+v: %v", c.opts, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%+v: error %v, want %q", c.opts, err, c.err)
		case dir != c.dir:
			t.Errorf("%+v: copy dir %q, want %q", c.opts, dir, c.dir)
		case dir != "":
			if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
				t.Errorf("%+v: %s is %v (%v), want a 0700 directory", c.opts, dir, fi.Mode(), err)
			}
		}
	}
}
