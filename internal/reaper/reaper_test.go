package reaper

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// roleEnv says which part of the test a re-run of the test binary plays.
const roleEnv = "REAPER_TEST_ROLE"

// TestInitReapsOrphans runs the test binary as PID 1 of a new PID namespace
// (with its own /proc), where Init runs it again as the program; the program
// leaves an orphan behind (a shell's background sleep) and checks that the
// orphan, once it ends, is reaped rather than left a zombie.
func TestInitReapsOrphans(t *testing.T) {
	switch os.Getenv(roleEnv) {
	case "init":
		if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
			fmt.Println("init: private mounts:", err)
			os.Exit(3)
		}
		if err := syscall.Mount("proc", "/proc", "proc", 0, ""); err != nil {
			fmt.Println("init: mount /proc:", err)
			os.Exit(3)
		}
		if !IsInit() {
			fmt.Println("init: not pid 1")
			os.Exit(3)
		}
		if err := os.Setenv(roleEnv, "program"); err != nil {
			os.Exit(3)
		}
		os.Exit(Init())
	case "program":
		os.Exit(leaveAnOrphan())
	}
	if os.Geteuid() != 0 {
		t.Skip("SKIP: a new PID namespace needs root; run the tests as root to check the reaper")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestInitReapsOrphans$")
	cmd.Env = append(os.Environ(), roleEnv+"=init")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID | syscall.CLONE_NEWNS}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("init in a new PID namespace: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "orphan reaped") {
		t.Fatalf("program said %q", out)
	}
}

// leaveAnOrphan starts a shell that backgrounds a short sleep and exits: the
// sleep is reparented to PID 1. It returns 0 once the sleep has gone from
// /proc (reaped), 1 if it is still a zombie long after it ended.
func leaveAnOrphan() int {
	sh := exec.Command("/bin/sh", "-c", "sleep 0.2 & echo $!")
	out, err := sh.StdoutPipe()
	if err != nil || sh.Start() != nil {
		fmt.Println("program: start sh:", err)
		return 1
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	_ = sh.Wait()
	if err != nil {
		fmt.Printf("program: sh said %q\n", line)
		return 1
	}
	stat := fmt.Sprintf("/proc/%d/stat", pid)
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(stat); os.IsNotExist(err) {
			fmt.Println("orphan reaped")
			return 0
		}
	}
	b, _ := os.ReadFile(stat)
	fmt.Printf("program: orphan %d not reaped: %s\n", pid, b)
	return 1
}
