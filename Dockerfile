# syntax=docker/dockerfile:1
# The tripstream image: built in the Rust image, run in Debian slim as a non-root user.
#
#   docker build -t tripstream .
#   docker run --rm -p 8000:8000 tripstream               # `tripstream serve`, configured by the environment
#   docker run --rm tripstream plan Seoul --from 2025-11-10 --to 2025-11-12
#
# The binary carries everything it serves: the bundled destinations, the prompts, the run log's migrations
# and the web page are compiled into it. At run time it reads only its environment, the system's CA
# certificates (providers and weather services are reached over TLS), PROMPTS_DIR when that is set, and
# the SQLite run log in its working directory when DATABASE_URL is not set.
#
# It needs BuildKit (Docker's default builder, or podman/buildah): the build stage uses cache mounts, and
# only the stages the target needs are built.
#
# Build arguments:
#   RUST_IMAGE    the build stage's image.
#   RUNTIME_BASE  the runtime stage's base: a Debian bookworm (glibc 2.36). deploy/test builds on one made
#                 with debootstrap, as no registry is reachable from the project's machines.
#   BINARY_FROM   `build` (default) compiles the binary in the build stage; `prebuilt` takes the file named
#                 `tripstream` from the build context instead:
#                   mkdir ctx && cp target/release/tripstream ctx/ &&
#                   docker build --build-arg BINARY_FROM=prebuilt -f Dockerfile ctx
ARG RUST_IMAGE=docker.io/library/rust:1.95-slim-bookworm
ARG RUNTIME_BASE=docker.io/library/debian:bookworm-slim
ARG BINARY_FROM=build

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
# The registry and the target directory are cache mounts: a rebuild compiles only what changed.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p tripstream \
    && install -D -m 0755 target/release/tripstream /out/tripstream

FROM scratch AS prebuilt
COPY tripstream /out/tripstream

# The binary, from the stage BINARY_FROM names.
FROM ${BINARY_FROM} AS binary

FROM ${RUNTIME_BASE} AS runtime
# CA certificates for TLS to the providers (unpinned: the security updates are the point), and the user the
# server runs as, with a writable home for the default SQLite run log.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 tripstream \
    && useradd --system --uid 10001 --gid tripstream --home-dir /var/lib/tripstream --create-home \
       --shell /usr/sbin/nologin tripstream
COPY --from=binary /out/tripstream /usr/local/bin/tripstream
USER 10001:10001
WORKDIR /var/lib/tripstream
ENV HOST=0.0.0.0 \
    PORT=8000
EXPOSE 8000
# Ready: serving, not draining, and reaching the configured Redis and PostgreSQL (GET /health/ready).
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 CMD ["tripstream", "healthcheck"]
# SIGTERM (the default stop signal) lets streams finish for SHUTDOWN_GRACE_SECS (30 s) and flushes the run
# log: give the container longer than that to stop (`docker stop -t 45`, compose's stop_grace_period).
ENTRYPOINT ["tripstream"]
CMD ["serve"]
