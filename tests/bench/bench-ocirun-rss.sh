#!/bin/bash
# Peak RSS of `<runtime> create` on the same bundle: ocirun vs runc.
#
#   tests/bench/bench-ocirun-rss.sh            # ocirun = build-ci/ocirun/ocirun or build/...
#   OCIRUN=runc RUNS=3 tests/bench/bench-ocirun-rss.sh   # check the script itself
#
# Environment:
#   OCIRUN        runtime under test (default: <repo>/build-ci/ocirun/ocirun,
#                 else <repo>/build/ocirun/ocirun)
#   PEER_RUNTIME  reference runtime (default: runc)
#   RUNS          measurements per runtime (default: 10); the median is reported
#
# What is measured: the peak resident set (ru_maxrss, from wait4) of the
# `create` process, i.e. the runtime process that a caller (a shim, conmon)
# waits for, through GNU time (`/usr/bin/time -f %M`).  Not through Python:
# a child forked by Python starts as a copy of the interpreter and the
# kernel keeps that copy's ~14 MB high-water mark across exec, which would
# hide the runtime's own figure; GNU time's pre-exec copy is ~1 MB, the floor
# of this measurement (`/usr/bin/time -f %M /bin/true` prints it).  Children
# that `create` reaped count too; the container's init process, which
# outlives `create`, does not: its own peak (VmHWM from /proc/<pid>/status,
# read while the container is "created") is printed on a second line for
# each runtime, as it is what stays resident until `start`.
#
# The bundle is a busybox rootfs with config.json from `$PEER_RUNTIME spec`,
# args ["true"], terminal false, cgroupsPath /bench-rss-<pid>/<id>.  After
# each measurement the container is deleted.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_runtimes bench-ocirun-rss
RUNS=${RUNS:-10}
[ -x /usr/bin/time ] || { echo "bench-ocirun-rss: /usr/bin/time (GNU time) required" >&2; exit 1; }

tmp=$(mktemp -d /tmp/bench-rss.XXXXXX)
cgparent="bench-rss-$$"
# shellcheck disable=SC2317  # called through the EXIT trap
cleanup() {
    set +e
    for rt in "$ocirun" "$peer"; do
        for id in $("$rt" --root "$tmp/root-$(basename "$rt")" list -q 2>/dev/null); do
            "$rt" --root "$tmp/root-$(basename "$rt")" delete --force "$id" >/dev/null 2>&1
        done
    done
    for d in /sys/fs/cgroup/*/"$cgparent" /sys/fs/cgroup/"$cgparent"; do
        [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
    rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT

bundle=$tmp/bundle
bench_busybox_rootfs "$bundle/rootfs"
(cd "$bundle" && "$peer" spec)

"$PY" - "$bundle" "$tmp" "$cgparent" "$RUNS" "$ocirun" "$peer" <<'EOF'
import json, os, statistics, subprocess, sys

bundle, tmp, cgparent, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
runtimes = {"ocirun": sys.argv[5], "runc": sys.argv[6]}

cfg_path = os.path.join(bundle, "config.json")
cfg = json.load(open(cfg_path))
cfg["process"]["args"] = ["true"]
cfg["process"]["terminal"] = False


def status_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def measure(name, rt, i):
    root = os.path.join(tmp, "root-" + os.path.basename(rt))
    cid = f"rss-{name}-{i}"
    cfg["linux"]["cgroupsPath"] = f"/{cgparent}/{cid}"
    with open(cfg_path, "w") as f:
        json.dump(cfg, f)
    out = os.path.join(tmp, f"{cid}.rss")
    log = open(os.path.join(tmp, f"{cid}.out"), "w+")
    # stdio to a file, not a pipe: the container's init inherits it
    p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", out,
                        rt, "--root", root, "create", "-b", bundle, cid],
                       stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    if p.returncode != 0:
        log.seek(0)
        sys.exit(f"bench-ocirun-rss: {name} create failed ({p.returncode}): {log.read()}")
    maxrss = int(open(out).read().split()[-1])  # KiB
    st = subprocess.run([rt, "--root", root, "state", cid], capture_output=True, text=True)
    init_hwm = status_kib(json.loads(st.stdout)["pid"], "VmHWM")
    subprocess.run([rt, "--root", root, "delete", "--force", cid], capture_output=True)
    return maxrss, init_hwm


res = {}
for name, rt in runtimes.items():
    measure(name, rt, "warmup")
    vals = [measure(name, rt, i) for i in range(runs)]
    res[name] = (statistics.median(v[0] for v in vals),
                 statistics.median(v[1] for v in vals if v[1] is not None))

floor = statistics.median(
    int(subprocess.run(["/usr/bin/time", "-f", "%M", "/bin/true"], capture_output=True,
                       text=True).stderr.split()[-1]) for _ in range(5))
print(f"measurement floor (/usr/bin/time -f %M /bin/true, median of 5): {floor:.0f} KiB")
for name in runtimes:
    note = ""
    if res[name][0] <= floor * 1.1:
        note = " (at the measurement floor: the runtime's own peak is at most this)"
    print(f"{name} create peak RSS (ru_maxrss, median of {runs}): {res[name][0]:.0f} KiB{note}")
    print(f"{name} container init while created (VmHWM): {res[name][1]:.0f} KiB")
print(f"ratio ocirun/runc (create peak RSS): {res['ocirun'][0] / res['runc'][0]:.3f}")
EOF
exit 0
