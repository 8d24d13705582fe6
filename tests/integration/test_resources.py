"""Device cgroup and the other linux.resources: blockIO, hugepageLimits,
unified, realtime cpu, memory flags; and `update --blkio-weight`.

Written for this hybrid (v1 controllers) host; the v2 paths (eBPF device
program, io.*, hugetlb.*.max, unified) are covered by the unit tests.
The device rules are runc 1.1's: the spec's rules after a deny-all, then
defaults every container gets (mknod of any device; null, zero, full,
random, urandom, tty, ptmx, the ptys, tun) unless linux.devices lists the
default's path, in which case the spec's rules decide.
"""

from pathlib import Path

import pytest

from conftest import cgroup_v1_mount, run_container

NOT_PERMITTED = "Operation not permitted"
LONG = ["sh", "-c", "sleep 30", "@MARKER@"]

RUNC_DEFAULT_DEVICES = {
    "c *:* m", "b *:* m", "c 1:3 rwm", "c 1:8 rwm", "c 1:7 rwm", "c 5:0 rwm",
    "c 1:5 rwm", "c 1:9 rwm", "c 136:* rwm", "c 5:2 rwm", "c 10:200 rwm",
}


def cg_dir(controller, cgroups_path):
    mp = cgroup_v1_mount(controller)
    if not mp:
        pytest.skip(f"no cgroup v1 {controller} controller on this host")
    return Path(mp) / cgroups_path.lstrip("/")


def read_cg(controller, cgroups_path, name):
    return (cg_dir(controller, cgroups_path) / name).read_text().strip()


def run_ok(rt, b, *extra, **kw):
    p = run_container(rt, b, *extra, **kw)
    assert p.returncode == 0, f"rc={p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    return p


def run_fails(rt, b, leftovers, *needles):
    p = run_container(rt, b)
    assert p.returncode != 0, p.stdout
    for n in needles:
        assert n.lower() in p.stderr.lower(), p.stderr
    assert leftovers(b) == []
    return p


def created(rt, b):
    """create the container; returns its cgroupsPath (delete --force in cleanup)."""
    p = rt("create", "-b", b.path, b.id)
    assert p.returncode == 0, p.stderr
    return b.cgroups_path


def block_device(want_bfq=False):
    """(major, minor) of a real block device from /sys/block, preferring
    disks over loop/zram/ram devices; None if there is none."""
    found = []
    for d in sorted(Path("/sys/block").iterdir()):
        try:
            majmin = (d / "dev").read_text().strip()
            sched = (d / "queue" / "scheduler").read_text() if (d / "queue" / "scheduler").exists() else ""
        except OSError:
            continue
        if want_bfq and "[bfq]" not in sched:
            continue
        virtual = d.name.startswith(("loop", "zram", "ram"))
        found.append((virtual, tuple(int(x) for x in majmin.split(":"))))
    found.sort()
    return found[0][1] if found else None


def blkio_weight_file(cp):
    d = cg_dir("blkio", cp)
    return "blkio.weight" if (d / "blkio.weight").exists() else "blkio.bfq.weight"


# --------------------------------------------------------------------------
# device cgroup


def test_default_device_rules_on_host(rt, bundle):
    if not cgroup_v1_mount("devices"):
        pytest.skip("no cgroup v1 devices controller")
    b = bundle(LONG)
    cp = created(rt, b)
    rules = set(read_cg("devices", cp, "devices.list").splitlines())
    assert rules == RUNC_DEFAULT_DEVICES, sorted(rules)


