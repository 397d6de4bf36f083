#!/usr/bin/env bash
# Installs the system packages the tests and `make dev` need on a fresh
# Debian machine: bubblewrap (the smolvm simulator's sandbox), dbus-daemon
# (the private bus of the systemd launcher's tests), and iproute2, nftables
# and nsenter (util-linux), with which the simulator enforces an egress
# allowlist and the tests make their own hosts. Idempotent.
#
#   hack/ensure-deps.sh node   also what hack/node-up.sh's real node needs:
#                              containerd, runc, the CNI plugins, iptables,
#                              conntrack, nft, systemd (the binary)
set -euo pipefail

missing=()
if [[ "${1:-}" == node ]]; then
	command -v containerd >/dev/null 2>&1 || missing+=(containerd)
	command -v runc >/dev/null 2>&1 || [[ -x /usr/sbin/runc ]] || missing+=(runc)
	[[ -x /usr/lib/cni/bridge ]] || missing+=(containernetworking-plugins)
	command -v iptables >/dev/null 2>&1 || [[ -x /usr/sbin/iptables ]] || missing+=(iptables)
	command -v conntrack >/dev/null 2>&1 || [[ -x /usr/sbin/conntrack ]] || missing+=(conntrack)
	command -v nft >/dev/null 2>&1 || [[ -x /usr/sbin/nft ]] || missing+=(nftables)
	[[ -x /lib/systemd/systemd ]] || missing+=(systemd)
fi
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
command -v flock >/dev/null 2>&1 || missing+=(util-linux)
[[ -x /usr/sbin/runuser || -x /usr/bin/runuser || -x /sbin/runuser ]] || missing+=(util-linux)
command -v dbus-daemon >/dev/null 2>&1 || missing+=(dbus-daemon)
# Only root can enforce an allowlist (docs/security.md#egress): without root
# the simulator gives an allowlisted machine no network and needs none of these.
if [[ $(id -u) -eq 0 ]]; then
	command -v nsenter >/dev/null 2>&1 || missing+=(util-linux)
	[[ -x /usr/sbin/ip || -x /sbin/ip || -x /usr/bin/ip ]] || missing+=(iproute2)
	[[ -x /usr/sbin/nft || -x /sbin/nft ]] || missing+=(nftables)
fi

if ((${#missing[@]} == 0)); then
	exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
	echo "ensure-deps: missing ${missing[*]}; install with: sudo apt-get install -y ${missing[*]}" >&2
	exit 1
fi
echo "ensure-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Debian 12 and later package dbus-daemon on its own; older releases ship it
# in dbus.
if [[ " ${missing[*]} " == *" dbus-daemon "* ]] && ! apt-cache show dbus-daemon >/dev/null 2>&1; then
	missing=("${missing[@]/#dbus-daemon/dbus}")
fi
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
