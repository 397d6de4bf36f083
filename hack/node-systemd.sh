#!/usr/bin/env bash
# Runs systemd as a user manager: the stand-in hack/node-up.sh puts on the
# node's D-Bus system bus for the agent's --vm-launcher=systemd (this machine
# has no systemd as PID 1). $1 is the cgroup name it gets in every hierarchy
# (created here, removed by hack/node-down.sh): a manager takes the processes
# of the cgroup it starts in as its own, so it must never start in the root.
# Its user bus (dbus.socket of dbus-user-session) listens at
# /run/dbus/system_bus_socket (a drop-in under $XDG_CONFIG_HOME). systemd
# refuses to start unless /run/systemd/system exists; that directory exists
# only in this process's own mount namespace, so nothing else on the host
# believes it was booted with systemd.
set -euo pipefail
cg="$1"
for h in /sys/fs/cgroup/*/; do
	[[ -e "${h}cgroup.procs" ]] || continue
	mkdir -p "${h}${cg}"
	# A new cpuset cgroup has no CPUs or memory nodes until given its parent's.
	if [[ -e "${h}cpuset.cpus" ]]; then
		cat "${h}cpuset.cpus" >"${h}${cg}/cpuset.cpus"
		cat "${h}cpuset.mems" >"${h}${cg}/cpuset.mems"
	fi
	echo "$$" >"${h}${cg}/cgroup.procs"
done
mkdir -p "${XDG_CONFIG_HOME:?}/systemd/user/dbus.socket.d" "${XDG_RUNTIME_DIR:?}"
cat >"${XDG_CONFIG_HOME}/systemd/user/dbus.socket.d/system-bus.conf" <<'UNIT'
[Socket]
ListenStream=
ListenStream=/run/dbus/system_bus_socket
UNIT
exec unshare --mount --propagation private -- bash -c \
	'mount -t tmpfs -o mode=0755 tmpfs /run/systemd && mkdir /run/systemd/system && exec /lib/systemd/systemd --user --log-target=console'
