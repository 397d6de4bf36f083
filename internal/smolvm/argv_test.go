package smolvm

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The argv of every operation, against the CLI contract.
func TestArgvBuilders(t *testing.T) {
	spec := MachineSpec{
		Name: "ns-a-0123456789", Image: "node:22", CPUs: 2, MemoryMiB: 4096,
		AllowHosts: []string{"api.anthropic.com", "registry.npmjs.org"},
		AllowCIDRs: []string{"10.0.0.0/8"},
		Labels:     map[string]string{"b": "2", "a": "1=x"},
		Env:        []EnvVar{{"LANG", "C.UTF-8"}},
		Workdir:    "/workspace",
	}
	tests := []struct {
		name string
		got  func() ([]string, error)
		want []string
	}{
		{"version", func() ([]string, error) { return versionArgv(), nil }, []string{"--version"}},
		{"create full", func() ([]string, error) { return createArgv(spec) },
			[]string{"machine", "create", "--name", "ns-a-0123456789", "--image", "node:22",
				"--cpus", "2", "--mem", "4096",
				"--allow-host", "api.anthropic.com", "--allow-host", "registry.npmjs.org",
				"--allow-cidr", "10.0.0.0/8", "-e", "LANG=C.UTF-8", "-w", "/workspace",
				"--label", "a=1=x", "--label", "b=2"}},
		{"create minimal", func() ([]string, error) { return createArgv(MachineSpec{Name: "m1", Image: "alpine"}) },
			[]string{"machine", "create", "--name", "m1", "--image", "alpine"}},
		{"create net without allow-list", func() ([]string, error) {
			return createArgv(MachineSpec{Name: "m1", Image: "alpine", Network: true})
		}, []string{"machine", "create", "--name", "m1", "--image", "alpine", "--net"}},
		{"create net implied by allow-host", func() ([]string, error) {
			return createArgv(MachineSpec{Name: "m1", Image: "alpine", Network: true, AllowHosts: []string{"h"}})
		}, []string{"machine", "create", "--name", "m1", "--image", "alpine", "--allow-host", "h"}},
		{"start", func() ([]string, error) { return startArgv("m1") }, []string{"machine", "start", "--name", "m1"}},
		{"stop", func() ([]string, error) { return stopArgv("m1") }, []string{"machine", "stop", "--name", "m1"}},
		{"delete always -f", func() ([]string, error) { return deleteArgv("m1") }, []string{"machine", "delete", "--name", "m1", "-f"}},
		{"status", func() ([]string, error) { return statusArgv("m1") }, []string{"machine", "status", "--name", "m1", "--json"}},
		{"egress-events", func() ([]string, error) { return egressEventsArgv("m1", 50) }, []string{"machine", "egress-events", "--name", "m1", "--limit", "50", "--json"}},
		{"list", func() ([]string, error) { return listArgv(), nil }, []string{"machine", "ls", "--json"}},
		{"exec root argv", func() ([]string, error) {
			return argvOf(verbExec, ExecRequest{Machine: "m1", Argv: []string{"ls", "-la", "a b"}}, 0, false)
		}, []string{"machine", "exec", "--name", "m1", "--stream", "-i", "--", "ls", "-la", "a b"}},
		{"exec root script env workdir timeout stdin", func() ([]string, error) {
			return argvOf(verbExec, ExecRequest{Machine: "m1", Script: "echo $A", Env: []EnvVar{{"A", "x y"}}, Workdir: "/w"},
				90*time.Second, false)
		}, []string{"machine", "exec", "--name", "m1", "-w", "/w", "--timeout", "90s", "--stream", "-i", "--", "/bin/sh", "-c", `eval "$(head -c 22)"`}},
		{"exec login script", func() ([]string, error) {
			return argvOf(verbExec, ExecRequest{Machine: "m1", User: "node", Script: "id -un",
				Env: []EnvVar{{"TOKEN", "it's $secret"}, {"B", ""}}, Workdir: "/workspace"}, 600*time.Second, false)
		}, []string{"machine", "exec", "--name", "m1", "--timeout", "600s", "--stream", "-i", "--",
			"runuser", "-l", "node", "-c", `eval "$(head -c 75)"`}},
		{"exec login argv (seed's exec_claude shape)", func() ([]string, error) {
			return argvOf(verbInteractive, ExecRequest{Machine: "m1", User: "node",
				Argv: []string{"claude", "--append-system-prompt-file", "/p q", "-x'"}}, 0, true)
		}, []string{"machine", "exec", "--name", "m1", "-i", "-t", "--",
			"runuser", "-l", "node", "-c", "exec 'claude' '--append-system-prompt-file' '/p q' '-x'\\'''"}},
		{"exec direct argv", func() ([]string, error) {
			return argvOf(verbExec, ExecRequest{Machine: "m1", User: "node", Mode: ModeDirect,
				Argv: []string{"id", "-un"}, Env: []EnvVar{{"K", "v"}}, Workdir: "/workspace"}, time.Second, false)
		}, []string{"machine", "exec", "--name", "m1", "-e", "HOME=/home/node", "-e", "USER=node", "-e", "LOGNAME=node",
			"-w", "/workspace", "--timeout", "1s", "--stream", "-i", "--", "runuser", "-u", "node", "--", "/bin/sh", "-c", `eval "$(head -c 28)"`}},
		{"exec direct script as root with explicit home", func() ([]string, error) {
			return argvOf(verbExec, ExecRequest{Machine: "m1", User: "root", Mode: ModeDirect, Script: "pwd"}, 0, false)
		}, []string{"machine", "exec", "--name", "m1", "-e", "HOME=/root", "-e", "USER=root", "-e", "LOGNAME=root",
			"--stream", "-i", "--", "runuser", "-u", "root", "--", "/bin/sh", "-c", `eval "$(head -c 3)"`}},
		{"exec direct custom home", func() ([]string, error) {
			return argvOf(verbExec, ExecRequest{Machine: "m1", User: "app", Home: "/srv/app", Mode: ModeDirect, Argv: []string{"true"}}, 0, false)
		}, []string{"machine", "exec", "--name", "m1", "-e", "HOME=/srv/app", "-e", "USER=app", "-e", "LOGNAME=app",
			"--stream", "-i", "--", "runuser", "-u", "app", "--", "true"}},
		{"cp in with mode and owner", func() ([]string, error) {
			return copyInArgv("m1", "/tmp/a b", "/home/node/x", 0o600, 1000, 1000)
		}, []string{"machine", "cp", "/tmp/a b", "m1:/home/node/x", "--mode", "0600", "--uid", "1000", "--gid", "1000"}},
		{"cp in setuid mode, no owner", func() ([]string, error) {
			return copyInArgv("m1", "/tmp/a", "/usr/local/bin/x", 0o755|os.ModeSetuid, -1, -1)
		}, []string{"machine", "cp", "/tmp/a", "m1:/usr/local/bin/x", "--mode", "4755"}},
		{"cp in default mode, gid only", func() ([]string, error) {
			return copyInArgv("m1", "/tmp/a", "/x", 0, -1, 0)
		}, []string{"machine", "cp", "/tmp/a", "m1:/x", "--gid", "0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.got()
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("argv mismatch\n got: %q\nwant: %q", got, tt.want)
			}
		})
	}
}

