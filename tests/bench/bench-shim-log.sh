#!/bin/bash
# Log throughput: a container writes SIZE MiB of 100-byte lines to stdout
# (`cat` of a 16 MiB file of such lines, SIZE/16 times). berth-shim turns
# them into Docker's json-file log; the same container runs through
# Debian's dockerd (containerd-shim-runc-v2, dockerd's copier and its
# json-file driver: docker's log path) and, if installed, podman's conmon
# (k8s-file log). The generator alone (its output to /dev/null inside the
# container) is the ceiling.
#
#   tests/bench/bench-shim-log.sh                 # 256 and 1024 MiB
#   SIZES=256 BUILD=build tests/bench/bench-shim-log.sh
#   DOCKER=0 CONMON=0 tests/bench/bench-shim-log.sh   # berth-shim only
#
# Environment: BUILD (default <repo>/build), RUNTIME (the runtime under
# berth-shim, conmon uses runc; default that build's ocirun), DOCKER_RUNTIME
# (the runtime under dockerd's shim: "runc" for dockerd's own, or a path;
# default the same RUNTIME), SIZES (MiB, default "256 1024"; SIZE_MB is
# accepted for one size), LOG_DIR (where the logs go; default a temp dir
# under /var/tmp, on disk), DOCKER=0 / CONMON=0 to leave a peer out.
#
# Per size and monitor: wall time from Start until the log holds every line
# (berth-shim: Start to the answered Wait; dockerd: `docker start` to
# `docker wait`; each then checked by counting the log's lines, and the end
# taken as the later of that and the log's last modification), MB/s, and
# the CPU seconds (utime+stime from /proc/<pid>/stat) of the processes on
# the log path: berth-shim itself; dockerd + its containerd + the
# container's containerd-shim-runc-v2 (sampled every 50 ms until it exits,
# so a lower bound by at most one interval); conmon (likewise). Then our
# figures beside docker's, and the ratios.
#
# dockerd is started here with everything under a temp dir (--data-root,
# --exec-root, -H unix://...), --iptables=false --ip-forward=false
# --ip-masq=false --bridge=none (containers get --network none), the
# json-file log driver and the cgroupfs driver, and torn down at the end
# (containers, dockerd and its containerd and shims, mounts, cgroups, and
# the host directories dockerd and containerd create if they were not
# there). The image is tests/dropin/mkimage.py's busybox, loaded with
# `docker load`; the 16 MiB file is bind-mounted read-only.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
BUILD=$(cd "${BUILD:-$repo/build}" && pwd)
SHIM=$BUILD/shim/berth-shim
SHIMCTL=$BUILD/shim/berth-shimctl
OCIRUN=$BUILD/ocirun/ocirun
RUNTIME=${RUNTIME:-$OCIRUN}
DOCKER_RUNTIME=${DOCKER_RUNTIME:-$RUNTIME}
RUNC=$(command -v runc || echo /usr/sbin/runc)
SIZES=${SIZES:-${SIZE_MB:-256 1024}}
DOCKER_CLI=/usr/bin/docker # Debian's client, matching its dockerd
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
for b in "$SHIM" "$SHIMCTL" "$OCIRUN"; do
    [ -x "$b" ] || { echo "bench-shim-log: $b not built" >&2; exit 1; }
done
[ -x /bin/busybox ] || { echo "bench-shim-log: /bin/busybox (busybox-static) required" >&2; exit 1; }
use_docker=0
if [ "${DOCKER:-1}" != 0 ]; then
    if command -v dockerd >/dev/null && [ -x "$DOCKER_CLI" ]; then
        use_docker=1
    else
        echo "bench-shim-log: dockerd or $DOCKER_CLI not installed; docker skipped" >&2
    fi
fi
use_conmon=0
if [ "${CONMON:-1}" != 0 ] && command -v conmon >/dev/null; then
    use_conmon=1
fi

tmp=$(mktemp -d /tmp/bench-log.XXXXXX)
logs=${LOG_DIR:-$(mktemp -d /var/tmp/bench-log.XXXXXX)}
mkdir -p "$logs"
dk=$tmp/dk
dk_pid=""
dk_cgroup=berth-bench-log-dk
# host paths dockerd and containerd create whatever they are told; removed
# at the end if they were not there before (deepest first, only if empty)
host_dirs=(/run/containerd/s /run/containerd/fifo /run/containerd /run/docker/plugins /run/docker /etc/docker)
created_dirs=()
for d in "${host_dirs[@]}"; do [ -e "$d" ] || created_dirs+=("$d"); done

