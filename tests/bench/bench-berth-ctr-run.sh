#!/bin/bash
# berth-supervisor + berth-shim + ocirun against containerd + its runc shim
# + runc, through their clients, on the same busybox image:
#
#   1. `berth-ctr run --rm IMAGE ID true` vs `ctr run --rm IMAGE ID true`
#      (hyperfine): container + snapshot, bundle, shim, runtime create and
#      start, wait, delete of everything;
#   2. 100 detached `sleep` containers started one after another, then
#      removed (task rm -f, container rm): wall time of each phase, the
#      daemon's RSS with 100 tasks, and the shims' total RSS.
#
#   tests/bench/bench-berth-ctr-run.sh
#   BUILD=build-rel RUNS=20 N=100 tests/bench/bench-berth-ctr-run.sh
#
# Environment: BUILD (default <repo>/build-rel, a non-sanitized build:
# meson setup build-rel -Dsanitize=false), RUNTIME (default that build's
# ocirun), PEER_RUNTIME (default runc), RUNS / WARMUP (hyperfine, default
# 20 / 3), N (default 100).
#
# Both daemons are private: their own roots, state and sockets under a temp
# dir, torn down on exit. The image is tests/dropin/mkimage.py's, imported
# into each (`berth-ctr images import`, `ctr image import`).
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BUILD=$(cd "${BUILD:-$repo/build-rel}" && pwd)
SUP=$BUILD/supervisor/berth-supervisor
BCTR=$BUILD/supervisor/berth-ctr
RUNTIME=${RUNTIME:-$BUILD/ocirun/ocirun}
PEER_RUNTIME=$(bench_resolve "${PEER_RUNTIME:-runc}")
RUNS=${RUNS:-20}
WARMUP=${WARMUP:-3}
N=${N:-100}
for b in "$SUP" "$BCTR" "$BUILD/shim/berth-shim" "$RUNTIME" "$PEER_RUNTIME"; do
    [ -x "$b" ] || { echo "bench-berth-ctr-run: $b not built / not found" >&2; exit 1; }
done
if ldd "$SUP" | grep -q libasan; then
    echo "bench-berth-ctr-run: $BUILD is a sanitizer build; use meson setup build-rel -Dsanitize=false" >&2
    exit 1
fi
for tool in hyperfine containerd ctr containerd-shim-runc-v2; do
    command -v "$tool" >/dev/null || { echo "bench-berth-ctr-run: $tool not installed" >&2; exit 1; }
done

tmp=$(mktemp -d /tmp/bench-bctr.XXXXXX)
ns="bench-bctr-$$"
sock=$tmp/ctd.sock
baddr="ipc://$tmp/brun/supervisor.sock"
ctd_pid=
sup_pid=
created_run_containerd=
[ -e /run/containerd ] || created_run_containerd=1
bctr() { "$BCTR" --address "$baddr" "$@"; }
cctr() { ctr --address "$sock" -n "$ns" "$@"; }

