// Package reaper lets a process that finds itself PID 1 of its PID namespace
// (the agent in a container without hostPID and without an init) act as the
// init it replaces: it runs the real program as its only child, forwards
// termination signals to it, and reaps every orphan the namespace hands it,
// so that detached smolvm and bwrap processes do not pile up as zombies.
//
// The program itself never reaps with wait(-1): that would steal the exit
// statuses os/exec waits for. Only the init, which waits for nothing else,
// does.
package reaper

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
)

// forwarded are the signals a container runtime or a user sends to end the
// program; the init passes them on and keeps reaping until the child exits.
var forwarded = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT}

// IsInit says whether this process is PID 1 of its namespace.
func IsInit() bool { return os.Getpid() == 1 }

// Init runs this program again (same argv and environment, stdio shared) as
// its child and returns the child's exit code (128+signal when a signal
// ended it), having reaped every other process that ended as its child.
func Init() int {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, forwarded...)
	chld := make(chan os.Signal, 1)
	signal.Notify(chld, syscall.SIGCHLD)

	self, err := os.Executable()
	if err != nil {
		self = "/proc/self/exe"
	}
	cmd := exec.Command(self, os.Args[1:]...)
	cmd.Args[0] = os.Args[0]
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "init: starting %s: %v\n", self, err)
		return 1
	}
	child := cmd.Process.Pid
	for {
		select {
		case s := <-sigs:
			_ = cmd.Process.Signal(s)
		case <-chld:
			if code, done := reap(child); done {
				return code
			}
		}
	}
}

// reap collects every exited child (SIGCHLDs coalesce, so one signal may
// stand for many); done is true once the program's own child is among them.
func reap(child int) (code int, done bool) {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return code, done
		}
		if pid == child {
			done = true
			switch {
			case ws.Exited():
				code = ws.ExitStatus()
			case ws.Signaled():
				code = 128 + int(ws.Signal())
			default:
				code = 1
			}
		}
	}
}