def test_devices_allowed_and_denied(rt, bundle):
    # /dev/zero and /dev/full are in linux.devices, so the spec's rules
    # decide for them: zero read-only, full nothing. /dev/berth-mem (c 1:1)
    # is listed nowhere. /dev/null keeps its default.
    def edit(c):
        c["linux"]["devices"] = [
            {"path": "/dev/zero", "type": "c", "major": 1, "minor": 5, "fileMode": 0o666},
            {"path": "/dev/full", "type": "c", "major": 1, "minor": 7, "fileMode": 0o666},
            {"path": "/dev/berth-mem", "type": "c", "major": 1, "minor": 1, "fileMode": 0o600},
        ]
        c["linux"]["resources"]["devices"] = [
            {"allow": False, "access": "rwm"},
            {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "r"},
        ]
    b = bundle(["sh", "-c",
                "head -c1 /dev/zero | wc -c; "
                "head -c1 /dev/full; echo full=$?; "
                "echo x > /dev/zero; echo zero-write=$?; "
                "head -c1 /dev/berth-mem; echo mem=$?; "
                "echo x > /dev/null; echo null=$?"], edit=edit)
    p = run_ok(rt, b)
    assert p.stdout.split() == ["1", "full=1", "zero-write=1", "mem=1", "null=0"], (p.stdout, p.stderr)
    assert p.stderr.count(NOT_PERMITTED) == 3, p.stderr
    for dev in ("/dev/full", "/dev/zero", "/dev/berth-mem"):
        assert f"{dev}: {NOT_PERMITTED}" in p.stderr, p.stderr


def test_devices_resources_rule_allows_extra_device(rt, bundle):
    # c 42:0 ("demo/sample use") has no driver: once the device cgroup lets
    # the open through it fails with ENXIO, else with EPERM.
    def edit(c, allow):
        c["linux"]["devices"] = [{"path": "/dev/berth-demo", "type": "c", "major": 42, "minor": 0,
                                  "fileMode": 0o666}]
        if allow:
            c["linux"]["resources"]["devices"].append(
                {"allow": True, "type": "c", "major": 42, "access": "r"})
    for allow in (True, False):
        b = bundle(["sh", "-c", "head -c1 /dev/berth-demo; echo rc=$?"], edit=lambda c: edit(c, allow))
        p = run_ok(rt, b)
        assert p.stdout.strip() == "rc=1", (allow, p.stdout, p.stderr)
        want = "No such device or address" if allow else NOT_PERMITTED
        assert f"/dev/berth-demo: {want}" in p.stderr, (allow, p.stderr)


def test_devices_mknod(rt, bundle):
    # The defaults allow mknod of any device (runc compatible), but an
    # unlisted device made that way can be neither read nor written; without
    # CAP_MKNOD (the default spec) mknod itself is refused.
    def edit(c, cap):
        if cap:
            for k in ("bounding", "effective", "permitted"):
                c["process"]["capabilities"][k].append("CAP_MKNOD")
    script = ("mknod /dev/berth-mem c 1 1; echo mknod=$?; "
              "test -c /dev/berth-mem && { head -c1 /dev/berth-mem; echo read=$?; }; "
              "mknod /dev/berth-loop b 7 0; echo mknodb=$?")
    b = bundle(["sh", "-c", script], edit=lambda c: edit(c, True))
    p = run_ok(rt, b)
    assert p.stdout.split() == ["mknod=0", "read=1", "mknodb=0"], (p.stdout, p.stderr)
    assert f"/dev/berth-mem: {NOT_PERMITTED}" in p.stderr, p.stderr

    b = bundle(["sh", "-c", script], edit=lambda c: edit(c, False))
    p = run_ok(rt, b)
    assert p.stdout.split() == ["mknod=1", "mknodb=1"], (p.stdout, p.stderr)
    assert NOT_PERMITTED in p.stderr, p.stderr


def test_devices_allow_all(rt, bundle):
    # A privileged container: everything allowed, /dev/berth-mem included.
    def edit(c):
        c["linux"]["resources"]["devices"] = [{"allow": True, "access": "rwm"}]
    if not cgroup_v1_mount("devices"):
        pytest.skip("no cgroup v1 devices controller")
    b = bundle(LONG, edit=edit)
    cp = created(rt, b)
    assert read_cg("devices", cp, "devices.list") == "a *:* rwm"


def test_update_leaves_devices_alone(rt, bundle):
    if not cgroup_v1_mount("devices"):
        pytest.skip("no cgroup v1 devices controller")
    b = bundle(LONG)
    cp = created(rt, b)
    before = read_cg("devices", cp, "devices.list")
    p = rt("update", "--memory", str(64 << 20), "--pids-limit", "50", b.id)
    assert p.returncode == 0, p.stderr
    assert read_cg("devices", cp, "devices.list") == before


