package testutil

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// Egress test hosts: each is a TCP server in a network namespace the test
// creates, reached from the host over a veth pair in 198.18.0.0/15 (RFC
// 2544's benchmarking range, never routed on the Internet), named in a hosts
// file the simulator resolves with (SMOLVM_SIM_HOSTS). No test reaches any
// other address.

// EgressHostsMissing says why egress hosts cannot be made here, or nil:
// network namespaces and the simulator's enforcement need root, ip, nft and
// nsenter.
func EgressHostsMissing() error {
	if os.Geteuid() != 0 {
		return errors.New("egress enforcement tests need root (network namespaces, nftables); the simulator gives an allowlisted machine no network without it")
	}
	for _, tool := range []string{"ip", "nft", "nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("egress enforcement tests need %s (hack/ensure-deps.sh installs iproute2, nftables, util-linux)", tool)
		}
	}
	return nil
}

// RequireEgressHosts skips (fails under CI) where egress hosts cannot be
// made.
func RequireEgressHosts(t EgressT) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs network namespaces: skipped under -short")
	}
	if err := EgressHostsMissing(); err != nil {
		if InCI() {
			t.Fatal(err)
		}
		t.Skip(err.Error())
	}
}

// EgressT is what the egress helpers need of a test: testing.TB and
// Ginkgo's GinkgoT() both have it.
type EgressT interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Skip(args ...any)
	TempDir() string
	Cleanup(func())
}

// EgressHost is one test server.
type EgressHost struct {
	Name string // the name the simulator resolves it by
	IP   string // its address, in 198.18.0.0/15
	Port int
	// CIDR is a /30 holding only this host.
	CIDR string
}

// Addr is IP:Port.
func (h EgressHost) Addr() string { return net.JoinHostPort(h.IP, fmt.Sprint(h.Port)) }

// EgressHosts is a set of test hosts and the hosts file naming them.
type EgressHosts struct {
	// File is the hosts file: pass it to the simulator as SMOLVM_SIM_HOSTS.
	File string
	mu   sync.Mutex
}

var egressNet atomic.Int32

// NewEgressHosts makes an empty hosts file; Add puts servers in it.
func NewEgressHosts(t EgressT) *EgressHosts {
	t.Helper()
	RequireEgressHosts(t)
	f := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return &EgressHosts{File: f}
}

// Add starts a server named name that answers every connection with
// "hello from NAME\n", in a namespace of its own, and removes both when
// the test ends.
func (h *EgressHosts) Add(t EgressT, name string) EgressHost {
	t.Helper()
	n := egressNet.Add(1)
	ns := fmt.Sprintf("bt-eg-%d-%d", os.Getpid(), n)
	hostIf, nsIf := fmt.Sprintf("bteg%dh%d", os.Getpid()%10000, n), fmt.Sprintf("bteg%dn%d", os.Getpid()%10000, n)
	run := func(argv ...string) {
		t.Helper()
		if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(argv, " "), err, out)
		}
	}
	run("ip", "netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	run("ip", "link", "add", hostIf, "type", "veth", "peer", "name", nsIf, "netns", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", hostIf).Run() })
	base := claimSubnet(t, hostIf)
	ip := base.Next().Next().String()
	run("ip", "link", "set", hostIf, "up")
	run("ip", "-n", ns, "link", "set", "lo", "up")
	run("ip", "-n", ns, "addr", "add", ip+"/30", "dev", nsIf)
	run("ip", "-n", ns, "link", "set", nsIf, "up")
	l, err := listenIn("/run/netns/"+ns, ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { _ = c.Close() }()
				_, _ = fmt.Fprintf(c, "hello from %s\n", name)
				_, _ = bufio.NewReader(c).ReadString('\n')
			}()
		}
	}()
	h.mu.Lock()
	defer h.mu.Unlock()
	f, err := os.OpenFile(h.File, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	if _, err := fmt.Fprintf(f, "%s %s\n", ip, name); err != nil {
		t.Fatal(err)
	}
	return EgressHost{Name: name, IP: ip, Port: l.Addr().(*net.TCPAddr).Port, CIDR: netip.PrefixFrom(base, 30).String()}
}

// claimSubnet gives hostIf the first 198.18.0.0/15 /30 no interface of the
// host has yet, under a lock shared by every test process, and returns its
// first three octets.
func claimSubnet(t EgressT, hostIf string) netip.Addr {
	t.Helper()
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "bottle-egress-hosts.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = lock.Close() }()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ip", "-4", "-o", "addr", "show").Output()
	if err != nil {
		t.Fatalf("ip addr show: %v", err)
	}
	taken := string(out)
	for base := netip.MustParseAddr("198.18.0.0"); egressRange.Contains(base); base = base.Next().Next().Next().Next() {
		host := base.Next()
		if strings.Contains(taken, " "+host.String()+"/") {
			continue
		}
		if out, err := exec.Command("ip", "addr", "add", host.String()+"/30", "dev", hostIf).CombinedOutput(); err != nil {
			t.Fatalf("ip addr add: %v: %s", err, out)
		}
		return base
	}
	t.Fatal("no free /30 in " + egressRange.String())
	return netip.Addr{}
}

var egressRange = netip.MustParsePrefix("198.18.0.0/15")

// listenIn opens a TCP listener inside the namespace at nsPath: a socket
// belongs to the namespace of the thread that made it.
func listenIn(nsPath, addr string) (net.Listener, error) {
	type res struct {
		l   net.Listener
		err error
	}
	ch := make(chan res, 1)
	go func() {
		runtime.LockOSThread()
		// Back to the thread's own namespace afterwards, then unlocked:
		// a locked goroutine that ends takes its thread with it, except
		// the main thread, which would stay in the test's namespace.
		home, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			ch <- res{err: err}
			return
		}
		defer func() { _ = unix.Close(home) }()
		fd, err := unix.Open(nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			ch <- res{err: err}
			return
		}
		defer func() { _ = unix.Close(fd) }()
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			ch <- res{err: fmt.Errorf("setns %s: %w", nsPath, err)}
			return
		}
		l, err := net.Listen("tcp4", addr)
		if unix.Setns(home, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		ch <- res{l, err}
	}()
	r := <-ch
	return r.l, r.err
}
