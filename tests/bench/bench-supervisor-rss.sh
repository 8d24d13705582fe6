#!/bin/bash
# Idle memory of berth-supervisor against containerd: berth-supervisor idle
# after its start and again after one pull (its pulls run in berth-fetch
# worker processes, which are gone by then), containerd after one pull of
# the same busybox image, from a loopback registry (Debian's
# docker-registry on 127.0.0.1, a free port, temp storage; the image from
# tests/dropin/mkimage.py pushed with skopeo). Both daemons are private:
# their own root, state and sockets under a temp dir, torn down at exit.
#
#   tests/bench/bench-supervisor-rss.sh
#   BUILD=build-rel SETTLE=3 tests/bench/bench-supervisor-rss.sh
#
# Environment: BUILD (default <repo>/build-rel, then <repo>/build: use a
# build configured with -Dsanitize=false, ASan's shadow memory would
# dominate), SETTLE seconds idle before reading VmRSS (default 2),
# CONTAINERD=0 to leave containerd out. Run as root.
#
# Prints VmRSS (and VmHWM, threads) of each daemon, then
#   berth-supervisor idle RSS after start: S kB
#   berth-supervisor idle RSS: X kB             (after the pull)
#   containerd idle RSS: Y kB
#   ratio berth-supervisor/containerd: Z
# and whether berth-supervisor is within the 8 MB target (both figures).
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

name=bench-supervisor-rss
die() { echo "$name: $*" >&2; exit 1; }

if [ -z "${BUILD:-}" ]; then
    BUILD=$repo/build-rel
    [ -x "$BUILD/supervisor/berth-supervisor" ] || BUILD=$repo/build
fi
BUILD=$(cd "$BUILD" && pwd)
SUP=$BUILD/supervisor/berth-supervisor
CTR=$BUILD/supervisor/berth-ctr
SETTLE=${SETTLE:-2}
CONTAINERD=${CONTAINERD:-1}
REGISTRY_BIN=/usr/bin/docker-registry
TARGET_KB=8192

[ "$(id -u)" -eq 0 ] || die "run as root"
for b in "$SUP" "$CTR"; do [ -x "$b" ] || die "$b not built"; done
[ -x "$REGISTRY_BIN" ] || die "$REGISTRY_BIN (docker-registry) not installed"
command -v skopeo >/dev/null || die "skopeo not installed"
if nm -D "$SUP" 2>/dev/null | grep -q __asan_init; then
    die "$SUP is built with sanitizers: configure a build with -Dsanitize=false (BUILD=...)"
fi
if [ "$CONTAINERD" = 1 ]; then
    command -v containerd >/dev/null && command -v ctr >/dev/null || die "containerd/ctr not installed (CONTAINERD=0 to skip)"
fi

tmp=$(mktemp -d /tmp/bench-svrss.XXXXXX)
reg_pid="" sup_pid="" ctd_pid=""
cleanup() {
    set +e
    [ -n "$sup_pid" ] && kill "$sup_pid" 2>/dev/null && wait "$sup_pid" 2>/dev/null
    [ -n "$ctd_pid" ] && kill "$ctd_pid" 2>/dev/null && wait "$ctd_pid" 2>/dev/null
    [ -n "$reg_pid" ] && kill "$reg_pid" 2>/dev/null && wait "$reg_pid" 2>/dev/null
    umount -R -q "$tmp/ctd/root" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

# status FIELD PID → the value in kB (or the count)
status() { awk -v f="$1:" '$1 == f { print $2 }' "/proc/$2/status"; }

# --- the registry and the image -----------------------------------------------
port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
host=127.0.0.1:$port
mkdir -p "$tmp/registry/storage"
cat >"$tmp/registry/config.yml" <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $tmp/registry/storage
http:
  addr: $host
EOF
"$REGISTRY_BIN" serve "$tmp/registry/config.yml" </dev/null >"$tmp/registry/log" 2>&1 &
reg_pid=$!
for _ in $(seq 200); do
    curl -s -o /dev/null "http://$host/v2/" && break
    sleep 0.05
done
curl -s -o /dev/null "http://$host/v2/" || { tail -n 20 "$tmp/registry/log" >&2; die "docker-registry did not start"; }
"$PY" "$repo/tests/dropin/mkimage.py" "$tmp/image.tar" >/dev/null
ref=$host/bench/busybox:latest
skopeo copy --quiet --dest-tls-verify=false "docker-archive:$tmp/image.tar:localhost/berth-busybox:latest" "docker://$ref"

# --- berth-supervisor -----------------------------------------------------------
"$SUP" --root "$tmp/sv/root" --exec-root "$tmp/sv/run" --log-level warn </dev/null >"$tmp/sv.log" 2>&1 &
sup_pid=$!
addr=(--address "ipc://$tmp/sv/run/supervisor.sock" --events-address "ipc://$tmp/sv/run/supervisor-events.sock")
for _ in $(seq 200); do
    "$CTR" "${addr[@]}" version >/dev/null 2>&1 && break
    kill -0 "$sup_pid" 2>/dev/null || break
    sleep 0.05
done
"$CTR" "${addr[@]}" version >/dev/null || { cat "$tmp/sv.log" >&2; die "berth-supervisor did not start"; }
sleep "$SETTLE"
sv_start_rss=$(status VmRSS "$sup_pid")
echo "berth-supervisor: VmRSS $sv_start_rss kB, $(status Threads "$sup_pid") threads (idle after start)"
"$CTR" "${addr[@]}" images pull "$ref" >/dev/null
sleep "$SETTLE"
sv_rss=$(status VmRSS "$sup_pid")
sv_hwm=$(status VmHWM "$sup_pid")
sv_thr=$(status Threads "$sup_pid")
echo "berth-supervisor: VmRSS $sv_rss kB, VmHWM $sv_hwm kB, $sv_thr threads (after one pull of $ref)"

# --- containerd -----------------------------------------------------------------
ctd_rss=""
if [ "$CONTAINERD" = 1 ]; then
    sock=$tmp/ctd/c.sock
    bench_containerd_start "$tmp/ctd" "$sock"
    ctr --address "$sock" -n bench images pull --plain-http "$ref" >/dev/null
    sleep "$SETTLE"
    ctd_rss=$(status VmRSS "$ctd_pid")
    ctd_hwm=$(status VmHWM "$ctd_pid")
    ctd_thr=$(status Threads "$ctd_pid")
    echo "containerd: VmRSS $ctd_rss kB, VmHWM $ctd_hwm kB, $ctd_thr threads (after one ctr pull of $ref)"
fi

echo
echo "berth-supervisor idle RSS after start: $sv_start_rss kB"
echo "berth-supervisor idle RSS: $sv_rss kB"
if [ -n "$ctd_rss" ]; then
    echo "containerd idle RSS: $ctd_rss kB"
    "$PY" -c "print(f'ratio berth-supervisor/containerd: {$sv_rss / $ctd_rss:.2f}')"
fi
if [ "$sv_rss" -le "$TARGET_KB" ] && [ "$sv_start_rss" -le "$TARGET_KB" ]; then
    echo "target (<= $TARGET_KB kB): met"
else
    echo "target (<= $TARGET_KB kB): NOT met"
fi
