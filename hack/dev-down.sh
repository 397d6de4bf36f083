#!/usr/bin/env bash
# Stops everything hack/dev-up.sh started. --clean also removes its state
# (etcd data, certificates, smolvm machines) so the next start is fresh.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dev="${DEV_DIR:-${repo}/.dev}"
clean=false
[[ "${1:-}" == --clean ]] && clean=true

stop() {
	local name="$1" f="${dev}/pids/$1.pid" pid
	[[ -f "${f}" ]] || return 0
	pid="$(cat "${f}")"
	if kill -0 "${pid}" 2>/dev/null; then
		# setsid made each a process-group leader: stop the whole group.
		kill -TERM -- "-${pid}" 2>/dev/null || kill -TERM "${pid}" 2>/dev/null || true
		for _ in $(seq 1 50); do
			kill -0 "${pid}" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL -- "-${pid}" 2>/dev/null || true
		echo "dev-down: stopped ${name} (pid ${pid})" >&2
	fi
	rm -f "${f}"
}

# Controllers first, so they do not fight a vanishing API server.
for name in agent cluster kube-controller-manager kube-scheduler kube-apiserver etcd; do
	stop "${name}"
done

# The real node of hack/dev-node-up.sh, when make dev ran one.
if [[ -d "${dev}/node" ]]; then
	NODE_DIR="${dev}/node" "${repo}/hack/node-down.sh"
fi

if ${clean}; then
	rm -rf "${dev}"
	echo "dev-down: removed ${dev}" >&2
fi