@pytest.mark.ocirun_only
def test_update_devices_from_resources_file_ignored(rt, bundle, tmp_path):
    if not cgroup_v1_mount("devices"):
        pytest.skip("no cgroup v1 devices controller")
    b = bundle(LONG)
    cp = created(rt, b)
    before = read_cg("devices", cp, "devices.list")
    res = tmp_path / "res.json"
    res.write_text('{"devices": [{"allow": true, "access": "rwm"}]}')
    p = rt("update", "--resources", res, b.id)
    assert p.returncode == 0, p.stderr
    assert "linux.resources.devices cannot be updated: ignored" in p.stderr, p.stderr
    assert read_cg("devices", cp, "devices.list") == before


def test_bad_device_rule_fails_cleanly(rt, bundle, leftovers):
    def edit(c):
        c["linux"]["resources"]["devices"] = [{"allow": True, "type": "c", "major": 1, "minor": 3, "access": ""}]
    b = bundle(["true"], edit=edit)
    run_fails(rt, b, leftovers, "access")


@pytest.mark.ocirun_only
def test_bad_device_rule_message(rt, bundle, leftovers):
    def edit(c):
        c["linux"]["resources"]["devices"].append({"allow": True, "type": "x", "access": "r"})
    b = bundle(["true"], edit=edit)
    p = run_fails(rt, b, leftovers)
    assert 'linux.resources.devices[1].type "x" is not one of a, c, b' in p.stderr, p.stderr


# --------------------------------------------------------------------------
# blockIO


def test_blkio_weight_and_throttle_on_host(rt, bundle):
    dev = block_device()
    if not dev:
        pytest.skip("no block device in /sys/block")
    majmin = f"{dev[0]}:{dev[1]}"

    def edit(c):
        c["linux"]["resources"]["blockIO"] = {
            "weight": 300,
            "throttleReadBpsDevice": [{"major": dev[0], "minor": dev[1], "rate": 1048576}],
            "throttleWriteBpsDevice": [{"major": dev[0], "minor": dev[1], "rate": 2097152}],
            "throttleReadIOPSDevice": [{"major": dev[0], "minor": dev[1], "rate": 1000}],
            "throttleWriteIOPSDevice": [{"major": dev[0], "minor": dev[1], "rate": 500}],
        }
    b = bundle(LONG, edit=edit)
    cp = created(rt, b)
    d = cg_dir("blkio", cp)
    wf = blkio_weight_file(cp)
    if not (d / wf).exists():
        pytest.skip("no blkio weight file (neither CFQ nor BFQ)")
    assert read_cg("blkio", cp, wf).split()[-1] == "300"
    assert read_cg("blkio", cp, "blkio.throttle.read_bps_device") == f"{majmin} 1048576"
    assert read_cg("blkio", cp, "blkio.throttle.write_bps_device") == f"{majmin} 2097152"
    assert read_cg("blkio", cp, "blkio.throttle.read_iops_device") == f"{majmin} 1000"
    assert read_cg("blkio", cp, "blkio.throttle.write_iops_device") == f"{majmin} 500"


def test_blkio_weight_device_on_host(rt, bundle):
    dev = block_device(want_bfq=True)
    if not dev:
        pytest.skip("no block device with the BFQ scheduler (weightDevice needs it)")

    def edit(c):
        c["linux"]["resources"]["blockIO"] = {
            "weightDevice": [{"major": dev[0], "minor": dev[1], "weight": 700}]}
    b = bundle(LONG, edit=edit)
    cp = created(rt, b)
    wf = blkio_weight_file(cp) + "_device"
    assert f"{dev[0]}:{dev[1]} 700" in read_cg("blkio", cp, wf)


def test_blkio_leaf_weight_without_cfq_fails(rt, bundle, leftovers):
    if not cgroup_v1_mount("blkio"):
        pytest.skip("no cgroup v1 blkio controller")
    if (Path(cgroup_v1_mount("blkio")) / "blkio.leaf_weight").exists():
        pytest.skip("the kernel has CFQ's blkio.leaf_weight")

    def edit(c):
        c["linux"]["resources"]["blockIO"] = {"leafWeight": 300}
    b = bundle(["true"], edit=edit)
    run_fails(rt, b, leftovers, "blkio.leaf_weight")


