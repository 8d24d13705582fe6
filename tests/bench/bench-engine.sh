#!/bin/bash
# berth-engine + berth-supervisor vs dockerd (Debian's docker.io, started
# here with its own data root), driven by the same docker CLI (Debian's,
# /usr/bin/docker) in the same run:
#   1. idle RSS: engine + supervisor vs dockerd + its containerd (after
#      one pull each);
#   2. `docker run --rm IMG true` (hyperfine, mean);
#   3. 50 x `docker run -d IMG sleep 600`, then `docker rm -f` of all
#      (totals);
#   4. `docker ps -a` with PS_N (default 500) created containers, beside
#      `docker version` (the client's own floor).
# Containers use --network none on both sides (dockerd runs with
# --bridge=none; bench-engine-net.sh measures bridge networking). Both exec
# roots are on a tmpfs, as /run is on a usual host (BENCH_EXEC_TMPFS=0: on
# disk).
# Targets (issue 7): run --rm <= 1/5 of dockerd's time; 50 x run -d and
# rm -f <= 1/5; idle RSS <= 16 MB.
#
# BUILD (default build/, configure it -Dsanitize=false) gives the berth
# binaries; RUNS (default 20) hyperfine runs; N_DETACHED (50); PS_N (500);
# ROUNDS (5): the timed runs of 2 and 3 are split into rounds that
# alternate the two daemons, so that the host's noise falls on both alike.
# Needs root, docker-registry, skopeo, hyperfine, dockerd.
set -euo pipefail

# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BUILD=$(cd "${BUILD:-$repo/build}" && pwd)
RUNS=${RUNS:-20}
N_DETACHED=${N_DETACHED:-50}
ROUNDS=${ROUNDS:-5}
PS_N=${PS_N:-500}
REGISTRY_BIN=/usr/bin/docker-registry

die() { echo "bench-engine: $*" >&2; exit 1; }
for b in supervisor/berth-supervisor engine/berth-engine shim/berth-shim ocirun/ocirun; do
    [ -x "$BUILD/$b" ] || die "$BUILD/$b not built"
done
[ -x "$REGISTRY_BIN" ] || die "docker-registry not installed"
command -v skopeo >/dev/null || die "skopeo not installed"
command -v hyperfine >/dev/null || die "hyperfine not installed"
command -v dockerd >/dev/null && [ -x "$DOCKER_CLI" ] || die "dockerd or $DOCKER_CLI not installed"
[ "$(id -u)" = 0 ] || die "run as root"
if ldd "$BUILD/engine/berth-engine" | grep -q libasan; then
    die "$BUILD is a sanitizer build: configure one with -Dsanitize=false"
fi

tmp=$(mktemp -d /var/tmp/bench-engine.XXXXXX)
reg_pid="" sup_pid="" eng_pid=""
created_dirs=()
for d in "${bench_dockerd_host_dirs[@]}"; do [ -e "$d" ] || created_dirs+=("$d"); done
br=$tmp/berth
# the exec root holds the shims' unix sockets (108 bytes at most): short
brun=$(mktemp -d /tmp/bbe.XXXXXX)
# Both exec roots (run-time state: bundles, shim and runtime state, sockets)
# on a tmpfs, as /run is on a usual host (not on this VM, where /run is on
# the root ext4); BENCH_EXEC_TMPFS=0 keeps them on disk.
export BENCH_EXEC_TMPFS=${BENCH_EXEC_TMPFS:-1}
if [ "$BENCH_EXEC_TMPFS" = 1 ]; then mount -t tmpfs -o mode=0711 bench-exec "$brun"; fi

