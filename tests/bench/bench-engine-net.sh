#!/bin/bash
# berth-engine's networking vs dockerd's (Debian's docker.io, started here
# with its own data root and its normal bridge, on its own --bip so that
# it clashes with nothing), driven by the same docker CLI in the same run:
#   1. `docker run --rm IMG true` with bridge networking and with
#      --network none (hyperfine, mean): the network setup's cost in ms;
#   2. throughput through a published port: busybox httpd in a container
#      (-p HOST:80), `ab -n AB_N -c AB_C` against 127.0.0.1 (berth: the
#      kernel's DNAT; dockerd: its docker-proxy, which serves loopback).
# Target (issue 8): berth's run --rm with bridge networking <= 1/4 of
# dockerd's.
#
# BUILD (default build/, configured -Dsanitize=false) gives the berth
# binaries; RUNS (default 20) hyperfine runs; AB_N (default 5000), AB_C (10).
# Needs root, docker-registry, skopeo, hyperfine, ab (apache2-utils),
# dockerd. dockerd's iptables rules and its bridge are removed afterwards
# (the iptables ruleset is restored as it was before).
set -euo pipefail

# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BUILD=$(cd "${BUILD:-$repo/build}" && pwd)
RUNS=${RUNS:-20}
AB_N=${AB_N:-5000}
AB_C=${AB_C:-10}
REGISTRY_BIN=/usr/bin/docker-registry
DOCKER_BIP=172.30.0.1/16
DOCKER_BRIDGE=docker0

die() { echo "bench-engine-net: $*" >&2; exit 1; }
for b in supervisor/berth-supervisor engine/berth-engine shim/berth-shim ocirun/ocirun; do
    [ -x "$BUILD/$b" ] || die "$BUILD/$b not built"
done
[ -x "$REGISTRY_BIN" ] || die "docker-registry not installed"
for c in skopeo hyperfine ab iptables-save iptables-restore nft; do
    command -v "$c" >/dev/null || die "$c not installed"
done
command -v dockerd >/dev/null && [ -x "$DOCKER_CLI" ] || die "dockerd or $DOCKER_CLI not installed"
[ "$(id -u)" = 0 ] || die "run as root"
if ldd "$BUILD/engine/berth-engine" | grep -q libasan; then
    die "$BUILD is a sanitizer build: configure one with -Dsanitize=false"
fi
ip link show "$DOCKER_BRIDGE" >/dev/null 2>&1 && die "$DOCKER_BRIDGE exists: is a dockerd running?"

tmp=$(mktemp -d /var/tmp/bn.XXXXXX) # short: the shims' socket paths must fit sun_path
reg_pid="" sup_pid="" eng_pid=""
created_dirs=()
for d in "${bench_dockerd_host_dirs[@]}"; do [ -e "$d" ] || created_dirs+=("$d"); done
br=$tmp/b
# what dockerd will change, to put back
iptables-save >"$tmp/iptables.before"
nft list tables >"$tmp/nft-tables.before"
fwd_before=$(cat /proc/sys/net/ipv4/ip_forward)

# shellcheck disable=SC2317  # called through the EXIT trap
cleanup() {
    set +e
    if [ -n "$eng_pid" ]; then berth_cli rm -f $(berth_cli ps -aq) >/dev/null 2>&1; fi
    if [ -n "$dk" ]; then dockerd_cli rm -f $(dockerd_cli ps -aq) >/dev/null 2>&1; fi
    bench_dockerd_stop
    for p in $eng_pid $sup_pid $reg_pid; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    for p in $(pgrep -f -- "$br/" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
    grep -F " $tmp/" /proc/self/mountinfo | awk '{print $5}' | sort -r | while read -r m; do umount -l "$m"; done
    ip link del "$DOCKER_BRIDGE" 2>/dev/null
    iptables-restore <"$tmp/iptables.before"
    nft list tables | while read -r _ fam name; do
        grep -qx "table $fam $name" "$tmp/nft-tables.before" || nft delete table "$fam" "$name"
    done
    echo "$fwd_before" >/proc/sys/net/ipv4/ip_forward
    for d in "${created_dirs[@]}"; do rmdir "$d" 2>/dev/null; done
    rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the registry, the image, berth --------------------------------------------
bench_registry_busybox "$tmp/reg"
bench_berth_start "$BUILD" "$br" "$br/run"
# dockerd as it usually runs: its bridge, iptables, masquerade, the
# userland proxy (the later flags override lib.sh's --bridge=none ...)
bench_dockerd_start "$tmp/dk" --insecure-registry "$host" --bridge= --bip "$DOCKER_BIP" --iptables=true \
    --ip-forward=true --ip-masq=true --userland-proxy=true

berth_cli pull -q "$img" >/dev/null
dockerd_cli pull -q "$img" >/dev/null
for net in bridge none; do
    berth_cli run --rm --network "$net" "$img" true
    dockerd_cli run --rm --network "$net" "$img" true
done

# --- 1. run --rm, bridge vs none ------------------------------------------------
bcli="DOCKER_CONFIG=$br/cli $DOCKER_CLI -H unix://$br/run/engine.sock"
dcli="DOCKER_CONFIG=$dk/cli $DOCKER_CLI -H unix://$dk/docker.sock"
hyperfine --style none --warmup 3 --runs "$RUNS" --export-json "$tmp/run.json" \
    -n berth-bridge "$bcli run --rm $img true" \
    -n berth-none "$bcli run --rm --network none $img true" \
    -n dockerd-bridge "$dcli run --rm $img true" \
    -n dockerd-none "$dcli run --rm --network none $img true" >/dev/null

# --- 2. throughput through a published port ------------------------------------------
HTTPD='mkdir -p /www && head -c 1024 /dev/zero | tr "\0" x > /www/index.html && exec httpd -f -p 80 -h /www'
ab_rps() { # port -> requests per second
    local i
    for i in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$1/" && break; sleep 0.05; done
    ab -q -n "$AB_N" -c "$AB_C" "http://127.0.0.1:$1/" 2>&1 | awk '/Requests per second/ {print $4}'
}
bp=$(bench_free_port)
berth_cli run -d --name web -p "$bp:80" "$img" sh -c "$HTTPD" >/dev/null
b_rps=$(ab_rps "$bp")
dp=$(bench_free_port)
dockerd_cli run -d --name web -p "$dp:80" "$img" sh -c "$HTTPD" >/dev/null
d_rps=$(ab_rps "$dp")

"$PY" - "$tmp" "$b_rps" "$d_rps" "$AB_N" "$AB_C" <<'PYEOF'
import json, sys
tmp, brps, drps, n, c = sys.argv[1:]
run = {r["command"]: r["mean"] * 1000 for r in json.load(open(f"{tmp}/run.json"))["results"]}
def line(what, ours, peer, unit, target=None):
    t = f"  (target <= {target})" if target else ""
    print(f"{what:<40} berth {ours:>8.1f} {unit}  dockerd {peer:>8.1f} {unit}  ratio {ours / peer:.3f}{t}")
line("docker run --rm true, bridge", run["berth-bridge"], run["dockerd-bridge"], "ms", "0.25")
line("docker run --rm true, --network none", run["berth-none"], run["dockerd-none"], "ms")
line("network setup (bridge - none)", run["berth-bridge"] - run["berth-none"],
     run["dockerd-bridge"] - run["dockerd-none"], "ms")
line(f"published port, ab -n {n} -c {c}", float(brps or 0), float(drps or 1), "req/s")
PYEOF
