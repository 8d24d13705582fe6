#!/bin/bash
# Cold pull from a loopback registry (issue 5, "Performance"): an image of
# about 100 MB unpacked and 55 MB compressed (LAYERS gzip layers, each half
# os.urandom bytes, half compressible log-like text), built here as an OCI
# layout and pushed with skopeo to Debian's docker-registry on 127.0.0.1
# (a free port, temp storage). Then, RUNS times each, interleaved, every run
# into a fresh root:
#
#   berth-fetch --root R --insecure-registry 127.0.0.1:PORT --parallel 3 unpack REF
#       (pull + verify + unpack into overlay snapshots, layers applied
#       while later ones download)
#   docker pull REF through a private dockerd (overlay2, its own data-root,
#       started fresh for every run and stopped after it)
#   skopeo copy docker://REF dir:D (download + verify only: the floor)
#
#   tests/bench/bench-pull.sh
#   RUNS=5 BUILD=build-ci tests/bench/bench-pull.sh
#
# Environment: BUILD (default <repo>/build; supervisor/berth-fetch), RUNS
# (default 3), LAYERS (default 5), UNPACKED_MB (default 100), PARALLEL
# (berth-fetch's blobs at once, default 3 as dockerd's
# max-concurrent-downloads), DOCKER=0 to leave dockerd out.
#
# Per tool: mean wall time (and each run's), MB/s (compressed bytes / mean
# time) and CPU seconds: berth-fetch and skopeo: user+sys of the process
# tree (GNU /usr/bin/time); dockerd: utime+stime of dockerd + its containerd
# from /proc/<pid>/stat before and after `docker pull` (plus the docker
# client's own, from /usr/bin/time). Then berth-fetch/dockerd (target <= 0.5
# of the time). An untimed skopeo copy first puts the registry's blobs in
# the page cache, so every timed run reads them from memory.
#
# dockerd runs with everything under the temp dir (--data-root,
# --exec-root, -H unix://...), --iptables=false --ip-forward=false
# --ip-masq=false --bridge=none; the registry, dockerd and its containerd,
# mounts, temp dirs and the host directories dockerd creates (if they were
# not there) are removed at exit.
set -euo pipefail

# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BUILD=$(cd "${BUILD:-$repo/build}" && pwd)
FETCH=$BUILD/supervisor/berth-fetch
SUPERVISOR=$BUILD/supervisor/berth-supervisor
CTR=$BUILD/supervisor/berth-ctr
PARALLEL=${PARALLEL:-3}
RUNS=${RUNS:-3}
LAYERS=${LAYERS:-5}
UNPACKED_MB=${UNPACKED_MB:-100}
REGISTRY_BIN=/usr/bin/docker-registry
TIME=/usr/bin/time

die() { echo "bench-pull: $*" >&2; exit 1; }
[ -x "$FETCH" ] || die "$FETCH not built"
[ -x "$REGISTRY_BIN" ] || die "$REGISTRY_BIN (docker-registry) not installed"
command -v skopeo >/dev/null || die "skopeo not installed"
[ -x "$TIME" ] || die "$TIME (GNU time) not installed"
[ "$(id -u)" = 0 ] || die "run as root"
use_docker=0
if [ "${DOCKER:-1}" != 0 ]; then
    if command -v dockerd >/dev/null && [ -x "$DOCKER_CLI" ]; then
        use_docker=1
    else
        echo "bench-pull: dockerd or $DOCKER_CLI not installed; docker skipped" >&2
    fi
fi

# on disk, like /var/lib/docker and /var/lib/berth
tmp=$(mktemp -d /var/tmp/bench-pull.XXXXXX)
reg_pid=""
created_dirs=()
for d in "${bench_dockerd_host_dirs[@]}"; do [ -e "$d" ] || created_dirs+=("$d"); done

docker_cli() { dockerd_cli "$@"; }
stop_dockerd() { bench_dockerd_stop; }

