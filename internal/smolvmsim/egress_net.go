package smolvmsim

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/sys/unix"
)

// A machine with an allowlist gets a network of its own, built by its VMM
// the way smolvm's virtio-net gateway terminates every guest flow
// (crates/smolvm-network/src/egress.rs:1-16): a network namespace whose
// only way out is the VMM. In it nftables redirects every TCP connection to
// the VMM's proxy and every DNS query to the VMM's filter; any other packet
// leaving the namespace is rejected. The proxy reads each connection's
// original destination, refuses and records what the policy does not allow,
// and relays the rest from the host's namespace. Only root can build this;
// without it the machine gets no network at all (guestNetNone), never an
// unenforced one.

// guestNetNone is the record's GuestNet when the allowlist cannot be
// enforced here: the machine is started with no network.
const guestNetNone = "none"

// Inside the guest namespace: an address and a default route, so a connect
// to any address leaves the socket layer and meets the redirect.
const (
	guestAddr    = "10.0.2.15/24"
	guestGateway = "10.0.2.2"
)

// canEnforceEgress: building a network namespace and its nftables rules
// needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN in the host's namespaces) and
// iproute2, nftables and nsenter (hack/ensure-deps.sh installs them).
func canEnforceEgress() bool {
	if os.Geteuid() != 0 {
		return false
	}
	for _, tool := range []string{"ip", "nft", "nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			return false
		}
	}
	return true
}

// hasAllowlist reports whether a record's machine has an allowlist.
func (r *record) hasAllowlist() bool { return len(r.AllowHosts) > 0 || len(r.AllowCIDRs) > 0 }

// startGuestNet builds the guest namespace in the calling VMM process and
// serves it until the process ends. It returns the namespace's path, which
// every sandbox of the machine enters.
func startGuestNet(pol *egressPolicy, rec *denialRecorder) (string, error) {
	type result struct {
		path string
		tcp  net.Listener
		dns  net.PacketConn
		err  error
	}
	done := make(chan result, 1)
	go func() {
		// The namespace is this thread's: it stays locked (and the
		// goroutine parked) for the life of the VMM, and Go never
		// clones a new thread from a locked one.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			done <- result{err: fmt.Errorf("unshare network namespace: %w", err)}
			return
		}
		path := fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid())
		if err := netnsRun(path, nil, "ip", "link", "set", "lo", "up"); err != nil {
			done <- result{err: err}
			return
		}
		for _, argv := range [][]string{
			{"ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p"},
			{"ip", "link", "set", "eth0p", "up"},
			{"ip", "link", "set", "eth0", "up"},
			{"ip", "addr", "add", guestAddr, "dev", "eth0"},
			{"ip", "route", "add", "default", "via", guestGateway, "dev", "eth0"},
		} {
			if err := netnsRun(path, nil, argv...); err != nil {
				done <- result{err: err}
				return
			}
		}
		tcp, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			done <- result{err: err}
			return
		}
		dns, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			done <- result{err: err}
			return
		}
		rules := nftRules(tcp.Addr().(*net.TCPAddr).Port, dns.LocalAddr().(*net.UDPAddr).Port)
		if err := netnsRun(path, strings.NewReader(rules), "nft", "-f", "-"); err != nil {
			done <- result{err: err}
			return
		}
		done <- result{path: path, tcp: tcp, dns: dns}
		select {}
	}()
	r := <-done
	if r.err != nil {
		return "", r.err
	}
	go serveEgressProxy(r.tcp, pol, rec)
	go serveDNSFilter(r.dns, pol, rec)
	return r.path, nil
}

// nftRules: DNS to the filter, every other TCP connection to the proxy,
// loopback and the redirected flows through, everything else rejected
// (UDP other than DNS, ICMP, IPv6).
func nftRules(tcpPort, dnsPort int) string {
	return fmt.Sprintf(`table inet smolvm_sim_egress {
	chain nat_out {
		type nat hook output priority -100; policy accept;
		udp dport 53 redirect to :%d
		meta nfproto ipv4 meta l4proto tcp ip daddr != 127.0.0.0/8 redirect to :%d
	}
	chain filter_out {
		type filter hook output priority 0; policy accept;
		oif "lo" accept
		ct status dnat accept
		reject
	}
}
`, dnsPort, tcpPort)
}

