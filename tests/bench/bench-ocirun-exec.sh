#!/bin/bash
# Benchmark `<runtime> exec` of `true` into a running container: ocirun vs runc.
#
#   tests/bench/bench-ocirun-exec.sh           # ocirun = build/ocirun/ocirun
#   OCIRUN=runc RUNS=20 tests/bench/bench-ocirun-exec.sh
#
# Environment:
#   OCIRUN        runtime under test (default: <repo>/build/ocirun/ocirun)
#   PEER_RUNTIME  reference runtime (default: runc)
#   RUNS          hyperfine runs per command (default: 50)
#   WARMUP        hyperfine warmup runs (default: 5)
#   JSON_OUT      where to keep hyperfine's JSON export (default: temp dir,
#                 removed on exit)
#
# The bundle is a busybox rootfs (from /bin/busybox) with config.json from
# `$PEER_RUNTIME spec`, changed in exactly two places: process.args = ["sleep", "100000"]
# and process.terminal = false.  The default spec (terminal true, args ["sh"])
# needs an interactive terminal and cannot run under hyperfine.
#
# Each timed command is `<rt> --root <dir> exec <id> true` against a container
# started once (`run -d` of `sleep`), deleted by the cleanup trap.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
OCIRUN=${OCIRUN:-$repo/build/ocirun/ocirun}
PEER_RUNTIME=${PEER_RUNTIME:-runc}
RUNS=${RUNS:-50}
WARMUP=${WARMUP:-5}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

resolve() { if [[ $1 == */* ]]; then readlink -f -- "$1"; else command -v -- "$1" || true; fi; }
ocirun=$(resolve "$OCIRUN")
peer=$(resolve "$PEER_RUNTIME")
for pair in "OCIRUN:$ocirun:$OCIRUN" "PEER_RUNTIME:$peer:$PEER_RUNTIME"; do
    IFS=: read -r var path given <<<"$pair"
    if [ -z "$path" ] || [ ! -x "$path" ]; then
        echo "bench-ocirun-exec: $var runtime not found or not executable: $given" >&2
        exit 1
    fi
done
command -v hyperfine >/dev/null || { echo "bench-ocirun-exec: hyperfine not installed" >&2; exit 1; }
[ -x /bin/busybox ] || { echo "bench-ocirun-exec: /bin/busybox (busybox-static) required" >&2; exit 1; }

tmp=$(mktemp -d /tmp/bench-ocirun-exec.XXXXXX)
oid="bench-o-$$"
rid="bench-r-$$"
cleanup() {
    "$ocirun" --root "$tmp/o" delete --force "$oid" >/dev/null 2>&1 || true
    "$peer" --root "$tmp/r" delete --force "$rid" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT

# --- bundle ---------------------------------------------------------------
bundle=$tmp/bundle
mkdir -p "$bundle/rootfs/bin"
cp /bin/busybox "$bundle/rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || [ -e "$bundle/rootfs/bin/$applet" ] ||
        ln -s busybox "$bundle/rootfs/bin/$applet"
done
mkdir -p "$bundle/rootfs/"{proc,sys,dev,tmp,etc,root}
(cd "$bundle" && "$peer" spec)
"$PY" - "$bundle/config.json" <<'EOF'
import json, sys
path = sys.argv[1]
c = json.load(open(path))
c["process"]["args"] = ["sleep", "100000"]
c["process"]["terminal"] = False
json.dump(c, open(path, "w"), indent="\t")
EOF

# one long-running container per runtime; the timed command execs `true` in it
"$ocirun" --root "$tmp/o" run -d -b "$bundle" "$oid" </dev/null
"$peer" --root "$tmp/r" run -d -b "$bundle" "$rid" </dev/null
ocmd="$ocirun --root $tmp/o exec $oid true"
rcmd="$peer --root $tmp/r exec $rid true"
for cmd in "$ocmd" "$rcmd"; do
    if ! $cmd </dev/null; then
        echo "bench-ocirun-exec: command failed: $cmd" >&2
        exit 1
    fi
done

# --- benchmark ------------------------------------------------------------
json=${JSON_OUT:-$tmp/bench.json}
hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --export-json "$json" \
    -n ocirun "$ocmd" \
    -n runc "$rcmd"

"$PY" - "$json" <<'EOF'
import json, sys
res = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
o, r = res["ocirun"]["mean"], res["runc"]["mean"]
print(f"ocirun mean: {o * 1000:.2f} ms")
print(f"runc mean: {r * 1000:.2f} ms")
print(f"ratio ocirun/runc: {o / r:.3f}")
EOF
exit 0
