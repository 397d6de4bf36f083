package smolvm

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The replay oracle: what real smolvm prints and how it exits, per verb and
// failure, read from smolvm's source (smol-machines/smolvm at a5df5001,
// v1.9.2; each row cites file:line), replayed through the driver by a fake
// smolvm that prints exactly the row's texts. The same rows run against the
// simulator (TestOracleSimulator), which must reach the same verdict with
// the same message, so the two cannot drift apart again; the rows that need
// no KVM also run against a real smolvm when one is installed
// (TestOracleRealSmolvm).

// oracleMachine is the machine every row names.
const oracleMachine = "m1"

// reply is one smolvm invocation: stdout, stderr, exit code.
type reply struct {
	stdout, stderr string
	exit           int
}

// oracleRow is one situation.
type oracleRow struct {
	name string
	// src is where smolvm prints these texts (paths in smol-machines/smolvm).
	src string
	// call is the driver operation under test.
	call func(ctx context.Context, c *CLI, out *startSignal) (ExecResult, error)
	// replies are what the fake prints per smolvm subcommand ("create",
	// "exec", "status", ...); exec's verdict asks "status" too.
	replies map[string]reply
	// class of the driver's error; "" for success or a guest result.
	class ErrorClass
	// msg is the error's exact Message, when class is set.
	msg string
	// guestExit is the exit code of a guest result (class "").
	guestExit int
	// guestStderr must be in a guest result's Stderr.
	guestStderr string

	// sim: the row also runs against the simulator: setup brings it to the
	// row's situation (nil: a fresh data directory is the situation),
	// during runs once the command printed "started" (a VM lost mid-step),
	// simEnv adds knobs.
	sim    bool
	setup  func(t testing.TB, ctx context.Context, c *CLI)
	during func(ctx context.Context, c *CLI) error
	simEnv []string
	// real: the row needs no KVM, so it also runs against a real smolvm.
	real bool
}

// startSignal closes started the first time an exec prints "started".
type startSignal struct {
	once    sync.Once
	started chan struct{}
	mu      sync.Mutex
	buf     bytes.Buffer
}

func newStartSignal() *startSignal { return &startSignal{started: make(chan struct{})} }

func (s *startSignal) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf.Write(p)
	if strings.Contains(s.buf.String(), "started") {
		s.once.Do(func() { close(s.started) })
	}
	return len(p), nil
}

// statusJSON is `machine status --json` as smolvm's one builder writes it
// (src/cli/vm_common.rs:2467-2519): created_at is Unix seconds.
func statusJSON(state string, pid int) string {
	p := "null"
	if pid > 0 {
		p = strconv.Itoa(pid)
	}
	return fmt.Sprintf(`{"name":%q,"state":%q,"cpus":4,"memory_mib":8192,"pid":%s,"mounts":0,"ports":0,`+
		`"created_at":1764979200,"storage_gb":20,"overlay_gb":10,"image":"alpine","entrypoint":[],"cmd":["/bin/sh"],`+
		`"ephemeral":false,"gpu":false,"gpu_vram_mib":null,"cuda":false,"forkable":false,"cuda_fork_pool_size":null,`+
		`"cuda_vram_limit_mib":null,"forkpoint_held":false,"labels":{},"restart_policy":"never","restart_max_retries":0,`+
		`"restart_count":0,"health_cmd":null,"health_interval_secs":null,"health_timeout_secs":null,"health_retries":null,`+
		`"health_startup_grace_secs":null,"network":false}`+"\n", oracleMachine, state, p)
}

var (
	statusRunning = reply{stdout: statusJSON("running", 4242)}
	statusStopped = reply{stdout: statusJSON("stopped", 4242)} // the record keeps a stale pid
	statusMissing = reply{stderr: "Error: config operation failed: machine status: machine 'm1' not found\n", exit: 1}
	vmNotFound    = reply{stderr: "Error: vm not found: m1\n", exit: 1}
)

