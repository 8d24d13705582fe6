#!/bin/bash
# Memory of idle container monitors, each with a running container
# (`sleep`): berth-shim, podman's conmon (if installed) and containerd's
# containerd-shim-runc-v2 (if containerd and ctr are installed; a private
# containerd is started for it). N monitors of each kind run at once, so
# that shared text shows in PSS as it does on a busy host.
#
#   tests/bench/bench-shim-rss.sh
#   BUILD=build N=5 tests/bench/bench-shim-rss.sh
#
# Environment: BUILD (default <repo>/build), RUNTIME for berth-shim
# (default that build's ocirun; conmon and containerd use runc), N
# (default 3), SETTLE seconds before measuring (default 1).
#
# Prints, per kind: mean RSS, PSS and private (anonymous) memory per
# monitor, its thread count, and berth-shim's RSS ratio to each.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
BUILD=$(cd "${BUILD:-$repo/build}" && pwd)
SHIM=$BUILD/shim/berth-shim
SHIMCTL=$BUILD/shim/berth-shimctl
RUNTIME=${RUNTIME:-$BUILD/ocirun/ocirun}
RUNC=$(command -v runc || echo /usr/sbin/runc)
N=${N:-3}
SETTLE=${SETTLE:-1}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

for b in "$SHIM" "$SHIMCTL" "$RUNTIME"; do
    [ -x "$b" ] || { echo "bench-shim-rss: $b not built" >&2; exit 1; }
done
[ -x /bin/busybox ] || { echo "bench-shim-rss: /bin/busybox (busybox-static) required" >&2; exit 1; }

