package smolvm

import (
	"fmt"
	"os"
	"strconv"
)

// copyInArgv: `machine cp HOST N:/guest [--mode 0600] [--uid U] [--gid G]`.
// hostPath must be absolute (so it cannot read as a flag) and free of ':'
// (smolvm reads a SOURCE containing ':' as a guest path).
func copyInArgv(machine, hostPath, guestPath string, mode os.FileMode, uid, gid int) ([]string, error) {
	verb := verbCopyIn
	if err := checkName(verb, machine); err != nil {
		return nil, err
	}
	if err := checkHostPath(verb, hostPath); err != nil {
		return nil, err
	}
	if err := checkGuestPath(verb, "guest path", guestPath); err != nil {
		return nil, err
	}
	argv := []string{cmdMachine, subCopy, hostPath, machine + ":" + guestPath}
	if mode != 0 {
		argv = append(argv, flagMode, fmt.Sprintf("%04o", uint32(mode.Perm())|modeSpecial(mode)))
	}
	if uid >= 0 {
		argv = append(argv, flagUID, strconv.Itoa(uid))
	}
	if gid >= 0 {
		argv = append(argv, flagGID, strconv.Itoa(gid))
	}
	return argv, nil
}

// modeSpecial maps Go's setuid/setgid/sticky bits to their octal values.
func modeSpecial(m os.FileMode) uint32 {
	var s uint32
	if m&os.ModeSetuid != 0 {
		s |= 0o4000
	}
	if m&os.ModeSetgid != 0 {
		s |= 0o2000
	}
	if m&os.ModeSticky != 0 {
		s |= 0o1000
	}
	return s
}
