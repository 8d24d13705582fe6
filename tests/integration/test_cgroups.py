"""Cgroup (v1 hybrid) limits: enforced, visible on the host, removed on delete."""

from pathlib import Path

from conftest import cgroup_v1_mount, run_container

MiB = 1024 * 1024


def cg_file(controller, cgroups_path, name):
    mp = cgroup_v1_mount(controller)
    assert mp, f"no cgroup v1 mount for {controller} in /proc/self/mountinfo"
    return Path(mp) / cgroups_path.lstrip("/") / name


def read_cg(controller, cgroups_path, name):
    return cg_file(controller, cgroups_path, name).read_text().strip()


def test_memory_limit_oom_kills(rt, bundle, leftovers):
    def edit(c):
        c["linux"]["resources"]["memory"] = {"limit": 32 * MiB}
    b = bundle(["tail", "/dev/zero"], edit=edit)
    p = run_container(rt, b, timeout=60)
    assert p.returncode == 137, (p.returncode, p.stderr)
    assert leftovers(b) == []


def test_memory_hog_shell_oom_kills(rt, bundle):
    def edit(c):
        c["linux"]["resources"]["memory"] = {"limit": 32 * MiB}
    b = bundle(["sh", "-c", "x=0123456789abcdef; while :; do x=$x$x$x$x; done"], edit=edit)
    p = run_container(rt, b, timeout=60)
    assert p.returncode == 137, (p.returncode, p.stderr)


def test_pids_limit_stops_fork_bomb(rt, bundle, leftovers):
    def edit(c):
        c["linux"]["resources"]["pids"] = {"limit": 10}
    b = bundle(["sh", "-c", "for i in $(seq 30); do sleep 5 & done; wait", "@MARKER@"],
               edit=edit)
    p = run_container(rt, b, timeout=30)
    assert p.returncode != 0
    err = p.stderr.lower()
    assert "can't fork" in err or "resource temporarily unavailable" in err, p.stderr
    assert leftovers(b) == []


def test_limits_visible_on_host_and_removed(rt, bundle, leftovers):
    def edit(c):
        c["linux"]["resources"].update({
            "memory": {"limit": 48 * MiB},
            "pids": {"limit": 25},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000},
        })
    b = bundle(["sh", "-c", "cat /proc/self/cgroup; while :; do sleep 0.1; done", "@MARKER@"],
               edit=edit)
    cp = b.cgroups_path
    p = rt("create", "-b", b.path, b.id)
    assert p.returncode == 0, p.stderr
    pid = rt.state(b.id)["pid"]
    for which in ("created", "running"):
        if which == "running":
            assert rt("start", b.id).returncode == 0
            rt.wait_status(b.id, "running")
        assert read_cg("memory", cp, "memory.limit_in_bytes") == str(48 * MiB)
        assert read_cg("pids", cp, "pids.max") == "25"
        assert read_cg("cpu", cp, "cpu.shares") == "512"
        assert read_cg("cpu", cp, "cpu.cfs_quota_us") == "50000"
        assert read_cg("cpu", cp, "cpu.cfs_period_us") == "100000"
        for ctrl in ("memory", "pids", "cpu", "cpuacct", "cpuset", "devices",
                     "freezer", "blkio"):
            procs = read_cg(ctrl, cp, "cgroup.procs").split()
            assert str(pid) in procs, f"init pid {pid} not in {ctrl} cgroup {cp}: {procs}"
    assert rt("kill", b.id, "KILL").returncode == 0
    rt.wait_status(b.id, "stopped")
    assert rt("delete", b.id).returncode == 0
    assert leftovers(b) == []


def test_cgroup_membership_inside(rt, bundle):
    b = bundle(["cat", "/proc/self/cgroup"])
    p = run_container(rt, b)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    for line in lines:
        assert line.split(":", 2)[2] == b.cgroups_path, line
    with open("/proc/self/cgroup") as f:
        assert len(lines) == len(f.read().splitlines()), lines


def test_devices_cgroup_denies_mknod_default(rt, bundle):
    # default spec: devices deny-all; /dev/null etc. still usable
    def edit(c):
        c["process"]["capabilities"]["bounding"].append("CAP_MKNOD")
        c["process"]["capabilities"]["effective"].append("CAP_MKNOD")
        c["process"]["capabilities"]["permitted"].append("CAP_MKNOD")
    b = bundle(["sh", "-c", "mknod /tmp/sda b 8 0 && head -c1 /tmp/sda >/dev/null 2>&1 "
                            "&& echo READ; echo ok > /dev/null && echo null-ok"], edit=edit)
    p = run_container(rt, b)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["null-ok"], p.stdout


def test_cpuset(rt, bundle):
    def edit(c):
        c["linux"]["resources"]["cpu"] = {"cpus": "0", "mems": "0"}
    b = bundle(["sh", "-c", "grep Cpus_allowed_list /proc/self/status"], edit=edit)
    p = run_container(rt, b)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["Cpus_allowed_list:", "0"]
