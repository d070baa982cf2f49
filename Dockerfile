# One image holds every binary of the workspace (orders, orders-worker, users, load, and
# check, the workshop's exercise checks); compose builds it once and picks one with
# `command:` or `entrypoint:`. Build times are in docs/compose.md ("Before the workshop").
#
# BuildKit's cache mounts keep cargo's downloaded crates and its target folder between
# builds, outside the image: a cold build compiles the dependencies once, and after an edit
# cargo recompiles only the crates that changed (ours), as it does on a laptop. They need
# BuildKit, which `docker compose build` uses on every current Docker.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-bookworm AS builder
WORKDIR /app
COPY . .
# The target folder is a cache, not a layer: the binaries are copied out of it in the same
# step. `sharing=locked`: two builds at once wait for each other instead of both writing.
RUN --mount=type=cache,id=workshop-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=workshop-target,target=/app/target,sharing=locked \
    cargo build --release --locked \
        --bin orders --bin orders-worker --bin users --bin load --bin check \
    && mkdir -p /out \
    && cp target/release/orders target/release/orders-worker target/release/users \
        target/release/load target/release/check /out/

FROM debian:bookworm-slim AS runtime
# curl only for the compose healthchecks (GET /readyz); no compiler, no sources. Unpinned on
# purpose: the base image pins the release (bookworm), and within it Debian replaces a
# package's version with each security fix, so an exact pin stops building once it does.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin app
COPY --from=builder /out/ /usr/local/bin/
USER 10001
EXPOSE 8080 8081 8082
