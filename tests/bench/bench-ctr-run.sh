#!/bin/bash
# Benchmark `ctr run --rm` of a busybox `true` through a private containerd
# (io.containerd.runc.v2 shim): the shim driving ocirun vs driving runc.
#
#   tests/bench/bench-ctr-run.sh            # ocirun = build-ci/ocirun/ocirun or build/...
#   OCIRUN=runc RUNS=10 tests/bench/bench-ctr-run.sh   # check the script itself
#
# Environment:
#   OCIRUN        runtime under test (default: <repo>/build-ci/ocirun/ocirun,
#                 else <repo>/build/ocirun/ocirun)
#   PEER_RUNTIME  reference runtime (default: runc)
#   RUNS          hyperfine runs per command (default: 30)
#   WARMUP        hyperfine warmup runs (default: 3)
#   JSON_OUT      where to keep hyperfine's JSON export (default: temp dir)
#   IGNORE_FAILURES=1  time even if some runs fail (hyperfine -i); by default
#                 a failed run is an error, as it is for the user of ctr
#
# The containerd is started here with its own root, state, sockets and
# namespace under a temp dir, and torn down on exit (containerd, shims,
# mounts, the namespace's cgroups).  The image is built from /bin/busybox
# by tests/dropin/mkimage.py and imported with `ctr image import`.
#
# Each timed command is
#   ctr --address S -n NS run --rm --runc-binary RT --runc-root R --fifo-dir F IMAGE ID true
# which is the whole client path: container + snapshot create, shim start,
# runtime create/start, wait, runtime delete, shim exit, snapshot removal.
# `--rm` frees the id, so hyperfine can repeat the same command line.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_runtimes bench-ctr-run
RUNS=${RUNS:-30}
WARMUP=${WARMUP:-3}
hf_ignore=()
[ "${IGNORE_FAILURES:-0}" = 1 ] && hf_ignore=(-i)
for tool in hyperfine containerd ctr containerd-shim-runc-v2; do
    command -v "$tool" >/dev/null || { echo "bench-ctr-run: $tool not installed" >&2; exit 1; }
done

tmp=$(mktemp -d /tmp/bench-ctr.XXXXXX)
ns="bench-ctr-$$"
sock=$tmp/ctd.sock
ctd_pid=
created_run_containerd=
[ -e /run/containerd ] || created_run_containerd=1

# shellcheck disable=SC2317  # called through the EXIT trap
cleanup() {
    set +e
    if [ -n "$ctd_pid" ]; then
        for t in $(ctr --address "$sock" -n "$ns" task ls -q 2>/dev/null); do
            ctr --address "$sock" -n "$ns" task rm -f "$t" >/dev/null 2>&1
        done
        for c in $(ctr --address "$sock" -n "$ns" container ls -q 2>/dev/null); do
            ctr --address "$sock" -n "$ns" container rm "$c" >/dev/null 2>&1
        done
        kill "$ctd_pid" 2>/dev/null
        for _ in $(seq 100); do kill -0 "$ctd_pid" 2>/dev/null || break; sleep 0.05; done
        kill -9 "$ctd_pid" 2>/dev/null
    fi
    # shims of this containerd (their argv names our socket)
    for p in $(pgrep -f -- "-address $sock" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
    grep -F " $tmp" /proc/self/mountinfo | awk '{print $5}' | sort -r |
        while read -r m; do umount -l "$m"; done
    for d in /sys/fs/cgroup/*/"$ns" /sys/fs/cgroup/"$ns"; do
        [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
    if [ -n "$created_run_containerd" ]; then
        rmdir /run/containerd/s /run/containerd/fifo /run/containerd 2>/dev/null
    fi
    rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT

# --- private containerd ----------------------------------------------------
bench_containerd_start "$tmp" "$sock"

image=localhost/berth-busybox:latest
"$PY" "$repo/tests/dropin/mkimage.py" "$tmp/image.tar" >/dev/null
ctr --address "$sock" -n "$ns" image import "$tmp/image.tar" >/dev/null

mkdir -p "$tmp/fifo" "$tmp/rt-ocirun" "$tmp/rt-peer"
base="ctr --address $sock -n $ns run --rm --fifo-dir $tmp/fifo"
ocmd="$base --runc-binary $ocirun --runc-root $tmp/rt-ocirun $image bench-o true"
rcmd="$base --runc-binary $peer --runc-root $tmp/rt-peer $image bench-r true"

# --- sanity: both succeed twice with the same id (--rm frees the id) ---------
for cmd in "$ocmd" "$rcmd"; do
    for _ in 1 2; do
        if ! $cmd </dev/null; then
            echo "bench-ctr-run: command failed: $cmd" >&2
            [ ${#hf_ignore[@]} -gt 0 ] || exit 1
        fi
    done
done

# --- benchmark ----------------------------------------------------------------
json=${JSON_OUT:-$tmp/bench.json}
hyperfine -N "${hf_ignore[@]}" --warmup "$WARMUP" --runs "$RUNS" --export-json "$json" \
    -n ocirun "$ocmd" \
    -n runc "$rcmd"

"$PY" - "$json" <<'EOF'
import json, sys
res = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
o, r = res["ocirun"]["mean"], res["runc"]["mean"]
print(f"ctr run --rm, ocirun mean: {o * 1000:.2f} ms")
print(f"ctr run --rm, runc mean: {r * 1000:.2f} ms")
print(f"ratio ocirun/runc: {o / r:.3f}")
EOF
exit 0