tmp=$(mktemp -d /tmp/bench-rss.XXXXXX)
containerd_pid=""
cleanup() {
    set +e
    for i in $(seq "$N"); do
        "$SHIMCTL" --state-dir "$tmp/shim/s$i" delete --force >/dev/null 2>&1
        "$SHIMCTL" --state-dir "$tmp/shim/s$i" shutdown >/dev/null 2>&1
        "$RUNC" --root "$tmp/conmon/root" delete --force "rss-c$i" >/dev/null 2>&1
        if [ -n "$containerd_pid" ]; then
            ctr -a "$tmp/ctd/c.sock" task kill -s KILL "rss-d$i" >/dev/null 2>&1
        fi
    done
    if [ -n "$containerd_pid" ]; then
        sleep 0.5
        for i in $(seq "$N"); do
            ctr -a "$tmp/ctd/c.sock" task delete "rss-d$i" >/dev/null 2>&1
            ctr -a "$tmp/ctd/c.sock" container delete "rss-d$i" >/dev/null 2>&1
        done
        kill "$containerd_pid" 2>/dev/null
        wait "$containerd_pid" 2>/dev/null
    fi
    for mp in /sys/fs/cgroup/*/berth-bench-rss /sys/fs/cgroup/berth-bench-rss; do
        [ -d "$mp" ] && find "$mp" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

# --- a busybox bundle running sleep ------------------------------------------
mkbundle() { # dir id
    local b=$1
    mkdir -p "$b/rootfs/bin"
    cp /bin/busybox "$b/rootfs/bin/busybox"
    for applet in $(/bin/busybox --list); do
        [ "$applet" = busybox ] || [ -e "$b/rootfs/bin/$applet" ] || ln -s busybox "$b/rootfs/bin/$applet"
    done
    mkdir -p "$b/rootfs/"{proc,sys,dev,tmp,etc,root}
    (cd "$b" && "$RUNC" spec)
    "$PY" - "$b/config.json" "$2" <<'PYEOF'
import json, sys
path, cid = sys.argv[1], sys.argv[2]
c = json.load(open(path))
c["process"]["args"] = ["sleep", "100000"]
c["process"]["terminal"] = False
c["linux"]["cgroupsPath"] = f"/berth-bench-rss/{cid}"
json.dump(c, open(path, "w"), indent="\t")
PYEOF
}

# mem PID...: "rss_kb pss_kb anon_kb threads" summed over the pids
mem() {
    local rss=0 pss=0 anon=0 thr=0
    for p in "$@"; do
        rss=$((rss + $(awk '/^VmRSS:/{print $2}' "/proc/$p/status")))
        anon=$((anon + $(awk '/^RssAnon:/{print $2}' "/proc/$p/status")))
        thr=$((thr + $(awk '/^Threads:/{print $2}' "/proc/$p/status")))
        pss=$((pss + $(awk '/^Pss:/{print $2}' "/proc/$p/smaps_rollup")))
    done
    echo "$rss $pss $anon $thr"
}

results=$tmp/results
: >"$results"
record() { # name pids...
    local name=$1
    shift
    sleep "$SETTLE"
    echo "$name $# $(mem "$@")" >>"$results"
}

# --- berth-shim ----------------------------------------------------------------
pids=()
for i in $(seq "$N"); do
    mkbundle "$tmp/shim/b$i" "rss-s$i"
    "$SHIM" --id "rss-s$i" --bundle "$tmp/shim/b$i" --runtime "$RUNTIME" --runtime-root "$tmp/shim/root" \
        --state-dir "$tmp/shim/s$i" --log-path "$tmp/shim/ctr$i.log"
    "$SHIMCTL" --state-dir "$tmp/shim/s$i" create >/dev/null
    "$SHIMCTL" --state-dir "$tmp/shim/s$i" start >/dev/null
    pids+=("$(cat "$tmp/shim/s$i/shim.pid")")
done
record berth-shim "${pids[@]}"

# --- conmon --------------------------------------------------------------------
if command -v conmon >/dev/null; then
    pids=()
    mkdir -p "$tmp/conmon/exit" "$tmp/conmon/sock"
    for i in $(seq "$N"); do
        mkbundle "$tmp/conmon/b$i" "rss-c$i"
        conmon --api-version 1 -c "rss-c$i" -u "rss-c$i" -r "$RUNC" -b "$tmp/conmon/b$i" \
            -p "$tmp/conmon/pid$i" -n "rss-c$i" --exit-dir "$tmp/conmon/exit" \
            --socket-dir-path "$tmp/conmon/sock" -l "k8s-file:$tmp/conmon/ctr$i.log" \
            --conmon-pidfile "$tmp/conmon/conmon$i.pid" --runtime-arg "--root=$tmp/conmon/root"
        # conmon returns before runc create is done
        for _ in $(seq 200); do [ -s "$tmp/conmon/pid$i" ] && break; sleep 0.02; done
        "$RUNC" --root "$tmp/conmon/root" start "rss-c$i"
        pids+=("$(cat "$tmp/conmon/conmon$i.pid")")
    done
    record conmon "${pids[@]}"
else
    echo "bench-shim-rss: conmon not installed; skipped" >&2
fi

# --- containerd-shim-runc-v2 ----------------------------------------------------
if command -v containerd >/dev/null && command -v ctr >/dev/null; then
    mkdir -p "$tmp/ctd"
    cat >"$tmp/ctd/config.toml" <<TOML
version = 2
root = "$tmp/ctd/root"
state = "$tmp/ctd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$tmp/ctd/c.sock"
[ttrpc]
  address = "$tmp/ctd/c.sock.ttrpc"
TOML
    containerd --config "$tmp/ctd/config.toml" >"$tmp/ctd/log" 2>&1 &
    containerd_pid=$!
    for _ in $(seq 100); do [ -S "$tmp/ctd/c.sock" ] && break; sleep 0.05; done
    pids=()
    for i in $(seq "$N"); do
        mkbundle "$tmp/ctd/b$i" "rss-d$i"
        ctr -a "$tmp/ctd/c.sock" run -d --runtime io.containerd.runc.v2 --rootfs "$tmp/ctd/b$i/rootfs" \
            "rss-d$i" /bin/busybox sleep 100000 >/dev/null
    done
    for p in $(pgrep -f "containerd-shim-runc-v2 .*-address $tmp/ctd/c.sock"); do pids+=("$p"); done
    record containerd-shim-runc-v2 "${pids[@]}"
else
    echo "bench-shim-rss: containerd/ctr not installed; skipped" >&2
fi

"$PY" - "$results" <<'PYEOF'
import sys
rows = {}
for line in open(sys.argv[1]):
    name, n, rss, pss, anon, thr = line.split()
    n = int(n)
    rows[name] = (n, int(rss) / n / 1024, int(pss) / n / 1024, int(anon) / n / 1024, int(thr) / n)
print(f"{'per monitor (mean)':28} {'n':>3} {'RSS MB':>8} {'PSS MB':>8} {'anon MB':>8} {'threads':>8}")
for name, (n, rss, pss, anon, thr) in rows.items():
    print(f"{name:28} {n:3d} {rss:8.2f} {pss:8.2f} {anon:8.2f} {thr:8.1f}")
b = rows["berth-shim"]
for name, r in rows.items():
    if name != "berth-shim":
        print(f"berth-shim / {name}: RSS {b[1] / r[1]:.2f}, PSS {b[2] / r[2]:.2f}")
PYEOF