const (
	msgExists       = "config operation failed: create machine: machine 'm1' already exists or is being created"
	msgNotRunning   = "agent operation failed: connect: machine 'm1' is not running. Use 'smolvm machine start --name m1' first."
	msgNoKVM        = "kvm not available: KVM not available. Ensure KVM kernel module is loaded."
	msgUnresolvable = "config operation failed: --allow-host: failed to resolve 'api.example.invalid': " +
		"failed to lookup address information: Name or service not known"
	vcpuWarning = "warning: requested 32 vCPUs but the hypervisor supports at most 16; the VM will run with 16 vCPUs\n"
)

func create(spec MachineSpec) func(context.Context, *CLI, *startSignal) (ExecResult, error) {
	return func(ctx context.Context, c *CLI, _ *startSignal) (ExecResult, error) {
		return ExecResult{}, c.Create(ctx, spec)
	}
}

var (
	plainSpec = MachineSpec{Name: oracleMachine, Image: "alpine"}
	cpus32    = MachineSpec{Name: oracleMachine, Image: "alpine", CPUs: 32}
)

func verbCall(f func(*CLI, context.Context, string) error) func(context.Context, *CLI, *startSignal) (ExecResult, error) {
	return func(ctx context.Context, c *CLI, _ *startSignal) (ExecResult, error) {
		return ExecResult{}, f(c, ctx, oracleMachine)
	}
}

func statusCall(ctx context.Context, c *CLI, _ *startSignal) (ExecResult, error) {
	_, err := c.Status(ctx, oracleMachine)
	return ExecResult{}, err
}

// script runs a shell script (smolvm -i: the script travels on stdin).
func script(s string) func(context.Context, *CLI, *startSignal) (ExecResult, error) {
	return func(ctx context.Context, c *CLI, out *startSignal) (ExecResult, error) {
		return c.Exec(ctx, ExecRequest{Machine: oracleMachine, Script: s, Timeout: time.Minute, Output: out})
	}
}

// bareArgv runs argv with no env and no stdin.
func bareArgv(argv ...string) func(context.Context, *CLI, *startSignal) (ExecResult, error) {
	return func(ctx context.Context, c *CLI, out *startSignal) (ExecResult, error) {
		return c.Exec(ctx, ExecRequest{Machine: oracleMachine, Argv: argv, Timeout: time.Minute, Output: out})
	}
}

func created(t testing.TB, ctx context.Context, c *CLI) {
	t.Helper()
	if err := c.Create(ctx, plainSpec); err != nil {
		t.Fatalf("setup create: %v", err)
	}
}

func running(t testing.TB, ctx context.Context, c *CLI) {
	t.Helper()
	created(t, ctx, c)
	if err := c.Start(ctx, oracleMachine); err != nil {
		t.Fatalf("setup start: %v", err)
	}
}

func stopMachine(ctx context.Context, c *CLI) error { return c.Stop(ctx, oracleMachine) }

// guestImitation is a row where the guest prints one of smolvm's own error
// lines last and exits 1, in a machine that keeps running: the step's
// result, never smolvm's error (audit N10).
func guestImitation(family, line string) oracleRow {
	return oracleRow{
		name: "guest imitates " + family,
		src:  "src/main.rs:212-216 (smolvm's own line) vs src/cli/machine.rs:2771 (guest code passed through)",
		call: script("echo some output; printf '%s\\n' " + quote(line) + " >&2; exit 1"),
		replies: map[string]reply{
			"exec":   {stdout: "some output\n", stderr: line + "\n", exit: 1},
			"status": statusRunning,
		},
		guestExit: 1, guestStderr: line,
		sim: true, setup: running,
	}
}

