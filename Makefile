# Bottle controller. `make help` lists the targets.

# Tool versions, pinned. Tools are installed into ./bin.
CONTROLLER_TOOLS_VERSION ?= v0.23.0
GOLANGCI_LINT_VERSION ?= v2.15.0

LOCALBIN ?= $(shell pwd)/bin
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
GOLANGCI_LINT ?= $(LOCALBIN)/golangci-lint-$(GOLANGCI_LINT_VERSION)
KUBECTL ?= kubectl

# Release version and the agent image. VERSION defaults to the nearest tag
# (v0.0.0-dev before the first one).
VERSION ?= $(shell git describe --tags --match 'v*' --dirty 2>/dev/null || echo v0.0.0-dev)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)
IMG ?= ghcr.io/bot-bottle/bottle-agent:$(VERSION)
# Platform of `make image` (os/arch).
PLATFORM ?= linux/$(shell go env GOARCH)
CONTAINER_TOOL ?= docker

# Extra flags for `go test`, e.g. GOTEST_FLAGS='-run Lifecycle -v'.
GOTEST_FLAGS ?=

SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Display this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-15s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: controller-gen ## Generate the CRD and RBAC manifests from markers, and config/source-access from its namespaces.txt.
	$(CONTROLLER_GEN) rbac:roleName=bottle-manager-role crd paths="./api/...;./controllers/agent;./controllers/nodecheck;./internal/..." output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac
	$(CONTROLLER_GEN) rbac:roleName=bottle-cluster-role paths="./controllers/placement" output:rbac:artifacts:config=config/rbac/cluster
	go run ./hack/source-access config/source-access

.PHONY: generate
generate: controller-gen ## Generate DeepCopy methods.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./..."

.PHONY: fmt
fmt: ## Run gofmt on the code.
	gofmt -s -w $$(git ls-files '*.go' | grep -v '^hack/envtest-tools/')

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

.PHONY: lint
lint: golangci-lint ## Run golangci-lint.
	$(GOLANGCI_LINT) run ./...

.PHONY: tidy-check
tidy-check: ## Fail when go.mod or go.sum is not tidy.
	@if ! go mod tidy -diff; then echo "go.mod/go.sum are not tidy; run 'go mod tidy' and commit"; exit 1; fi

.PHONY: deps
deps: ## Install the system packages the tests need (bubblewrap, dbus-daemon).
	hack/ensure-deps.sh

.PHONY: envtest
envtest: ## Build (once) kube-apiserver, etcd and kubectl for the tests; prints KUBEBUILDER_ASSETS.
	hack/envtest-bins.sh

.PHONY: test
test: manifests generate fmt vet deps smolvm-sim ## Run every test against a real kube-apiserver + etcd and the smolvm simulator.
	assets="$$(hack/envtest-bins.sh | tail -n1)"; \
	hack/node-bins.sh kube-controller-manager >/dev/null && \
	KUBEBUILDER_ASSETS="$$assets" SMOLVM_SIM_BIN="$(LOCALBIN)/smolvm-sim" go test ./... $(GOTEST_FLAGS)

.PHONY: test-e2e-node
test-e2e-node: deps smolvm-sim ## As root: install the project as the README says on a real one-node cluster (hack/node-up.sh: kubelet, containerd, kube-proxy, systemd user manager) and check it end to end; the machine is left as found.
	hack/ensure-deps.sh node
	hack/envtest-bins.sh >/dev/null
	nice -n 10 hack/node-bins.sh >/dev/null
	E2E_NODE=1 go test ./test/node -count=1 -v -timeout 40m $(GOTEST_FLAGS)

.PHONY: test-unit
test-unit: ## Run the fast tests only: no kube-apiserver, no bwrap sandbox (go test -short).
	go test -short ./... $(GOTEST_FLAGS)

.PHONY: bench
bench: deps smolvm-sim ## Run the micro-benchmarks (go test -bench; the exec ones run bin/kubectl-bottle too).
	go build -o $(LOCALBIN)/kubectl-bottle ./cmd/kubectl-bottle
	assets="$$(hack/envtest-bins.sh | tail -n1)"; \
	KUBEBUILDER_ASSETS="$$assets" SMOLVM_SIM_BIN="$(LOCALBIN)/smolvm-sim" KUBECTL_BOTTLE_BIN="$(LOCALBIN)/kubectl-bottle" go test -run '^$$' -bench . -benchmem ./...

# Flags for test/bench-e2e, e.g. BENCH_E2E_FLAGS='-batch 20 -hand-batch 5'.
BENCH_E2E_FLAGS ?=

.PHONY: bench-e2e
bench-e2e: deps ## Benchmark the whole system on dev environments (hack/dev-up.sh) against the same work by hand; prints each figure next to its by-hand baseline (docs/benchmarks.md, ~10 min).
	go run ./test/bench-e2e $(BENCH_E2E_FLAGS)

