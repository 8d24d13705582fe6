#!/bin/bash
# The shim's overhead: Create + Start + Wait + Delete of a busybox `true`
# container through berth-shim (spawning the shim, then one client that
# makes the five calls on one connection, as a supervisor would) beside
# `ocirun run` of the same bundle, in one hyperfine run.
#
#   tests/bench/bench-shim-overhead.sh
#   BUILD=build-release RUNS=30 tests/bench/bench-shim-overhead.sh
#
# Environment: BUILD (default <repo>/build: shim/berth-shim,
# shim/berth-shimctl, ocirun/ocirun), RUNTIME (the shim's runtime, default
# that ocirun), RUNS (default 30), WARMUP (default 3), JSON_OUT.
#
# Both commands run through hyperfine's shell, so its cost is the same on
# both sides. Prints both means and the ratio.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
BUILD=$(cd "${BUILD:-$repo/build}" && pwd)
SHIM=$BUILD/shim/berth-shim
SHIMCTL=$BUILD/shim/berth-shimctl
OCIRUN=$BUILD/ocirun/ocirun
RUNTIME=${RUNTIME:-$OCIRUN}
RUNS=${RUNS:-30}
WARMUP=${WARMUP:-3}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

for b in "$SHIM" "$SHIMCTL" "$OCIRUN"; do
    [ -x "$b" ] || { echo "bench-shim-overhead: $b not built" >&2; exit 1; }
done
command -v hyperfine >/dev/null || { echo "bench-shim-overhead: hyperfine not installed" >&2; exit 1; }
[ -x /bin/busybox ] || { echo "bench-shim-overhead: /bin/busybox (busybox-static) required" >&2; exit 1; }

tmp=$(mktemp -d /tmp/bench-shim.XXXXXX)
sid="bench-s-$$"
oid="bench-o-$$"
cleanup() {
    "$SHIMCTL" --state-dir "$tmp/state" shutdown --now >/dev/null 2>&1 || true
    "$RUNTIME" --root "$tmp/rs" delete --force "$sid" >/dev/null 2>&1 || true
    "$OCIRUN" --root "$tmp/ro" delete --force "$oid" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT

bundle=$tmp/bundle
mkdir -p "$bundle/rootfs/bin"
cp /bin/busybox "$bundle/rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || [ -e "$bundle/rootfs/bin/$applet" ] ||
        ln -s busybox "$bundle/rootfs/bin/$applet"
done
mkdir -p "$bundle/rootfs/"{proc,sys,dev,tmp,etc,root}
(cd "$bundle" && "$OCIRUN" spec)
"$PY" - "$bundle/config.json" <<'PYEOF'
import json, sys
path = sys.argv[1]
c = json.load(open(path))
c["process"]["args"] = ["true"]
c["process"]["terminal"] = False
json.dump(c, open(path, "w"), indent="\t")
PYEOF

scmd="$SHIM --id $sid --bundle $bundle --runtime $RUNTIME --runtime-root $tmp/rs --state-dir $tmp/state --log-path $tmp/ctr.log && $SHIMCTL --state-dir $tmp/state lifecycle >/dev/null"
ocmd="$OCIRUN --root $tmp/ro run -b $bundle $oid"

# sanity: both work twice with the same id (each leaves nothing behind)
for cmd in "$scmd" "$ocmd"; do
    for _ in 1 2; do
        if ! sh -c "$cmd" </dev/null; then
            echo "bench-shim-overhead: command failed: $cmd" >&2
            exit 1
        fi
    done
done
# the shim's state dir is gone once it has shut down: wait for the lock
for _ in $(seq 50); do [ -e "$tmp/state" ] || break; sleep 0.02; done

json=${JSON_OUT:-$tmp/bench.json}
hyperfine --warmup "$WARMUP" --runs "$RUNS" --export-json "$json" \
    -n shim "$scmd" \
    -n ocirun-run "$ocmd"

"$PY" - "$json" <<'PYEOF'
import json, sys
res = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
s, o = res["shim"]["mean"], res["ocirun-run"]["mean"]
print(f"shim create+start+wait+delete mean: {s * 1000:.2f} ms")
print(f"ocirun run mean: {o * 1000:.2f} ms")
print(f"overhead: {(s - o) * 1000:.2f} ms, ratio shim/ocirun-run: {s / o:.3f}")
PYEOF
