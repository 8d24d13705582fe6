#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: install what berth needs, build
# it, start berth-supervisor and berth-engine from the build tree, load the
# hello-world image the build made (no registry, no network), and run it
# with the docker CLI through the whole stack:
#   docker CLI -> berth-engine -> berth-supervisor -> berth-shim -> ocirun -> kernel
#
#   sudo packaging/quickstart.sh          # idempotent: reuses running daemons
#   sudo packaging/quickstart.sh stop     # stops both daemons (containers keep running)
#
# The daemons run in the background with their logs in /var/log/berth/;
# their state is the default one (/var/lib/berth, /run/berth).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "quickstart: run as root (containers need namespaces, cgroups and mounts), e.g. sudo $0" >&2
    exit 1
fi

EXEC_ROOT=/run/berth
SOCK=$EXEC_ROOT/engine.sock
LOGS=/var/log/berth
export DOCKER_HOST=unix://$SOCK

stop_daemon() { # name
    local pidf=$EXEC_ROOT/$1.pid
    if [ -f "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; then
        kill "$(cat "$pidf")"
        for _ in $(seq 100); do kill -0 "$(cat "$pidf" 2>/dev/null)" 2>/dev/null || break; sleep 0.1; done
        echo "quickstart: stopped berth-$1"
    fi
}

if [ "${1:-}" = stop ]; then
    stop_daemon engine
    stop_daemon supervisor
    echo "quickstart: containers that were running keep running (live restore); start again to manage them"
    exit 0
fi

packaging/install-deps.sh
if [ ! -f build/build.ninja ]; then
    meson setup build >/dev/null
fi
ninja -C build
B=$PWD/build
mkdir -p "$LOGS"

if ! "$B/supervisor/berth-ctr" --timeout 2 version >/dev/null 2>&1; then
    echo "== starting berth-supervisor (log: $LOGS/supervisor.log)"
    nohup "$B/supervisor/berth-supervisor" --shim "$B/shim/berth-shim" --runtime "$B/ocirun/ocirun" \
        >>"$LOGS/supervisor.log" 2>&1 </dev/null &
    for _ in $(seq 100); do "$B/supervisor/berth-ctr" --timeout 2 version >/dev/null 2>&1 && break; sleep 0.1; done
fi
if ! docker version >/dev/null 2>&1; then
    echo "== starting berth-engine (log: $LOGS/engine.log)"
    nohup "$B/engine/berth-engine" >>"$LOGS/engine.log" 2>&1 </dev/null &
    for _ in $(seq 100); do docker version >/dev/null 2>&1 && break; sleep 0.1; done
fi
docker version --format 'engine: {{.Server.Platform.Name}}, Docker API {{.Server.APIVersion}}' ||
    { tail -n 20 "$LOGS/engine.log" "$LOGS/supervisor.log" >&2; exit 1; }

echo "== docker load -i build/packaging/hello-world.tar"
docker load -i "$B/packaging/hello-world.tar"
echo "== docker run --rm hello-world"
docker run --rm hello-world

cat <<EOF
== done. To use berth with the docker CLI:
   export DOCKER_HOST=$DOCKER_HOST
   docker run --rm hello-world
   docker images; docker ps -a
Stop the daemons with: $0 stop      Run every test with: tests/run-all.sh
EOF
