#!/usr/bin/env bash
# Stops the node hack/node-up.sh started and leaves the machine as it found
# it: every process it started (and every container, VM and unit they
# started) ended, its mount namespace gone, its bridge, route, iptables/nft
# rules and cgroups removed, net.ipv4.ip_forward restored, and every path it
# created outside NODE_DIR removed (node-up.sh recorded which did not exist
# before), then NODE_DIR itself.
set -uo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=hack/node-env.sh
source "${repo}/hack/node-env.sh"
[[ -d "${dir}" ]] || exit 0

stop() { # name: TERM its process group, KILL it after 10 s
	local f="${dir}/pids/$1.pid" pid
	[[ -f "${f}" ]] || return 0
	pid="$(cat "${f}")"
	if kill -0 "${pid}" 2>/dev/null; then
		kill -TERM -- "-${pid}" 2>/dev/null || kill -TERM "${pid}" 2>/dev/null
		for _ in $(seq 1 100); do
			kill -0 "${pid}" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL -- "-${pid}" 2>/dev/null
	fi
	rm -f "${f}"
}
# kill_cgroup: every process left in a cgroup subtree (containers, the VMMs
# the agent or a unit started), deepest first, then the cgroups themselves.
kill_cgroup() {
	local c="$1" p
	[[ -d "${c}" ]] || return 0
	for _ in 1 2 3 4 5; do
		p="$(find "${c}" -name cgroup.procs -exec cat {} + 2>/dev/null)"
		[[ -n "${p}" ]] || break
		# shellcheck disable=SC2086 # one pid a word
		kill -KILL ${p} 2>/dev/null
		sleep 0.2
	done
	find "${c}" -depth -type d -exec rmdir {} \; 2>/dev/null
}

# The kubelet first (it would restart what is killed), kube-proxy, then every
# container through containerd, then containerd.
stop kubelet
stop kube-proxy
if [[ -S "${dir}/containerd/containerd.sock" ]]; then
	c=(ctr --address "${dir}/containerd/containerd.sock" --namespace k8s.io)
	for t in $("${c[@]}" tasks ls -q 2>/dev/null); do
		"${c[@]}" tasks kill -a -s SIGKILL "${t}" >/dev/null 2>&1
	done
	sleep 0.5
	for t in $("${c[@]}" tasks ls -q 2>/dev/null); do
		"${c[@]}" tasks delete -f "${t}" >/dev/null 2>&1
	done
fi
stop containerd
stop systemd
stop dbus
stop kube-scheduler
stop kube-controller-manager
stop kube-apiserver
stop etcd
# Shims outlive containerd by design; the ones serving this node are found by
# its socket path in their argv.
for pid in $(pgrep -f -- "containerd-shim-runc-v2 -namespace k8s.io -address ${dir}/containerd/containerd.sock" 2>/dev/null); do
	kill -KILL "${pid}" 2>/dev/null
done
if [[ -f "${dir}/cgroups.created" ]]; then
	while read -r c; do kill_cgroup "${c}"; done <"${dir}/cgroups.created"
fi
if [[ -f "${dir}/systemd.cgroup" ]]; then
	for h in /sys/fs/cgroup/*/; do kill_cgroup "${h}$(cat "${dir}/systemd.cgroup")"; done
fi

# The node's mount namespace: no process is left in it; dropping its last
# reference unmounts everything the kubelet and containerd mounted there.
if [[ -e "${dir}/ns/mnt" ]]; then
	umount "${dir}/ns/mnt" 2>/dev/null
	umount "${dir}/ns" 2>/dev/null
fi

# Network namespaces of this node's pods that reached the host's /run/netns
# (not expected: the node's mount namespace shares nothing with the host).
for f in /run/netns/cni-*; do
	[[ -e "${f}" ]] || continue
	grep -qx "$(basename "${f}")" "${dir}/netns.before" 2>/dev/null && continue
	umount "${f}" 2>/dev/null
	rm -f "${f}"
done

# iptables/nft: kube-proxy's own cleanup, then tables that did not exist
# before go, and tables that did get their saved rules back.
if [[ -f "${dir}/nft-tables.before" ]]; then
	node_bins="$(cat "${dir}/node-bins.path" 2>/dev/null)"
	[[ -x "${node_bins}/kube-proxy" ]] && "${node_bins}/kube-proxy" --cleanup >/dev/null 2>&1
	nft list tables 2>/dev/null | while read -r _ family name; do
		grep -qx "table ${family} ${name}" "${dir}/nft-tables.before" || nft delete table "${family}" "${name}"
	done
	[[ -s "${dir}/iptables.before" ]] && iptables-restore <"${dir}/iptables.before"
	[[ -s "${dir}/ip6tables.before" ]] && ip6tables-restore <"${dir}/ip6tables.before"
fi

# Network.
ip route del blackhole "${service_cidr}" 2>/dev/null
ip link del "${bridge}" 2>/dev/null
# Leftover veth ends of pods whose namespace is gone vanish with it; any still
# attached to nothing are this node's (CNI names them veth*).
if [[ -f "${dir}/ip_forward.before" ]]; then
	sysctl -qw net.ipv4.ip_forward="$(cat "${dir}/ip_forward.before")"
fi

# Paths outside NODE_DIR that node-up.sh (or what it ran) created.
if [[ -f "${dir}/created" ]]; then
	while read -r kind what; do
		case "${kind}" in
		path) rm -rf "${what}" ;;
		# Other tests may name network namespaces there meanwhile: only the
		# CNI's (cni-*) go, and the directory if that empties it.
		netns) rm -f "${what}"/cni-* && rmdir "${what}" 2>/dev/null ;;
		esac
	done <"${dir}/created"
fi
rm -rf "${dir}"
say "stopped the node and removed ${dir}"
