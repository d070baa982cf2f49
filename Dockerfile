# syntax=docker/dockerfile:1
# One image holds every binary of the workspace (orders, users, load); compose picks one with
# `command:`. Dependencies are compiled in their own cached layer (cargo-chef), so editing a
# handler recompiles only the workspace crates.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-bookworm AS chef
RUN cargo install cargo-chef --version 0.1.78 --locked
WORKDIR /app

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /app/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked --bin orders --bin users --bin load \
    && mkdir -p /out \
    && cp target/release/orders target/release/users target/release/load /out/

FROM debian:bookworm-slim AS runtime
# curl only for the compose healthchecks (GET /readyz); no compiler, no sources.
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl=7.88.* ca-certificates=20230311* \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin app
COPY --from=builder /out/ /usr/local/bin/
USER 10001
EXPOSE 8080 8081
