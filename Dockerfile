# syntax=docker/dockerfile:1

# graphrelay's container image: a static binary on distroless, run as nonroot.
#
#   docker build --build-arg VERSION="$(git describe --tags --always)" -t graphrelay .
#   docker compose up -d                        # see compose.yaml and docs/deploy.md
#
# CI builds the same image without a container daemon (packaging/oci, run by
# .ci/package.sh into dist/packages/graphrelay-oci-ARCH.tar for "docker load");
# its test keeps the ports, health check, user, entrypoint and volume below
# in step with it. The binary is built by .ci/build.sh, the one go build
# command line that CI also runs, so an image and a release binary of the same source and Go
# version are built alike. Multi-arch: docker buildx build --platform
# linux/amd64,linux/arm64 . (the build stage cross-compiles natively).

FROM --platform=$BUILDPLATFORM golang:1.26 AS build
WORKDIR /src
# Modules first: a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG TARGETARCH=amd64
RUN VERSION="$VERSION" sh .ci/build.sh linux "$TARGETARCH" /out && mkdir -p /out/spool

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/graphrelay /graphrelay
COPY packaging/container.yaml /etc/graphrelay/graphrelay.yaml
# The spool exists in the image owned by nonroot (65532): a new named volume
# is initialised from it, owner included, so the daemon can write to it.
COPY --from=build --chown=65532:65532 /out/spool /var/spool/graphrelay
VOLUME /var/spool/graphrelay
# Every subcommand reads this when --config is not given, so that
# "docker exec <container> /graphrelay queue list" (and health, check,
# sendmail) find the same configuration as serve.
ENV GRAPHRELAY_CONFIG=/etc/graphrelay/graphrelay.yaml
# SMTP listens on unprivileged ports inside (packaging/container.yaml): a
# nonroot process cannot bind 25 on runtimes that keep the kernel default
# ip_unprivileged_port_start. Publish them as 25, 587 and 465:
#   docker run -p 25:2525 -p 587:2587 -p 465:2465 -p 127.0.0.1:8025:8025 graphrelay
# 2587 and 2465 serve only when your configuration adds TLS listeners there.
# 8025 is the admin listener: /metrics, /healthz, /readyz.
EXPOSE 2525 2587 2465 8025
USER nonroot
# "graphrelay health" exits 0 when http://127.0.0.1:8025/readyz says ready:
# a token was obtained or can be, and the spool is writable.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["/graphrelay", "health"]
ENTRYPOINT ["/graphrelay"]
CMD ["serve", "--config", "/etc/graphrelay/graphrelay.yaml"]