// egressEventsWant calls EgressEvents (limit 2) and checks what it parsed.
func egressEventsWant(want ...EgressDenial) func(context.Context, *CLI, *startSignal) (ExecResult, error) {
	return func(ctx context.Context, c *CLI, _ *startSignal) (ExecResult, error) {
		got, err := c.EgressEvents(ctx, oracleMachine, 2)
		if err != nil {
			return ExecResult{}, err
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return ExecResult{}, fmt.Errorf("egress events %v, want %v", got, want)
		}
		return ExecResult{}, nil
	}
}

// egressLogged gives the simulator's m1 three denials in smolvm's log format
// (crates/smolvm-network/src/lib.rs:211-217, egress.rs:275-303) and a line
// that is not one.
func egressLogged(t testing.TB, ctx context.Context, c *CLI) {
	t.Helper()
	created(t, ctx, c)
	var dir string
	for _, kv := range c.Env {
		if v, ok := strings.CutPrefix(kv, "SMOLVM_DATA_DIR="); ok {
			dir = v
		}
	}
	log := "[2026-08-13T02:31:01Z]: egress policy denied connect to 10.0.0.1:443\n" +
		"[2026-08-13T02:31:02Z]: virtio-net: blocking DNS query by allow-host policy name=pypi.org\n" +
		"[2026-08-13T02:31:02Z]: egress policy denied resolve pypi.org\n" +
		"[2026-08-13T02:31:03Z]: egress policy denied sendto 10.0.0.2:53\n"
	if err := os.WriteFile(filepath.Join(dir, "machines", oracleMachine, "egress-denials.log"), []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}
}

