// Package pipesize enlarges pipes (Linux F_SETPIPE_SZ). A stream that
// crosses a pipe costs a context switch each time the pipe fills or
// empties; the default 64 KiB makes that every 64 KiB. Both ends of a
// Bottle exec session stream through one: the agent reads smolvm's
// stdout, and kubectl bottle writes to whatever reads its own.
package pipesize

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// Grow enlarges the pipe behind f to size bytes, when f is a pipe (an
// *os.File, or any wrapper that keeps its SyscallConn, as the reader os/exec
// hands an io.ReaderFrom does). Anything else, or a refusal (the per-user
// pipe budget of fs.pipe-user-pages-soft), leaves it as it was: the stream
// is the same, in smaller pieces.
func Grow(f any, size int) {
	sc, ok := f.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		var st unix.Stat_t
		if unix.Fstat(int(fd), &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
			return
		}
		if cur, err := unix.FcntlInt(fd, unix.F_GETPIPE_SZ, 0); err == nil && cur >= size {
			return
		}
		_, _ = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, size)
	})
}
