#!/usr/bin/env bash
# Builds (once) the node-side Kubernetes binaries `make dev` runs beside the
# control plane of hack/envtest-bins.sh: kube-controller-manager v1.37.1
# (ServiceAccounts of new namespaces, garbage collection, namespace
# deletion). They come from the same pinned module, hack/envtest-tools, built
# from a throwaway copy of it, so that the build may add the modules these
# commands need without touching the repository, and sharing the Go build
# cache with the control plane's build (after it, 5 minutes on 2 busy cores).
# The last line of output is the directory that holds them.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tools="${here}/envtest-tools"
k8s_version="1.37.1"
bins=(kube-controller-manager)

layout_version=1
key="$( (cat "${tools}/go.mod" "${tools}/go.sum"; echo "node ${layout_version} ${bins[*]} $(go env GOVERSION)") | sha256sum | cut -c1-16)"
cache_root="${ENVTEST_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME}/.cache}/bottle-controller/envtest}"
root="${cache_root}/node-${key}"

complete() {
	local b
	for b in "${bins[@]}"; do [[ -x "${root}/${b}" ]] || return 1; done
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

echo "node-bins: building ${bins[*]} v${k8s_version} from source (cached afterwards in ${root})" >&2
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
	for b in "${bins[@]}"; do echo "	_ \"k8s.io/kubernetes/cmd/${b}\""; done
	echo ')'
} >"${mod}/tools.go"

ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	ldflags+=" -X ${pkg}.gitVersion=v${k8s_version} -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=37 -X ${pkg}.gitTreeState=clean"
done
for b in "${bins[@]}"; do
	start=$(date +%s)
	echo "node-bins: building ${b}..." >&2
	(cd "${mod}" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "${ldflags}" -o "${staging}/out/${b}" "k8s.io/kubernetes/cmd/${b}")
	echo "node-bins: ${b} done in $(( $(date +%s) - start ))s" >&2
done

# Publish atomically: a half-built directory is never visible under its key.
rm -rf "${root}"
mv "${staging}/out" "${root}"
echo "${root}"