var oracleRows = []oracleRow{
	{
		name: "egress-events of a machine that refused nothing", src: "src/cli/machine.rs:4061-4079; src/agent/manager.rs:406-410",
		call:    egressEventsWant(),
		replies: map[string]reply{"egress-events": {stdout: "[]\n"}},
		sim:     true, setup: created, real: true,
	},
	{
		name: "egress-events of a missing machine", src: "src/agent/manager.rs:403-410 (no log is no denials, never an error)",
		call:    egressEventsWant(),
		replies: map[string]reply{"egress-events": {stdout: "[]\n"}},
		sim:     true, real: true,
	},
	{
		name: "egress-events, newest kept, oldest first", src: "src/cli/machine.rs:4068-4074; src/agent/manager.rs:406-468",
		call: egressEventsWant(EgressDenial{"2026-08-13T02:31:02Z", "resolve", "pypi.org"}, EgressDenial{"2026-08-13T02:31:03Z", "sendto", "10.0.0.2:53"}),
		replies: map[string]reply{"egress-events": {stdout: "[\n  {\n    \"timestamp\": \"2026-08-13T02:31:02Z\",\n    \"operation\": \"resolve\",\n" +
			"    \"dest\": \"pypi.org\"\n  },\n  {\n    \"timestamp\": \"2026-08-13T02:31:03Z\",\n    \"operation\": \"sendto\",\n    \"dest\": \"10.0.0.2:53\"\n  }\n]\n"}},
		sim: true, setup: egressLogged,
	},
	{
		name: "create", src: "src/cli/vm_common.rs:720-740",
		call: create(plainSpec),
		replies: map[string]reply{"create": {stdout: "Created machine: m1\n  CPUs: 4, Memory: 8192 MiB\n\n" +
			"Use 'smolvm machine start --name m1' to start the machine\nThen use 'smolvm machine exec --name m1 -- <command>' to run commands\n"}},
		sim: true, real: true,
	},
	{
		name: "create an existing name", src: "src/cli/vm_common.rs:528-537",
		call:    create(plainSpec),
		replies: map[string]reply{"create": {stderr: "Error: " + msgExists + "\n", exit: 1}},
		class:   ClassAlreadyExists, msg: msgExists,
		sim: true, setup: created, real: true,
	},
	{
		name:    "create an existing name with more than 16 vCPUs (warning first)",
		src:     "src/data/resources.rs:91-97 before src/cli/vm_common.rs:528-537",
		call:    create(cpus32),
		replies: map[string]reply{"create": {stderr: vcpuWarning + "Error: " + msgExists + "\n", exit: 1}},
		class:   ClassAlreadyExists, msg: msgExists,
		sim: true, setup: created, real: true,
	},
	{
		name: "create with an allow-host the node cannot resolve", src: "src/cli/machine.rs:82-110; src/smolfile.rs:38-80",
		call:    create(MachineSpec{Name: oracleMachine, Image: "alpine", Network: true, AllowHosts: []string{"api.example.invalid"}}),
		replies: map[string]reply{"create": {stderr: "Error: " + msgUnresolvable + "\n", exit: 1}},
		class:   ClassUnresolvableHost, msg: msgUnresolvable,
		sim: true,
	},
	{
		name: "start a missing machine", src: "src/cli/vm_common.rs:1286",
		call:    verbCall((*CLI).Start),
		replies: map[string]reply{"start": vmNotFound},
		class:   ClassNotFound, msg: "vm not found: m1",
		sim: true, real: true,
	},
	{
		name: "start without KVM (preamble, wrapped, hint line)",
		src:  "src/cli/vm_common.rs:1404,1474-1476; src/platform/linux.rs:31-35",
		call: verbCall((*CLI).Start),
		replies: map[string]reply{"start": {stderr: "Starting machine 'm1'...\nError: agent operation failed: start machine: " + msgNoKVM +
			"\nTry: sudo modprobe kvm && sudo modprobe kvm_intel  # (or kvm_amd)\n", exit: 1}},
		class: ClassKVMUnavailable, msg: "agent operation failed: start machine: " + msgNoKVM,
		sim: true, setup: created, simEnv: []string{"SMOLVM_SIM_NO_KVM=1"},
	},
	{
		name: "first start pulls on stderr", src: "src/cli/vm_common.rs:1404,1512,1655",
		call: verbCall((*CLI).Start),
		replies: map[string]reply{"start": {stderr: "Starting machine 'm1'...\nPulling alpine...\n",
			stdout: "Machine 'm1' running (PID: 4242)\n"}},
		sim: true, setup: created,
	},
	{
		name: "start a running machine", src: "src/cli/vm_common.rs:1300-1304",
		call:    verbCall((*CLI).Start),
		replies: map[string]reply{"start": {stdout: "Machine 'm1' already running (PID: 4242)\n"}},
		sim:     true, setup: running,
	},
	{
		name: "stop a machine that is not running", src: "src/cli/vm_common.rs:2006",
		call:    verbCall((*CLI).Stop),
		replies: map[string]reply{"stop": {stdout: "Machine 'm1' is not running (state: created)\n"}},
		sim:     true, setup: created, real: true,
	},
	{
		name: "stop a missing machine", src: "src/cli/vm_common.rs:1940",
		call:    verbCall((*CLI).Stop),
		replies: map[string]reply{"stop": vmNotFound},
		class:   ClassNotFound, msg: "vm not found: m1",
		sim: true, real: true,
	},
	{
		name: "delete a missing machine", src: "src/cli/vm_common.rs:2268",
		call:    verbCall((*CLI).Delete),
		replies: map[string]reply{"delete": vmNotFound},
		class:   ClassNotFound, msg: "vm not found: m1",
		sim: true, real: true,
	},
	{
		name: "delete", src: "src/cli/vm_common.rs:2262-2404",
		call:    verbCall((*CLI).Delete),
		replies: map[string]reply{"delete": {stdout: "Cleaning up data directory for vm: m1\nDeleted machine: m1\n"}},
		sim:     true, setup: created, real: true,
	},
	{
		name: "status of a missing machine", src: "src/cli/vm_common.rs:2524-2545",
		call:    statusCall,
		replies: map[string]reply{"status": statusMissing},
		class:   ClassNotFound, msg: "config operation failed: machine status: machine 'm1' not found",
		sim: true, real: true,
	},
	{
		name: "status (numeric created_at, stale pid)", src: "src/cli/vm_common.rs:2467-2519; src/config.rs:369-370",
		call:    statusCall,
		replies: map[string]reply{"status": statusStopped},
		sim:     true, setup: created, real: true,
	},
	{
		name: "a renamed executable notes it first", src: "src/main.rs:149-156,212-216",
		call: verbCall((*CLI).Stop),
		replies: map[string]reply{"stop": {stderr: "note: no packed assets found for 'smolvm-1.9' (looked for a 'smolvm-1.9.smolmachine' " +
			"sidecar next to the executable); running as the plain smolvm CLI. If this is a packed binary, keep its .smolmachine file alongside it.\n" +
			"Error: vm not found: m1\n", exit: 1}},
		class: ClassNotFound, msg: "vm not found: m1",
	},
	{
		name: "a usage error", src: "clap 4.6.1 (Cargo.lock); src/cli/machine.rs:2626-2675",
		call: verbCall((*CLI).Stop),
		replies: map[string]reply{"stop": {stderr: "error: unexpected argument '--bogus' found\n\n  tip: to pass '--bogus' as a value, use '-- --bogus'\n\n" +
			"Usage: smolvm machine stop [OPTIONS]\n\nFor more information, try '--help'.\n", exit: 2}},
		class: ClassUsage, msg: "smolvm rejected the command line: unexpected argument '--bogus'",
	},
	{
		name: "update a stopped machine's size", src: "src/cli/machine.rs:4183-4266,4526-4534",
		call: func(ctx context.Context, c *CLI, _ *startSignal) (ExecResult, error) {
			return ExecResult{}, c.Update(ctx, oracleMachine, 2, 1024)
		},
		replies: map[string]reply{"update": {stdout: "Updated machine 'm1':\n  cpus: 4 → 2\n  memory: 8192 MiB → 1024 MiB\n\n" +
			"Start with: smolvm machine start --name m1\n"}},
		sim: true, setup: created, real: true,
	},
	{
		name: "update a running machine", src: "src/cli/machine.rs:4279-4288; src/data/errors.rs:83",
		call: func(ctx context.Context, c *CLI, _ *startSignal) (ExecResult, error) {
			return ExecResult{}, c.Update(ctx, oracleMachine, 2, 0)
		},
		replies: map[string]reply{"update": {stderr: "Error: invalid vm state: expected stopped, got Running\n", exit: 1}},
		class:   ClassOther, msg: "invalid vm state: expected stopped, got Running",
		sim: true, setup: running,
	},
	{
		name: "update a missing machine", src: "src/cli/machine.rs:4274-4276",
		call: func(ctx context.Context, c *CLI, _ *startSignal) (ExecResult, error) {
			return ExecResult{}, c.Update(ctx, oracleMachine, 2, 0)
		},
		replies: map[string]reply{"update": {stderr: "Error: config operation failed: update: machine 'm1' not found\n", exit: 1}},
		class:   ClassNotFound, msg: "config operation failed: update: machine 'm1' not found",
		sim: true, real: true,
	},
	{
		name: "exec in a machine that is not running", src: "src/cli/vm_common.rs:99-119",
		call: script("true"),
		replies: map[string]reply{"exec": {stderr: "Error: " + msgNotRunning + "\n", exit: 1},
			"status": {stdout: statusJSON("created", 0)}},
		class: ClassNotRunning, msg: msgNotRunning + " (machine is created)",
		sim: true, setup: created, real: true,
	},
	{
		name: "exec in a missing machine", src: "src/cli/vm_common.rs:80-87",
		call:    script("true"),
		replies: map[string]reply{"exec": vmNotFound, "status": statusMissing},
		class:   ClassNotFound, msg: "vm not found: m1",
		sim: true, real: true,
	},
	{
		name: "exec: the VM stops mid-step (-i)", src: "src/agent/client.rs:1468-1499; src/data/errors.rs:219",
		call: script("echo started; sleep 60"),
		replies: map[string]reply{"exec": {stdout: "started\n", stderr: "Error: io operation failed: connection closed\n", exit: 1},
			"status": statusStopped},
		class: ClassNotRunning, msg: "io operation failed: connection closed (machine is stopped)",
		sim: true, setup: running, during: stopMachine,
	},
	{
		name: "exec: the connection to the VM is lost (-i)", src: "src/agent/client.rs:1503-1506",
		call: script("echo started; sleep 60"),
		replies: map[string]reply{"exec": {stdout: "started\n", stderr: "Error: agent operation failed: run interactive: connection to VM lost\n", exit: 1},
			"status": statusStopped},
		class: ClassNotRunning, msg: "agent operation failed: run interactive: connection to VM lost (machine is stopped)",
	},
	{
		// A bare argv goes with -i too: never --stream alone, whose errors
		// are lowercase lines (src/cli/machine.rs:2862-2865).
		name: "exec of a bare argv: the VM stops mid-step", src: "src/agent/client.rs:1468-1499; src/data/errors.rs:219",
		call: bareArgv("sh", "-c", "echo started; sleep 60"),
		replies: map[string]reply{"exec": {stdout: "started\n", stderr: "Error: io operation failed: connection closed\n", exit: 1},
			"status": statusStopped},
		class: ClassNotRunning, msg: "io operation failed: connection closed (machine is stopped)",
		sim: true, setup: running, during: stopMachine,
	},
	{
		name: "exec: the guest fails", src: "src/cli/machine.rs:2771 (std::process::exit(exit_code))",
		call:      script("echo oops >&2; exit 3"),
		replies:   map[string]reply{"exec": {stderr: "oops\n", exit: 3}, "status": statusRunning},
		guestExit: 3, guestStderr: "oops",
		sim: true, setup: running,
	},
	{
		name: "exec: --timeout", src: "crates/smolvm-agent/src/main.rs:4656-4668; crates/smolvm-agent/src/process.rs:64",
		call:    script("sleep 600"),
		replies: map[string]reply{"exec": {exit: 124}, "status": statusRunning},
		class:   ClassTimeout, msg: "command exceeded its timeout of 60s",
	},
	guestImitation("vm not found", "Error: vm not found: m1"),
	guestImitation("not running", "Error: "+msgNotRunning),
	guestImitation("kvm not available", "Error: "+msgNoKVM),
	guestImitation("kvm permission denied", "Error: kvm permission denied: Cannot access /dev/kvm (permission denied)."),
	guestImitation("already exists", "Error: "+msgExists),
	guestImitation("a secret smolvm cannot resolve", "Error: config operation failed: resolve secret 'K': env_unset"),
	guestImitation("connection closed", "Error: io operation failed: connection closed"),
	guestImitation("connection to VM lost", "Error: agent operation failed: run interactive: connection to VM lost"),
	{
		name: "guest prints --stream's lowercase error line", src: "src/cli/machine.rs:2862-2865",
		call: bareArgv("sh", "-c", "printf '%s\\n' 'error: io operation failed: connection closed' >&2; exit 1"),
		replies: map[string]reply{"exec": {stderr: "error: io operation failed: connection closed\n", exit: 1},
			"status": statusRunning},
		guestExit: 1, guestStderr: "error: io operation failed: connection closed",
		sim: true, setup: running,
	},
}

