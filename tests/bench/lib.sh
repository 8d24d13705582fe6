# Shared by the benchmark scripts (sourced, not run).

bench_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bench_repo=$(cd "$bench_here/../.." && pwd)
# the names the scripts use
here=$bench_here
repo=$bench_repo
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

# A path for a runtime given as a path or a bare name, or "" when none.
bench_resolve() {
    if [[ $1 == */* ]]; then readlink -f -- "$1"; else command -v -- "$1" || true; fi
}

# bench_runtimes NAME: sets $ocirun (from $OCIRUN, default the CI build, then
# build/) and $peer (from $PEER_RUNTIME, default runc), or exits with an error
# that names the benchmark.
bench_runtimes() {
    local name=$1
    if [ -z "${OCIRUN:-}" ]; then
        OCIRUN=$bench_repo/build-ci/ocirun/ocirun
        [ -x "$OCIRUN" ] || OCIRUN=$bench_repo/build/ocirun/ocirun
    fi
    PEER_RUNTIME=${PEER_RUNTIME:-runc}
    ocirun=$(bench_resolve "$OCIRUN")
    peer=$(bench_resolve "$PEER_RUNTIME")
    local pair var path given
    for pair in "OCIRUN:$ocirun:$OCIRUN" "PEER_RUNTIME:$peer:$PEER_RUNTIME"; do
        IFS=: read -r var path given <<<"$pair"
        if [ -z "$path" ] || [ ! -x "$path" ]; then
            echo "$name: $var runtime not found or not executable: $given" >&2
            exit 1
        fi
    done
    [ -x /bin/busybox ] || { echo "$name: /bin/busybox (busybox-static) required" >&2; exit 1; }
}

# bench_busybox_rootfs DIR: a minimal image, busybox-static and its applets.
bench_busybox_rootfs() {
    local rootfs=$1 applet
    mkdir -p "$rootfs/bin"
    cp /bin/busybox "$rootfs/bin/busybox"
    for applet in $(/bin/busybox --list); do
        [ "$applet" = busybox ] || [ -e "$rootfs/bin/$applet" ] || ln -s busybox "$rootfs/bin/$applet"
    done
    mkdir -p "$rootfs/"{proc,sys,dev,tmp,etc,root}
}

# bench_bundle DIR ARG...: a busybox bundle whose config.json is
# `$peer spec` with process.args = ARG... and terminal false (the default
# spec's `sh` on a terminal cannot run under a benchmark).
bench_bundle() {
    local dir=$1
    shift
    bench_busybox_rootfs "$dir/rootfs"
    (cd "$dir" && "$peer" spec)
    "$PY" - "$dir/config.json" "$@" <<'PYEOF'
import json, sys
path = sys.argv[1]
c = json.load(open(path))
c["process"]["args"] = sys.argv[2:]
c["process"]["terminal"] = False
json.dump(c, open(path, "w"), indent="\t")
PYEOF
}
