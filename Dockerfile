# syntax=docker/dockerfile:1
# tepai as one image for every role: `docker run tepai serve command`,
# `… serve query`, `… ops status`, `… send …`, `… query …`.

# ---- build ---------------------------------------------------------------
FROM rust:1-bookworm AS builder
WORKDIR /src

# Dependencies first, against stub sources: this layer is rebuilt only when
# Cargo.toml, Cargo.lock, build.rs or the contracts change, not on every
# edit of tepai's own code. (rusqlite's bundled SQLite and ring need the C
# compiler the rust image already has; protox needs no protoc.)
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto ./proto
RUN mkdir src \
 && printf '//! stub\nfn main() {}\n' > src/main.rs \
 && printf '//! stub\n' > src/lib.rs \
 && cargo build --release --locked \
 && rm -rf src

COPY src ./src
# COPY keeps the files' own mtimes, which may be older than the stub build;
# touching the crate roots makes cargo rebuild tepai itself.
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked --bin tepai

# ---- run -----------------------------------------------------------------
FROM debian:bookworm-slim

# ca-certificates for NATS over TLS; curl for the query service's
# healthcheck.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*

# A fixed, unprivileged uid, so volume ownership is the same on every host.
RUN groupadd --system --gid 10001 tepai \
 && useradd --system --uid 10001 --gid tepai --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin tepai \
 && mkdir -p /data \
 && chown tepai:tepai /data

COPY --from=builder /src/target/release/tepai /usr/local/bin/tepai

# All state of a node lives under /data (event store, relay checkpoint,
# views). A new named volume takes this directory's owner, so tepai can
# write to it without root. Listen on every interface: inside a container,
# loopback is unreachable from the published port.
ENV TEPAI_DATA_DIR=/data \
    TEPAI_HTTP_ADDR=0.0.0.0:8080
VOLUME ["/data"]
WORKDIR /data
USER tepai:tepai
EXPOSE 8080

ENTRYPOINT ["tepai"]
CMD ["--help"]
