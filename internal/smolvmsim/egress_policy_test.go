package smolvmsim

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// smolvm's hostname_allowed (crates/smolvm-network/src/dns.rs:66-76): exact
// or a subdomain, case and trailing dot ignored.
func TestHostnameAllowed(t *testing.T) {
	allowed := []string{"example.com", "api.anthropic.com"}
	for name, want := range map[string]bool{
		"example.com": true, "EXAMPLE.com.": true, "a.b.example.com": true, "api.anthropic.com": true,
		"notexample.com": false, "example.com.evil.org": false, "anthropic.com": false, "": false,
	} {
		if got := hostnameAllowed(name, allowed); got != want {
			t.Errorf("hostnameAllowed(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestEgressPolicyAllows(t *testing.T) {
	hosts := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(hosts, []byte("192.0.2.10 api.example.test\n192.0.2.20 other.example.test # comment\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(SimHostsEnv, hosts)
	p := newEgressPolicy(&record{AllowHosts: []string{"api.example.test"}, AllowCIDRs: []string{"198.51.100.0/24", "169.254.0.0/16"}})
	for ip, want := range map[string]bool{
		"192.0.2.10":      true,  // resolved at start
		"198.51.100.7":    true,  // CIDR
		"192.0.2.20":      false, // another name's address
		"169.254.169.254": false, // the metadata floor, whatever the list says
	} {
		if got := p.allows(netip.MustParseAddr(ip)); got != want {
			t.Errorf("allows(%s) = %v, want %v", ip, got, want)
		}
	}

	rec := &denialRecorder{path: filepath.Join(t.TempDir(), egressDenialsLog)}
	query := func(name string) dnsmessage.Message {
		t.Helper()
		q := dnsmessage.Message{Header: dnsmessage.Header{ID: 7, RecursionDesired: true},
			Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName(name), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}}}
		b, err := q.Pack()
		if err != nil {
			t.Fatal(err)
		}
		var m dnsmessage.Message
		if err := m.Unpack(answerDNS(b, p, rec)); err != nil {
			t.Fatal(err)
		}
		return m
	}
	if m := query("api.example.test."); m.RCode != dnsmessage.RCodeSuccess || len(m.Answers) != 1 || m.ID != 7 {
		t.Fatalf("allowed name: %+v", m)
	}
	if m := query("other.example.test."); m.RCode != dnsmessage.RCodeNameError || len(m.Answers) != 0 {
		t.Fatalf("unlisted name answered: %+v", m)
	}
	events := readEgressDenials(rec.path, 10)
	if len(events) != 1 || events[0].Operation != "resolve" || events[0].Dest != "other.example.test" {
		t.Fatalf("recorded %+v, want one resolve of other.example.test", events)
	}

	// CIDRs only: no name filter, and answers open nothing (smolvm's
	// Forward { learn: false }).
	open := newEgressPolicy(&record{AllowCIDRs: []string{"198.51.100.0/24"}})
	b, _ := (&dnsmessage.Message{Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName("other.example.test."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}}}).Pack()
	answerDNS(b, open, rec)
	if open.allows(netip.MustParseAddr("192.0.2.20")) {
		t.Fatal("an answer opened its address without a name filter")
	}
}

// smolvm's parse_egress_denial_line tests (src/agent/manager.rs:3213-3257):
// both timestamp shapes, the three operations, noise ignored.
func TestParseEgressDenialLine(t *testing.T) {
	for line, want := range map[string]egressDenial{
		"[2026-08-13T02:31:05Z]: egress policy denied connect to 10.0.0.1:443":                       {"2026-08-13T02:31:05Z", "connect", "10.0.0.1:443"},
		"[2026-08-13T02:31:05.123456Z WARN devices::virtio] egress policy denied sendto 10.0.0.2:53": {"2026-08-13T02:31:05.123456Z", "sendto", "10.0.0.2:53"},
		"[2026-08-13T02:31:05Z]: egress policy denied resolve pypi.org":                              {"2026-08-13T02:31:05Z", "resolve", "pypi.org"},
		"egress policy denied connect to 10.0.0.3:80":                                                {"", "connect", "10.0.0.3:80"},
	} {
		got, ok := parseEgressDenialLine(line)
		if !ok || got != want {
			t.Errorf("%q: %+v %v, want %+v", line, got, ok, want)
		}
	}
	for _, noise := range []string{"[2026-08-13T02:31:05Z]: virtio-net: blocking DNS query", "egress policy denied bind 1.2.3.4:1", "egress policy denied connect to "} {
		if got, ok := parseEgressDenialLine(noise); ok {
			t.Errorf("%q parsed as %+v", noise, got)
		}
	}
}
