package node

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// machineState is what hack/node-down.sh must give back: everything the node
// may change on this machine outside its own directory. Processes are not in
// it (other tests run beside this one); ours are found by their cgroup.
type machineState struct {
	links, routes, mounts, nft, iptables, ip6tables, cgroups, paths string
	ipForward                                                       string
}

// counters are iptables-save's packet/byte counts and comments with a date.
var counters = regexp.MustCompile(`\[\d+:\d+\]|(?m)^#.*$`)

// watchedPaths are the host paths the node or the installed project may
// create outside NODE_DIR.
var watchedPaths = []string{
	// Not /run/netns: other tests name their network namespaces there.
	"/var/log/pods", "/var/log/containers", "/var/lib/cni", "/opt/smolvm",
	"/run/dbus", "/var/lib/bottle-controller", "/run/bottle-controller", "/var/lib/kubelet",
	"/etc/kubernetes", "/root/.config/systemd", "/root/.local/share/systemd", "/run/systemd/system",
}

func snapshot(t *testing.T) machineState {
	t.Helper()
	out := func(name string, args ...string) string {
		b, err := exec.Command(name, args...).Output()
		if err != nil {
			t.Logf("%s %v: %v", name, args, err)
		}
		return string(b)
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var m []string
	for _, l := range strings.Split(string(mounts), "\n") {
		// Mount ids change with unrelated mounts of other tests (their
		// t.TempDir tmpfs, bwrap; `ip netns add` binds /run/netns); the
		// mount point and source do not.
		f := strings.Fields(l)
		if len(f) > 4 && !strings.HasPrefix(f[4], "/tmp/") && !strings.HasPrefix(f[4], "/run/netns") {
			m = append(m, f[4]+" "+strings.Join(f[5:], " "))
		}
	}
	sort.Strings(m)
	var cg []string
	hierarchies, _ := filepath.Glob("/sys/fs/cgroup/*/")
	for _, h := range hierarchies {
		entries, _ := os.ReadDir(h)
		for _, e := range entries {
			if e.IsDir() {
				cg = append(cg, filepath.Join(h, e.Name()))
			}
		}
	}
	var paths []string
	for _, p := range watchedPaths {
		if _, err := os.Lstat(p); err == nil {
			paths = append(paths, p)
		}
	}
	fwd, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	return machineState{
		links:     ours(out("ip", "-o", "link", "show"), "bottle-br0", "veth"),
		routes:    ours(out("ip", "route", "show", "table", "all"), "bottle-br0", "10.244.0.", "10.97.0."),
		mounts:    strings.Join(m, "\n"),
		nft:       out("nft", "list", "tables"),
		iptables:  counters.ReplaceAllString(out("iptables-save"), ""),
		ip6tables: counters.ReplaceAllString(out("ip6tables-save"), ""),
		cgroups:   strings.Join(cg, "\n"),
		paths:     strings.Join(paths, "\n"),
		ipForward: string(fwd),
	}
}

// ours keeps the lines naming the node's bridge, its CNI's veth ends or its
// address ranges (hack/node-env.sh's defaults): other tests on this machine
// make and remove their own links and routes meanwhile.
func ours(lines string, marks ...string) string {
	var keep []string
	for _, l := range strings.Split(lines, "\n") {
		for _, m := range marks {
			if strings.Contains(l, m) {
				keep = append(keep, l)
				break
			}
		}
	}
	return strings.Join(keep, "\n")
}

// diff reports every field of after that differs from before.
func (before machineState) diff(t *testing.T, after machineState) {
	t.Helper()
	for _, f := range []struct{ name, before, after string }{
		{"network links", before.links, after.links},
		{"routes", before.routes, after.routes},
		{"mounts", before.mounts, after.mounts},
		{"nft tables", before.nft, after.nft},
		{"iptables rules", before.iptables, after.iptables},
		{"ip6tables rules", before.ip6tables, after.ip6tables},
		{"top-level cgroups", before.cgroups, after.cgroups},
		{"host paths", before.paths, after.paths},
		{"net.ipv4.ip_forward", before.ipForward, after.ipForward},
	} {
		if f.before != f.after {
			t.Errorf("hack/node-down.sh did not restore the %s:\nbefore:\n%s\nafter:\n%s", f.name, f.before, f.after)
		}
	}
}

// nodeProcess is a process of this node: in a cgroup of the kubelet's pods or
// of the systemd stand-in (hack/node-systemd.sh), or naming nodeDir.
type nodeProcess struct {
	pid         int
	comm, state string
	// argv0 is the program name it was started as: the simulator's VMM is
	// /opt/smolvm/bin/smolvm started as smolvm-sim-vmm (comm says smolvm).
	argv0 string
}

func nodeProcesses(t *testing.T, nodeDir, systemdCgroup string) []nodeProcess {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var ps []nodeProcess
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		dir := filepath.Join("/proc", e.Name())
		cgroup, err1 := os.ReadFile(filepath.Join(dir, "cgroup"))
		cmdline, err2 := os.ReadFile(filepath.Join(dir, "cmdline"))
		stat, err3 := os.ReadFile(filepath.Join(dir, "stat"))
		if err1 != nil || err2 != nil || err3 != nil {
			continue // gone meanwhile
		}
		ours := bytes.Contains(cgroup, []byte("/kubepods")) || bytes.Contains(cgroup, []byte("/"+systemdCgroup)) ||
			bytes.Contains(cmdline, []byte(nodeDir))
		if !ours {
			continue
		}
		// stat: pid (comm) state ...; comm may hold spaces and parentheses.
		s := string(stat)
		open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || closing < open || len(s) < closing+3 {
			continue
		}
		argv0, _, _ := bytes.Cut(cmdline, []byte{0})
		ps = append(ps, nodeProcess{pid: pid, comm: s[open+1 : closing], state: s[closing+2 : closing+3], argv0: filepath.Base(string(argv0))})
	}
	return ps
}
