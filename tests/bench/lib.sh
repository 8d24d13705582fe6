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

# A private dockerd (Debian's docker.io) for comparisons, everything under
# one directory: bench_dockerd_start DIR [DOCKERD ARG...] sets $dk (the dir)
# and $dk_pid and waits until it answers; dockerd_cli runs Debian's docker
# CLI against it; bench_dockerd_stop stops it and its containerd, unmounts
# and removes the dir. Callers remove the host directories dockerd creates
# (bench_dockerd_host_dirs lists them) in their own cleanup.
DOCKER_CLI=/usr/bin/docker # Debian's client, matching its dockerd
bench_dockerd_host_dirs=(/run/containerd/s /run/containerd/fifo /run/containerd /run/docker/plugins /run/docker
                         /etc/docker)
dk=""
dk_pid=""

dockerd_cli() { DOCKER_CONFIG=$dk/cli "$DOCKER_CLI" -H "unix://$dk/docker.sock" "$@"; }

# bench_dockerd_start DIR [dockerd options...]: dockerd with its data root,
# exec root and socket under DIR. With BENCH_EXEC_TMPFS=1 its exec root is a
# tmpfs, as /run is on a usual host.
bench_dockerd_start() {
    dk=$1
    shift
    mkdir -p "$dk/data" "$dk/exec" "$dk/cli"
    if [ "${BENCH_EXEC_TMPFS:-0}" = 1 ]; then mount -t tmpfs -o mode=0711 bench-exec "$dk/exec"; fi
    echo "{\"deprecated-key-path\": \"$dk/key.json\"}" >"$dk/daemon.json"
    dockerd --config-file "$dk/daemon.json" --data-root "$dk/data" --exec-root "$dk/exec" \
        -H "unix://$dk/docker.sock" --pidfile "$dk/docker.pid" \
        --iptables=false --ip-forward=false --ip-masq=false --bridge=none \
        --storage-driver overlay2 --userland-proxy=false --log-level warn "$@" \
        </dev/null >"$dk/dockerd.log" 2>&1 &
    dk_pid=$!
    for _ in $(seq 600); do
        dockerd_cli version >/dev/null 2>&1 && break
        kill -0 "$dk_pid" 2>/dev/null || break
        sleep 0.1
    done
    if ! dockerd_cli version >/dev/null 2>&1; then
        tail -n 20 "$dk/dockerd.log" >&2
        echo "dockerd did not start" >&2
        exit 1
    fi
    sleep 1 # let its start-up work settle
}

bench_dockerd_stop() {
    [ -n "$dk" ] || return 0
    if [ -n "$dk_pid" ]; then
        kill "$dk_pid" 2>/dev/null || true
        for _ in $(seq 300); do kill -0 "$dk_pid" 2>/dev/null || break; sleep 0.05; done
        kill -9 "$dk_pid" 2>/dev/null || true
        wait "$dk_pid" 2>/dev/null || true
        dk_pid=""
    fi
    # dockerd's containerd and shims name our exec-root in their argv
    local p
    for p in $(pgrep -f -- "$dk/" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
    { grep -F " $dk/" /proc/self/mountinfo || true; } | awk '{print $5}' | sort -r |
        while read -r m; do umount -l "$m" || true; done
    rm -rf --one-file-system "$dk"
    dk=""
}

# VmRSS in kB of the pids given (summed).
bench_rss_kb() {
    local p total=0 v
    for p in "$@"; do
        v=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
        total=$((total + ${v:-0}))
    done
    echo "$total"
}

# bench_registry_busybox DIR: Debian's docker-registry on a free loopback
# port with its storage in DIR, and busybox (every applet, /etc/passwd) pushed
# to it as busybox:latest. Sets $host, $img and $reg_pid (the caller stops it).
bench_free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

bench_registry_busybox() {
    local d=$1
    host=127.0.0.1:$(bench_free_port)
    mkdir -p "$d"
    printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s/storage\nhttp:\n  addr: %s\n' \
        "$d" "$host" >"$d/config.yml"
    /usr/bin/docker-registry serve "$d/config.yml" >"$d/log" 2>&1 &
    reg_pid=$!
    for _ in $(seq 100); do curl -fs "http://$host/v2/" >/dev/null && break; sleep 0.05; done
    "$PY" - "$bench_repo" "$d/layout" <<'PYEOF'
import sys
repo, path = sys.argv[1], sys.argv[2]
sys.path[:0] = [repo + "/tests/lib", repo + "/tests/supervisor"]
import berth_registry, ocilayout
lay = ocilayout.Layout(path)
ocilayout.single(lay, "busybox", [(ocilayout._tar(berth_registry.busybox_entries(ocilayout.BUSYBOX)), "gzip")])
PYEOF
    skopeo copy --quiet --dest-tls-verify=false "oci:$d/layout:busybox" "docker://$host/busybox:latest"
    img=$host/busybox:latest
}

# bench_berth_start BUILD DATA_ROOT EXEC_ROOT: berth-supervisor and
# berth-engine from BUILD (the exec root must be short: the shims' socket
# paths must fit in 108 bytes). Sets $sup_pid, $eng_pid and $berth_sock;
# berth_cli runs Debian's docker CLI against the engine.
bench_berth_start() {
    local b=$1 data=$2 run=$3
    berth_sock=$run/engine.sock
    berth_cli_config=$data/cli
    mkdir -p "$data/cli"
    "$b/supervisor/berth-supervisor" --root "$data/root" --exec-root "$run" --shim "$b/shim/berth-shim" \
        --runtime "$b/ocirun/ocirun" >"$data/supervisor.log" 2>&1 &
    sup_pid=$!
    for _ in $(seq 200); do [ -S "$run/supervisor.sock" ] && break; sleep 0.02; done
    "$b/engine/berth-engine" --data-root "$data/root" --exec-root "$run" -H "unix://$berth_sock" \
        --log-level warn >"$data/engine.log" 2>&1 &
    eng_pid=$!
    for _ in $(seq 200); do berth_cli version >/dev/null 2>&1 && break; sleep 0.05; done
    berth_cli version >/dev/null || { tail -5 "$data/engine.log" >&2; echo "berth-engine did not start" >&2; exit 1; }
}
berth_cli() { DOCKER_CONFIG=$berth_cli_config "$DOCKER_CLI" -H "unix://$berth_sock" "$@"; }

# bench_containerd_start DIR SOCK: a private containerd (root, state and
# config under DIR, gRPC on SOCK, the CRI and the unused snapshotters off).
# Sets $ctd_pid; exits with containerd's log tail when it does not come up.
bench_containerd_start() {
    local dir=$1 s=$2
    mkdir -p "$dir"
    cat >"$dir/containerd.toml" <<EOF
version = 2
root = "$dir/root"
state = "$dir/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$s"
[ttrpc]
  address = "$s.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
EOF
    containerd --config "$dir/containerd.toml" >"$dir/containerd.log" 2>&1 </dev/null &
    ctd_pid=$!
    for _ in $(seq 200); do
        ctr --address "$s" version >/dev/null 2>&1 && break
        kill -0 "$ctd_pid" 2>/dev/null || break
        sleep 0.05
    done
    if ! ctr --address "$s" version >/dev/null 2>&1; then
        echo "containerd did not start:" >&2
        tail -n 20 "$dir/containerd.log" >&2
        exit 1
    fi
}
