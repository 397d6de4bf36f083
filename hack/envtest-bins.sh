#!/usr/bin/env bash
# Builds the control plane the tests run against -- kube-apiserver,
# kube-scheduler and kubectl v1.37.1, etcd v3.7.0 -- from the Go module proxy, once per tools-module
# hash, into a cache outside the work tree. The last line of output is the
# directory to export as KUBEBUILDER_ASSETS (setup-envtest's `use -i` layout:
# <root>/k8s/<version>-<os>-<arch>/{etcd,kube-apiserver,kube-scheduler,kubectl}).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tools="${here}/envtest-tools"
k8s_version="1.37.1"
goos="$(go env GOOS)"
goarch="$(go env GOARCH)"

# The key covers what decides the binaries' content; bump layout_version when
# the build flags below change.
layout_version=1
key="$( (cat "${tools}/go.mod" "${tools}/go.sum" "${tools}/tools.go"; echo "layout ${layout_version} $(go env GOVERSION)") | sha256sum | cut -c1-16)"
cache_root="${ENVTEST_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME}/.cache}/bottle-controller/envtest}"
root="${cache_root}/${key}"
assets="${root}/k8s/${k8s_version}-${goos}-${goarch}"

complete() {
	[[ -x "${assets}/kube-apiserver" && -x "${assets}/etcd" && -x "${assets}/kubectl" && -x "${assets}/kube-scheduler" ]]
}

if complete; then
	echo "${assets}"
	exit 0
fi

if [[ -n "${ENVTEST_BINS_CACHED_ONLY:-}" ]]; then
	echo "envtest-bins: not built yet; run hack/envtest-bins.sh (or make test) once" >&2
	exit 3
fi

mkdir -p "${cache_root}"
exec 9>"${cache_root}/.lock"
if ! flock -n 9; then
	echo "envtest-bins: another build holds ${cache_root}/.lock; waiting for it" >&2
	flock 9
fi
# The holder of the lock may have finished the build while we waited.
if complete; then
	echo "${assets}"
	exit 0
fi

echo "envtest-bins: building kube-apiserver, kube-scheduler, etcd and kubectl from source (cold: ~9 minutes on 2 cores; cached afterwards in ${root})" >&2
staging="$(mktemp -d "${cache_root}/.build.XXXXXX")"
trap 'rm -rf "${staging}"' EXIT

ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	ldflags+=" -X ${pkg}.gitVersion=v${k8s_version} -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=37 -X ${pkg}.gitTreeState=clean"
done

build() {
	local name="$1" pkg="$2" start
	start=$(date +%s)
	echo "envtest-bins: [$3] building ${name} (${pkg})..." >&2
	(cd "${tools}" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "${ldflags}" -o "${staging}/${name}" "${pkg}")
	echo "envtest-bins: [$3] ${name} done in $(( $(date +%s) - start ))s" >&2
}
build etcd go.etcd.io/etcd/server/v3 1/4
build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver 2/4
build kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler 3/4
build kubectl k8s.io/kubernetes/cmd/kubectl 4/4

# Publish atomically: a half-built directory is never visible under its key.
mkdir -p "${root}/k8s"
rm -rf "${assets}"
mv "${staging}" "${assets}"
trap - EXIT
echo "${assets}"
