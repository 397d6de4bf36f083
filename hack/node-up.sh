#!/usr/bin/env bash
# A real one-node Kubernetes cluster on this machine, for `make test-e2e-node`
# and `make dev`: etcd, kube-apiserver, kube-controller-manager and
# kube-scheduler (hack/envtest-bins.sh, hack/node-bins.sh), containerd + runc
# (Debian), a kubelet, a CNI bridge and kube-proxy, plus what the installed
# agent needs from a node: a D-Bus system bus with systemd on it (systemd
# running as a user manager, the stand-in for systemd as PID 1), the smolvm
# simulator at /opt/smolvm/bin/smolvm (unless smolvm is already there), and
# the images no registry serves here (the pause image, built from hack/pause)
# imported into containerd. The project itself is not installed: install it
# as the README says (test/node does).
#
#   hack/node-up.sh --check   exit 0 when this machine can run the node, else say why (exit 1)
#   hack/node-up.sh           bring it up; the last line printed is the admin kubeconfig
#   hack/node-down.sh         stop everything and leave the machine as it was found
#
# What this machine kind forces (docs/deploy.md, "A real node in the tests"):
# - containerd and the kubelet run in their own mount namespace whose `/` is
#   shared (the agent's HostToContainer /host volume needs it), so the host's
#   propagation is left alone;
# - containerd sets restrict_oom_score_adj (root may lack CAP_SYS_RESOURCE);
# - the kubelet sets failCgroupV1: false (cgroup v1 hosts).
# Network: a bridge (NODE_BRIDGE) at NODE_IP/24 that this script creates,
# pods without a default route, the service range blackholed on the host, and
# only NODE_IP and loopback listened on.
#
# Environment: NODE_DIR (default /var/tmp/bottle-node), NODE_NAME
# (bottle-node), NODE_BRIDGE (bottle-br0), NODE_IP (10.244.0.1),
# NODE_POD_CIDR (10.244.0.0/24), NODE_SERVICE_CIDR (10.97.0.0/24),
# NODE_PORT_BASE (26000: the components listen on NODE_PORT_BASE + small
# offsets).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${repo}"
# shellcheck source=hack/node-env.sh
source "${repo}/hack/node-env.sh"

# can_run says why this machine cannot run the node, or nothing.
cant_run() {
	[[ $(id -u) -eq 0 ]] || { echo "not root"; return; }
	[[ "$(uname -s)" == Linux ]] || { echo "not Linux"; return; }
	[[ -w /sys/fs/cgroup ]] || [[ -w /sys/fs/cgroup/memory ]] || { echo "cgroups are not writable"; return; }
	unshare --mount true 2>/dev/null || { echo "cannot make a mount namespace (unshare --mount)"; return; }
	ip link add bottle-probe type bridge 2>/dev/null || { echo "cannot create a bridge (ip link add type bridge)"; return; }
	ip link del bottle-probe 2>/dev/null || true
	if ip link show "${bridge}" >/dev/null 2>&1; then echo "bridge ${bridge} exists already (another node up? hack/node-down.sh)"; return; fi
}

if [[ "${1:-}" == --check ]]; then
	why="$(cant_run)"
	if [[ -n "${why}" ]]; then
		echo "node-up: this machine cannot run a kubelet: ${why}" >&2
		exit 1
	fi
	exit 0
fi
why="$(cant_run)"
if [[ -n "${why}" ]]; then
	say "this machine cannot run a kubelet: ${why}"
	exit 1
fi
if [[ -e "${dir}/created" ]]; then
	say "a previous node is recorded in ${dir}; stopping it first"
	"${repo}/hack/node-down.sh"
fi

hack/ensure-deps.sh node
assets="$(hack/envtest-bins.sh | tail -n1)"
node_bins="$(hack/node-bins.sh | tail -n1)"
kubectl="${assets}/kubectl"

mkdir -p "${dir}"/{bin,pki,logs,pids,etc,cni/net.d,cni/ipam,containerd,kubelet,images}
: >"${dir}/created"
# node-down.sh runs this kube-proxy's --cleanup.
echo "${node_bins}" >"${dir}/node-bins.path"
# created records what node-down.sh removes besides ${dir}: only what did not
# exist before.
created() { echo "$1" >>"${dir}/created"; }
[[ -e /run/netns ]] || created "netns /run/netns"
ls /run/netns >"${dir}/netns.before" 2>/dev/null || true
for p in /var/log/pods /var/log/containers /var/lib/cni /opt/smolvm /run/dbus /var/lib/bottle-controller /run/bottle-controller /var/lib/kubelet /etc/kubernetes /root/.config/systemd /root/.local/share/systemd; do
	[[ -e "${p}" ]] || created "path ${p}"
