// Package vmlauncher decides where a machine's VMM runs once `smolvm machine
// start` returns.
//
// "direct" (a nil smolvm.Launcher) runs smolvm as the agent's child: the VMM
// lives in the agent's PID namespace and cgroup, so a restart of the agent's
// container stops every VM of the node. It is for `make dev` and tests.
//
// "systemd" starts `smolvm machine start --name N` in a transient unit
// bottle-vm-N.service through systemd's D-Bus API (StartTransientUnit, as
// runc's systemd cgroup driver does). The VMM is then a host process in its
// own cgroup with the VM's CPUs and memory as limits: restarting, upgrading or
// OOM-killing the agent does not touch it, and its memory is not charged to
// the agent's container.
package vmlauncher
