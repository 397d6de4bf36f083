package smolvmsim

import (
	"encoding/json"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/bot-bottle/bottle-controller/internal/testutil"
)

func TestEgressEventsTexts(t *testing.T) {
	s := newSim(t)
	expect(t, "a machine that does not exist", s.run("machine", "egress-events", "--name", "ghost"),
		"No egress denials recorded for 'ghost'.\n", "", 0)
	expect(t, "json, none", s.run("machine", "egress-events", "-n", "ghost", "--json"), "[]\n", "", 0)
	expect(t, "a bad limit", s.run("machine", "egress-events", "--name", "m1", "--limit", "x"), "",
		"error: invalid value 'x' for '--limit <LIMIT>': invalid digit found in string\n\nUsage: smolvm machine egress-events [OPTIONS]\n\nFor more information, try '--help'.\n", 2)
}

// probe is a guest command that connects to host:port and prints the first
// line it reads, or bash's error.
func probe(hostport string) []string {
	host, port, _ := strings.Cut(hostport, ":")
	return []string{"bash", "-c", "exec 3<>/dev/tcp/" + host + "/" + port + " && head -n1 <&3"}
}

// An allowlisted machine reaches exactly its allowed hosts (by name, as
// resolved at start, and by CIDR); an unlisted address is refused and
// recorded as a connect, an unlisted name as a resolve; a machine without
// --net has no route; --net alone is open.
func TestEgressEnforced(t *testing.T) {
	hosts := testutil.NewEgressHosts(t)
	allowed := hosts.Add(t, "allowed.egress.test")
	byCIDR := hosts.Add(t, "cidr.egress.test")
	unlisted := hosts.Add(t, "unlisted.egress.test")
	s := newSim(t, "SMOLVM_SIM_HOSTS="+hosts.File, "SMOLVM_SIM_PULL=0")
	// smolvm resolves every --allow-host at create and refuses one that
	// does not resolve (src/cli/machine.rs:82-110); the hosts file is the
	// simulator's DNS.
	expect(t, "an allow-host the hosts file does not hold", s.run("machine", "create", "--name", "typo", "--allow-host", "alowed.egress.test"), "",
		"Error: config operation failed: --allow-host: failed to resolve 'alowed.egress.test': failed to lookup address information: Name or service not known\n", 1)
	s.ok("machine", "create", "--name", "m1", "--allow-host", allowed.Name, "--allow-cidr", byCIDR.CIDR)
	s.ok("machine", "start", "--name", "m1")
	t.Cleanup(func() { s.run("machine", "delete", "-f", "--name", "m1") })

	exec := func(name string, argv ...string) result {
		return s.runIn("", append([]string{"machine", "exec", "--name", name, "--"}, argv...)...)
	}
	if r := exec("m1", probe(allowed.Name+":"+strconv.Itoa(allowed.Port))...); !strings.Contains(r.stdout, "hello from "+allowed.Name) {
		t.Fatalf("allowed host by name: %+v", r)
	}
	if r := exec("m1", probe(byCIDR.Addr())...); !strings.Contains(r.stdout, "hello from "+byCIDR.Name) {
		t.Fatalf("allowed CIDR: %+v", r)
	}
	if r := exec("m1", probe(unlisted.Addr())...); strings.Contains(r.stdout, "hello") || r.code == 0 {
		t.Fatalf("unlisted address reached: %+v", r)
	}
	if r := exec("m1", "getent", "hosts", unlisted.Name); r.code == 0 {
		t.Fatalf("unlisted name resolved: %+v", r)
	}
	if r := exec("m1", "getent", "hosts", byCIDR.Name); r.code == 0 {
		t.Fatalf("a name only its CIDR allows resolved (smolvm filters names by --allow-host alone): %+v", r)
	}
	var events []egressDenial
	if err := json.Unmarshal([]byte(s.ok("machine", "egress-events", "--name", "m1", "--json")), &events); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range events {
		seen[e.Operation+" "+e.Dest] = true
		if e.Timestamp == "" {
			t.Fatalf("event without a timestamp: %+v", e)
		}
	}
	for _, want := range []string{"connect " + unlisted.Addr(), "resolve " + unlisted.Name, "resolve " + byCIDR.Name} {
		if !seen[want] {
			t.Fatalf("no %q in %+v", want, events)
		}
	}
	for k := range seen {
		if strings.Contains(k, allowed.IP) || strings.Contains(k, byCIDR.IP) {
			t.Fatalf("an allowed destination was recorded as refused: %q", k)
		}
	}

	s.ok("machine", "create", "--name", "nonet")
	s.ok("machine", "start", "--name", "nonet")
	t.Cleanup(func() { s.run("machine", "delete", "-f", "--name", "nonet") })
	if r := exec("nonet", probe(allowed.Addr())...); !strings.Contains(r.stderr, "Network is unreachable") || r.code == 0 {
		t.Fatalf("a machine without --net reached %s: %+v", allowed.Addr(), r)
	}
	if r := exec("nonet", "ip", "route", "get", allowed.IP); !strings.Contains(r.stderr, "unreachable") {
		t.Fatalf("a machine without --net has a route: %+v", r)
	}

	s.ok("machine", "create", "--name", "open", "--net")
	s.ok("machine", "start", "--name", "open")
	t.Cleanup(func() { s.run("machine", "delete", "-f", "--name", "open") })
	if r := exec("open", probe(unlisted.Addr())...); !strings.Contains(r.stdout, "hello from "+unlisted.Name) {
		t.Fatalf("--net alone is open: %+v", r)
	}
}

// Without root the simulator cannot build a machine's network, so an
// allowlisted machine gets none at all, and start says so: never an
// unenforced network.
func TestEgressWithoutRootHasNoNetwork(t *testing.T) {
	testutil.RequireBwrap(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the simulator as another user")
	}
	dir, err := os.MkdirTemp("", "egress-nonroot-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	bin := filepath.Join(dir, "smolvm")
	data, err := os.ReadFile(simBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	const nobody = 65534
	for _, p := range []string{dir, bin} {
		if err := os.Chown(p, nobody, nobody); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, string, int) {
		cmd := osexec.Command(bin, args...)
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + dir, "SMOLVM_DATA_DIR=" + filepath.Join(dir, "data"), "SMOLVM_SIM_PULL=0"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
		var o, e strings.Builder
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*osexec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return o.String(), e.String(), code
	}
	if _, e, code := run("machine", "create", "--name", "m", "--allow-cidr", "198.18.0.0/15"); code != 0 {
		t.Fatalf("create as nobody: %s", e)
	}
	_, e, code := run("machine", "start", "--name", "m")
	t.Cleanup(func() { run("machine", "delete", "-f", "--name", "m") })
	if code != 0 {
		t.Fatalf("start as nobody: %s", e)
	}
	if !strings.Contains(e, "cannot be enforced here (it needs root, ip, nft and nsenter); the machine has no network") {
		t.Fatalf("start did not say the allowlist is not enforced: %q", e)
	}
	_, e, code = run("machine", "exec", "--name", "m", "--", "ip", "route", "get", "198.18.0.2")
	if code == 0 || !strings.Contains(e, "Network is unreachable") {
		if strings.Contains(e, "user namespace") || strings.Contains(e, "setting up uid map") {
			t.Skipf("this host allows no unprivileged user namespaces: %s", e)
		}
		t.Fatalf("an allowlisted machine without root has a route: exit %d, %q", code, e)
	}
}
