package smolvmsim

import (
	"encoding/json"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/onsi/gomega"
)

func (s *sim) status(name string) statusJSON { //nolint:unparam // any machine of the simulator
	s.t.Helper()
	var st statusJSON
	if err := json.Unmarshal([]byte(s.ok("machine", "status", "--name", name, "--json")), &st); err != nil {
		s.t.Fatal(err)
	}
	return st
}

// A running machine is a real process, detached like smolvm's VMM: killing
// the whole process group of whoever started it (an agent, here a shell
// that ran `machine start`) leaves it running with the same pid, and the
// next caller finds it running. stop and delete end it; a VMM killed behind
// smolvm's back makes the machine stopped.
func TestRunningMachineOutlivesItsStarter(t *testing.T) {
	s := newSim(t)
	g := gomega.NewWithT(t)
	s.ok("machine", "create", "--name", "m", "--image", "node:22")

	// The "agent": a process group that starts the machine and lives on.
	agent := s.command(t.Context(), "machine", "start", "--name", "m")
	agent.Path, agent.Args = "/bin/sh", []string{"sh", "-c", `"$0" machine start --name m && echo started && exec sleep 600`, simBin}
	agent.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := agent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 256)
	n, _ := out.Read(buf) // "Starting machine…" lines, then "started"
	for !strings.Contains(string(buf[:n]), "started") {
		m, err := out.Read(buf[n:])
		if err != nil {
			t.Fatalf("agent: %v (%q)", err, buf[:n])
		}
		n += m
	}
	st := s.status("m")
	if st.State != "running" || st.PID == nil {
		t.Fatalf("after start: %+v", st)
	}
	pid := *st.PID
	if !vmmAlive(pid, "m") {
		t.Fatalf("pid %d is not the machine's VMM process", pid)
	}
	if pgid, _ := syscall.Getpgid(pid); pgid == agent.Process.Pid {
		t.Fatal("the VMM is in the agent's process group")
	}

	// Kill the agent's whole process group.
	if err := syscall.Kill(-agent.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = agent.Wait()
	st = s.status("m")
	if st.State != "running" || st.PID == nil || *st.PID != pid || !vmmAlive(pid, "m") {
		t.Fatalf("after killing the agent's process group: %+v (VMM alive: %v)", st, vmmAlive(pid, "m"))
	}
	// The next "agent" adopts it: start is a no-op naming the same pid,
	// and commands run in it.
	if got := s.ok("machine", "start", "--name", "m"); got != "Machine 'm' already running (PID: "+strconv.Itoa(pid)+")\n" {
		t.Errorf("start after the agent died: %q", got)
	}

	// stop ends the process.
	s.ok("machine", "stop", "--name", "m")
	if vmmAlive(pid, "m") {
		t.Error("VMM still alive after machine stop")
	}
	// A VMM killed behind smolvm's back: the machine is stopped.
	s.ok("machine", "start", "--name", "m")
	pid = *s.status("m").PID
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	g.Eventually(func() string { return s.status("m").State }, 10*time.Second).Should(gomega.Equal("stopped"))
	// delete ends it too.
	s.ok("machine", "start", "--name", "m")
	pid = *s.status("m").PID
	s.ok("machine", "delete", "--name", "m", "-f")
	if vmmAlive(pid, "m") {
		t.Error("VMM still alive after machine delete")
	}
}