# shellcheck disable=SC2317  # called through the EXIT trap
cleanup() {
    set +e
    stop_dockerd
    if [ -n "$reg_pid" ]; then
        kill "$reg_pid" 2>/dev/null
        wait "$reg_pid" 2>/dev/null
    fi
    grep -F " $tmp/" /proc/self/mountinfo | awk '{print $5}' | sort -r |
        while read -r m; do umount -l "$m"; done
    for d in "${created_dirs[@]}"; do rmdir "$d" 2>/dev/null; done
    rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the image ---------------------------------------------------------------
"$PY" - "$tmp/layout" "$LAYERS" "$UNPACKED_MB" >"$tmp/image.txt" <<'PYEOF'
import gzip, hashlib, io, json, os, random, sys, tarfile

path, nlayers, total_mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(os.path.join(path, "blobs", "sha256"), exist_ok=True)
MTIME = 1700000000
FILE = 1 << 20  # 1 MiB files
per_layer = total_mb * 1000 * 1000 // nlayers
words = "alpha bravo charlie delta echo foxtrot golf hotel".split()
rnd = random.Random(os.urandom(16))

def text(n, seq):
    out, size = [], 0
    while size < n:
        line = (f"{seq:08d} level=info component=berth msg=\"request handled\" status=ok "
                f"{rnd.choice(words)} {rnd.choice(words)} value={rnd.randrange(100)}\n")
        out.append(line)
        size += len(line)
        seq += 1
    return "".join(out).encode()[:n], seq

def blob(data):
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    with open(os.path.join(path, "blobs", "sha256", d[7:]), "wb") as f:
        f.write(data)
    return {"digest": d, "size": len(data)}

def add(t, name, data=None):
    ti = tarfile.TarInfo(name)
    ti.mtime = MTIME
    if data is None:
        ti.type, ti.mode = tarfile.DIRTYPE, 0o755
        t.addfile(ti)
    else:
        ti.size, ti.mode = len(data), 0o644
        t.addfile(ti, io.BytesIO(data))

layers, diff_ids, unpacked, seq = [], [], 0, 0
for i in range(nlayers):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        add(t, f"layer{i}")
        for kind in ("random", "text"):
            add(t, f"layer{i}/{kind}")
            left, n = per_layer // 2, 0
            while left > 0:
                size = min(FILE, left)
                if kind == "random":
                    data = os.urandom(size)
                else:
                    data, seq = text(size, seq)
                add(t, f"layer{i}/{kind}/{n:03d}", data)
                unpacked += size
                left -= size
                n += 1
    tar = buf.getvalue()
    diff_ids.append("sha256:" + hashlib.sha256(tar).hexdigest())
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                   **blob(gzip.compress(tar, compresslevel=6, mtime=0))})
config = {"architecture": "amd64", "os": "linux",
          "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
          "rootfs": {"type": "layers", "diff_ids": diff_ids},
          "created": "2023-11-14T22:13:20Z"}
cdesc = blob(json.dumps(config, sort_keys=True).encode())
manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **cdesc},
            "layers": layers}
mdesc = blob(json.dumps(manifest, sort_keys=True).encode())
with open(os.path.join(path, "oci-layout"), "w") as f:
    json.dump({"imageLayoutVersion": "1.0.0"}, f)