// netnsRun runs argv inside the namespace at path (nsenter from
// util-linux), argv only.
func netnsRun(path string, stdin io.Reader, argv ...string) error {
	cmd := exec.Command("nsenter", append([]string{"--net=" + path, "--"}, argv...)...)
	cmd.Stdin = stdin
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// serveEgressProxy relays allowed connections and refuses the rest with a
// reset, recording them as smolvm's TCP relay does ("connect to ip:port",
// tcp_relay.rs:292-294). The guest's handshake completes before the proxy
// sees the connection, so a refusal reads as a reset rather than smolvm's
// dropped SYN: refused either way, and recorded either way.
func serveEgressProxy(l net.Listener, pol *egressPolicy, rec *denialRecorder) {
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		go relay(c.(*net.TCPConn), pol, rec)
	}
}

func relay(c *net.TCPConn, pol *egressPolicy, rec *denialRecorder) {
	dst, err := originalDst(c)
	if err != nil || !pol.allows(dst.Addr()) {
		if err == nil {
			rec.record("connect", "to "+dst.String())
		}
		_ = c.SetLinger(0)
		_ = c.Close()
		return
	}
	up, err := net.DialTimeout("tcp", dst.String(), 10*time.Second)
	if err != nil {
		_ = c.SetLinger(0)
		_ = c.Close()
		return
	}
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	<-done
	_ = up.Close()
	_ = c.Close()
}

// originalDst is the destination a redirected connection was made to
// (SO_ORIGINAL_DST, from conntrack).
func originalDst(c *net.TCPConn) (netip.AddrPort, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return netip.AddrPort{}, err
	}
	var addr netip.AddrPort
	var serr error
	err = raw.Control(func(fd uintptr) {
		// struct sockaddr_in, read through the IPv6 mreq getter (16 bytes).
		mreq, e := unix.GetsockoptIPv6Mreq(int(fd), unix.SOL_IP, unix.SO_ORIGINAL_DST)
		if e != nil {
			serr = e
			return
		}
		b := mreq.Multiaddr
		port := binary.BigEndian.Uint16(b[2:4])
		addr = netip.AddrPortFrom(netip.AddrFrom4([4]byte{b[4], b[5], b[6], b[7]}), port)
	})
	if err != nil {
		return netip.AddrPort{}, err
	}
	return addr, serr
}

// serveDNSFilter answers the guest's queries from the simulator's hosts
// file: an allowed name's A records (learned as reachable), NXDOMAIN and a
// "resolve" denial for a name the allowlist does not cover (smolvm's
// gateway, crates/smolvm-network/src/stack.rs:821-836). With CIDRs only
// there is no name filter, as in smolvm.
func serveDNSFilter(pc net.PacketConn, pol *egressPolicy, rec *denialRecorder) {
	buf := make([]byte, 1500)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if resp := answerDNS(buf[:n], pol, rec); resp != nil {
			_, _ = pc.WriteTo(resp, from)
		}
	}
}

func answerDNS(query []byte, pol *egressPolicy, rec *denialRecorder) []byte {
	var p dnsmessage.Parser
	hdr, err := p.Start(query)
	if err != nil {
		return nil
	}
	q, err := p.Question()
	if err != nil {
		return nil
	}
	name := normalizeHostname(q.Name.String())
	resp := dnsmessage.Message{Header: dnsmessage.Header{ID: hdr.ID, Response: true, RecursionDesired: hdr.RecursionDesired, RecursionAvailable: true},
		Questions: []dnsmessage.Question{q}}
	var ips []netip.Addr
	switch {
	case !pol.hostnameAllowed(name):
		rec.record("resolve", name)
		resp.RCode = dnsmessage.RCodeNameError
	default:
		ips = lookupSimHost(name)
		if len(ips) == 0 {
			resp.RCode = dnsmessage.RCodeNameError
		}
	}
	if q.Type == dnsmessage.TypeA && resp.RCode == dnsmessage.RCodeSuccess {
		// Only an allowed name's answer opens its addresses; with no
		// name filter (CIDRs only) answers open nothing
		// (stack.rs:821-822, Forward { learn: false }).
		if pol.dnsFilterActive() {
			pol.learn(ips)
		}
		for _, ip := range ips {
			resp.Answers = append(resp.Answers, dnsmessage.Resource{
				Header: dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: uint32(learnedTTL / time.Second)},
				Body:   &dnsmessage.AResource{A: ip.As4()},
			})
		}
	}
	out, err := resp.Pack()
	if err != nil {
		return nil
	}
	return out
}
