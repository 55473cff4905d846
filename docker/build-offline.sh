#!/usr/bin/env bash
# Build the stack's images where Docker Hub cannot be reached (run as root, from anywhere):
#   1. tunefleet-base:bookworm: Debian bookworm + python3.11, curl, tini, from debootstrap
#      and `docker import` (the stand-in for python:3.11-slim-bookworm);
#   2. a wheelhouse of constraints.txt, downloaded on the host with its own pip settings,
#      served to the build on 127.0.0.1, so the image holds exactly the pinned versions;
#   3. tunefleet:latest and tunefleet-postgres:15 FROM that base.
# With internet, none of this is needed: `docker compose ... build` uses python:3.11-slim.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BASE=${BASE_IMAGE:-tunefleet-base:bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
WHEELS=${WHEELHOUSE_DIR:-$ROOT/.cache/wheelhouse}
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
export DOCKER_BUILDKIT=0  # the classic builder: `--network host` reaches the wheelhouse

say() { printf '[build-offline] %s\n' "$*"; }
seconds() { echo $(($(date +%s) - $1)); }

build_base() {
    if docker image inspect "$BASE" > /dev/null 2>&1; then
        say "base $BASE exists"
        return
    fi
    command -v debootstrap > /dev/null || apt-get install -y -qq debootstrap > /dev/null
    local rootfs
    rootfs=$(mktemp -d /tmp/tunefleet-rootfs.XXXXXX)
    say "debootstrap bookworm into $rootfs (about 1-2 min)"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,curl,tini \
        bookworm "$rootfs" "$MIRROR" > "$rootfs.log" 2>&1 || { tail -5 "$rootfs.log"; exit 1; }
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | docker import -c 'ENV LANG=C.UTF-8' -c 'CMD ["/bin/bash"]' - "$BASE" > /dev/null
    rm -rf "$rootfs" "$rootfs.log"
}

build_wheelhouse() {
    test -x "$PYTHON" || { echo "no $PYTHON: run 'make setup' first (or set PYTHON=)" >&2; exit 2; }
    mkdir -p "$WHEELS"
    say "wheelhouse of constraints.txt in $WHEELS"
    (cd "$ROOT" && "$PYTHON" -m pip download --quiet --disable-pip-version-check --only-binary=:all: \
        -d "$WHEELS" -c constraints.txt ".[server]" setuptools uv 2>&1 | grep -v "is ignored: it is neither" || true)
    ls "$WHEELS"/torch-*.whl > /dev/null
}

build_images() {
    local port server
    port=${WHEELHOUSE_PORT:-18765}  # fixed: the URL is a build argument, part of the layer cache key
    "$PYTHON" -m http.server "$port" --bind 127.0.0.1 --directory "$WHEELS" > /dev/null 2>&1 &
    server=$!
    sleep 1
    kill -0 "$server" 2> /dev/null || { echo "cannot serve the wheelhouse on 127.0.0.1:$port (set WHEELHOUSE_PORT)" >&2; exit 2; }
    trap 'kill $server 2> /dev/null || true' RETURN
    say "tunefleet:latest FROM $BASE"
    docker build --quiet --network host -f "$ROOT/docker/Dockerfile" \
        --build-arg BASE_IMAGE="$BASE" --build-arg WHEELHOUSE="http://127.0.0.1:$port/" \
        -t tunefleet:latest "$ROOT" 2>&1 | grep -v -e DEPRECATED -e "legacy builder" -e BuildKit -e environment-variable -e '^ *$' || true
    say "tunefleet-postgres:15 FROM $BASE"
    docker build --quiet --network host -f "$ROOT/docker/postgres.Dockerfile" \
        --build-arg BASE_IMAGE="$BASE" -t tunefleet-postgres:15 "$ROOT" 2>&1 \
        | grep -v -e DEPRECATED -e "legacy builder" -e BuildKit -e environment-variable -e '^ *$' || true
    docker image inspect tunefleet:latest tunefleet-postgres:15 > /dev/null
}

start=$(date +%s)
build_base
build_wheelhouse
build_images
say "done in $(seconds "$start") s: $(docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' \
    | grep -E '^tunefleet' | tr '\n' ' ')"
