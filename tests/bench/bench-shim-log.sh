#!/bin/bash
# Log throughput: a container writes SIZE_MB MiB of 100-byte lines to
# stdout; berth-shim turns them into Docker's json-file log. Reports the
# wall time from Start to the answered Wait (every line written), MB/s,
# and the shim's CPU time. For comparison, if installed: podman's conmon
# (k8s-file log) on the same output, and the generator alone (its output
# to /dev/null inside the container) as the ceiling.
#
#   tests/bench/bench-shim-log.sh            # 1024 MiB
#   SIZE_MB=256 BUILD=build tests/bench/bench-shim-log.sh
#
# Environment: BUILD (default <repo>/build), RUNTIME (default that build's
# ocirun), SIZE_MB (default 1024), LOG_DIR (where the logs go; default a
# temp dir under /var/tmp, on disk).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
BUILD=$(cd "${BUILD:-$repo/build}" && pwd)
SHIM=$BUILD/shim/berth-shim
SHIMCTL=$BUILD/shim/berth-shimctl
OCIRUN=$BUILD/ocirun/ocirun
RUNTIME=${RUNTIME:-$OCIRUN}
RUNC=$(command -v runc || echo /usr/sbin/runc)
SIZE_MB=${SIZE_MB:-1024}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
for b in "$SHIM" "$SHIMCTL" "$OCIRUN"; do
    [ -x "$b" ] || { echo "bench-shim-log: $b not built" >&2; exit 1; }
done

tmp=$(mktemp -d /tmp/bench-log.XXXXXX)
logs=${LOG_DIR:-$(mktemp -d /var/tmp/bench-log.XXXXXX)}
cleanup() {
    set +e
    "$SHIMCTL" --state-dir "$tmp/s" delete --force >/dev/null 2>&1
    "$SHIMCTL" --state-dir "$tmp/s" shutdown >/dev/null 2>&1
    "$RUNC" --root "$tmp/croot" delete --force bench-log-c >/dev/null 2>&1
    "$OCIRUN" --root "$tmp/oroot" delete --force bench-log-o >/dev/null 2>&1
    for mp in /sys/fs/cgroup/*/berth-bench-log /sys/fs/cgroup/berth-bench-log; do
        [ -d "$mp" ] && find "$mp" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
    rm -rf "$tmp"
    [ -n "${LOG_DIR:-}" ] || rm -rf "$logs"
}
trap cleanup EXIT

# The generator: `cat` of a 16 MiB file of 100-byte lines, SIZE_MB/16 times
# (busybox `yes | head` tops out near 170 MB/s here; cat does not limit).
reps=$(( (SIZE_MB + 15) / 16 ))
SIZE_MB=$((reps * 16))
mkbundle() { # dir id redirect
    local b=$1
    mkdir -p "$b/rootfs/bin"
    cp /bin/busybox "$b/rootfs/bin/busybox"
    for applet in $(/bin/busybox --list); do
        [ "$applet" = busybox ] || [ -e "$b/rootfs/bin/$applet" ] || ln -s busybox "$b/rootfs/bin/$applet"
    done
    mkdir -p "$b/rootfs/"{proc,sys,dev,tmp,etc,root}
    "$PY" -c "import sys; sys.stdout.write(('x' * 99 + '\\n') * (16 * 1024 * 1024 // 100))" >"$b/rootfs/lines"
    (cd "$b" && "$RUNC" spec)
    "$PY" - "$b/config.json" "$2" "i=0; while [ \$i -lt $reps ]; do cat /lines; i=\$((i+1)); done $3" <<'PYEOF'
import json, sys
path, cid, script = sys.argv[1:4]
c = json.load(open(path))
c["process"]["args"] = ["sh", "-c", script]
c["process"]["terminal"] = False
c["linux"]["cgroupsPath"] = f"/berth-bench-log/{cid}"
json.dump(c, open(path, "w"), indent="\t")
PYEOF
}
cpu_s() { # pid -> utime+stime in seconds
    awk -v hz="$(getconf CLK_TCK)" '{sub(/.*\) /, ""); printf "%.2f", ($12 + $13) / hz}' "/proc/$1/stat"
}
now() { date +%s.%N; }
rate() { "$PY" -c "import sys; print(f'{$SIZE_MB / ($2 - $1):.0f}')" "$@"; }
report() { # name t0 t1 cpu
    printf '%-22s %8s MiB %8.2f s %8s MB/s  CPU %s s\n' "$1" "$SIZE_MB" \
        "$("$PY" -c "print($3 - $2)")" "$("$PY" -c "print(f'{$SIZE_MB / ($3 - $2):.0f}')")" "$4"
}

# --- the generator alone -----------------------------------------------------
mkbundle "$tmp/bo" bench-log-o ">/dev/null"
t0=$(now)
"$OCIRUN" --root "$tmp/oroot" run -b "$tmp/bo" bench-log-o </dev/null
t1=$(now)
report "generator (/dev/null)" "$t0" "$t1" "-"

# --- berth-shim --------------------------------------------------------------
mkbundle "$tmp/bs" bench-log-s ""
"$SHIM" --id bench-log-s --bundle "$tmp/bs" --runtime "$RUNTIME" --runtime-root "$tmp/sroot" \
    --state-dir "$tmp/s" --log-path "$logs/shim-json.log"
spid=$(cat "$tmp/s/shim.pid")
"$SHIMCTL" --state-dir "$tmp/s" create >/dev/null
c0=$(cpu_s "$spid")
t0=$(now)
"$SHIMCTL" --state-dir "$tmp/s" start >/dev/null
"$SHIMCTL" --state-dir "$tmp/s" wait >/dev/null
t1=$(now)
c1=$(cpu_s "$spid")
n=$(wc -l <"$logs/shim-json.log")
report "berth-shim json-file" "$t0" "$t1" "$("$PY" -c "print(f'{$c1 - $c0:.2f}')")"
echo "  $n log lines, $(du -m "$logs/shim-json.log" | cut -f1) MiB on disk"
rm -f "$logs/shim-json.log"

# --- conmon ------------------------------------------------------------------
if command -v conmon >/dev/null; then
    mkbundle "$tmp/bc" bench-log-c ""
    mkdir -p "$tmp/cexit" "$tmp/csock"
    conmon --api-version 1 -c bench-log-c -u bench-log-c -r "$RUNC" -b "$tmp/bc" -p "$tmp/cpid" \
        -n bench-log-c --exit-dir "$tmp/cexit" --socket-dir-path "$tmp/csock" \
        -l "k8s-file:$logs/conmon.log" --conmon-pidfile "$tmp/conmon.pid" --runtime-arg "--root=$tmp/croot"
    for _ in $(seq 200); do [ -s "$tmp/cpid" ] && break; sleep 0.02; done
    cpid=$(cat "$tmp/conmon.pid")
    c0=$(cpu_s "$cpid")
    t0=$(now)
    "$RUNC" --root "$tmp/croot" start bench-log-c
    c1=$c0
    # conmon exits once the exit file is written: sample its CPU until then
    while [ ! -e "$tmp/cexit/bench-log-c" ]; do
        c=$(cpu_s "$cpid" 2>/dev/null) && c1=$c
        sleep 0.05
    done
    t1=$(now)
    report "conmon k8s-file" "$t0" "$t1" ">= $("$PY" -c "print(f'{$c1 - $c0:.2f}')")"
    rm -f "$logs/conmon.log"
fi
