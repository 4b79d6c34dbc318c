#!/usr/bin/env bash
# Runs Studio locally: the web server, the task worker and, when no DASHSCOPE_API_KEY is
# set, the DashScope emulator. Ctrl-C (or SIGTERM) stops all of them.
set -euo pipefail

cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
export DJANGO_DEBUG="${DJANGO_DEBUG:-true}"
WEB_PORT="${STUDIO_RUN_PORT:-8000}"
EMULATOR_ADDR="127.0.0.1:${STUDIO_RUN_EMULATOR_PORT:-8765}"

# Job control puts each child in a process group of its own, so that stopping the group also
# stops what the child spawned (runserver's autoreloader runs the server as a second process).
# It also keeps SIGINT working in the children: without it, background jobs ignore SIGINT.
set -m
pgids=()

start() {
    "$@" </dev/null &
    pgids+=("$!")
}

signal_all() {
    local pgid
    for pgid in "${pgids[@]}"; do
        kill "-$1" -- "-$pgid" 2>/dev/null || true
    done
}

any_alive() {
    local pgid
    for pgid in "${pgids[@]}"; do
        if kill -0 -- "-$pgid" 2>/dev/null; then
            return 0
        fi
    done
    return 1
}

wait_all() {  # wait up to $1 seconds for every child's process group to be gone
    local deadline=$((SECONDS + $1))
    while any_alive; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

stop_all() {
    # Another signal while stopping (make passes a TERM on) must not cut the stopping short.
    trap '' INT TERM HUP
    trap - EXIT
    # SIGINT is what Ctrl-C in a terminal sends; qcluster then finishes its running tasks.
    signal_all INT
    if ! wait_all 15; then
        signal_all TERM
        wait_all 5 || signal_all KILL
    fi
    wait || true
}

listening() {  # true if something accepts connections on 127.0.0.1:$1
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Checked before anything starts: a server that cannot take its port would otherwise leave
# the others running against whatever holds it.
ports=("$WEB_PORT")
[[ -n "${DASHSCOPE_API_KEY:-}" ]] || ports+=("${EMULATOR_ADDR##*:}")
for port in "${ports[@]}"; do
    if ! [[ "$port" =~ ^[0-9]{1,5}$ ]] || ((10#$port < 1 || 10#$port > 65535)); then
        echo "Port '$port' is not a port number (1-65535): check STUDIO_RUN_PORT and" \
            "STUDIO_RUN_EMULATOR_PORT." >&2
        exit 1
    fi
    if listening "$port"; then
        echo "Port $port on 127.0.0.1 is taken by another program: stop it, or choose other" \
            "ports with STUDIO_RUN_PORT (web) and STUDIO_RUN_EMULATOR_PORT." >&2
        exit 1
    fi
done

trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ -z "${DASHSCOPE_API_KEY:-}" ]]; then
    echo "DASHSCOPE_API_KEY is not set: using the local DashScope emulator at http://$EMULATOR_ADDR/"
    start "$PY" manage.py emulator --addr "$EMULATOR_ADDR"
    export DASHSCOPE_BASE_URL="http://$EMULATOR_ADDR/api/v1"
    # Result downloads go to the emulator too, over TLS from its own authority.
    export DASHSCOPE_EMULATED=true
    export DASHSCOPE_API_KEY="sk-emulator-local"
else
    base_url=$("$PY" -c "import studio.settings as s; print(s.DASHSCOPE_BASE_URL)")
    echo "Using DashScope at $base_url"
fi

start "$PY" manage.py runserver "127.0.0.1:$WEB_PORT"
web=$!
start "$PY" manage.py qcluster
worker=$!

# Stop everything as soon as the web server or the worker exits; the emulator may fail on
# its own without taking the others down.
set +e
wait -n "$web" "$worker"
status=$?
set -e
exit "$status"
