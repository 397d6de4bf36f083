package smolvmsim

import (
	"encoding/json"
	"strconv"
	"strings"
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
