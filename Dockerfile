# syntax=docker/dockerfile:1
#
# One image per program. CMD picks which one (default ingest-worker):
#
#   docker build -t campaign-ingest/ingest-worker .
#   docker build --build-arg CMD=ingestctl    -t campaign-ingest/ingestctl .
#   docker build --build-arg CMD=campaign-sim -t campaign-ingest/campaign-sim .
#
# VERSION is stamped into main.version (shown by -version and in
# campaign_ingest_build_info). The result is a static binary on distroless,
# running as uid/gid 65532 (nonroot), with no shell.

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
ARG TARGETOS
ARG TARGETARCH
ARG CMD=ingest-worker
ARG VERSION=dev
WORKDIR /src
# Dependencies first, so source edits do not invalidate the module layer.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    test -d "./cmd/${CMD}" || { echo "unknown CMD=${CMD}: no ./cmd/${CMD}" >&2; exit 1; } && \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
        -o /out/app "./cmd/${CMD}"

FROM gcr.io/distroless/static-debian12:nonroot
ARG CMD=ingest-worker
ARG VERSION=dev
LABEL org.opencontainers.image.title="${CMD}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="github.com/acme/campaign-ingest"
COPY --from=build /out/app /usr/local/bin/app
# The home directory is owned by nonroot: an embedded NATS server (no
# INGEST_NATS_URL) keeps its ./data here. Mount a volume there to keep it.
WORKDIR /home/nonroot
USER 65532:65532
# ingest-worker serves /metrics, /healthz and /readyz on 8080;
# campaign-sim listens on 8090 when started with -addr :8090.
EXPOSE 8080 8090
ENTRYPOINT ["/usr/local/bin/app"]
