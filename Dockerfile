# One image for every binary of the workspace: customer-facing-service,
# order-management-service, payment-gateway and opsctl. The container's command picks
# the binary (docker-compose.yml `command:`, Kubernetes `command:`), e.g.
#   docker run --rm ecommerce-platform:local opsctl --help
#
# Build (the registry's image; the default target, `runtime`, compiles in the builder):
#   docker build -t ecommerce-platform:local .
# The same runtime from binaries already built on a bookworm machine (what
# scripts/container-smoke.sh does, with podman): a context holding this file and the
# four binaries under dist/, and the second target:
#   docker build --target runtime-prebuilt -t ecommerce-platform:prebuilt <context>
# RUNTIME_BASE swaps the runtime's base for an equivalent local image (the smoke uses a
# `debootstrap --variant=minbase bookworm` import where no registry is reachable).
#
# No `# syntax=` line: the Dockerfile frontend built into the engine reads this file, so
# BuildKit pulls no frontend image.

ARG RUNTIME_BASE=debian:bookworm-slim

# ---------------------------------------------------------------- runtime base
FROM ${RUNTIME_BASE} AS runtime-base

# ca-certificates for TLS to managed services (librdkafka's default roots), libssl3 for
# librdkafka's TLS, curl for the health checks.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /app --shell /usr/sbin/nologin app

WORKDIR /app
# glibc gives every thread that allocates (tokio workers, librdkafka's threads) its own
# heap arena and seldom returns their memory: two arenas keep a service under load
# at about 40 MB resident instead of 85 MB (docs/performance.md). A fixed mmap
# threshold returns large blocks to the system when they are freed: without it glibc
# raises the threshold after the first 19 MB argon2 block of a login, and every later
# login's block stays in the heap (about 20 MB more resident per login).
ENV MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072

USER 10001:10001
# 8080 customer-facing-service, 8081 order-management-service, 9090 payment-gateway.
EXPOSE 8080 8081 9090

CMD ["customer-facing-service"]

# ---------------------------------------------------------------- runtime from built binaries
# Placed before the builder so that `--target runtime-prebuilt` never builds it, with any
# builder (the classic one builds every stage up to the target).
FROM runtime-base AS runtime-prebuilt
COPY dist/customer-facing-service dist/order-management-service dist/payment-gateway dist/opsctl /usr/local/bin/

# ---------------------------------------------------------------- builder
FROM rust:1.95-bookworm AS builder

# rdkafka builds its bundled librdkafka with cmake and links libcurl, and OpenSSL for
# Kafka over SSL/SASL.
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake libcurl4-openssl-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .

# Queries are checked against the committed .sqlx/ metadata: no database at build time.
ENV SQLX_OFFLINE=true \
    CARGO_TERM_COLOR=never

RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bins \
 && mkdir -p /out \
 && for bin in customer-facing-service order-management-service payment-gateway opsctl; do \
        cp "target/release/$bin" /out/; \
    done

# ---------------------------------------------------------------- runtime (default target)
FROM runtime-base AS runtime
COPY --from=builder /out/ /usr/local/bin/
