# accessgate container image.
# Build:  docker build -t accessgate .
# Run:    docker run -p 8443:8443 -v $PWD/config:/etc/accessgate:ro -v $PWD/certs:/etc/accessgate/certs:ro accessgate
# Config, certificates and state are mounted; nothing is downloaded at runtime.

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, so source edits do not rebuild them.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && for b in authn policy proxy; do echo 'fn main() {}' > benches/$b.rs; done \
    && cargo build --release --locked --bin accessgate || true
COPY . .
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin accessgate

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin accessgate
COPY --from=build /src/target/release/accessgate /usr/local/bin/accessgate
USER 10001:10001
# 8443: client TLS listener. 9901: admin (/metrics, /healthz, /readyz); set
# [admin] address = "0.0.0.0:9901" in the mounted config to reach it from outside.
EXPOSE 8443 9901
HEALTHCHECK --interval=10s --timeout=3s CMD ["accessgate", "healthcheck", "--config", "/etc/accessgate/accessgate.toml"]
ENTRYPOINT ["accessgate"]
CMD ["run", "--config", "/etc/accessgate/accessgate.toml"]
