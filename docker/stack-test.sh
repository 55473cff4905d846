#!/usr/bin/env bash
# `make stack-test`: the compose stack for real, on this machine, then nothing left running.
#   dockerd (installed and started if needed) -> images (docker/build-offline.sh) ->
#   postgres + MLflow (volume artifacts) + Ray head + 2 workers, healthy -> the one-shot
#   search job across both workers -> from the host: trials per worker, the champion by
#   alias predicting raw rows, a tokenless Ray client refused, loopback-only ports ->
#   `docker compose down -v` -> a short report (also in results/stack-test.txt).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PROJECT=${STACK_PROJECT:-tunefleet-stacktest}
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# Debian bookworm packages only Compose v1; trixie's docker-compose is Compose v2 (Go, libc only).
COMPOSE_DEB=${COMPOSE_DEB:-pool/main/d/docker-compose/docker-compose_2.26.1-4_amd64.deb}
SEARCH_ARGS=${STACK_SEARCH_ARGS:---trials 12 --cohort-size 3 --scheduler none}
WORK=$(mktemp -d /tmp/tunefleet-stack.XXXXXX)
DOCKERD_PID=""
declare -A REPORT

say() { printf '[stack-test] %s\n' "$*"; }
die() { printf '[stack-test] FAILED: %s\n' "$*" >&2; exit 1; }
now() { date +%s; }

ensure_docker() {
    if docker info > /dev/null 2>&1; then
        REPORT[dockerd]="already running (left running)"
        return
    fi
    [ "$(id -u)" = 0 ] || die "dockerd is not running and starting it needs root"
    command -v dockerd > /dev/null || {
        say "installing docker.io"
        apt-get install -y -qq docker.io > "$WORK/apt.log" 2>&1 || die "apt-get install docker.io (see $WORK/apt.log)"
    }
    say "starting dockerd"
    setsid dockerd > "$WORK/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
    for _ in $(seq 60); do docker info > /dev/null 2>&1 && break; sleep 1; done
    docker info > /dev/null 2>&1 || die "dockerd did not start (see $WORK/dockerd.log)"
    REPORT[dockerd]="started by this test, stopped at the end"
}

ensure_compose() {
    docker compose version > /dev/null 2>&1 && return
    say "installing the Compose v2 plugin from Debian's archive"
    curl -fsS -o "$WORK/compose.deb" "$MIRROR/$COMPOSE_DEB" || die "cannot download $MIRROR/$COMPOSE_DEB"
    dpkg-deb -x "$WORK/compose.deb" "$WORK/compose"
    install -D -m 755 "$WORK/compose/usr/libexec/docker/cli-plugins/docker-compose" \
        /usr/libexec/docker/cli-plugins/docker-compose
    docker compose version > /dev/null || die "docker compose still missing"
}

write_env() {
    local token password
    token=$("$PYTHON" -c 'import secrets; print(secrets.token_hex(32))')
    password=$("$PYTHON" -c 'import secrets; print(secrets.token_hex(16))')
    cat > "$WORK/env" << EOF
COMPOSE_PROFILES=volume
RAY_AUTH_TOKEN=$token
POSTGRES_USER=mlflow
POSTGRES_PASSWORD=$password
POSTGRES_DB=mlflow
RAY_WORKER_CPUS=1
TUNEFLEET_DATASET=breast_cancer
TUNEFLEET_ARGS=$SEARCH_ARGS
EOF
}

field() { "$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$WORK/check.json" "$1"; }

compose() { docker compose -p "$PROJECT" -f "$ROOT/docker/compose.yaml" --env-file "$WORK/env" "$@"; }

cleanup() {
    local code=$?
    if docker info > /dev/null 2>&1 && [ -f "$WORK/env" ]; then
        compose down -v --remove-orphans --timeout 20 > "$WORK/down.log" 2>&1 || true
    fi
    if [ -n "$DOCKERD_PID" ]; then
        kill "$DOCKERD_PID" 2> /dev/null || true
        wait "$DOCKERD_PID" 2> /dev/null || true
    fi
    [ $code = 0 ] && rm -rf "$WORK" || say "logs kept in $WORK"
    exit $code
}
trap cleanup EXIT