// Requests the driver must refuse before anything runs, with the class and
// without echoing the offending value.
func TestArgvRejects(t *testing.T) {
	const secret = "s3cr3t-value"
	tests := []struct {
		name  string
		build func() ([]string, error)
		class ErrorClass
	}{
		{"name with dot", func() ([]string, error) { return startArgv("a.b") }, ClassInvalidName},
		{"name as flag", func() ([]string, error) { return stopArgv("-f") }, ClassInvalidName},
		{"empty name", func() ([]string, error) { return deleteArgv("") }, ClassInvalidName},
		{"image as flag", func() ([]string, error) { return createArgv(MachineSpec{Name: "m", Image: "--net"}) }, ClassUsage},
		{"empty image", func() ([]string, error) { return createArgv(MachineSpec{Name: "m"}) }, ClassUsage},
		{"image from stdin", func() ([]string, error) { return createArgv(MachineSpec{Name: "m", Image: "-"}) }, ClassUsage},
		{"image a host path", func() ([]string, error) { return createArgv(MachineSpec{Name: "m", Image: "/var/lib/rootfs"}) }, ClassUsage},
		{"image ./", func() ([]string, error) { return createArgv(MachineSpec{Name: "m", Image: "./rootfs"}) }, ClassUsage},
		{"image ../", func() ([]string, error) { return createArgv(MachineSpec{Name: "m", Image: "../rootfs"}) }, ClassUsage},
		{"image .tar", func() ([]string, error) { return createArgv(MachineSpec{Name: "m", Image: "node:22.tar"}) }, ClassUsage},
		{"image .tar.gz", func() ([]string, error) { return createArgv(MachineSpec{Name: "m", Image: "x.tar.gz"}) }, ClassUsage},
		{"image .tgz", func() ([]string, error) { return createArgv(MachineSpec{Name: "m", Image: "x.tgz"}) }, ClassUsage},
		{"allow-host as flag", func() ([]string, error) {
			return createArgv(MachineSpec{Name: "m", Image: "i", AllowHosts: []string{"-x"}})
		}, ClassUsage},
		{"label key with =", func() ([]string, error) {
			return createArgv(MachineSpec{Name: "m", Image: "i", Labels: map[string]string{"a=b": "c"}})
		}, ClassUsage},
		{"bad env name in create", func() ([]string, error) {
			return createArgv(MachineSpec{Name: "m", Image: "i", Env: []EnvVar{{"A;rm", secret}}})
		}, ClassUsage},
		{"script and argv", func() ([]string, error) {
			return argvOf(verbExec, ExecRequest{Machine: "m", Script: "x", Argv: []string{"y"}}, 0, false)
		}, ClassUsage},
		{"neither script nor argv", func() ([]string, error) {
			return argvOf(verbExec, ExecRequest{Machine: "m"}, 0, false)
		}, ClassUsage},
		{"NUL in argv", func() ([]string, error) {
			return argvOf(verbExec, ExecRequest{Machine: "m", Argv: []string{"echo", secret + "\x00"}}, 0, false)
		}, ClassUsage},
		{"NUL in env value", func() ([]string, error) {
			return argvOf(verbExec, ExecRequest{Machine: "m", Argv: []string{"x"}, Env: []EnvVar{{"A", secret + "\x00"}}}, 0, false)
		}, ClassUsage},
		{"env name injection in login mode", func() ([]string, error) {
			return argvOf(verbExec, ExecRequest{Machine: "m", User: "node", Script: "x", Env: []EnvVar{{"A=1; rm -rf /; B", secret}}}, 0, false)
		}, ClassUsage},
		{"user as flag", func() ([]string, error) {
			return argvOf(verbExec, ExecRequest{Machine: "m", User: "-c", Script: "x"}, 0, false)
		}, ClassUsage},
		{"relative workdir", func() ([]string, error) {
			return argvOf(verbExec, ExecRequest{Machine: "m", Script: "x", Workdir: "work"}, 0, false)
		}, ClassUsage},
		{"negative timeout", func() ([]string, error) {
			return argvOf(verbExec, ExecRequest{Machine: "m", Script: "x"}, -time.Second, false)
		}, ClassUsage},
		{"unknown mode", func() ([]string, error) {
			return argvOf(verbExec, ExecRequest{Machine: "m", User: "node", Script: "x", Mode: 7}, 0, false)
		}, ClassUsage},
		{"host path with colon", func() ([]string, error) { return copyInArgv("m", "/tmp/a:b", "/x", 0, -1, -1) }, ClassUsage},
		{"relative host path", func() ([]string, error) { return copyInArgv("m", "a", "/x", 0, -1, -1) }, ClassUsage},
		{"relative guest path", func() ([]string, error) { return copyInArgv("m", "/a", "x", 0, -1, -1) }, ClassUsage},
		{"cp bad machine", func() ([]string, error) { return copyInArgv("m.x", "/a", "/b", 0, -1, -1) }, ClassInvalidName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			argv, err := tt.build()
			if err == nil {
				t.Fatalf("expected an error, got argv %q", argv)
			}
			if got := ClassOf(err); got != tt.class {
				t.Fatalf("class = %q, want %q (%v)", got, tt.class, err)
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error leaks a value: %v", err)
			}
		})
	}
}