with open(os.path.join(path, "index.json"), "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [
        {"mediaType": manifest["mediaType"], **mdesc,
         "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}, f)
compressed = sum(l["size"] for l in layers) + cdesc["size"] + mdesc["size"]
print(compressed, unpacked, nlayers)
PYEOF
read -r compressed unpacked nlayers <"$tmp/image.txt"

# --- the registry -------------------------------------------------------------
port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
host=127.0.0.1:$port
mkdir -p "$tmp/registry/storage"
cat >"$tmp/registry/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $tmp/registry/storage
http:
  addr: $host
EOF
"$REGISTRY_BIN" serve "$tmp/registry/config.yml" </dev/null >"$tmp/registry/log" 2>&1 &
reg_pid=$!
for _ in $(seq 400); do
    curl -s -o /dev/null "http://$host/v2/" && break
    kill -0 "$reg_pid" 2>/dev/null || break
    sleep 0.05
done
curl -s -o /dev/null "http://$host/v2/" || { tail -n 20 "$tmp/registry/log" >&2; die "docker-registry did not start"; }
ref=$host/bench/pull:latest
skopeo copy --quiet --dest-tls-verify=false "oci:$tmp/layout:latest" "docker://$ref"
rm -rf "$tmp/layout"
# untimed: the registry's blobs into the page cache
skopeo copy --quiet --src-tls-verify=false "docker://$ref" "dir:$tmp/warm"
rm -rf "$tmp/warm"

echo "image: $nlayers gzip layers, $("$PY" -c "print(f'{$compressed / 1e6:.1f}')") MB compressed," \
    "$("$PY" -c "print(f'{$unpacked / 1e6:.1f}')") MB unpacked; registry $host; $RUNS cold runs each"

# --- the runs -----------------------------------------------------------------
results=$tmp/results
: >"$results"
cpu_s() { # pid... -> sum of utime+stime in seconds
    local p
    for p in "$@"; do cat "/proc/$p/stat"; done |
        awk -v hz="$(getconf CLK_TCK)" '{sub(/.*\) /, ""); t += $12 + $13} END {printf "%.2f", t / hz}'
}
cpu_reaped_s() { # pid -> its utime+stime and its reaped children's, in seconds
    awk -v hz="$(getconf CLK_TCK)" '{sub(/.*\) /, ""); printf "%.2f", ($12 + $13 + $14 + $15) / hz}' "/proc/$1/stat"
}
timed() { # key cmd... : wall and user+sys of the command's process tree
    local out=$tmp/time.out rc=0
    sync
    "$TIME" -f '%e %U %S' -o "$out" "${@:2}" >"$tmp/cmd.out" 2>&1 || rc=$?
    if [ "$rc" != 0 ]; then
        cat "$tmp/cmd.out" >&2
        die "$1 failed (exit $rc)"
    fi
    awk -v k="$1" '{printf "%s %s %.2f\n", k, $1, $2 + $3}' "$out" >>"$results"
}

start_dockerd() { bench_dockerd_start "$1" --insecure-registry "$host"; }

for run in $(seq "$RUNS"); do
    timed skopeo skopeo copy --quiet --src-tls-verify=false "docker://$ref" "dir:$tmp/sk$run"
    rm -rf "$tmp/sk$run"

    timed berth-fetch "$FETCH" --root "$tmp/berth$run" --insecure-registry "$host" \
        --parallel "$PARALLEL" unpack "$ref"
    grep -q '^path ' "$tmp/cmd.out" || { cat "$tmp/cmd.out" >&2; die "berth-fetch printed no path"; }
    if [ "$run" = 1 ]; then
        berth_du=$(du -sb "$tmp/berth1/supervisor/snapshots" | cut -f1)
    fi
    rm -rf --one-file-system "$tmp/berth$run"

    # the same through the daemon: berth-supervisor (its pull runs in a
    # berth-fetch worker) driven by berth-ctr, from a cold root
    if [ -x "$SUPERVISOR" ] && [ -x "$CTR" ]; then
        sx=$(mktemp -d /tmp/bbp.XXXXXX)
        "$SUPERVISOR" --root "$tmp/sup$run" --exec-root "$sx" --insecure-registry "$host" \
            --max-concurrent-downloads "$PARALLEL" >"$tmp/sup.log" 2>&1 &
        sup_pid=$!
        for _ in $(seq 200); do [ -S "$sx/supervisor.sock" ] && break; sleep 0.02; done
        # CPU: the client's (time(1)) + the daemon's and its reaped workers'
        s0=$(cpu_reaped_s "$sup_pid")
        timed berth-ctr "$CTR" --address "ipc://$sx/supervisor.sock" images pull "$ref"
        s1=$(cpu_reaped_s "$sup_pid")
        read -r _ w c < <(tail -n1 "$results")
        echo "berth-supervisor $w $("$PY" -c "print(f'{$s1 - $s0 + $c:.2f}')")" >>"$results"
        kill "$sup_pid"
        wait "$sup_pid" 2>/dev/null || true
        rm -rf --one-file-system "$tmp/sup$run" "$sx"
    fi

    if [ "$use_docker" != 0 ]; then
        start_dockerd "$tmp/dk$run"
        ctd=$(pgrep -P "$dk_pid" -x containerd || true)
        [ -n "$ctd" ] || echo "bench-pull: dockerd's containerd not found; its CPU is not counted" >&2
        # shellcheck disable=SC2086  # $ctd: none or one pid
        c0=$(cpu_s "$dk_pid" $ctd)
        timed docker-client env DOCKER_CONFIG="$dk/cli" "$DOCKER_CLI" -H "unix://$dk/docker.sock" pull -q "$ref"
        # shellcheck disable=SC2086
        c1=$(cpu_s "$dk_pid" $ctd)
        read -r _ w c < <(tail -n1 "$results")
        echo "dockerd $w $("$PY" -c "print(f'{$c1 - $c0 + $c:.2f}')")" >>"$results"
        docker_cli image inspect "$ref" >/dev/null || die "docker pull left no image"
        if [ "$run" = 1 ]; then
            docker_du=$(du -sb "$dk/data/overlay2" | cut -f1)
        fi
        stop_dockerd
    fi
done

echo
"$PY" - "$results" "$compressed" "${berth_du:-0}" "${docker_du:-0}" <<'PYEOF'
import sys
rows = {}
for line in open(sys.argv[1]):
    key, wall, cpu = line.split()
    rows.setdefault(key, []).append((float(wall), float(cpu)))
compressed = int(sys.argv[2])
berth_du, docker_du = int(sys.argv[3]), int(sys.argv[4])
mean = {}
labels = {"berth-fetch": "berth-fetch unpack", "berth-supervisor": "berth-ctr images pull",
          "dockerd": "docker pull (dockerd)", "skopeo": "skopeo copy dir: (floor)"}
for key in ("berth-fetch", "berth-supervisor", "dockerd", "skopeo"):
    if key not in rows:
        continue
    r = rows[key]
    w = sum(x[0] for x in r) / len(r)
    c = sum(x[1] for x in r) / len(r)
    mean[key] = (w, c)
    runs = " ".join(f"{x[0]:.2f}" for x in r)
    print(f"{labels[key]:26s} mean {w:5.2f} s  {compressed / 1e6 / w:6.1f} MB/s  CPU {c:5.2f} s"
          f"   (runs: {runs} s)")
if "dockerd" in rows:
    print(f"  dockerd CPU = dockerd + containerd + the docker client; client alone: "
          f"{sum(x[1] for x in rows['docker-client']) / len(rows['docker-client']):.2f} s")
if berth_du:
    print(f"  on disk after run 1: berth snapshots {berth_du / 1e6:.1f} MB"
          + (f", dockerd overlay2 {docker_du / 1e6:.1f} MB" if docker_du else ""))
if "dockerd" in mean and "berth-fetch" in mean:
    b, d = mean["berth-fetch"], mean["dockerd"]
    print(f"ratio berth-fetch/dockerd: time {b[0] / d[0]:.2f} (target <= 0.5), CPU {b[1] / d[1]:.2f}")
if "dockerd" in mean and "berth-supervisor" in mean:
    b, d = mean["berth-supervisor"], mean["dockerd"]
    print(f"ratio berth-supervisor/dockerd: time {b[0] / d[0]:.2f} (target <= 0.5), CPU {b[1] / d[1]:.2f}")
if "skopeo" in mean and "berth-fetch" in mean:
    print(f"ratio berth-fetch/skopeo (floor): time {mean['berth-fetch'][0] / mean['skopeo'][0]:.2f}")
PYEOF