def test_update_blkio_weight(rt, bundle):
    if not cgroup_v1_mount("blkio"):
        pytest.skip("no cgroup v1 blkio controller")
    b = bundle(LONG)
    cp = created(rt, b)
    wf = blkio_weight_file(cp)
    if not (cg_dir("blkio", cp) / wf).exists():
        pytest.skip("no blkio weight file (neither CFQ nor BFQ)")
    p = rt("update", "--blkio-weight", "444", b.id)
    assert p.returncode == 0, p.stderr
    assert read_cg("blkio", cp, wf).split()[-1] == "444"
    p = rt("start", b.id)
    assert p.returncode == 0, p.stderr
    p = rt("update", "--blkio-weight", "555", b.id)
    assert p.returncode == 0, p.stderr
    assert read_cg("blkio", cp, wf).split()[-1] == "555"


@pytest.mark.ocirun_only
def test_update_blkio_throttle_from_resources_file(rt, bundle, tmp_path):
    dev = block_device()
    if not dev or not cgroup_v1_mount("blkio"):
        pytest.skip("no block device or no blkio controller")
    b = bundle(LONG)
    cp = created(rt, b)
    res = tmp_path / "res.json"
    res.write_text('{"blockIO": {"throttleReadIOPSDevice": [{"major": %d, "minor": %d, "rate": 77}]}}' % dev)
    p = rt("update", "--resources", res, b.id)
    assert p.returncode == 0, p.stderr
    assert read_cg("blkio", cp, "blkio.throttle.read_iops_device") == f"{dev[0]}:{dev[1]} 77"


@pytest.mark.ocirun_only
def test_blkio_weight_out_of_range(rt, bundle, leftovers):
    def edit(c):
        c["linux"]["resources"]["blockIO"] = {"weight": 5}
    b = bundle(["true"], edit=edit)
    p = run_fails(rt, b, leftovers)
    assert "linux.resources.blockIO.weight 5 is outside 10..1000" in p.stderr, p.stderr


# --------------------------------------------------------------------------
# hugetlb, unified


def test_hugepage_limits(rt, bundle, leftovers):
    sizes = [p.name for p in Path("/sys/kernel/mm/hugepages").glob("hugepages-*kB")] \
        if Path("/sys/kernel/mm/hugepages").exists() else []
    if "hugepages-2048kB" not in sizes:
        pytest.skip("no 2MB huge pages")

    def edit(c):
        c["linux"]["resources"]["hugepageLimits"] = [{"pageSize": "2MB", "limit": 4 << 20}]
    b = bundle(LONG, edit=edit)
    if not cgroup_v1_mount("hugetlb"):
        # this (hybrid) host: nowhere to put the limit
        run_fails(rt, b, leftovers, "hugetlb")
        return
    cp = created(rt, b)
    assert read_cg("hugetlb", cp, "hugetlb.2MB.limit_in_bytes") == str(4 << 20)


@pytest.mark.ocirun_only
def test_hugepage_limits_error_message(rt, bundle, leftovers):
    if cgroup_v1_mount("hugetlb"):
        pytest.skip("the host has a v1 hugetlb controller")

    def edit(c):
        c["linux"]["resources"]["hugepageLimits"] = [{"pageSize": "2MB", "limit": 4 << 20}]
    b = bundle(["true"], edit=edit)
    p = run_fails(rt, b, leftovers)
    assert "linux.resources.hugepageLimits: the hugetlb cgroup controller is not available" in p.stderr, p.stderr


def host_is_v1():
    return cgroup_v1_mount("memory") is not None


def test_unified_on_v1_host_fails(rt, bundle, leftovers):
    if not host_is_v1():
        pytest.skip("pure cgroup v2 host")

    def edit(c):
        c["linux"]["resources"]["unified"] = {"memory.high": "100000000"}
    b = bundle(["true"], edit=edit)
    run_fails(rt, b, leftovers, "unified")


