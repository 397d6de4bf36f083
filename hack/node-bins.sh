#!/usr/bin/env bash
# Builds (once) the node-side Kubernetes binaries `make dev` and
# `make test-e2e-node` run beside the control plane of hack/envtest-bins.sh,
# all v1.37.1: kube-controller-manager (ServiceAccounts of new namespaces,
# garbage collection, namespace deletion), kubelet and kube-proxy (a real node,
# hack/node-up.sh). They come from the same pinned module, hack/envtest-tools,
# built from a throwaway copy of it, so that the build may add the modules
# these commands need without touching the repository, and sharing the Go
# build cache with the control plane's build. Measured on a 2-core VM shared
# with other builds: with an empty Go build cache 21 minutes (19 of them
# kube-controller-manager; 3.8 GB of cache); kubelet and kube-proxy after
# kube-controller-manager, as `make test` builds it first, about 2 minutes.
#
# Usage: hack/node-bins.sh [binary...]   (default: all three)
# Only the binaries asked for are built; each is published into the cache
# directory atomically, so one caller asking for kube-controller-manager does
# not pay for the kubelet. The last line of output is the directory.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tools="${here}/envtest-tools"
k8s_version="1.37.1"
all_bins=(kube-controller-manager kubelet kube-proxy)
bins=("$@")
[[ ${#bins[@]} -gt 0 ]] || bins=("${all_bins[@]}")
for b in "${bins[@]}"; do
	case " ${all_bins[*]} " in
	*" ${b} "*) ;;
	*) echo "node-bins: unknown binary ${b} (known: ${all_bins[*]})" >&2; exit 2 ;;
	esac
done

layout_version=2
key="$( (cat "${tools}/go.mod" "${tools}/go.sum"; echo "node ${layout_version} $(go env GOVERSION)") | sha256sum | cut -c1-16)"
cache_root="${ENVTEST_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME}/.cache}/bottle-controller/envtest}"
root="${cache_root}/node-${key}"

complete() {
	local b
	for b in "${bins[@]}"; do [[ -x "${root}/${b}" ]] || return 1; done
}

missing() {
	local b
	for b in "${bins[@]}"; do [[ -x "${root}/${b}" ]] || echo "${b}"; done
}

if complete; then
	echo "${root}"
	exit 0
fi
mkdir -p "${cache_root}"
exec 9>"${cache_root}/.node.lock"
if ! flock -n 9; then
	echo "node-bins: another build holds ${cache_root}/.node.lock; waiting for it" >&2
	flock 9
fi
if complete; then
	echo "${root}"
	exit 0
fi

mapfile -t todo < <(missing)
echo "node-bins: building ${todo[*]} v${k8s_version} from source (cached afterwards in ${root})" >&2
staging="$(mktemp -d "${cache_root}/.node-build.XXXXXX")"
trap 'rm -rf "${staging}"' EXIT
mod="${staging}/module"
mkdir -p "${mod}"
cp "${tools}/go.mod" "${tools}/go.sum" "${mod}/"
{
	echo '//go:build tools'
	echo
	echo 'package tools'
	echo
	echo 'import ('
	for b in "${todo[@]}"; do echo "	_ \"k8s.io/kubernetes/cmd/${b}\""; done
	echo ')'
} >"${mod}/tools.go"

ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	ldflags+=" -X ${pkg}.gitVersion=v${k8s_version} -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=37 -X ${pkg}.gitTreeState=clean"
done
mkdir -p "${root}"
for b in "${todo[@]}"; do
	start=$(date +%s)
	echo "node-bins: building ${b}..." >&2
	(cd "${mod}" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "${ldflags}" -o "${staging}/${b}" "k8s.io/kubernetes/cmd/${b}")
	# Publish atomically (rename within one file system): a half-written
	# binary is never visible under its name.
	mv "${staging}/${b}" "${root}/${b}"
	echo "node-bins: ${b} done in $(( $(date +%s) - start ))s" >&2
done
echo "${root}"
