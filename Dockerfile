# syntax=docker/dockerfile:1
#
# Kong Gateway 3.9 with the gitlab-ci-auth external plugin server baked in, for linux/amd64 and linux/arm64.
#
#   docker build -t gitlab-ci-auth-kong .                       # the architecture of the machine building it
#   docker buildx build --platform linux/amd64,linux/arm64 -t registry.example.com/gitlab-ci-auth-kong:0.1.0 --push .
#   docker compose -f kong/docker-compose.yml up --build        # DB-less Kong + an echo upstream
#
# Stage 1 compiles the NativeAOT binary (one self-contained executable, no .NET runtime needed at run time).
# Stage 2 drops that binary into the official Kong image and points Kong at it with the pluginserver keys.
# tests/Deployment.Tests reads this file: the ENV commands are run against the real binary, and the RUN that
# publishes is run with each TARGETARCH to check the runtime identifier it picks.
#
# One native build per architecture. NativeAOT compiles to machine code and links it with the C toolchain and
# system libraries of the architecture it targets, so an arm64 binary cannot come out of an amd64 build stage
# without a cross toolchain (a clang that targets aarch64 plus an arm64 sysroot with glibc, zlib and OpenSSL
# headers). The build stage therefore runs on the target platform: no `--platform=$BUILDPLATFORM` on its FROM.
# With `buildx --platform linux/amd64,linux/arm64`, give each platform a native builder node
# (`docker buildx create --append --platform linux/arm64 ssh://arm64-host`), or let QEMU emulate the other one
# (it works, several times slower). Cross-compiling instead means a `FROM --platform=$BUILDPLATFORM` stage with
# that toolchain and `-r linux-arm64`, which this file does not do.

FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
# Set by BuildKit to the platform being built (amd64, arm64); the classic builder leaves it empty.
ARG TARGETARCH
# NativeAOT links with the platform toolchain: clang (linker driver) and zlib's headers.
RUN apt-get update \
 && apt-get install -y --no-install-recommends clang zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Docker's architecture name -> .NET's runtime identifier; without TARGETARCH, the build machine's own.
RUN set -eu; \
    arch="${TARGETARCH:-$(dpkg --print-architecture)}"; \
    case "$arch" in \
      amd64) rid=linux-x64 ;; \
      arm64) rid=linux-arm64 ;; \
      *) echo "gitlab-ci-auth builds for linux/amd64 and linux/arm64, not $arch" >&2; exit 1 ;; \
    esac; \
    dotnet publish src/GitLabCiAuth.Host -c Release -r "$rid" -o /out

# The official image is published for amd64 and arm64: the same tag serves both builds.
FROM kong:3.9

# The binary loads OpenSSL (RSA/EC verification, HTTPS to GitLab) and reads the system CA store. Kong ships
# its own OpenSSL under its prefix, which a child process cannot see, so make sure the system one is there
# (libssl3t64 on Ubuntu 24.04 images, libssl3 on older bases).
USER root
RUN set -eu; \
    apt-get update; \
    ssl=libssl3t64; apt-cache show "$ssl" >/dev/null 2>&1 || ssl=libssl3; \
    apt-get install -y --no-install-recommends ca-certificates "$ssl"; \
    rm -rf /var/lib/apt/lists/*

COPY --from=build /out/gitlab-ci-auth /usr/local/bin/gitlab-ci-auth

# Kong's keys for the plugin server (kong/kong.conf explains each one per Kong version). All five are set
# explicitly, so the same image works with the defaults of Kong 3.4 to 3.9:
#  - _SOCKET: before 3.9 Kong hard-codes /usr/local/kong/<name>.socket, 3.9 uses <prefix>/<name>.socket;
#    the start command below creates exactly this path (-kong-prefix DIR -> DIR/gitlab-ci-auth.socket).
#  - _START_CMD: 3.1 - 3.4 need one (requests arriving before the server listens); 3.9 warns without one.
#  - _QUERY_CMD: 3.9 refuses to start without one unless /usr/local/bin/<name> exists; older versions look
#    for /usr/local/bin/query_<name>.
ENV KONG_PLUGINS=bundled,gitlab-ci-auth \
    KONG_PLUGINSERVER_NAMES=gitlab-ci-auth \
    KONG_PLUGINSERVER_GITLAB_CI_AUTH_SOCKET=/usr/local/kong/gitlab-ci-auth.socket \
    KONG_PLUGINSERVER_GITLAB_CI_AUTH_START_CMD="/usr/local/bin/gitlab-ci-auth -kong-prefix /usr/local/kong" \
    KONG_PLUGINSERVER_GITLAB_CI_AUTH_QUERY_CMD="/usr/local/bin/gitlab-ci-auth -dump"

# Kong's unprivileged user (it owns /usr/local/kong, where the socket is created).
USER kong

# Fail the build, not Kong's start, if the binary cannot run on this base image.
RUN /usr/local/bin/gitlab-ci-auth -dump >/dev/null