.PHONY: smolvm-sim
smolvm-sim: ## Build the smolvm simulator into ./bin once for every test package (SMOLVM_SIM_BIN).
	go build -o $(LOCALBIN)/smolvm-sim ./cmd/smolvm-sim

.PHONY: verify
verify: manifests generate tidy-check lint ## Fail when generated files are stale, go.mod is not tidy or the linters object.
	@if ! git diff --quiet -- config/crd config/rbac config/source-access api; then \
		echo "generated files are stale; run 'make manifests generate' and commit:"; \
		git diff --stat -- config/crd config/rbac config/source-access api; exit 1; fi
	@if [ -n "$$(git status --porcelain -- config/crd config/rbac config/source-access api)" ]; then \
		echo "untracked generated files; run 'make manifests generate' and commit:"; \
		git status --porcelain -- config/crd config/rbac config/source-access api; exit 1; fi
	@echo "generated files are up to date"

##@ Build

.PHONY: build
build: manifests generate fmt vet ## Build the manager, the smolvm simulator and the kubectl plugin into ./bin.
	go build -o bin/manager ./cmd/manager
	go build -o bin/smolvm-sim ./cmd/smolvm-sim
	go build -o bin/kubectl-bottle ./cmd/kubectl-bottle

.PHONY: image
image: ## Build the agent image without a container engine: dist/image/bottle-agent.tar (docker/podman load) and dist/image/oci (OCI layout).
	go run ./hack/image -img $(IMG) -version $(VERSION) -revision "$(REVISION)" -platform $(PLATFORM) -out dist/image

.PHONY: docker-build
docker-build: ## Build the agent image with a container engine (CONTAINER_TOOL, default docker).
	$(CONTAINER_TOOL) build --build-arg VERSION=$(VERSION) --build-arg REVISION=$(REVISION) -t $(IMG) .

.PHONY: docker-push
docker-push: ## Push the agent image built by docker-build.
	$(CONTAINER_TOOL) push $(IMG)

.PHONY: build-installer
build-installer: manifests ## Write dist/install.yaml (CRD, RBAC, agent DaemonSet, exec API; agent image IMG) and dist/install-cert-manager.yaml (the same with cert-manager certificates).
	go run ./hack/build-installer -dir config/default -img $(IMG) -out dist/install.yaml
	go run ./hack/build-installer -dir config/certmanager -img $(IMG) -out dist/install-cert-manager.yaml

.PHONY: release
release: manifests ## Build the release artifacts into dist/release: kubectl-bottle archives, manager binaries, checksums, krew manifest, install.yaml (VERSION must be a vX.Y.Z tag).
	go run ./hack/release -version $(VERSION) -revision "$(REVISION)" -img $(IMG) -out dist/release

.PHONY: release-dry-run
release-dry-run: ## Build every release artifact into a temporary directory (or RELEASE_DIR), offline, and check it; publishes nothing. RELEASE_PLATFORMS=os/arch,… builds a subset.
	go run ./hack/release -dry-run -version $(VERSION) -revision "$(REVISION)" -img $(IMG) $(if $(RELEASE_DIR),-out $(RELEASE_DIR)) $(if $(RELEASE_PLATFORMS),-platforms $(RELEASE_PLATFORMS))

.PHONY: run
run: manifests generate fmt vet ## Run the manager against the current kubeconfig (NODE_NAME must be set).
	go run ./cmd/manager --node-name="$${NODE_NAME:?set NODE_NAME to this agent's node}"

.PHONY: dev
dev: ## Start a local control plane, the agent on the simulator (or real smolvm) and the sample Bottle.
	hack/dev-up.sh

.PHONY: dev-down
dev-down: ## Stop everything `make dev` started.
	hack/dev-down.sh

##@ Deployment

.PHONY: install
install: manifests ## Install the CRDs into the cluster of the current kubeconfig.
	$(KUBECTL) apply --server-side -k config/crd

.PHONY: uninstall
uninstall: manifests ## Remove the CRDs (and every Bottle) from the cluster.
	$(KUBECTL) delete --ignore-not-found -k config/crd

.PHONY: deploy
deploy: manifests ## Deploy the CRD, RBAC, the agent DaemonSet (image IMG) and the exec API into the current kubeconfig's cluster.
	go run ./hack/build-installer -dir config/default -img $(IMG) -out - | $(KUBECTL) apply --server-side -f -

.PHONY: undeploy
undeploy: ## Remove what `make deploy` created (and every Bottle).
	go run ./hack/build-installer -dir config/default -out - | $(KUBECTL) delete --ignore-not-found -f -

##@ Tools

.PHONY: controller-gen
controller-gen: $(CONTROLLER_GEN) ## Install controller-gen into ./bin.
$(CONTROLLER_GEN):
	mkdir -p $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)
	mv $(LOCALBIN)/controller-gen $@

.PHONY: golangci-lint
golangci-lint: $(GOLANGCI_LINT) ## Install golangci-lint into ./bin.
$(GOLANGCI_LINT):
	mkdir -p $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	mv $(LOCALBIN)/golangci-lint $@
