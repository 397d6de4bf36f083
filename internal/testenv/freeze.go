package testenv

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// FreezeEtcd stops env's etcd with SIGSTOP, as an etcd leader election, a
// defrag or a stalled disk would: the kube-apiserver stays up (connections
// through it, like exec sessions, stay open) but reads and writes of every
// object hang until they time out. thaw continues etcd; it is idempotent,
// so a test also registers it as a cleanup.
func FreezeEtcd(env *envtest.Environment) (thaw func(), err error) {
	etcd := env.ControlPlane.Etcd
	if etcd == nil || etcd.URL == nil {
		return nil, fmt.Errorf("the environment runs no etcd of its own")
	}
	pid, err := pidWithArg(etcd.URL.Host)
	if err != nil {
		return nil, err
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		return nil, fmt.Errorf("stopping etcd (pid %d): %w", pid, err)
	}
	var once sync.Once
	return func() { once.Do(func() { _ = syscall.Kill(pid, syscall.SIGCONT) }) }, nil
}

// pidWithArg finds the one etcd process with an argument containing s
// (its client address is unique to one environment).
func pidWithArg(s string) (int, error) {
	dirs, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil {
		return 0, err
	}
	var found []int
	for _, f := range dirs {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		args := bytes.Split(b, []byte{0})
		if filepath.Base(string(args[0])) != "etcd" {
			continue
		}
		for _, arg := range args[1:] {
			if bytes.Contains(arg, []byte(s)) {
				if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(f))); err == nil {
					found = append(found, pid)
				}
				break
			}
		}
	}
	if len(found) != 1 {
		return 0, fmt.Errorf("found %d etcd processes listening on %s, want 1", len(found), s)
	}
	return found[0], nil
}
