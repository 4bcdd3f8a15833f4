# syntax=docker/dockerfile:1
# A reconciler of yours as an image: one binary of one crate, on distroless `cc` (glibc,
# libgcc; no shell), as non-root, the way this repository's own image is made.
# Build from the directory that holds the crate (or its Cargo workspace):
#   docker build -f modules/image/crate.Dockerfile --build-arg CRATE=./my-reconciler \
#     --build-arg BIN=my-reconciler -t IMAGE .
# The image module runs that at apply time when a container gives a `source`.

# The runtime image (a container's `base_image`): distroless cc unless given.
ARG RUNTIME=gcr.io/distroless/cc-debian12:nonroot

# Debian 12 on both sides: the binary links the glibc the runtime image carries.
FROM rust:1.95-slim-bookworm AS build
# The crate's directory, relative to the build context, and the binary to take from it.
ARG CRATE=.
ARG BIN
WORKDIR /src
COPY . .
# Cache mounts keep the registry and the build between builds (BuildKit). The binary is
# built from the crate's own manifest, inside its workspace if it has one.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/cache/target \
    test -n "$BIN" || { echo "BIN (the binary to build) is required" >&2; exit 1; }; \
    cargo build --release --manifest-path "$CRATE/Cargo.toml" --bin "$BIN" --target-dir /cache/target \
    && install -D -m 0755 "/cache/target/release/$BIN" /out/reconciler

FROM ${RUNTIME}
COPY --from=build /out/reconciler /usr/local/bin/reconciler
USER nonroot:nonroot
# Cloud Run sets PORT; the toolkit's entry point serves gRPC on it.
ENV PORT=8080
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/reconciler"]
