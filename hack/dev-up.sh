#!/usr/bin/env bash
# `make dev`: a local control plane (etcd, kube-apiserver and kube-scheduler
# on loopback), the cluster controller (reservation Pods, placement), the
# Bottle agent for one node (real smolvm when /dev/kvm works, else the
# simulator), and the sample Bottle, placed by kube-scheduler and provisioned
# to Ready.
#
#   hack/dev-up.sh               stay in the foreground tailing the agent's log; Ctrl-C stops everything
#   hack/dev-up.sh --background  return once everything is up (for scripts); stop with hack/dev-down.sh
#
# Environment: DEV_DIR (default .dev), DEV_APISERVER_PORT (16443),
# DEV_ETCD_PORT (12379), DEV_NODE (dev-node), DEV_NODE_CPUS (8) and
# DEV_NODE_MEMORY (16Gi): what the node offers the scheduler, DEV_SAMPLE=0 to
# skip the sample, DEV_RESYNC_PERIOD (30s): the agent's --resync-period. The
# agent inherits this environment, so SMOLVM_SIM_* knobs (docs/smolvm.md)
# reach the simulator.
#
# Where this machine can run a kubelet (root, cgroups: hack/node-up.sh
# --check), `make dev` runs a real node instead (hack/dev-node-up.sh): the
# project installed as the README says, its agent and cluster controller as
# Pods. DEV_KUBELET=0 keeps the processes below; DEV_KUBELET=1 fails where no
# kubelet can run.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${repo}"
background=false
for arg in "$@"; do
	case "${arg}" in
	--background) background=true ;;
	-h | --help) sed -n '2,22p' "${BASH_SOURCE[0]}"; exit 0 ;;
	*) echo "dev-up: unknown argument ${arg}" >&2; exit 2 ;;
	esac
done

dev="${DEV_DIR:-${repo}/.dev}"
api_port="${DEV_APISERVER_PORT:-16443}"
etcd_port="${DEV_ETCD_PORT:-12379}"
node="${DEV_NODE:-dev-node}"
pki="${dev}/pki"
logs="${dev}/logs"
pids="${dev}/pids"
say() { printf 'dev-up: %s\n' "$*" >&2; }

if { [[ -d "${pids}" ]] && compgen -G "${pids}/*.pid" >/dev/null; } || [[ -e "${dev}/node/created" ]]; then
	say "a previous dev environment is still recorded in ${pids}; stopping it first"
	DEV_DIR="${dev}" "${repo}/hack/dev-down.sh"
fi

case "${DEV_KUBELET:-auto}" in
0) ;;
*)
	if why="$(hack/node-up.sh --check 2>&1)"; then
		exec env DEV_DIR="${dev}" hack/dev-node-up.sh "$@"
	fi
	if [[ "${DEV_KUBELET:-auto}" == 1 ]]; then
		say "DEV_KUBELET=1 but ${why#node-up: }"
		exit 1
	fi
	say "${why#node-up: }; the agent and the cluster controller run as processes on a Node stated by hand"
	;;
esac
mkdir -p "${dev}/bin" "${pki}" "${logs}" "${pids}"

hack/ensure-deps.sh
say "building the control plane binaries (first run: ~9 minutes, cached afterwards)"
assets="$(hack/envtest-bins.sh | tail -n1)"
kubectl="${assets}/kubectl"
say "building kube-controller-manager (first run: 1-5 minutes after the control plane, cached afterwards)"
node_bins="$(hack/node-bins.sh kube-controller-manager | tail -n1)"

say "building bin/manager, the smolvm simulator and kubectl-bottle"
go build -o bin/manager ./cmd/manager
go build -o bin/smolvm-sim ./cmd/smolvm-sim
if [[ -d cmd/kubectl-bottle ]]; then go build -o bin/kubectl-bottle ./cmd/kubectl-bottle; fi

