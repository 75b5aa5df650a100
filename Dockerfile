# Images for running several nodes (docker-compose.yml):
#   --target proxy   nginx with the built SPA and deploy/nginx.conf
#   --target api     chat-api alone, the default (the proxy serves the SPA, not the nodes)
# Plain Dockerfile syntax (no BuildKit-only features), so Debian's docker-compose 1.29.2 and the
# legacy builder work too. The legacy builder builds every stage above its target: hence the
# cheap SPA stages come first.

# ---- the SPA ----------------------------------------------------------------------------
FROM node:20-bookworm-slim AS spa-build
# @playwright/test is a dev dependency; the build needs no browser.
ENV PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
WORKDIR /src/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
# `build` is `tsc -b && vite build`: it uses the committed src/types/api.ts, not openapi.yaml.
COPY frontend/ ./
RUN npm run build

# ---- the proxy --------------------------------------------------------------------------
FROM nginx:1.28-alpine AS proxy
RUN rm -rf /usr/share/nginx/html/*
COPY deploy/nginx.conf /etc/nginx/nginx.conf
COPY --from=spa-build /src/frontend/dist/ /usr/share/nginx/html/

# ---- chat-api, release build ------------------------------------------------------------
# Bookworm, as the runtime stage: the binary links the glibc and libpq it was built against.
FROM rust:1.95-bookworm AS api-build
# libpq-dev: diesel's PostgreSQL backend links the system libpq (pq-sys, not bundled);
# libssl-dev: what pq-sys's `bundled` feature would need instead.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpq-dev libssl-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src

# Dependencies first, against stub sources, so a code change does not rebuild them.
COPY Cargo.toml Cargo.lock ./
COPY api/Cargo.toml api/Cargo.toml
COPY bench/Cargo.toml bench/Cargo.toml
RUN mkdir -p api/src bench/src \
    && echo 'fn main() {}' > api/src/main.rs \
    && touch api/src/lib.rs \
    && echo 'fn main() {}' > bench/src/main.rs \
    && cargo build --release --locked -p chat-api \
    && rm -rf api/src bench/src target/release/.fingerprint/chat-api-*

# The real sources. The crate embeds ../migrations/{sqlite,postgres} and
# api/data/common-passwords.txt at compile time; bench/ is a workspace member.
COPY api api
COPY bench bench
COPY migrations migrations
RUN cargo build --release --locked -p chat-api \
    && install -m 0755 target/release/chat-api /usr/local/bin/chat-api

# ---- chat-api runtime -------------------------------------------------------------------
FROM debian:bookworm-slim AS api
# libpq5: the PostgreSQL client library; ca-certificates: TLS to the AI provider and SMTP.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libpq5 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin chat \
    && mkdir -p /data \
    && chown chat:chat /data
COPY --from=api-build /usr/local/bin/chat-api /usr/local/bin/chat-api
# DATA_DIR holds the mail outbox (without SMTP_URL) and, only when JWT_SECRET is unset, a
# generated key; several nodes need one shared JWT_SECRET instead.
ENV CHAT_BIND=0.0.0.0:8000 \
    DATA_DIR=/data
WORKDIR /data
USER chat
EXPOSE 8000
# No curl in the image: bash's /dev/tcp asks /healthz (port 8000, as CHAT_BIND above).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8000 && printf 'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
# chat-api handles SIGTERM itself (closes WebSockets with 1012, stores queued messages).
ENTRYPOINT ["chat-api"]
CMD ["serve"]