done
sysctl -n net.ipv4.ip_forward >"${dir}/ip_forward.before"
nft list tables >"${dir}/nft-tables.before" 2>/dev/null || true
iptables-save >"${dir}/iptables.before" 2>/dev/null || true
ip6tables-save >"${dir}/ip6tables.before" 2>/dev/null || true
for h in /sys/fs/cgroup/*/; do
	[[ -e "${h}kubepods" ]] || echo "${h}kubepods" >>"${dir}/cgroups.created"
done

# --- PKI (openssl): one CA for serving and client certificates, one for the
# aggregation layer's front proxy, the ServiceAccount key.
pki="${dir}/pki"
cert() { # name, subject, extensions
	openssl req -newkey rsa:2048 -nodes -subj "$2" -keyout "${pki}/$1.key" -out "${pki}/$1.csr" 2>/dev/null
	printf '%b\n' "$3" >"${pki}/$1.ext"
	openssl x509 -req -in "${pki}/$1.csr" -CA "${pki}/${4:-ca}.crt" -CAkey "${pki}/${4:-ca}.key" -CAcreateserial \
		-days 30 -extfile "${pki}/$1.ext" -out "${pki}/$1.crt" 2>/dev/null
}
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=bottle-node-ca" -keyout "${pki}/ca.key" -out "${pki}/ca.crt" 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=bottle-node-front-proxy-ca" \
	-keyout "${pki}/front-proxy-ca.key" -out "${pki}/front-proxy-ca.crt" 2>/dev/null
client='extendedKeyUsage=clientAuth'
cert apiserver "/CN=kube-apiserver" "subjectAltName=IP:${node_ip},IP:${service_ip},IP:127.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:localhost\nextendedKeyUsage=serverAuth"
cert kubelet-serving "/CN=${node}" "subjectAltName=IP:${node_ip},DNS:${node}\nextendedKeyUsage=serverAuth"
cert admin "/O=system:masters/CN=bottle-node-admin" "${client}"
cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "${client}"
cert kube-controller-manager "/CN=system:kube-controller-manager" "${client}"
cert kube-scheduler "/CN=system:kube-scheduler" "${client}"
cert kubelet "/O=system:nodes/CN=system:node:${node}" "${client}"
cert kube-proxy "/CN=system:kube-proxy" "${client}"
cert front-proxy-client "/CN=front-proxy-client" "${client}" front-proxy-ca
openssl genrsa -out "${pki}/sa.key" 2048 2>/dev/null
openssl rsa -in "${pki}/sa.key" -pubout -out "${pki}/sa.pub" 2>/dev/null
chmod 600 "${pki}"/*.key

kubeconfig() { # user (cert name) -> ${dir}/etc/<user>.kubeconfig
	local f="${dir}/etc/$1.kubeconfig"
	KUBECONFIG="${f}" "${kubectl}" config set-cluster node --server "${api_url}" --certificate-authority "${pki}/ca.crt" --embed-certs >/dev/null
	KUBECONFIG="${f}" "${kubectl}" config set-credentials "$1" --client-certificate "${pki}/$1.crt" --client-key "${pki}/$1.key" --embed-certs >/dev/null
	KUBECONFIG="${f}" "${kubectl}" config set-context node --cluster node --user "$1" >/dev/null
	KUBECONFIG="${f}" "${kubectl}" config use-context node >/dev/null
	chmod 600 "${f}"
}
for u in admin kube-controller-manager kube-scheduler kubelet kube-proxy; do kubeconfig "${u}"; done
k() { KUBECONFIG="${admin_kubeconfig}" "${kubectl}" "$@"; }

start() { # name, then argv: runs detached in its own process group
	local name="$1"
	shift
	setsid "$@" >"${dir}/logs/${name}.log" 2>&1 </dev/null &
	echo $! >"${dir}/pids/${name}.pid"
}
wait_for() { # what, pid name, command...
	local what="$1" name="$2"
	shift 2
	for _ in $(seq 1 240); do
		if "$@" >/dev/null 2>&1; then return 0; fi
		if ! kill -0 "$(cat "${dir}/pids/${name}.pid")" 2>/dev/null; then
			say "${name} exited before ${what}; its log:"
			tail -30 "${dir}/logs/${name}.log" >&2
			exit 1
		fi
		sleep 0.5
	done
	say "timed out waiting for ${what}; ${name}'s log:"
	tail -30 "${dir}/logs/${name}.log" >&2
	exit 1
}

# --- Network: the bridge the pods and the API server share.
ip link add "${bridge}" type bridge
created "bridge ${bridge}"
ip addr add "${node_ip}/${pod_prefix}" dev "${bridge}"
ip link set "${bridge}" up
# Nothing kube-proxy does not rewrite leaves for the service range.
ip route add blackhole "${service_cidr}"
created "route ${service_cidr}"
# A pod reaching another pod through a ClusterIP is routed back out the bridge.
sysctl -qw net.ipv4.ip_forward=1

# --- Control plane.
start etcd "${assets}/etcd" --name node --data-dir "${dir}/etcd" \
	--listen-client-urls "http://127.0.0.1:${etcd_port}" --advertise-client-urls "http://127.0.0.1:${etcd_port}" \
	--listen-peer-urls "http://127.0.0.1:$((etcd_port + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$((etcd_port + 1))" \
	--initial-cluster "node=http://127.0.0.1:$((etcd_port + 1))" --unsafe-no-fsync \
	--listen-metrics-urls "http://127.0.0.1:$((etcd_port + 2))"
start kube-apiserver "${assets}/kube-apiserver" \
	--etcd-servers "http://127.0.0.1:${etcd_port}" \
	--bind-address "${node_ip}" --advertise-address "${node_ip}" --secure-port "${api_port}" \
	--tls-cert-file "${pki}/apiserver.crt" --tls-private-key-file "${pki}/apiserver.key" \
	--client-ca-file "${pki}/ca.crt" \
	--authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
	--kubelet-client-certificate "${pki}/apiserver-kubelet-client.crt" --kubelet-client-key "${pki}/apiserver-kubelet-client.key" \
	--kubelet-certificate-authority "${pki}/ca.crt" --kubelet-preferred-address-types InternalIP \
	--service-account-issuer https://kubernetes.default.svc \
	--service-account-key-file "${pki}/sa.pub" --service-account-signing-key-file "${pki}/sa.key" \
	--service-cluster-ip-range "${service_cidr}" \
	--requestheader-client-ca-file "${pki}/front-proxy-ca.crt" \
	--requestheader-allowed-names front-proxy-client \
	--requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
	--requestheader-extra-headers-prefix X-Remote-Extra- \
	--proxy-client-cert-file "${pki}/front-proxy-client.crt" --proxy-client-key-file "${pki}/front-proxy-client.key" \
	--enable-aggregator-routing=true \
	--allow-privileged
wait_for "the API server's /readyz" kube-apiserver k get --raw /readyz

start kube-controller-manager "${node_bins}/kube-controller-manager" \
	--kubeconfig "${dir}/etc/kube-controller-manager.kubeconfig" \
	--authentication-kubeconfig "${dir}/etc/kube-controller-manager.kubeconfig" \
	--authorization-kubeconfig "${dir}/etc/kube-controller-manager.kubeconfig" \
	--bind-address 127.0.0.1 --secure-port "${kcm_port}" --cert-dir "${dir}/kcm-certs" \
	--leader-elect=false --use-service-account-credentials \
	--service-account-private-key-file "${pki}/sa.key" --root-ca-file "${pki}/ca.crt" \
	--cluster-signing-cert-file "${pki}/ca.crt" --cluster-signing-key-file "${pki}/ca.key" \
	--controllers '*'
start kube-scheduler "${assets}/kube-scheduler" --kubeconfig "${dir}/etc/kube-scheduler.kubeconfig" \
	--authentication-kubeconfig "${dir}/etc/kube-scheduler.kubeconfig" \
	--authorization-kubeconfig "${dir}/etc/kube-scheduler.kubeconfig" \
	--leader-elect=false --bind-address 127.0.0.1 --secure-port "${scheduler_port}" --cert-dir "${dir}/scheduler-certs"

# --- The node's mount namespace: `/` shared in it, as systemd makes it on a
# real node; the host's mounts and propagation are not touched. It lives as
# long as ${dir}/ns/mnt holds it (node-down.sh unmounts it).
mkdir -p "${dir}/ns"
mount --bind "${dir}/ns" "${dir}/ns"
mount --make-private "${dir}/ns"
created "mount ${dir}/ns"
touch "${dir}/ns/mnt"
# Private first: a mount the host shares (`ip netns add` makes /run/netns
# one) would otherwise stay in the host's peer group, and the node's netns
# mounts would appear on the host. Then shared, among the node's own mounts.
unshare --mount="${dir}/ns/mnt" --propagation private mount --make-rshared /

# --- containerd (Debian's), its own root, state and socket.
sock="${dir}/containerd/containerd.sock"
cat >"${dir}/etc/containerd.toml" <<TOML
version = 2
root = "${dir}/containerd/root"
state = "${dir}/containerd/state"
[grpc]
  address = "${sock}"
[ttrpc]
  address = "${sock}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${pause_image}"
  # root here may lack CAP_SYS_RESOURCE: runc cannot lower oom_score_adj.
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "${cni_bin}"
    conf_dir = "${dir}/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
TOML
cat >"${dir}/cni/net.d/10-bottle-node.conflist" <<JSON
{
  "cniVersion": "0.4.0",
  "name": "bottle-node",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "${bridge}",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "${dir}/cni/ipam",
        "ranges": [[{"subnet": "${pod_cidr}", "gateway": "${node_ip}"}]],
        "routes": [{"dst": "${service_cidr}"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON
start containerd nsenter --mount="${dir}/ns/mnt" -- containerd --config "${dir}/etc/containerd.toml"
ctr() { command ctr --address "${sock}" --namespace k8s.io "$@"; }
wait_for "containerd's socket" containerd ctr version

# --- Images no registry serves here: the pause image (hack/pause), under the
# sandbox image's name and the reservation Pods' registry.k8s.io/pause:3.10.
go run ./hack/image -pkg ./hack/pause -img "${pause_image}" -version node -out "${dir}/images/pause" >/dev/null
ctr images import --all-platforms "${dir}/images/pause/bottle-agent.tar" >/dev/null
ctr images tag --force "${pause_image}" registry.k8s.io/pause:3.10 >/dev/null

# --- D-Bus system bus with systemd (a user manager) on it, for the agent's
# --vm-launcher=systemd, unless this host has its own (hack/node-systemd.sh).
if [[ -S /run/dbus/system_bus_socket ]]; then
	say "using this host's D-Bus system bus at /run/dbus/system_bus_socket"
else
	mkdir -p /run/dbus
	created "path /run/dbus/system_bus_socket"
	echo "${node}-systemd" >"${dir}/systemd.cgroup"
	start systemd env XDG_RUNTIME_DIR="${dir}/systemd/runtime" XDG_CONFIG_HOME="${dir}/systemd/config" \
		DBUS_SESSION_BUS_ADDRESS=unix:path=/run/dbus/system_bus_socket \
		"${repo}/hack/node-systemd.sh" "${node}-systemd"
	wait_for "systemd on the bus" systemd busctl --address=unix:path=/run/dbus/system_bus_socket \
		get-property org.freedesktop.systemd1 /org/freedesktop/systemd1 org.freedesktop.systemd1.Manager Version
fi

# --- smolvm where the README puts it: the simulator, unless smolvm is there.
if [[ -x /opt/smolvm/bin/smolvm ]]; then
	say "using the smolvm at /opt/smolvm/bin/smolvm: $(/opt/smolvm/bin/smolvm --version 2>&1 | head -n1)"
else
	mkdir -p /opt/smolvm/bin
	go build -o /opt/smolvm/bin/smolvm ./cmd/smolvm-sim
	say "installed the smolvm SIMULATOR at /opt/smolvm/bin/smolvm (no VMs: bubblewrap sandboxes)"
fi

# --- kubelet, in the node's mount namespace.
cat >"${dir}/etc/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# cgroup v1 hosts: kubelet 1.35+ refuses them unless told.
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
address: ${node_ip}
port: ${kubelet_port}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $((kubelet_port + 1))
tlsCertFile: ${pki}/kubelet-serving.crt
tlsPrivateKeyFile: ${pki}/kubelet-serving.key
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: ${pki}/ca.crt
authorization:
  mode: Webhook
containerRuntimeEndpoint: unix://${sock}
imageServiceEndpoint: unix://${sock}
maxPods: 30
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%
  imagefs.available: 1%
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
resolvConf: /etc/resolv.conf
YAML
start kubelet nsenter --mount="${dir}/ns/mnt" -- "${node_bins}/kubelet" --config "${dir}/etc/kubelet.yaml" \
	--kubeconfig "${dir}/etc/kubelet.kubeconfig" --hostname-override "${node}" --node-ip "${node_ip}" \
	--root-dir "${dir}/kubelet" --cert-dir "${dir}/kubelet/pki"

# --- kube-proxy: the `kubernetes` ClusterIP (the agents' and the cluster
# controller's way to the API server). No conntrack sysctl is changed.
cat >"${dir}/etc/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: ${dir}/etc/kube-proxy.kubeconfig
mode: iptables
hostnameOverride: ${node}
bindAddress: ${node_ip}
clusterCIDR: ${pod_cidr}
metricsBindAddress: 127.0.0.1:$((kubelet_port + 2))
healthzBindAddress: 127.0.0.1:$((kubelet_port + 3))
nodePortAddresses: [${node_ip}/32]
iptables:
  localhostNodePorts: false
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
  udpTimeout: 0s
  udpStreamTimeout: 0s
YAML
start kube-proxy "${node_bins}/kube-proxy" --config "${dir}/etc/kube-proxy.yaml"

node_ready() { [[ "$(k get node "${node}" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" == True ]]; }
wait_for "node ${node} Ready" kubelet node_ready
wait_for "the default ServiceAccount" kube-controller-manager k get serviceaccount default -n default

ln -sf "${kubectl}" "${dir}/bin/kubectl"
say "node ${node} is Ready (kubeconfig ${admin_kubeconfig}; stop with hack/node-down.sh)"
echo "${admin_kubeconfig}"
