# syntax=docker/dockerfile:1
# The static steady binary in an image of its own, to copy into any other image:
#   COPY --from=ghcr.io/steady-cli/steady:0.1.0 /steady /usr/local/bin/steady
# Build: docker build --build-arg STEADY_BUILD_COMMIT="$(git rev-parse HEAD)" -t steady .
# It builds for the architecture it runs on (x86_64 or aarch64). scripts/empty-root tests what
# the final stage relies on: steady as the only file of an empty root.

FROM rust:1.95-slim-bookworm AS build
# .git is not sent to the builder (.dockerignore): the commit for `steady --version` comes in here.
ARG STEADY_BUILD_COMMIT=
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    target="$(uname -m)-unknown-linux-musl" \
    && rustup target add "$target" \
    && cargo build --release --locked --target "$target" \
    && cp "target/$target/release/steady" /steady \
    && /steady --version

FROM scratch
COPY --from=build /steady /steady
ENTRYPOINT ["/steady"]
