#!/usr/bin/env bash
# `make dev` where this machine can run a kubelet (hack/dev-up.sh calls it):
# a real one-node cluster (hack/node-up.sh, in DEV_DIR/node) with the project
# installed as the README says, so the agent and the cluster controller run
# as the Pods dist/install.yaml defines, from the image `make image` builds,
# with the smolvm simulator at /opt/smolvm/bin/smolvm (unless smolvm is
# there); then the sample, placed by kube-scheduler through a reservation Pod
# the kubelet runs.
#
#   hack/dev-node-up.sh [--background]   as hack/dev-up.sh; stop with hack/dev-down.sh
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${repo}"
background=false
[[ "${1:-}" == --background ]] && background=true
dev="${DEV_DIR:-${repo}/.dev}"
export NODE_DIR="${dev}/node"
img="localhost/bottle-agent:dev"
say() { printf 'dev-up: %s\n' "$*" >&2; }

mkdir -p "${dev}/bin"
say "bringing up a real node (kubelet, containerd, kube-proxy; first run builds them: minutes, cached afterwards)"
admin="$(hack/node-up.sh | tail -n1)"
# The README's two dev users: dev-admin (cluster-admin) and dev-viewer (read
# Bottles only), with client certificates of the node's CA.
kc="${dev}/kubeconfig"
install -m 600 "${admin}" "${kc}"
KUBECONFIG="${kc}" "${NODE_DIR}/bin/kubectl" config rename-context node dev-admin >/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=dev-viewer" -keyout "${NODE_DIR}/pki/dev-viewer.key" \
	-out "${NODE_DIR}/pki/dev-viewer.csr" 2>/dev/null
openssl x509 -req -in "${NODE_DIR}/pki/dev-viewer.csr" -CA "${NODE_DIR}/pki/ca.crt" -CAkey "${NODE_DIR}/pki/ca.key" \
	-CAcreateserial -days 30 -extfile <(echo extendedKeyUsage=clientAuth) -out "${NODE_DIR}/pki/dev-viewer.crt" 2>/dev/null
KUBECONFIG="${kc}" "${NODE_DIR}/bin/kubectl" config set-credentials dev-viewer --embed-certs \
	--client-certificate "${NODE_DIR}/pki/dev-viewer.crt" --client-key "${NODE_DIR}/pki/dev-viewer.key" >/dev/null
KUBECONFIG="${kc}" "${NODE_DIR}/bin/kubectl" config set-context dev-viewer --cluster node --user dev-viewer --namespace default >/dev/null
KUBECONFIG="${kc}" "${NODE_DIR}/bin/kubectl" config set-context dev-admin --namespace default >/dev/null
ln -sf "${NODE_DIR}/bin/kubectl" "${dev}/bin/kubectl"
go build -o bin/kubectl-bottle ./cmd/kubectl-bottle
ln -sf "${repo}/bin/kubectl-bottle" "${dev}/bin/kubectl-bottle"
ln -sf "${repo}/cmd/kubectl-bottle/kubectl_complete-bottle" "${dev}/bin/kubectl_complete-bottle"
k() { KUBECONFIG="${kc}" "${dev}/bin/kubectl" "$@"; }

say "installing as the README says: make image, make build-installer, apply, gencerts (image ${img}, imported into the node's containerd)"
make -s image IMG="${img}" >/dev/null
ctr --address "${NODE_DIR}/containerd/containerd.sock" --namespace k8s.io images import dist/image/bottle-agent.tar >/dev/null
make -s build-installer IMG="${img}" >/dev/null
k apply --server-side -f dist/install.yaml >/dev/null
go run ./cmd/gencerts -out "${dev}/exec-certs" -cluster-manifest | k apply --server-side --field-manager=bottle-gencerts -f - >/dev/null
node="$(k get nodes -o jsonpath='{.items[0].metadata.name}')"
k label node "${node}" bot-bottle.dev/kvm=true --overwrite >/dev/null
k -n default create rolebinding bottle-agent-source-reader --clusterrole bottle-source-reader \
	--serviceaccount bottle-system:bottle-agent --dry-run=client -o yaml | k apply --server-side -f - >/dev/null
k create clusterrolebinding dev-viewer --clusterrole bottle-viewer-role --user dev-viewer --dry-run=client -o yaml | k apply --server-side -f - >/dev/null
k -n bottle-system rollout status daemonset/bottle-agent --timeout=5m >&2
k -n bottle-system rollout status deployment/bottle-cluster-controller --timeout=5m >&2
k wait --for condition=Available --timeout 2m apiservice/v1alpha1.subresources.agents.bot-bottle.dev >/dev/null

if [[ "${DEV_SAMPLE:-1}" != 0 ]]; then
	sample="$(cat config/samples/agents_v1alpha1_bottle.yaml)"
	# The sample's 2 vCPUs (+100m) need more than 2.25 allocatable CPUs.
	if (($(nproc) < 3)); then
		say "this node has $(nproc) CPUs: the sample asks for 1 vCPU instead of 2"
		sample="${sample/    cpus: 2/    cpus: 1}"
	fi
	say "applying config/samples (Bottle reviewer; kube-scheduler places its reservation Pod, the kubelet runs it)"
	k apply --server-side -f - >/dev/null <<<"${sample}"
	if ! k wait bottle/reviewer --for=condition=Ready --timeout=5m >/dev/null; then
		say "the sample did not become Ready:"
		k get bottle reviewer -o yaml >&2
		exit 1
	fi
	echo
	k get bottles
	k get pods -o wide
	echo
fi

cat <<MSG

The dev cluster is up, on a real node (${node}: kubelet, containerd). Go on with kubectl
(${dev}/bin has kubectl and kubectl-bottle):

  export KUBECONFIG=${dev}/kubeconfig PATH=${dev}/bin:\$PATH
  kubectl get bottles,pods -A               # as dev-admin (cluster-admin)
  kubectl --context dev-viewer get bottles  # read-only user
  kubectl bottle exec reviewer -- id        # a command in the VM, through the API server
  kubectl -n bottle-system logs -l app.kubernetes.io/component=agent -f

Stop everything with: hack/dev-down.sh
MSG

if ${background}; then
	exit 0
fi
trap 'echo; say "stopping"; DEV_DIR="${dev}" "${repo}/hack/dev-down.sh"; exit 0' INT TERM
say "following the agent's log (Ctrl-C stops everything)"
k -n bottle-system logs -l app.kubernetes.io/component=agent -f --tail=-1 &
wait $!
