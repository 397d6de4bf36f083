# shellcheck shell=bash
# The names, addresses and ports hack/node-up.sh and hack/node-down.sh share
# (sourced by both; see node-up.sh for the environment they read).
dir="${NODE_DIR:-/var/tmp/bottle-node}"
node="${NODE_NAME:-bottle-node}"
bridge="${NODE_BRIDGE:-bottle-br0}"
node_ip="${NODE_IP:-10.244.0.1}"
pod_cidr="${NODE_POD_CIDR:-10.244.0.0/24}"
pod_prefix="${pod_cidr#*/}"
service_cidr="${NODE_SERVICE_CIDR:-10.97.0.0/24}"
# The `kubernetes` Service takes the range's first address (a /24 or longer).
service_ip="${service_cidr%.*}.1"
base="${NODE_PORT_BASE:-26000}"
api_port=$((base + 443))
etcd_port=$((base + 379)) # and +1 (peers), +2 (metrics)
kcm_port=$((base + 257))
scheduler_port=$((base + 259))
kubelet_port=$((base + 250)) # and +1 (kubelet healthz), +2, +3 (kube-proxy metrics, healthz)
api_url="https://${node_ip}:${api_port}"
admin_kubeconfig="${dir}/etc/admin.kubeconfig"
cni_bin="${NODE_CNI_BIN:-/usr/lib/cni}"
pause_image="localhost/bottle-node/pause:1"
say() { printf '%s: %s\n' "$(basename "$0" .sh)" "$*" >&2; }
