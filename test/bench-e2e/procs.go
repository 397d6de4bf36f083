package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// userHZ is the unit of /proc/<pid>/stat's times on Linux.
const userHZ = 100

// procCPU is a process's CPU seconds: its own, and that of the children it
// waited for (the agent waits for every smolvm process it starts).
type procCPU struct{ self, children float64 }

// readProcCPU reads /proc/<pid>/stat: utime, stime, cutime, cstime.
func readProcCPU(pid int) (procCPU, error) {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procCPU{}, err
	}
	// The command name is in parentheses and may hold spaces.
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return procCPU{}, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(stat[end+2:]))
	if len(f) < 15 {
		return procCPU{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	var t [4]float64
	for i := range t {
		if t[i], err = strconv.ParseFloat(f[11+i], 64); err != nil {
			return procCPU{}, err
		}
	}
	return procCPU{self: (t[0] + t[1]) / userHZ, children: (t[2] + t[3]) / userHZ}, nil
}

// cpuSnapshot is the CPU of the dev environment's processes, by name.
type cpuSnapshot map[string]procCPU

func (d *devEnv) cpu() cpuSnapshot {
	out := cpuSnapshot{}
	for name, pid := range d.pids() {
		if c, err := readProcCPU(pid); err == nil {
			out[name] = c
		}
	}
	return out
}

// cpuUse is what the environment spent between two snapshots.
type cpuUse struct {
	// agent is the agent's own Go code; smolvm the smolvm processes it
	// waited for (and their children: bwrap, the guest commands);
	// controlPlane the API server, etcd, kube-scheduler and the cluster
	// controller.
	agent, smolvm, controlPlane float64
}

// beyond subtracts what the environment spends on its own, at rate (CPU
// seconds per second), over d: what is left is the Bottles' doing.
func (u cpuUse) beyond(rate cpuUse, d time.Duration) cpuUse {
	s := d.Seconds()
	return cpuUse{
		agent:        max(u.agent-rate.agent*s, 0),
		smolvm:       max(u.smolvm-rate.smolvm*s, 0),
		controlPlane: max(u.controlPlane-rate.controlPlane*s, 0),
	}
}

// perSecond is u spread over d.
func (u cpuUse) perSecond(d time.Duration) cpuUse {
	s := d.Seconds()
	return cpuUse{agent: u.agent / s, smolvm: u.smolvm / s, controlPlane: u.controlPlane / s}
}

func (after cpuSnapshot) since(before cpuSnapshot) cpuUse {
	var u cpuUse
	for name, a := range after {
		b := before[name]
		if name == "agent" {
			u.agent += a.self - b.self
			u.smolvm += a.children - b.children
			continue
		}
		u.controlPlane += a.self - b.self + a.children - b.children
	}
	return u
}

// childrenCPU is the CPU seconds of this process's waited-for children:
// the smolvm processes of the work done by hand.
func childrenCPU() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

// machineBusy is the CPU seconds the whole machine has been busy since boot
// (/proc/stat: user, nice, system, irq, softirq, steal). Unlike the
// processes' own times it also holds what nobody waits for: the
// simulator's stand-in VMMs and the kernel's work in its threads (tearing
// down each sandbox's namespaces and mounts).
func machineBusy() float64 {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var busy float64
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return 0
		}
		busy += v
	}
	return busy / userHZ
}

// loadAverage is /proc/loadavg's first three fields.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