worker_nodes() {
    # {"<ray node id>": "<worker container>"}: live Ray nodes matched to containers by IP.
    local nodes
    nodes=$(compose exec -T ray-head python -c '
import json, ray
ray.init(address="auto", logging_level="ERROR", log_to_driver=False)
print(json.dumps({n["NodeManagerAddress"]: n["NodeID"] for n in ray.nodes() if n["Alive"]}))' 2> /dev/null | tail -1)
    for c in $(compose ps -q ray-worker); do
        docker inspect -f '{{.Name}} {{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$c"
    done | "$PYTHON" -c '
import json, sys
ids = json.loads(sys.argv[1])
print(json.dumps({ids[ip]: name.lstrip("/") for name, ip in (line.split() for line in sys.stdin) if ip in ids}))' "$nodes"
}

check_refused() {
    local out
    if out=$(compose run --rm --no-deps -e RAY_AUTH_MODE=disabled -e RAY_AUTH_TOKEN= ray-worker \
        ray status --address ray-head:6379 2>&1); then
        die "a Ray client without the token was let in"
    fi
    grep -q "InvalidAuthToken" <<< "$out" || die "the tokenless client failed, but not on auth: $(tail -1 <<< "$out")"
    REPORT[refused]="ray status without the token: $(grep -o 'InvalidAuthToken: Authentication token is missing or incorrect' <<< "$out" | head -1)"
}

check_ports() {
    local published
    published=$(compose ps --format json | "$PYTHON" -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin if l.strip()]
rows = [r for line in rows for r in (line if isinstance(line, list) else [line])]
pubs = [(r["Service"], p["URL"], p["PublishedPort"]) for r in rows for p in r.get("Publishers") or [] if p["PublishedPort"]]
bad = [p for p in pubs if p[1] != "127.0.0.1"]
print(("BAD " if bad else "") + ", ".join(f"{s} {u}:{port}" for s, u, port in sorted(set(pubs))))')
    [[ $published != BAD* ]] || die "ports published beyond loopback: $published"
    REPORT[ports]="$published (nothing else published)"
}

check_nothing_left() {
    local left
    left=$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT" | wc -l)
    left=$((left + $(docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT" | wc -l)))
    left=$((left + $(docker network ls -q --filter "label=com.docker.compose.project=$PROJECT" | wc -l)))
    [ "$left" = 0 ] || die "$left containers/volumes/networks of $PROJECT left after down -v"
}

main() {
    local t
    test -x "$PYTHON" || die "no $PYTHON: run 'make setup' first"
    ensure_docker
    ensure_compose
    write_env
    compose down -v --remove-orphans > /dev/null 2>&1 || true  # a previous run's leftovers

    t=$(now)
    bash "$ROOT/docker/build-offline.sh"
    REPORT[build]="$(($(now) - t)) s (docker/build-offline.sh: base, wheelhouse, 2 images)"
    REPORT[images]=$(docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E '^tunefleet' | sort | paste -sd, -)

    t=$(now)
    say "starting postgres, mlflow (volume artifacts), ray-head and 2 workers"
    compose up -d --no-build --wait --scale ray-worker=2 postgres mlflow-volume ray-head ray-worker \
        > "$WORK/up.log" 2>&1 || { tail -20 "$WORK/up.log"; die "the stack did not become healthy"; }
    REPORT[start]="$(($(now) - t)) s to healthy: $(compose ps --format '{{.Service}}' | sort | uniq -c | awk '{print $2 ($1 > 1 ? " x" $1 : "")}' | paste -sd, -)"

    t=$(now)
    say "search job: tunefleet search breast_cancer $SEARCH_ARGS"
    compose run --rm --no-deps search > "$WORK/search.log" 2>&1 || {
        tail -20 "$WORK/search.log"
        die "the search job failed (see $WORK/search.log)"
    }
    grep -E '^(== |failures|registered)' "$WORK/search.log" || true
    REPORT[search]="$(($(now) - t)) s: $(grep -m1 '^== ' "$WORK/search.log" | sed 's/^== //')"

    compose exec -T ray-head cat /shared/last-search.json > "$WORK/summary.json"
    worker_nodes > "$WORK/nodes.json"
    say "checking from the host through http://127.0.0.1:5000"
    MLFLOW_TRACKING_URI=http://127.0.0.1:5000 MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR=false GIT_PYTHON_REFRESH=quiet \
        "$PYTHON" "$ROOT/docker/stack_check.py" --summary "$WORK/summary.json" --nodes "$WORK/nodes.json" \
        > "$WORK/check.json" || die "host-side checks failed"
    REPORT[trials]=$(field trials_line)
    REPORT[champion]=$(field champion_line)

    check_refused
    check_ports

    t=$(now)
    compose down -v --remove-orphans --timeout 20 > "$WORK/down.log" 2>&1
    check_nothing_left
    REPORT[down]="$(($(now) - t)) s; no container, volume or network of $PROJECT left"

    mkdir -p "$ROOT/results"
    {
        echo "== make stack-test: passed ($(date -u +%Y-%m-%dT%H:%MZ))"
        for key in images build start search trials champion refused ports down dockerd; do
            printf '%-9s %s\n' "$key" "${REPORT[$key]}"
        done
    } | tee "$ROOT/results/stack-test.txt"
}

main "$@"
