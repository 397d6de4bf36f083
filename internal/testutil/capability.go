package testutil

import (
	"syscall"
	"unsafe"
)

// CapSysChroot is CAP_SYS_CHROOT's bit in the capability sets.
const CapSysChroot = 18

// DropEffectiveCap clears bit from the calling thread's effective
// capabilities. capset(2) with pid 0 changes only the calling thread, so
// the caller must hold its thread (runtime.LockOSThread) and never unlock
// it: the thread then exits with its goroutine instead of running others
// without the capability. Processes forked from that goroutine inherit the
// reduced set, which is how a test shows what an agent without the
// capability would do.
func DropEffectiveCap(bit uint) error {
	hdr := struct {
		version uint32
		pid     int32
	}{version: 0x20080522} // _LINUX_CAPABILITY_VERSION_3
	var data [2]struct{ effective, permitted, inheritable uint32 }
	if _, _, errno := syscall.RawSyscall(syscall.SYS_CAPGET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0); errno != 0 {
		return errno
	}
	data[bit/32].effective &^= 1 << (bit % 32)
	if _, _, errno := syscall.RawSyscall(syscall.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0); errno != 0 {
		return errno
	}
	return nil
}