docker_cli() { DOCKER_CONFIG=$dk/cli "$DOCKER_CLI" -H "unix://$dk/docker.sock" "$@"; }

# shellcheck disable=SC2317  # called through the EXIT trap
cleanup() {
    set +e
    "$SHIMCTL" --state-dir "$tmp/s" delete --force >/dev/null 2>&1
    "$SHIMCTL" --state-dir "$tmp/s" shutdown >/dev/null 2>&1
    "$RUNC" --root "$tmp/croot" delete --force bench-log-c >/dev/null 2>&1
    "$OCIRUN" --root "$tmp/oroot" delete --force bench-log-o >/dev/null 2>&1
    if [ -n "$dk_pid" ]; then
        ids=$(docker_cli ps -aq 2>/dev/null)
        # shellcheck disable=SC2086
        [ -z "$ids" ] || docker_cli rm -f $ids >/dev/null 2>&1
        kill "$dk_pid" 2>/dev/null
        for _ in $(seq 300); do kill -0 "$dk_pid" 2>/dev/null || break; sleep 0.05; done
        kill -9 "$dk_pid" 2>/dev/null
        wait "$dk_pid" 2>/dev/null
    fi
    # dockerd's containerd and shims name our exec-root in their argv
    for p in $(pgrep -f -- "$dk/" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
    grep -F " $tmp/" /proc/self/mountinfo | awk '{print $5}' | sort -r |
        while read -r m; do umount -l "$m"; done
    for mp in /sys/fs/cgroup/*/berth-bench-log /sys/fs/cgroup/berth-bench-log \
        /sys/fs/cgroup/*/"$dk_cgroup" /sys/fs/cgroup/"$dk_cgroup"; do
        [ -d "$mp" ] && find "$mp" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
    for d in "${created_dirs[@]}"; do rmdir "$d" 2>/dev/null; done
    rm -rf --one-file-system "$tmp"
    [ -n "${LOG_DIR:-}" ] || rm -rf "$logs"
}
trap cleanup EXIT

# --- the workload ----------------------------------------------------------
# 16 MiB of 100-byte lines (busybox `yes | head` tops out near 170 MB/s
# here; cat does not limit)
lines_per_file=$((16 * 1024 * 1024 / 100))
"$PY" -c "import sys; sys.stdout.write(('x' * 99 + '\\n') * $lines_per_file)" >"$tmp/lines"
script() { # size_mb redirect
    local reps=$(( ($1 + 15) / 16 ))
    echo "i=0; while [ \$i -lt $reps ]; do cat /lines; i=\$((i+1)); done $2"
}
expected_lines() { # size_mb
    local reps=$(( ($1 + 15) / 16 ))
    echo $((reps * lines_per_file))
}
mkbundle() { # dir id script
    local b=$1
    mkdir -p "$b/rootfs/bin"
    cp /bin/busybox "$b/rootfs/bin/busybox"
    for applet in $(/bin/busybox --list); do
        [ "$applet" = busybox ] || [ -e "$b/rootfs/bin/$applet" ] || ln -s busybox "$b/rootfs/bin/$applet"
    done
    mkdir -p "$b/rootfs/"{proc,sys,dev,tmp,etc,root}
    ln -f "$tmp/lines" "$b/rootfs/lines"
    (cd "$b" && "$RUNC" spec)
    "$PY" - "$b/config.json" "$2" "$3" <<'PYEOF'
import json, sys
path, cid, script = sys.argv[1:4]
c = json.load(open(path))
c["process"]["args"] = ["sh", "-c", script]
c["process"]["terminal"] = False
c["linux"]["cgroupsPath"] = f"/berth-bench-log/{cid}"
json.dump(c, open(path, "w"), indent="\t")
PYEOF
}
cpu_s() { # pid... -> sum of utime+stime in seconds
    local p
    for p in "$@"; do cat "/proc/$p/stat"; done |
        awk -v hz="$(getconf CLK_TCK)" '{sub(/.*\) /, ""); t += $12 + $13} END {printf "%.2f", t / hz}'
}
now() { date +%s.%N; }
# sample_cpu PID FILE: the pid's CPU seconds into FILE every 50 ms until it
# exits (for processes that are gone before the end)
sample_cpu() {
    local c
    while c=$(cpu_s "$1" 2>/dev/null); do
        echo "$c" >"$2.new" && mv "$2.new" "$2"
        sleep 0.05
    done
}
# log_done LOG EXPECTED T_WAIT: waits (up to 60 s) until LOG holds EXPECTED
# lines; prints the end time: the later of T_WAIT and the log's mtime
log_done() {
    local n=0
    for _ in $(seq 600); do
        n=$(wc -l <"$1")
        [ "$n" -ge "$2" ] && break
        sleep 0.1
    done
    if [ "$n" -ne "$2" ]; then
        echo "bench-shim-log: $1 has $n lines, expected $2" >&2
        return 1
    fi
    "$PY" -c "import os, sys; print(max(float(sys.argv[2]), os.stat(sys.argv[1]).st_mtime_ns / 1e9))" "$1" "$3"
}
results=$tmp/results
: >"$results"
report() { # key label size t0 t1 cpu [cpu-note]
    local secs mbs
    secs=$("$PY" -c "print(f'{$5 - $4:.2f}')")
    mbs=$("$PY" -c "print(f'{$3 / ($5 - $4):.0f}')")
    printf '%-24s %5s MiB %7s s %6s MB/s  CPU %s%s s\n' "$2" "$3" "$secs" "$mbs" "${7:-}" "$6"
    echo "$1 $3 $secs $mbs $6" >>"$results"
}

# --- dockerd ------------------------------------------------------------------
start_dockerd() {
    mkdir -p "$dk/data" "$dk/exec" "$dk/cli"
    local rt_args=() rt=$DOCKER_RUNTIME
    if [ "$rt" != runc ]; then
        if [[ $rt == */* ]]; then rt=$(readlink -f -- "$rt"); else rt=$(command -v -- "$rt"); fi
        rt_args=(--add-runtime "berth-bench=$rt" --default-runtime berth-bench)
    fi
    echo "{\"deprecated-key-path\": \"$dk/key.json\"}" >"$dk/daemon.json"
    dockerd --config-file "$dk/daemon.json" --data-root "$dk/data" --exec-root "$dk/exec" \
        -H "unix://$dk/docker.sock" --pidfile "$dk/docker.pid" \
        --iptables=false --ip-forward=false --ip-masq=false --bridge=none \
        --log-driver json-file --storage-driver overlay2 \
        --cgroup-parent "/$dk_cgroup" --exec-opt native.cgroupdriver=cgroupfs \
        --userland-proxy=false --log-level warn "${rt_args[@]}" \
        </dev/null >"$dk/dockerd.log" 2>&1 &
    dk_pid=$!
    for _ in $(seq 600); do
        docker_cli version >/dev/null 2>&1 && break
        kill -0 "$dk_pid" 2>/dev/null || break
        sleep 0.1
    done
    if ! docker_cli version >/dev/null 2>&1; then
        echo "bench-shim-log: dockerd did not start:" >&2
        tail -n 20 "$dk/dockerd.log" >&2
        exit 1
    fi
    "$PY" "$repo/tests/dropin/mkimage.py" "$tmp/image.tar" >/dev/null
    docker_cli load -i "$tmp/image.tar" >/dev/null
}

# bench_docker SIZE
bench_docker() {
    local size=$1 name="bench-log-d$1" id ctd shim log t0 t1 tw c0 c1 cs sampler=""
    docker_cli create --name "$name" --network none --log-driver json-file \
        -v "$tmp/lines:/lines:ro" localhost/berth-busybox:latest sh -c "$(script "$size" "")" >/dev/null
    id=$(docker_cli inspect -f '{{.Id}}' "$name")
    ctd=$(pgrep -P "$dk_pid" -x containerd || true)
    [ -n "$ctd" ] || echo "bench-shim-log: dockerd's containerd not found; its CPU is not counted" >&2
    # shellcheck disable=SC2086  # $ctd: none or one pid
    c0=$(cpu_s "$dk_pid" $ctd)
    t0=$(now)
    docker_cli start "$name" >/dev/null
    log=$(docker_cli inspect -f '{{.LogPath}}' "$name") # set by start
    shim=$(pgrep -f -- "containerd-shim-runc-v2 .*-id $id" | head -n1 || true)
    echo 0 >"$tmp/shim-cpu"
    if [ -n "$shim" ]; then
        sample_cpu "$shim" "$tmp/shim-cpu" &
        sampler=$!
    else
        echo "bench-shim-log: the container's shim was not found; its CPU is not counted" >&2
    fi
    docker_cli wait "$name" >/dev/null
    tw=$(now)
    t1=$(log_done "$log" "$(expected_lines "$size")" "$tw")
    # shellcheck disable=SC2086
    c1=$(cpu_s "$dk_pid" $ctd)
    # the shim exits once dockerd has deleted the task; its last sample stays
    [ -z "$sampler" ] || wait "$sampler"
    cs=$(cat "$tmp/shim-cpu")
    report docker "dockerd json-file" "$size" "$t0" "$t1" "$("$PY" -c "print(f'{$c1 - $c0 + $cs:.2f}')")"
    echo "  $(wc -l <"$log") log lines, $(du -m "$log" | cut -f1) MiB on disk;" \
        "CPU dockerd+containerd $("$PY" -c "print(f'{$c1 - $c0:.2f}')") s, containerd-shim-runc-v2 $cs s"
    docker_cli rm -f "$name" >/dev/null
}

# bench_shim SIZE
bench_shim() {
    local size=$1 log=$logs/shim-json.log spid c0 c1 t0 t1 tw
    rm -rf "$tmp/bs" "$tmp/s" "$log"
    mkbundle "$tmp/bs" bench-log-s "$(script "$size" "")"
    "$SHIM" --id bench-log-s --bundle "$tmp/bs" --runtime "$RUNTIME" --runtime-root "$tmp/sroot" \
        --state-dir "$tmp/s" --log-path "$log"
    spid=$(cat "$tmp/s/shim.pid")
    "$SHIMCTL" --state-dir "$tmp/s" create >/dev/null
    c0=$(cpu_s "$spid")
    t0=$(now)
    "$SHIMCTL" --state-dir "$tmp/s" start >/dev/null
    "$SHIMCTL" --state-dir "$tmp/s" wait >/dev/null
    tw=$(now)
    t1=$(log_done "$log" "$(expected_lines "$size")" "$tw")
    c1=$(cpu_s "$spid")
    report berth-shim "berth-shim json-file" "$size" "$t0" "$t1" "$("$PY" -c "print(f'{$c1 - $c0:.2f}')")"
    echo "  $(wc -l <"$log") log lines, $(du -m "$log" | cut -f1) MiB on disk"
    "$SHIMCTL" --state-dir "$tmp/s" delete >/dev/null
    "$SHIMCTL" --state-dir "$tmp/s" shutdown >/dev/null
    rm -f "$log"
}

# bench_generator SIZE
bench_generator() {
    local size=$1 t0 t1
    rm -rf "$tmp/bo"
    mkbundle "$tmp/bo" bench-log-o "$(script "$size" ">/dev/null")"
    t0=$(now)
    "$OCIRUN" --root "$tmp/oroot" run -b "$tmp/bo" bench-log-o </dev/null
    t1=$(now)
    report generator "generator (/dev/null)" "$size" "$t0" "$t1" "-"
}

# bench_conmon SIZE
bench_conmon() {
    local size=$1 cpid c c0 c1 t0 t1
    rm -rf "$tmp/bc" "$tmp/cexit" "$tmp/csock" "$tmp/cpid" "$tmp/conmon.pid"
    mkbundle "$tmp/bc" bench-log-c "$(script "$size" "")"
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
    report conmon "conmon k8s-file" "$size" "$t0" "$t1" "$("$PY" -c "print(f'{$c1 - $c0:.2f}')")" ">= "
    "$RUNC" --root "$tmp/croot" delete --force bench-log-c >/dev/null 2>&1 || true
    rm -f "$logs/conmon.log"
}

[ "$use_docker" = 0 ] || start_dockerd
# each run starts with the previous runs' logs on disk (sync), so that one
# does not pay for another's writeback
for size in $SIZES; do
    size=$(( (size + 15) / 16 * 16 ))
    bench_generator "$size"
    sync
    bench_shim "$size"
    if [ "$use_docker" != 0 ]; then
        sync
        bench_docker "$size"
    fi
    if [ "$use_conmon" != 0 ]; then
        sync
        bench_conmon "$size"
    fi
done

echo
"$PY" - "$results" <<'PYEOF'
import sys
rows = {}
for line in open(sys.argv[1]):
    key, size, secs, mbs, cpu = line.split()
    rows[(key, int(size))] = (float(secs), float(mbs), None if cpu == "-" else float(cpu))
for peer, label in (("docker", "dockerd"), ("conmon", "conmon")):
    for (key, size), p in sorted(rows.items(), key=lambda kv: kv[0][1]):
        b = rows.get(("berth-shim", size))
        if key != peer or not b:
            continue
        print(f"{size} MiB: berth-shim {b[1]:.0f} MB/s, CPU {b[2]:.2f} s; {label} {p[1]:.0f} MB/s, "
              f"CPU {p[2]:.2f} s; berth-shim/{label}: throughput {b[1] / p[1]:.2f}, CPU {b[2] / p[2]:.2f}")
PYEOF
