package smolvmsim

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// VMMName is argv[0] of the stand-in for a running machine's VMM: Main runs
// vmmMain when invoked under it.
const VMMName = "smolvm-sim-vmm"

// startVMM starts the stand-in VMM process for a machine, as smolvm's
// `machine start` leaves a VMM running: a real long-lived process, in its
// own session and process group, so it outlives the invocation that started
// it and whatever process group that invocation belonged to (the agent's).
// Its pid is the machine's pid in status.
func startVMM(recordPath, name string) (pid int, guestNet string, err error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, "", err
	}
	// The VMM says on this pipe whether the machine's network is ready
	// (egress_net.go), as smolvm's start returns once the VM boots.
	ready, readyW, err := os.Pipe()
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = ready.Close() }()
	env := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	if v, ok := os.LookupEnv(SimHostsEnv); ok {
		env = append(env, SimHostsEnv+"="+v)
	}
	cmd := &exec.Cmd{
		Path:        exe,
		Args:        []string{VMMName, name, recordPath},
		Env:         env,
		ExtraFiles:  []*os.File{readyW},
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	err = cmd.Start()
	_ = readyW.Close()
	if err != nil {
		return 0, "", err
	}
	pid = cmd.Process.Pid
	_ = cmd.Process.Release()
	_ = ready.SetReadDeadline(time.Now().Add(30 * time.Second))
	line, rerr := bufio.NewReader(ready).ReadString('\n')
	line = strings.TrimSpace(line)
	switch {
	case rerr != nil && line == "":
		stopVMM(pid, name)
		return 0, "", fmt.Errorf("VMM did not report its network: %v", rerr)
	case strings.HasPrefix(line, "error: "):
		stopVMM(pid, name)
		return 0, "", errors.New(strings.TrimPrefix(line, "error: "))
	case line == "-":
		return pid, "", nil
	}
	return pid, line, nil
}

// vmmNetwork builds the machine's network when its record has an
// allowlist, and says on fd 3 what start records: "-" (none of its own),
// guestNetNone, the namespace's path, or "error: ...".
func vmmNetwork(recordPath string) {
	ready := os.NewFile(3, "ready")
	if ready == nil {
		return
	}
	unix.CloseOnExec(3)
	defer func() { _ = ready.Close() }()
	var r record
	data, err := os.ReadFile(recordPath)
	if err == nil {
		err = json.Unmarshal(data, &r)
	}
	switch {
	case err != nil:
		_, _ = fmt.Fprintf(ready, "error: read machine: %v\n", err)
	case !r.hasAllowlist():
		_, _ = fmt.Fprintln(ready, "-")
	case !canEnforceEgress():
		_, _ = fmt.Fprintln(ready, guestNetNone)
	default:
		pol := newEgressPolicy(&r)
		rec := &denialRecorder{path: filepath.Join(filepath.Dir(recordPath), egressDenialsLog)}
		path, err := startGuestNet(pol, rec)
		if err != nil {
			_, _ = fmt.Fprintf(ready, "error: egress policy: %v\n", err)
			return
		}
		_, _ = fmt.Fprintln(ready, path)
	}
}

// vmmMain is the stand-in VMM: it runs until stopped (SIGTERM/SIGINT) or
// until its machine's record is gone or names another pid (the machine was
// deleted, or its data directory removed — which also keeps test runs from
// leaking processes).
func vmmMain(args []string) int {
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: "+VMMName+" NAME RECORD")
		return 2
	}
	recordPath := args[1]
	vmmNetwork(recordPath)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	signal.Ignore(syscall.SIGHUP)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	// start saves the record after this process exists: wait (a while) to
	// be named before leaving for not being named.
	named, started := false, time.Now()
	for {
		select {
		case <-sigs:
			return 0
		case <-tick.C:
			state := recordNamesPid(recordPath, os.Getpid())
			switch {
			case state == recordGone:
				return 0
			case state == recordNamesUs:
				named = true
			case named || time.Since(started) > time.Minute:
				return 0
			}
		}
	}
}

const (
	recordNamesUs = iota
	recordNamesOther
	recordGone
)

func recordNamesPid(path string, pid int) int {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return recordGone
	}
	if err != nil {
		return recordNamesUs // transient; look again
	}
	if bytes.Contains(data, []byte(`"pid": `+strconv.Itoa(pid)+"\n")) ||
		bytes.Contains(data, []byte(`"pid": `+strconv.Itoa(pid)+",")) {
		return recordNamesUs
	}
	return recordNamesOther
}

// vmmAlive says whether pid is the stand-in VMM of machine name (and not a
// process that reused the pid).
func vmmAlive(pid int, name string) bool {
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	args := bytes.Split(bytes.TrimRight(cmdline, "\x00"), []byte{0})
	if len(args) < 2 || string(args[0]) != VMMName || string(args[1]) != name {
		return false
	}
	// A zombie (exited, not yet reaped) is not running.
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
		return false
	}
	return true
}

// stopVMM ends machine name's stand-in VMM: SIGTERM, then SIGKILL if it
// has not gone within five seconds.
func stopVMM(pid int, name string) {
	if !vmmAlive(pid, name) {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(5 * time.Second)
	for vmmAlive(pid, name) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
