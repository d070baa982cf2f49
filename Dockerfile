# One image holds every binary of the workspace (orders, orders-worker, users, load); compose
# builds it once and picks one with `command:`. Dependencies are compiled in their own cached
# layer (cargo-chef), cooked for exactly the binaries built below, so an edit recompiles only
# our crates. Build times are in README.md ("Before the workshop").

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-bookworm AS chef
RUN cargo install cargo-chef --version 0.1.78 --locked
WORKDIR /app

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /app/recipe.json recipe.json
# Cook exactly what is built below: cooking the whole workspace unifies features (hyper-util,
# tonic, tokio-stream) that the --bin build does not ask for, so that build would compile
# axum, reqwest, tonic and the OpenTelemetry crates again after every edit.
RUN cargo chef cook --release --locked --recipe-path recipe.json --bin orders --bin orders-worker --bin users --bin load
COPY . .
RUN cargo build --release --locked --bin orders --bin orders-worker --bin users --bin load \
    && mkdir -p /out \
    && cp target/release/orders target/release/orders-worker target/release/users \
        target/release/load /out/

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