# --- PKI: one CA for serving and clients, one for the aggregation front proxy.
gen_pki() {
	[[ -f "${pki}/done" ]] && return
	local o="openssl"
	${o} req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=bottle-dev-ca" \
		-keyout "${pki}/ca.key" -out "${pki}/ca.crt" 2>/dev/null
	${o} req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
		-keyout "${pki}/apiserver.key" -out "${pki}/apiserver.csr" 2>/dev/null
	printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n' >"${pki}/apiserver.ext"
	${o} x509 -req -in "${pki}/apiserver.csr" -CA "${pki}/ca.crt" -CAkey "${pki}/ca.key" -CAcreateserial \
		-days 365 -extfile "${pki}/apiserver.ext" -out "${pki}/apiserver.crt" 2>/dev/null
	${o} genrsa -out "${pki}/sa.key" 2048 2>/dev/null
	${o} rsa -in "${pki}/sa.key" -pubout -out "${pki}/sa.pub" 2>/dev/null
	${o} req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=bottle-dev-front-proxy-ca" \
		-keyout "${pki}/front-proxy-ca.key" -out "${pki}/front-proxy-ca.crt" 2>/dev/null
	${o} req -newkey rsa:2048 -nodes -subj "/CN=front-proxy-client" \
		-keyout "${pki}/front-proxy-client.key" -out "${pki}/front-proxy-client.csr" 2>/dev/null
	printf 'extendedKeyUsage=clientAuth\n' >"${pki}/client.ext"
	${o} x509 -req -in "${pki}/front-proxy-client.csr" -CA "${pki}/front-proxy-ca.crt" -CAkey "${pki}/front-proxy-ca.key" \
		-CAcreateserial -days 365 -extfile "${pki}/client.ext" -out "${pki}/front-proxy-client.crt" 2>/dev/null
	chmod 600 "${pki}"/*.key
	touch "${pki}/done"
}
gen_pki
# The exec API's own CA, serving and agent-client certificates.
exec_certs="${dev}/exec-certs"
if [[ ! -f "${exec_certs}/serving.crt" ]]; then
	go run ./cmd/gencerts -out "${exec_certs}" >/dev/null
fi
exec_port="$((api_port + 102))"

# --- Users: static tokens. dev-admin is cluster-admin; dev-viewer may only
# read Bottles; dev-agent is the node agent with the generated least-privilege role.
tokens="${pki}/tokens.csv"
if [[ ! -f "${tokens}" ]]; then
	tok() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
	{
		echo "$(tok),dev-admin,dev-admin,system:masters"
		echo "$(tok),dev-viewer,dev-viewer"
		echo "$(tok),dev-agent,dev-agent"
		echo "$(tok),dev-cluster,dev-cluster"
		echo "$(tok),system:kube-controller-manager,system:kube-controller-manager"
	} >"${tokens}"
	chmod 600 "${tokens}"
fi
token_of() { awk -F, -v u="$1" '$2 == u { print $1 }' "${tokens}"; }
# A tokens file of an earlier version of this script lacks the newer users.
if [[ -z "$(token_of system:kube-controller-manager)" ]]; then
	echo "$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'),system:kube-controller-manager,system:kube-controller-manager" >>"${tokens}"
fi

start() { # name, then argv: runs detached, pid in ${pids}/name.pid, log in ${logs}/name.log
	local name="$1"
	shift
	setsid "$@" >"${logs}/${name}.log" 2>&1 </dev/null &
	echo $! >"${pids}/${name}.pid"
}

say "starting etcd on 127.0.0.1:${etcd_port}"
start etcd "${assets}/etcd" --name dev --data-dir "${dev}/etcd" \
	--listen-client-urls "http://127.0.0.1:${etcd_port}" --advertise-client-urls "http://127.0.0.1:${etcd_port}" \
	--listen-peer-urls "http://127.0.0.1:$((etcd_port + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$((etcd_port + 1))" \
	--initial-cluster "dev=http://127.0.0.1:$((etcd_port + 1))" --unsafe-no-fsync

say "starting kube-apiserver on https://127.0.0.1:${api_port}"
start kube-apiserver "${assets}/kube-apiserver" \
	--etcd-servers "http://127.0.0.1:${etcd_port}" \
	--bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "${api_port}" \
	--tls-cert-file "${pki}/apiserver.crt" --tls-private-key-file "${pki}/apiserver.key" \
	--client-ca-file "${pki}/ca.crt" \
	--token-auth-file "${tokens}" \
	--authorization-mode RBAC \
	--service-account-issuer https://kubernetes.default.svc \
	--service-account-key-file "${pki}/sa.pub" --service-account-signing-key-file "${pki}/sa.key" \
	--service-cluster-ip-range 10.96.0.0/24 \
	--requestheader-client-ca-file "${pki}/front-proxy-ca.crt" \
	--requestheader-allowed-names front-proxy-client \
	--requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
	--requestheader-extra-headers-prefix X-Remote-Extra- \
	--proxy-client-cert-file "${pki}/front-proxy-client.crt" --proxy-client-key-file "${pki}/front-proxy-client.key" \
	--enable-aggregator-routing=false \
	--endpoint-reconciler-type none \
	--allow-privileged

ln -sf "${kubectl}" "${dev}/bin/kubectl"
if [[ -x bin/kubectl-bottle ]]; then
	ln -sf "${repo}/bin/kubectl-bottle" "${dev}/bin/kubectl-bottle"
	# `kubectl bottle <TAB>`: kubectl runs kubectl_complete-bottle from PATH.
	ln -sf "${repo}/cmd/kubectl-bottle/kubectl_complete-bottle" "${dev}/bin/kubectl_complete-bottle"
fi

# --- kubeconfig: a context per user, admin current.
kc="${dev}/kubeconfig"
kcfg() { KUBECONFIG="${kc}" "${kubectl}" config "$@" >/dev/null; }
rm -f "${kc}"
kcfg set-cluster dev --server "https://127.0.0.1:${api_port}" --certificate-authority "${pki}/ca.crt" --embed-certs
for u in dev-admin dev-viewer dev-agent dev-cluster system:kube-controller-manager; do
	kcfg set-credentials "${u}" --token "$(token_of "${u}")"
	kcfg set-context "${u}" --cluster dev --user "${u}" --namespace default
done
kcfg use-context dev-admin
chmod 600 "${kc}"
k() { KUBECONFIG="${kc}" "${kubectl}" "$@"; }

for _ in $(seq 1 120); do
	if k get --raw /readyz >/dev/null 2>&1; then break; fi
	if ! kill -0 "$(cat "${pids}/kube-apiserver.pid")" 2>/dev/null; then
		say "kube-apiserver exited; its log:"; tail -20 "${logs}/kube-apiserver.log" >&2; exit 1
	fi
	sleep 0.5
done
k get --raw /readyz >/dev/null

say "installing the CRD and RBAC"
k apply --server-side -f config/crd/bases >/dev/null
k wait --for condition=Established --timeout 60s crd/bottles.agents.bot-bottle.dev >/dev/null
k create namespace bottle-system --dry-run=client -o yaml | k apply --server-side -f - >/dev/null
# role.yaml holds the agent's ClusterRole and its namespaced Role (the node
# Leases) in bottle-system.
k apply --server-side -f config/rbac/role.yaml -f config/rbac/bottle_viewer_role.yaml -f config/rbac/bottle_editor_role.yaml >/dev/null
k create clusterrolebinding dev-agent --clusterrole bottle-manager-role --user dev-agent --dry-run=client -o yaml | k apply --server-side -f - >/dev/null
# Sources (ConfigMaps, Secrets) only in the sample's namespace, as
# config/source-access grants them per listed namespace.
k apply --server-side -f config/rbac/source_reader_role.yaml >/dev/null
k create rolebinding dev-agent-source-reader -n default --clusterrole bottle-source-reader --user dev-agent --dry-run=client -o yaml | k apply --server-side -f - >/dev/null
k create rolebinding dev-agent --role bottle-manager-role --user dev-agent -n bottle-system --dry-run=client -o yaml | k apply --server-side -f - >/dev/null
# The cluster controller's generated role: Bottles, reservation Pods, Node
# labels, and the agents' Leases in bottle-system.
k apply --server-side -f config/rbac/cluster/role.yaml >/dev/null
k create clusterrolebinding dev-cluster --clusterrole bottle-cluster-role --user dev-cluster --dry-run=client -o yaml | k apply --server-side -f - >/dev/null
k create rolebinding dev-cluster --role bottle-cluster-role --user dev-cluster -n bottle-system --dry-run=client -o yaml | k apply --server-side -f - >/dev/null
k create clusterrolebinding dev-viewer --clusterrole bottle-viewer-role --user dev-viewer --dry-run=client -o yaml | k apply --server-side -f - >/dev/null
# The exec API (kubectl bottle exec/attach): the agent serves it on loopback,
# reached through an ExternalName Service; the agent user may delegate
# authentication and authorization checks to the API server.
k apply --server-side -f config/apiservice/user_roles.yaml >/dev/null
sed -e 's/- kind: ServiceAccount/- kind: User\n  apiGroup: rbac.authorization.k8s.io/' -e '/namespace: bottle-system/d' -e 's/name: bottle-agent/name: dev-agent/' \
	config/apiservice/auth_delegator.yaml | k apply --server-side -f - >/dev/null
k apply --server-side -f - >/dev/null <<YAML
apiVersion: v1
kind: Namespace
metadata:
  name: bottle-system
---
apiVersion: v1
kind: Service
metadata:
  name: bottle-exec
  namespace: bottle-system
spec:
  type: ExternalName
  externalName: localhost
  ports:
  - name: exec
    port: ${exec_port}
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata:
  name: v1alpha1.subresources.agents.bot-bottle.dev
spec:
  group: subresources.agents.bot-bottle.dev
  version: v1alpha1
  groupPriorityMinimum: 1000
  versionPriority: 15
  service:
    name: bottle-exec
    namespace: bottle-system
    port: ${exec_port}
  caBundle: $(base64 -w0 "${exec_certs}/exec-ca.crt")
YAML
k apply --server-side -f - >/dev/null <<YAML
apiVersion: v1
kind: Node
metadata:
  name: ${node}
  labels:
    bot-bottle.dev/kvm: "true"
YAML
# No kubelet: the Node's capacity is stated here, and the not-ready taint
# the API server puts on a new Node (lifted by the node lifecycle
# controller in a cluster) is removed by hand.
node_cpus="${DEV_NODE_CPUS:-8}"
node_memory="${DEV_NODE_MEMORY:-16Gi}"
k taint node "${node}" node.kubernetes.io/not-ready:NoSchedule- >/dev/null 2>&1 || true
k patch node "${node}" --subresource status --type merge -p "{\"status\":{\"capacity\":{\"cpu\":\"${node_cpus}\",\"memory\":\"${node_memory}\",\"pods\":\"110\"},\"allocatable\":{\"cpu\":\"${node_cpus}\",\"memory\":\"${node_memory}\",\"pods\":\"110\"},\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\",\"reason\":\"DevNode\",\"message\":\"stated by hack/dev-up.sh\"}]}}" >/dev/null

# --- kube-controller-manager: every namespace's default ServiceAccount (which
# every Pod, the reservation Pods too, is admitted with), garbage collection,
# namespace deletion. Each controller runs with its own ServiceAccount's
# credentials, as kubeadm sets it up. No kubelet heartbeats the dev node, so
# the node lifecycle controller (which would taint it unreachable and evict
# its reservation Pods) does not run.
kc_kcm="${dev}/kubeconfig-kube-controller-manager"
KUBECONFIG="${kc}" "${kubectl}" config view --minify --flatten --context system:kube-controller-manager >"${kc_kcm}"
chmod 600 "${kc_kcm}"
say "starting kube-controller-manager"
start kube-controller-manager "${node_bins}/kube-controller-manager" --kubeconfig "${kc_kcm}" \
	--authentication-kubeconfig "${kc_kcm}" --authorization-kubeconfig "${kc_kcm}" \
	--bind-address 127.0.0.1 --secure-port "$((api_port + 107))" --cert-dir "${dev}/kcm-certs" \
	--leader-elect=false --use-service-account-credentials \
	--service-account-private-key-file "${pki}/sa.key" --root-ca-file "${pki}/ca.crt" \
	--controllers '*,-node-lifecycle-controller'
for _ in $(seq 1 120); do
	if k get serviceaccount default -n default >/dev/null 2>&1; then break; fi
	if ! kill -0 "$(cat "${pids}/kube-controller-manager.pid")" 2>/dev/null; then
		say "kube-controller-manager exited; its log:"; tail -20 "${logs}/kube-controller-manager.log" >&2; exit 1
	fi
	sleep 0.5
done
k get serviceaccount default -n default >/dev/null

# --- kube-scheduler places the reservation Pods (the cluster controller's).
sched_port="$((api_port + 104))"
cat >"${dev}/kube-scheduler.yaml" <<YAML
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: ${kc}
leaderElection:
  leaderElect: false
YAML
say "starting kube-scheduler"
start kube-scheduler "${assets}/kube-scheduler" --config "${dev}/kube-scheduler.yaml" \
	--bind-address 127.0.0.1 --secure-port "${sched_port}" --cert-dir "${dev}/scheduler-certs"

# --- The cluster controller (manager --mode=cluster), as user dev-cluster.
kc_cluster="${dev}/kubeconfig-cluster"
KUBECONFIG="${kc}" "${kubectl}" config view --minify --flatten --context dev-cluster >"${kc_cluster}"
chmod 600 "${kc_cluster}"
say "starting the cluster controller"
start cluster env KUBECONFIG="${kc_cluster}" "${repo}/bin/manager" --mode=cluster --leader-elect=false \
	--lease-namespace bottle-system --pause-image registry.k8s.io/pause:3.10 \
	--metrics-bind-address "127.0.0.1:$((api_port + 105))" --health-probe-bind-address "127.0.0.1:$((api_port + 106))"

# --- The agent: real smolvm when it can boot VMs here, else the simulator.
if command -v smolvm >/dev/null 2>&1 && [[ -r /dev/kvm && -w /dev/kvm ]]; then
	smolvm="$(command -v smolvm)"
	say "agent uses the REAL smolvm at ${smolvm} (/dev/kvm is usable)"
else
	smolvm="${dev}/bin/smolvm"
	ln -sf "${repo}/bin/smolvm-sim" "${smolvm}"
	say "agent uses the smolvm SIMULATOR at ${smolvm} (no usable /dev/kvm or no smolvm on PATH): commands really run in a bubblewrap sandbox, not a VM"
fi
kc_agent="${dev}/kubeconfig-agent"
KUBECONFIG="${kc}" "${kubectl}" config view --minify --flatten --context dev-agent >"${kc_agent}"
chmod 600 "${kc_agent}"
start agent env KUBECONFIG="${kc_agent}" "${repo}/bin/manager" \
	--node-name "${node}" --smolvm-path "${smolvm}" --smolvm-data-dir "${dev}/smolvm" \
	--metrics-bind-address "127.0.0.1:$((api_port + 100))" --health-probe-bind-address "127.0.0.1:$((api_port + 101))" \
	--resync-period "${DEV_RESYNC_PERIOD:-30s}" --lease-namespace bottle-system \
	--exec-bind-address "127.0.0.1:${exec_port}" --exec-cert-dir "${exec_certs}" \
	--step-log-dir "${dev}/step-logs"
for _ in $(seq 1 60); do
	if curl -fsS "http://127.0.0.1:$((api_port + 101))/readyz" >/dev/null 2>&1; then break; fi
	if ! kill -0 "$(cat "${pids}/agent.pid")" 2>/dev/null; then
		say "the agent exited; its log:"; tail -20 "${logs}/agent.log" >&2; exit 1
	fi
	sleep 0.5
done

k wait --for condition=Available --timeout 60s apiservice/v1alpha1.subresources.agents.bot-bottle.dev >/dev/null

if [[ "${DEV_SAMPLE:-1}" != 0 ]]; then
	say "applying config/samples (Bottle reviewer; kube-scheduler picks its node)"
	k apply --server-side -f config/samples/agents_v1alpha1_bottle.yaml >/dev/null
	last=""
	deadline=$((SECONDS + 300))
	while :; do
		phase="$(k get bottle reviewer -o jsonpath='{.status.phase}' 2>/dev/null || true)"
		if [[ "${phase}" != "${last}" ]]; then
			say "bottle/reviewer phase: ${phase:-<none yet>}"
			last="${phase}"
		fi
		[[ "${phase}" == Ready ]] && break
		if [[ "${phase}" == Failed ]] || ((SECONDS > deadline)); then
			say "the sample did not become Ready:"
			k get bottle reviewer -o yaml >&2
			exit 1
		fi
		sleep 0.5
	done
	echo
	k get bottles
	echo
	k get bottle reviewer -o go-template='{{range .status.execResults}}--- step {{.name}} (as {{.user}}): exit {{.exitCode}}
{{if .stdout}}stdout:
{{.stdout}}{{end}}{{if .stderr}}stderr:
{{.stderr}}{{end}}{{end}}'
	echo
fi

cat <<MSG

The dev cluster is up. Go on with kubectl (${dev}/bin has kubectl and kubectl-bottle):

  export KUBECONFIG=${kc} PATH=${dev}/bin:\$PATH
  kubectl get bottles                       # as dev-admin (cluster-admin)
  kubectl --context dev-viewer get bottles  # read-only user
  kubectl bottle exec reviewer -- id        # a command in the VM, through the API server
  kubectl bottle exec -it reviewer -- bash  # a shell
  kubectl bottle --context dev-viewer exec reviewer -- id   # Forbidden: read-only user

Stop everything with: hack/dev-down.sh
MSG

if ${background}; then
	exit 0
fi
trap 'echo; say "stopping"; DEV_DIR="${dev}" "${repo}/hack/dev-down.sh"; exit 0' INT TERM
say "tailing the agent's log (Ctrl-C stops everything)"
tail -n +1 -f "${logs}/agent.log" &
wait $!