# shellcheck disable=SC2317  # called through the EXIT trap
cleanup() {
    set +e
    if [ -n "$eng_pid" ]; then berth_cli rm -f $(berth_cli ps -aq) >/dev/null 2>&1; fi
    bench_dockerd_stop
    for p in $eng_pid $sup_pid $reg_pid; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    for p in $(pgrep -f -- "$brun/" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
    grep -F " $tmp/" /proc/self/mountinfo | awk '{print $5}' | sort -r | while read -r m; do umount -l "$m"; done
    for d in "${created_dirs[@]}"; do rmdir "$d" 2>/dev/null; done
    grep -F " $brun/" /proc/self/mountinfo | awk '{print $5}' | sort -r | while read -r m; do umount -l "$m"; done
    if mountpoint -q "$brun"; then umount -l "$brun"; fi
    rm -rf --one-file-system "$tmp" "$brun"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the registry, the image, both daemons --------------------------------------
bench_registry_busybox "$tmp/reg"
bench_berth_start "$BUILD" "$br" "$brun"
bench_dockerd_start "$tmp/dk" --insecure-registry "$host"
ctd=$(pgrep -P "$dk_pid" -x containerd || true)

berth_cli pull -q "$img" >/dev/null
dockerd_cli pull -q "$img" >/dev/null
berth_cli run --rm --network none "$img" true
dockerd_cli run --rm --network none "$img" true
sleep 2

# --- 1. idle RSS ----------------------------------------------------------------
rss_berth=$(bench_rss_kb "$eng_pid" "$sup_pid")
# the supervisor keeps a spare shim for 10 s after a start: shown apart
for f in "$brun"/shims/.spare-*/shim.pid; do
    [ -f "$f" ] && echo "bench-engine: a spare shim (kept 10 s after the last start) $(bench_rss_kb "$(cat "$f")") kB RSS"
done
# shellcheck disable=SC2086  # $ctd: none or one pid
rss_docker=$(bench_rss_kb "$dk_pid" $ctd)

# --- 2. run --rm -----------------------------------------------------------------
# In ROUNDS rounds that alternate berth, dockerd and the client's floor, so
# that the host's slower and quieter spells fall on all three alike; the
# means are over all the rounds' runs.
per_round=$(( (RUNS + ROUNDS - 1) / ROUNDS ))
for r in $(seq "$ROUNDS"); do
    hyperfine --style none --warmup "$([ "$r" = 1 ] && echo 3 || echo 1)" --runs "$per_round" \
        --export-json "$tmp/run-$r.json" \
        -n berth "DOCKER_CONFIG=$br/cli $DOCKER_CLI -H unix://$brun/engine.sock run --rm --network none $img true" \
        -n dockerd "DOCKER_CONFIG=$dk/cli $DOCKER_CLI -H unix://$dk/docker.sock run --rm --network none $img true" \
        -n version "DOCKER_CONFIG=$br/cli $DOCKER_CLI -H unix://$brun/engine.sock version" >/dev/null
done

# --- 3. N x run -d, then rm -f ------------------------------------------------------
# The runs in ROUNDS rounds that alternate berth and dockerd (as above); the
# totals add the rounds up.
detached() { # cli-function count -> seconds
    local t0 t1 i
    t0=$(date +%s.%N)
    for i in $(seq "$2"); do "$1" run -d --network none "$img" sleep 600 >/dev/null; done
    t1=$(date +%s.%N)
    "$PY" -c "print(f'{$t1 - $t0:.3f}')"
}
remove_all() { # cli-function -> seconds
    local t0 t1
    t0=$(date +%s.%N)
    # shellcheck disable=SC2046
    "$1" rm -f $("$1" ps -aq) >/dev/null
    t1=$(date +%s.%N)
    "$PY" -c "print(f'{$t1 - $t0:.2f}')"
}
b_start=0 d_start=0 left=$N_DETACHED
for r in $(seq "$ROUNDS"); do
    n=$(( left / (ROUNDS - r + 1) ))
    left=$(( left - n ))
    b_start=$("$PY" -c "print(f'{$b_start + $(detached berth_cli "$n"):.2f}')")
    d_start=$("$PY" -c "print(f'{$d_start + $(detached dockerd_cli "$n"):.2f}')")
done
b_rm=$(remove_all berth_cli)
d_rm=$(remove_all dockerd_cli)

# --- 4. ps with PS_N containers -----------------------------------------------------
seq "$PS_N" | xargs -P 4 -I{} env DOCKER_CONFIG="$br/cli" "$DOCKER_CLI" -H "unix://$brun/engine.sock" \
    create --network none "$img" true >/dev/null
seq "$PS_N" | xargs -P 4 -I{} env DOCKER_CONFIG="$dk/cli" "$DOCKER_CLI" -H "unix://$dk/docker.sock" \
    create --network none "$img" true >/dev/null
hyperfine --style none --warmup 2 --runs 10 --export-json "$tmp/ps.json" \
    -n berth "DOCKER_CONFIG=$br/cli $DOCKER_CLI -H unix://$brun/engine.sock ps -a" \
    -n dockerd "DOCKER_CONFIG=$dk/cli $DOCKER_CLI -H unix://$dk/docker.sock ps -a" >/dev/null

"$PY" - "$tmp" "$rss_berth" "$rss_docker" "$b_start" "$b_rm" "$d_start" "$d_rm" "$N_DETACHED" "$PS_N" <<'PYEOF'
import json, sys
tmp, rb, rd, bs, brm, ds, drm, n, psn = sys.argv[1:]
import glob
def means(*files):
    times = {}
    for f in files:
        for r in json.load(open(f))["results"]:
            times.setdefault(r["command"], []).extend(r["times"])
    return {c: sum(t) / len(t) * 1000 for c, t in times.items()}
run = means(*sorted(glob.glob(f"{tmp}/run-*.json")))
ver = {"version": run.pop("version")}
ps = means(f"{tmp}/ps.json")
def line(what, ours, peer, unit, target=None):
    t = f"  (target <= {target})" if target else ""
    print(f"{what:<34} berth {ours:>9.1f} {unit}  dockerd {peer:>9.1f} {unit}  ratio {ours / peer:.3f}{t}")
print(f"bench-engine: docker CLI {ver['version']:.1f} ms for `docker version` (the client's floor)")
line("idle RSS, engine+supervisor", int(rb) / 1024, int(rd) / 1024, "MB")
line("docker run --rm ... true", run["berth"], run["dockerd"], "ms", "0.2")
line(f"{n} x docker run -d", float(bs), float(ds), "s ", "0.2")
line(f"docker rm -f of {n}", float(brm), float(drm), "s ", "0.2")
line(f"docker ps -a with {psn} containers", ps["berth"], ps["dockerd"], "ms")
PYEOF