@pytest.mark.ocirun_only
def test_unified_on_v1_host_message(rt, bundle, leftovers):
    if not host_is_v1():
        pytest.skip("pure cgroup v2 host")

    def edit(c):
        c["linux"]["resources"]["unified"] = {"pids.max": "10"}
    b = bundle(["true"], edit=edit)
    p = run_fails(rt, b, leftovers)
    assert "unified resources need cgroup v2" in p.stderr, p.stderr


def test_empty_unified_is_fine(rt, bundle):
    def edit(c):
        c["linux"]["resources"]["unified"] = {}
    b = bundle(["true"], edit=edit)
    run_ok(rt, b)


# --------------------------------------------------------------------------
# cpu realtime, memory flags


def test_cpu_realtime_period_on_host(rt, bundle):
    if not cgroup_v1_mount("cpu"):
        pytest.skip("no cgroup v1 cpu controller")
    if not (Path(cgroup_v1_mount("cpu")) / "cpu.rt_period_us").exists():
        pytest.skip("no realtime group scheduling (CONFIG_RT_GROUP_SCHED)")

    def edit(c):
        c["linux"]["resources"]["cpu"] = {"realtimePeriod": 500000}
    b = bundle(LONG, edit=edit)
    cp = created(rt, b)
    assert read_cg("cpu", cp, "cpu.rt_period_us") == "500000"


def test_cpu_realtime_runtime_beyond_parent_fails(rt, bundle, leftovers):
    # The test cgroups' parent has no realtime budget: the kernel refuses.
    mp = cgroup_v1_mount("cpu")
    if not mp or not (Path(mp) / "cpu.rt_runtime_us").exists():
        pytest.skip("no realtime group scheduling")
    parent = Path(mp) / "berth-test" / "cpu.rt_runtime_us"
    if parent.exists() and parent.read_text().strip() != "0":
        pytest.skip("the test parent cgroup has a realtime budget")

    def edit(c):
        c["linux"]["resources"]["cpu"] = {"realtimeRuntime": 1000, "realtimePeriod": 1000000}
    b = bundle(["true"], edit=edit)
    run_fails(rt, b, leftovers, "cpu.rt_runtime_us")


def test_memory_disable_oom_killer_and_swappiness(rt, bundle):
    if not cgroup_v1_mount("memory"):
        pytest.skip("no cgroup v1 memory controller")

    def edit(c):
        c["linux"]["resources"]["memory"] = {"limit": 64 << 20, "disableOOMKiller": True, "swappiness": 7}
    b = bundle(LONG, edit=edit)
    cp = created(rt, b)
    assert "oom_kill_disable 1" in read_cg("memory", cp, "memory.oom_control").splitlines()
    assert read_cg("memory", cp, "memory.swappiness") == "7"


def test_memory_oom_killer_stays_on_by_default(rt, bundle):
    if not cgroup_v1_mount("memory"):
        pytest.skip("no cgroup v1 memory controller")

    def edit(c):
        c["linux"]["resources"]["memory"] = {"limit": 64 << 20, "disableOOMKiller": False}
    b = bundle(LONG, edit=edit)
    cp = created(rt, b)
    assert "oom_kill_disable 0" in read_cg("memory", cp, "memory.oom_control").splitlines()


def test_kernel_memory_is_ignored_with_a_warning(rt, bundle):
    def edit(c):
        c["linux"]["resources"]["memory"] = {"kernel": 64 << 20, "kernelTCP": 16 << 20, "useHierarchy": True}
    b = bundle(["sh", "-c", "echo ran"], edit=edit)
    p = run_ok(rt, b)
    assert p.stdout.strip() == "ran"
    assert "kernel" in p.stderr.lower() and "ignored" in p.stderr.lower(), p.stderr


def test_kernel_memory_not_written(rt, bundle):
    if not cgroup_v1_mount("memory"):
        pytest.skip("no cgroup v1 memory controller")

    def edit(c):
        c["linux"]["resources"]["memory"] = {"kernel": 64 << 20}
    b = bundle(LONG, edit=edit)
    cp = created(rt, b)
    kmem = cg_dir("memory", cp) / "memory.kmem.limit_in_bytes"
    if kmem.exists():
        assert int(kmem.read_text()) != 64 << 20
