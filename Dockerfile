# The agent image, for people with a container engine:
#   make docker-build docker-push IMG=registry.example/bottle-agent:v0.2.0
# `make image` builds the same image (static /manager on an empty base, same
# entrypoint, user and labels) without any engine, with go-containerregistry.
#
# smolvm and libkrun are NOT in the image: the agent uses the node's own
# install, mounted read-only from a hostPath (docs/deploy.md).

FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS=linux
ARG TARGETARCH
ARG VERSION=dev
ARG REVISION=
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY api/ api/
COPY cmd/ cmd/
COPY controllers/ controllers/
COPY internal/ internal/
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath \
      -ldflags "-s -w -X github.com/bot-bottle/bottle-controller/internal/version.Version=${VERSION} -X github.com/bot-bottle/bottle-controller/internal/version.Revision=${REVISION}" \
      -o /out/manager ./cmd/manager

# distroless/static: no shell, no package manager, CA certificates and
# /etc/passwd only. The agent needs root on the node (the DaemonSet sets
# runAsUser: 0); the image itself defaults to the nonroot user.
FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
ARG REVISION=
LABEL org.opencontainers.image.title="bottle-agent" \
      org.opencontainers.image.description="Node agent of the Bottle controller: runs smolvm microVMs for Bottles" \
      org.opencontainers.image.source="https://github.com/bot-bottle/bottle-controller" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
COPY --from=build /out/manager /manager
COPY LICENSE /LICENSE
USER 65532:65532
ENTRYPOINT ["/manager"]