// fakeSmolvm writes a smolvm stand-in that answers each subcommand with its
// reply (files beside the script, so no text is ever put on a command
// line) and returns a driver for it.
func fakeSmolvm(t testing.TB, replies map[string]reply) *CLI {
	t.Helper()
	dir := t.TempDir()
	for sub, r := range replies {
		for ext, body := range map[string]string{"stdout": r.stdout, "stderr": r.stderr, "exit": strconv.Itoa(r.exit)} {
			if err := os.WriteFile(filepath.Join(dir, sub+"."+ext), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	const fake = `#!/bin/sh
d=$(dirname "$0")
sub=$2
[ "$1" = --version ] && sub=version
if [ ! -f "$d/$sub.exit" ]; then
	printf 'fake smolvm: no reply for %s\n' "$sub" >&2
	exit 99
fi
cat "$d/$sub.stdout"
cat "$d/$sub.stderr" >&2
exit "$(cat "$d/$sub.exit")"
`
	path := filepath.Join(dir, "smolvm")
	if err := os.WriteFile(path, []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	return New(path)
}

// check compares a driver outcome with the row's verdict.
func (row oracleRow) check(t *testing.T, res ExecResult, err error) {
	t.Helper()
	if row.class == "" {
		if err != nil {
			t.Fatalf("want success or the guest's result, got %v", err)
		}
		if res.ExitCode != row.guestExit {
			t.Fatalf("guest exit %d, want %d", res.ExitCode, row.guestExit)
		}
		if !strings.Contains(res.Stderr, row.guestStderr) {
			t.Fatalf("guest stderr %q lacks %q", res.Stderr, row.guestStderr)
		}
		return
	}
	if ClassOf(err) != row.class {
		t.Fatalf("got %v (class %q), want class %q", err, ClassOf(err), row.class)
	}
	se := err.(*Error)
	if se.Message != row.msg {
		t.Fatalf("message %q, want %q", se.Message, row.msg)
	}
}

// runRow runs a row's call against c, running row.during once the command
// printed "started".
func (row oracleRow) run(t *testing.T, ctx context.Context, c *CLI) (ExecResult, error) {
	t.Helper()
	out := newStartSignal()
	if row.during == nil {
		return row.call(ctx, c, out)
	}
	type result struct {
		res ExecResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := row.call(ctx, c, out)
		done <- result{res, err}
	}()
	select {
	case <-out.started:
	case r := <-done:
		t.Fatalf("the command ended before it started: %+v %v", r.res, r.err)
	}
	if err := row.during(ctx, c); err != nil {
		t.Fatalf("during: %v", err)
	}
	r := <-done
	return r.res, r.err
}

func TestOracleReplay(t *testing.T) {
	for _, row := range oracleRows {
		t.Run(row.name, func(t *testing.T) {
			c := fakeSmolvm(t, row.replies)
			res, err := row.call(testContext(t), c, newStartSignal())
			row.check(t, res, err)
		})
	}
}

func TestOracleSimulator(t *testing.T) {
	for _, row := range oracleRows {
		if !row.sim {
			continue
		}
		t.Run(row.name, func(t *testing.T) {
			c := newSim(t, row.simEnv...)
			ctx := testContext(t)
			if row.setup != nil {
				row.setup(t, ctx, c)
			}
			res, err := row.run(t, ctx, c)
			row.check(t, res, err)
		})
	}
}

// TestOracleRealSmolvm runs the rows that need no KVM against a real
// smolvm on PATH, each in a data directory of its own.
func TestOracleRealSmolvm(t *testing.T) {
	path, err := exec.LookPath("smolvm")
	if err != nil {
		t.Skip("no smolvm on PATH: the replay table was not compared with a real smolvm (install smolvm >= " + MinVersion + " to run it)")
	}
	if out, _ := exec.Command(path, "--version").Output(); strings.Contains(string(out), "simulator") {
		t.Skip("the smolvm on PATH is the simulator: the replay table was not compared with a real smolvm")
	}
	for _, row := range oracleRows {
		if !row.real {
			continue
		}
		t.Run(row.name, func(t *testing.T) {
			c := New(path, "SMOLVM_DATA_DIR="+t.TempDir())
			ctx := testContext(t)
			if row.setup != nil {
				row.setup(t, ctx, c)
			}
			res, err := row.run(t, ctx, c)
			row.check(t, res, err)
		})
	}
}
