# syntax=docker/dockerfile:1
# The `reconcilers` image: one binary for every process (receiver, dispatcher, gateway, resync,
# queue jobs), on distroless `cc` (glibc, libgcc; no shell, no package manager), as non-root.
# Build: docker build -t IMAGE .   Run: docker run IMAGE receiver --storage gs://BUCKET
# The modules take the pushed image's reference as their `image` input.

# Debian 12 on both sides: the binary links the glibc the runtime image carries.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
# Cache mounts keep the registry and the build between builds (BuildKit).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin reconcilers \
    && install -D -m 0755 target/release/reconcilers /out/reconcilers

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/reconcilers /usr/local/bin/reconcilers
USER nonroot:nonroot
# Cloud Run sets PORT; every long-running command serves HTTP (and gRPC) on it.
ENV PORT=8080
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/reconcilers"]
CMD ["--help"]