// The payload an exec sends on stdin, and what stays off every command line.
func TestExecPayload(t *testing.T) {
	const secret = "sk-ant-SECRET"
	for _, tt := range []struct {
		name    string
		verb    string
		req     ExecRequest
		payload string
	}{
		{"login: exports, cd, script", verbExec, ExecRequest{Machine: "m", User: "node", Script: "id -un",
			Env: []EnvVar{{"TOKEN", "it's " + secret}, {"B", ""}}, Workdir: "/workspace"},
			"export TOKEN='it'\\''s " + secret + "'\nexport B=''\ncd '/workspace' || exit 1\nid -un"},
		{"direct: exports and script, workdir by -w", verbExec, ExecRequest{Machine: "m", User: "node", Mode: ModeDirect,
			Script: "echo $TOKEN", Env: []EnvVar{{"TOKEN", secret}}, Workdir: "/w"},
			"export TOKEN='" + secret + "'\necho $TOKEN"},
		{"root: argv with env becomes exec", verbExec, ExecRequest{Machine: "m", Argv: []string{"printenv", "TOKEN"},
			Env: []EnvVar{{"TOKEN", secret}}}, "export TOKEN='" + secret + "'\nexec 'printenv' 'TOKEN'"},
		{"script alone", verbExec, ExecRequest{Machine: "m", Script: "echo " + secret}, "echo " + secret},
		{"bare argv has none", verbExec, ExecRequest{Machine: "m", Argv: []string{"true"}}, ""},
		{"interactive has none", verbInteractive, ExecRequest{Machine: "m", User: "node", Argv: []string{"claude"}}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			argv, payload, err := execArgv(tt.verb, tt.req, time.Minute, false)
			if err != nil {
				t.Fatal(err)
			}
			if payload != tt.payload {
				t.Fatalf("payload\n got: %q\nwant: %q", payload, tt.payload)
			}
			if strings.Contains(strings.Join(argv, " "), secret) {
				t.Fatalf("a secret is on the command line: %q", argv)
			}
			if payload != "" && !strings.Contains(argv[len(argv)-1], `eval "$(head -c `) {
				t.Fatalf("the guest command does not read the payload: %q", argv)
			}
		})
	}
	if _, _, err := execArgv(verbInteractive, ExecRequest{Machine: "m", Argv: []string{"sh"}, Env: []EnvVar{{"A", secret}}}, 0, false); ClassOf(err) != ClassUsage {
		t.Fatalf("an interactive exec with Env must be refused, got %v", err)
	}
}

func TestFormatTimeout(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Millisecond:        "1s",
		time.Second:             "1s",
		1500 * time.Millisecond: "2s",
		10 * time.Minute:        "600s",
		2 * time.Hour:           "7200s",
	} {
		if got := formatTimeout(d); got != want {
			t.Errorf("formatTimeout(%v) = %q, want %q", d, got, want)
		}
	}
}

// argvOf is execArgv's argv alone, for the argv tables.
func argvOf(verb string, req ExecRequest, timeout time.Duration, tty bool) ([]string, error) {
	argv, _, err := execArgv(verb, req, timeout, tty)
	return argv, err
}
