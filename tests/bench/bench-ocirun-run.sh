#!/bin/bash
# Benchmark `<runtime> run` of a trivial container: ocirun vs runc.
#
#   tests/bench/bench-ocirun-run.sh            # ocirun = build/ocirun/ocirun
#   OCIRUN=runc RUNS=20 tests/bench/bench-ocirun-run.sh
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
# `$PEER_RUNTIME spec`, changed in exactly two places: process.args = ["true"]
# and process.terminal = false.  The default spec (terminal true, args ["sh"])
# needs an interactive terminal and cannot run under hyperfine.
#
# Each timed command is `<rt> --root <dir> run -b <bundle> <id>`.  hyperfine
# repeats the identical command line, so the id must be reusable: `run`
# deletes the container (state dir, cgroups) when the process exits, which
# frees the id for the next iteration (checked below before timing).
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_runtimes bench-ocirun-run
RUNS=${RUNS:-50}
WARMUP=${WARMUP:-5}

tmp=$(mktemp -d /tmp/bench-ocirun.XXXXXX)
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
bench_bundle "$bundle" true

ocmd="$ocirun --root $tmp/o run -b $bundle $oid"
rcmd="$peer --root $tmp/r run -b $bundle $rid"

# --- sanity: both succeed twice with the same id (run frees the id) --------
for cmd in "$ocmd" "$rcmd"; do
    for _ in 1 2; do
        if ! $cmd </dev/null; then
            echo "bench-ocirun-run: command failed: $cmd" >&2
            exit 1
        fi
    done
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
