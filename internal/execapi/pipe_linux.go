package execapi

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// growPipe enlarges the pipe r reads from to size bytes, so one read can
// take that much of the guest's output. os/exec passes its pipe's read end
// wrapped in a type that keeps *os.File's SyscallConn. Anything else (a
// pty, a full per-user pipe budget) keeps its size: reads are smaller, the
// stream is the same.
func growPipe(r any, size int) {
	sc, ok := r.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_, _ = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, size)
	})
}