# shellcheck disable=SC2317  # called through the EXIT trap
cleanup() {
    set +e
    if [ -n "$sup_pid" ]; then
        for t in $(bctr tasks ls 2>/dev/null | awk 'NR > 1 {print $1}'); do bctr tasks rm -f "$t" >/dev/null 2>&1; done
        for c in $(bctr containers ls 2>/dev/null | awk 'NR > 1 {print $1}'); do bctr containers rm "$c" >/dev/null 2>&1; done
        kill "$sup_pid" 2>/dev/null
        wait "$sup_pid" 2>/dev/null
    fi
    for f in "$tmp"/brun/shims/*/shim.pid; do [ -e "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null; done
    if [ -n "$ctd_pid" ]; then
        for t in $(cctr task ls -q 2>/dev/null); do cctr task rm -f "$t" >/dev/null 2>&1; done
        for c in $(cctr container ls -q 2>/dev/null); do cctr container rm "$c" >/dev/null 2>&1; done
        kill "$ctd_pid" 2>/dev/null
        for _ in $(seq 100); do kill -0 "$ctd_pid" 2>/dev/null || break; sleep 0.05; done
        kill -9 "$ctd_pid" 2>/dev/null
    fi
    for p in $(pgrep -f -- "-address $sock" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
    grep -F " $tmp" /proc/self/mountinfo | awk '{print $5}' | sort -r |
        while read -r m; do umount -l "$m"; done
    for d in /sys/fs/cgroup/*/"$ns" /sys/fs/cgroup/"$ns" /sys/fs/cgroup/*/berth/bb-* ; do
        [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
    if [ -n "$created_run_containerd" ]; then
        rmdir /run/containerd/s /run/containerd/fifo /run/containerd 2>/dev/null
    fi
    rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT

"$PY" "$repo/tests/dropin/mkimage.py" "$tmp/image.tar" >/dev/null
image=localhost/berth-busybox:latest

# --- private containerd ------------------------------------------------------
bench_containerd_start "$tmp" "$sock"
cctr image import "$tmp/image.tar" >/dev/null
mkdir -p "$tmp/fifo" "$tmp/rt-peer"

# --- private berth-supervisor -------------------------------------------------
"$SUP" --root "$tmp/broot" --exec-root "$tmp/brun" --runtime "$RUNTIME" >"$tmp/supervisor.log" 2>&1 </dev/null &
sup_pid=$!
for _ in $(seq 200); do
    bctr version >/dev/null 2>&1 && break
    sleep 0.05
done
bctr version >/dev/null 2>&1 || { echo "bench-berth-ctr-run: berth-supervisor did not start" >&2; cat "$tmp/supervisor.log" >&2; exit 1; }
bctr images import "$tmp/image.tar" >/dev/null

# --- 1. run --rm ------------------------------------------------------------------
ocmd="$BCTR --address $baddr run --rm $image bench-b true"
rcmd="ctr --address $sock -n $ns run --rm --fifo-dir $tmp/fifo --runc-binary $PEER_RUNTIME --runc-root $tmp/rt-peer $image bench-r true"
for cmd in "$ocmd" "$rcmd"; do
    for _ in 1 2; do $cmd </dev/null || { echo "bench-berth-ctr-run: failed: $cmd" >&2; exit 1; }; done
done
json=$tmp/bench.json
hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --export-json "$json" -n berth "$ocmd" -n containerd "$rcmd"

# --- 2. N detached containers -------------------------------------------------------
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
now() { date +%s.%N; }

t0=$(now)
for i in $(seq "$N"); do bctr run -d "$image" "bb-$i" sleep 100000 >/dev/null; done
t1=$(now)
sleep 1
b_sup=$(rss_kb "$sup_pid")
b_shims=0
for f in "$tmp"/brun/shims/*/shim.pid; do b_shims=$((b_shims + $(rss_kb "$(cat "$f")"))); done
b_n=$(bctr tasks ls | awk 'NR > 1 && $3 == "RUNNING"' | wc -l)
t2=$(now)
for i in $(seq "$N"); do bctr tasks rm -f "bb-$i" >/dev/null; bctr containers rm "bb-$i"; done
t3=$(now)

t4=$(now)
for i in $(seq "$N"); do
    cctr run -d --fifo-dir "$tmp/fifo" --runc-binary "$PEER_RUNTIME" --runc-root "$tmp/rt-peer" "$image" "cc-$i" sleep 100000 >/dev/null
done
t5=$(now)
sleep 1
c_sup=$(rss_kb "$ctd_pid")
c_shims=0
for p in $(pgrep -f -- "-address $sock"); do c_shims=$((c_shims + $(rss_kb "$p"))); done
c_n=$(cctr task ls | grep -c RUNNING || true)
t6=$(now)
for i in $(seq "$N"); do cctr task rm -f "cc-$i" >/dev/null; cctr container rm "cc-$i"; done
t7=$(now)

"$PY" - "$json" "$N" "$t0" "$t1" "$t2" "$t3" "$t4" "$t5" "$t6" "$t7" "$b_sup" "$b_shims" "$b_n" "$c_sup" "$c_shims" "$c_n" <<'EOF'
import json, sys
a = sys.argv
res = {r["command"]: r for r in json.load(open(a[1]))["results"]}
n = int(a[2])
t = [float(x) for x in a[3:11]]
b_sup, b_shims, b_n, c_sup, c_shims, c_n = (int(x) for x in a[11:17])
o, r = res["berth"]["mean"], res["containerd"]["mean"]
def row(what, ours, peer, unit):
    print(f"{what:<44} berth {ours:10.1f} {unit:<3} containerd {peer:10.1f} {unit:<3} ratio {ours / peer:.3f}")
row("run --rm true (mean)", o * 1000, r * 1000, "ms")
row(f"{n} detached: start all", (t[1] - t[0]) * 1000, (t[5] - t[4]) * 1000, "ms")
row(f"{n} detached: remove all", (t[3] - t[2]) * 1000, (t[7] - t[6]) * 1000, "ms")
row(f"daemon RSS with {n} tasks", b_sup / 1024, c_sup / 1024, "MiB")
row(f"shims' total RSS ({b_n} / {c_n} running)", b_shims / 1024, c_shims / 1024, "MiB")
EOF
exit 0
