package smolvmsim

import (
	"bufio"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"
)

// SimHostsEnv names a hosts(5) file that is the simulator's whole DNS: the
// names --allow-host resolves at create and start, and the names a guest
// with an allowlist resolves. The simulator never asks a real resolver, so a
// test decides every address a guest can reach (its own network namespaces).
const SimHostsEnv = "SMOLVM_SIM_HOSTS"

// lookupSimHost returns name's IPv4 addresses in the SMOLVM_SIM_HOSTS file.
func lookupSimHost(name string) []netip.Addr {
	name = normalizeHostname(name)
	path := os.Getenv(SimHostsEnv)
	if path == "" || name == "" {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer func() { _ = f.Close() }()
	var out []netip.Addr
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		ip, err := netip.ParseAddr(fields[0])
		if err != nil || !ip.Is4() {
			continue
		}
		for _, n := range fields[1:] {
			if normalizeHostname(n) == name {
				out = append(out, ip)
				break
			}
		}
	}
	return out
}

// normalizeHostname is smolvm's normalize_hostname
// (crates/smolvm-network/src/dns.rs:52-59): lower case, no trailing dot.
func normalizeHostname(h string) string {
	return strings.ToLower(strings.TrimRight(h, "."))
}

// hostnameAllowed is smolvm's hostname_allowed (dns.rs:66-76): an exact
// match, or a subdomain of an allowed name.
func hostnameAllowed(name string, allowed []string) bool {
	name = normalizeHostname(name)
	if name == "" {
		return false
	}
	for _, a := range allowed {
		if name == a || (strings.HasSuffix(name, a) && strings.HasSuffix(strings.TrimSuffix(name, a), ".")) {
			return true
		}
	}
	return false
}

// metadataFloor is denied whatever the allowlist says: smolvm's local
// default floor (crates/smolvm-network/src/egress.rs, FloorMode::MetadataOnly).
var metadataFloor = netip.MustParsePrefix("169.254.0.0/16")

// Learned-IP TTL clamp (egress.rs:25-27); the simulator's answers carry no
// TTL of their own, so the floor applies.
const learnedTTL = 60 * time.Second

// egressPolicy is what a machine with an allowlist may reach: its CIDRs, the
// addresses its --allow-host names resolved to when it started, and the
// addresses the guest learned by resolving an allowed name
// (egress.rs:1-16). Everything else is refused and recorded.
type egressPolicy struct {
	cidrs    []netip.Prefix
	hosts    []string // normalized; nil: no DNS filtering (CIDRs only)
	resolved map[netip.Addr]bool

	mu      sync.Mutex
	learned map[netip.Addr]time.Time
}

// newEgressPolicy resolves the record's hosts now, as smolvm does at start
// (src/cli/machine.rs:82-110, resolve_egress_flags; the launcher's
// egress-refresh re-resolves later, launcher.rs:1924-1993).
func newEgressPolicy(r *record) *egressPolicy {
	p := &egressPolicy{resolved: map[netip.Addr]bool{}, learned: map[netip.Addr]time.Time{}}
	for _, c := range r.AllowCIDRs {
		if pfx, ok := parseCIDR(c); ok {
			p.cidrs = append(p.cidrs, pfx)
		}
	}
	if len(r.AllowHosts) > 0 {
		p.hosts = []string{}
		for _, h := range r.AllowHosts {
			if n := normalizeHostname(h); n != "" {
				p.hosts = append(p.hosts, n)
			}
			for _, ip := range lookupSimHost(h) {
				p.resolved[ip] = true
			}
		}
	}
	return p
}

// parseCIDR is smolvm's Cidr::parse (egress.rs:36-73): a bare address is a
// full-length prefix.
func parseCIDR(s string) (netip.Prefix, bool) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "/") {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, false
		}
		return netip.PrefixFrom(ip, ip.BitLen()), true
	}
	pfx, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, false
	}
	return pfx.Masked(), true
}

func (p *egressPolicy) dnsFilterActive() bool { return p.hosts != nil }

func (p *egressPolicy) hostnameAllowed(name string) bool {
	return !p.dnsFilterActive() || hostnameAllowed(name, p.hosts)
}

func (p *egressPolicy) learn(ips []netip.Addr) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ip := range ips {
		p.learned[ip] = time.Now().Add(learnedTTL)
	}
}

// allows says whether the guest may connect to ip.
func (p *egressPolicy) allows(ip netip.Addr) bool {
	ip = ip.Unmap()
	if metadataFloor.Contains(ip) {
		return false
	}
	if p.resolved[ip] {
		return true
	}
	for _, c := range p.cidrs {
		if c.Contains(ip) {
			return true
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	exp, ok := p.learned[ip]
	return ok && time.Now().Before(exp)
}
