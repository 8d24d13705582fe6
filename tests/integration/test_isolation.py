"""Isolation and process setup, observed from inside the container via `run`."""

import os
import re
import subprocess
import uuid

import pytest

from conftest import cap_mask, parse_mountinfo, run_container


def run_ok(rt, b, **kw):
    p = run_container(rt, b, **kw)
    assert p.returncode == 0, f"rc={p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    return p.stdout


def test_pid1(rt, bundle):
    b = bundle(["sh", "-c", "echo $$; ls /proc | grep -c '^[0-9]'"])
    lines = run_ok(rt, b).split()
    assert lines[0] == "1"
    # sh, ls, grep: only a handful of processes are visible
    assert int(lines[1]) <= 4, lines


def test_hostname(rt, bundle):
    host = os.uname().nodename
    b = bundle(["sh", "-c", "hostname; cat /proc/sys/kernel/hostname"],
               hostname="berth-uts-test")
    assert run_ok(rt, b).split() == ["berth-uts-test", "berth-uts-test"]
    assert os.uname().nodename == host


def test_mount_table(rt, bundle):
    b = bundle(["cat", "/proc/self/mountinfo"])
    mi = parse_mountinfo(run_ok(rt, b))
    by_mp = {}
    for m in mi:
        by_mp[m["mountpoint"]] = m  # last one wins (top of the stack)
    expect = {"/proc": "proc", "/dev": "tmpfs", "/dev/pts": "devpts",
              "/dev/shm": "tmpfs", "/dev/mqueue": "mqueue", "/sys": "sysfs"}
    for mp, fstype in expect.items():
        assert mp in by_mp, f"{mp} not mounted; mounts: {sorted(by_mp)}"
        assert by_mp[mp]["fstype"] == fstype, by_mp[mp]
    assert "ro" in by_mp["/sys"]["opts"], by_mp["/sys"]
    assert "nosuid" in by_mp["/dev"]["opts"], by_mp["/dev"]
    # '/' is the bundle's rootfs: same device, and the mount root is .../rootfs
    root = by_mp["/"]
    st = os.stat(b.rootfs)
    assert root["majmin"] == f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}", root
    assert root["root"].endswith("/rootfs"), root
    # no host mounts leak in (e.g. the host's /tmp or /work)
    assert not any(m["mountpoint"].startswith(("/work", "/home", "/run")) for m in mi), mi


def test_root_is_rootfs(rt, bundle):
    b = bundle(["cat", "/etc/berth-rootfs"])
    assert run_ok(rt, b).strip() == "berth busybox rootfs"


def test_network_namespace_only_lo(rt, bundle):
    b = bundle(["sh", "-c", "ls /sys/class/net; echo --; tail -n +3 /proc/net/dev"])
    out = run_ok(rt, b)
    sysnet, _, procnet = out.partition("--")
    assert sysnet.split() == ["lo"], out
    ifaces = [line.split(":")[0].strip() for line in procnet.strip().splitlines()]
    assert ifaces == ["lo"], out


def test_ipc_namespace(rt, bundle):
    mk = subprocess.run(["ipcmk", "-M", "4096"], capture_output=True, text=True)
    if mk.returncode != 0:
        pytest.skip(f"ipcmk failed: {mk.stderr}")
    shmid = re.search(r"(\d+)\s*$", mk.stdout.strip()).group(1)
    try:
        with open("/proc/sysvipc/shm") as f:
            assert any(line.split()[1] == shmid for line in f.readlines()[1:])
        b = bundle(["sh", "-c", "tail -n +2 /proc/sysvipc/shm | wc -l"])
        assert run_ok(rt, b).strip() == "0"
    finally:
        subprocess.run(["ipcrm", "-m", shmid], capture_output=True)


def test_dev_nodes(rt, bundle):
    script = (
        "for d in null zero full random urandom tty; do "
        "  test -c /dev/$d && echo $d $(stat -c '%t:%T' /dev/$d); done; "
        "for l in fd stdin stdout stderr ptmx; do "
        "  test -L /dev/$l && echo $l '->' $(readlink /dev/$l); done; "
        "echo x > /dev/null && echo null-ok; "
        "head -c 5 /dev/zero | wc -c; "
        "head -c 5 /dev/urandom | wc -c"
    )
    b = bundle(["sh", "-c", script])
    lines = run_ok(rt, b).splitlines()
    for d, mm in (("null", "1:3"), ("zero", "1:5"), ("full", "1:7"),
                  ("random", "1:8"), ("urandom", "1:9"), ("tty", "5:0")):
        assert f"{d} {mm}" in lines, (d, lines)
    for l, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                      ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2"),
                      ("ptmx", "pts/ptmx")):
        assert f"{l} -> {target}" in lines, (l, lines)
    assert "null-ok" in lines
    assert lines[-2:] == ["5", "5"], lines


def test_readonly_rootfs(rt, bundle):
    b = bundle(["sh", "-c", "touch /x && echo wrote; touch /tmp/y && echo wrote-tmp; "
                            "awk '$5 == \"/\"' /proc/self/mountinfo"],
               readonly=True)
    out = run_ok(rt, b)
    assert "wrote" not in out.split(), out
    assert "wrote-tmp" not in out, out
    assert not (b.rootfs / "x").exists()
    root_opts = out.strip().splitlines()[-1].split()[5].split(",")
    assert "ro" in root_opts, out


def test_writable_rootfs(rt, bundle):
    b = bundle(["sh", "-c", "touch /x && echo wrote"], readonly=False)
    assert run_ok(rt, b).strip() == "wrote"
    assert (b.rootfs / "x").exists()


def test_masked_paths(rt, bundle):
    b = bundle(["true"], write=False)
    masked = [p for p in b.config["linux"]["maskedPaths"] if os.path.exists(p)]
    if not masked:
        pytest.skip("none of the spec's maskedPaths exist on this host")
    script = "; ".join(
        f"if [ -d {p} ]; then echo {p} dir $(ls -A {p} | wc -l); "
        f"else echo {p} file $(cat {p} 2>/dev/null | wc -c); fi"
        for p in masked)
    b.config["process"]["args"] = ["sh", "-c", script]
    b.write()
    out = run_ok(rt, b)
    for line in out.splitlines():
        path, kind, n = line.split()
        assert n == "0", f"masked path {path} ({kind}) is not empty inside: {line}"
    # sanity: at least one of them has content on the host
    assert len(out.splitlines()) == len(masked)


def test_readonly_paths(rt, bundle):
    b = bundle(["sh", "-c", "cat /proc/self/mountinfo; echo 1 > /proc/sys/vm/drop_caches "
                            "2>/dev/null && echo WRITABLE; true"], write=False)
    ro = [p for p in b.config["linux"]["readonlyPaths"] if os.path.exists(p)]
    b.write()
    out = run_ok(rt, b)
    assert "WRITABLE" not in out
    mi = {m["mountpoint"]: m for m in parse_mountinfo(out)}
    assert "/proc/sys" in ro
    for p in ro:
        assert p in mi, f"readonly path {p} is not a mount point"
        assert "ro" in mi[p]["opts"], mi[p]


def test_env_cwd_args(rt, bundle):
    b = bundle(["sh", "-c", 'pwd; echo "$FOO"; echo "$BERTH_EMPTY"; echo "$PATH"; '
                            'printf "<%s>" "$@"; echo', "argv0", "a b", "", "c"],
               env=["FOO=bar baz", "BERTH_EMPTY="], cwd="/tmp")
    lines = run_ok(rt, b).split("\n")
    assert lines[0] == "/tmp"
    assert lines[1] == "bar baz"
    assert lines[2] == ""
    assert lines[3] == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    assert lines[4] == "<a b><><c>"


def test_env_exact(rt, bundle):
    b = bundle(["env"], env=["FOO=1"])
    got = sorted(run_ok(rt, b).splitlines())
    want = sorted(b.config["process"]["env"])
    # the runtime must pass exactly the spec env, plus HOME when unset
    extra = [e for e in got if e not in want]
    assert all(e.startswith("HOME=") for e in extra), got
    assert all(e in got for e in want), got


def test_home_from_passwd(rt, bundle):
    def edit(c):
        c["process"]["user"] = {"uid": 1000, "gid": 1000}
    b = bundle(["sh", "-c", 'echo "$HOME"'], edit=edit)
    assert run_ok(rt, b).strip() == "/home/tester"


def test_cwd_created_if_missing(rt, bundle):
    b = bundle(["pwd"], cwd="/does/not/exist")
    assert run_ok(rt, b).strip() == "/does/not/exist"


def test_user_and_groups(rt, bundle):
    def edit(c):
        c["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [5, 65534]}
    b = bundle(["sh", "-c", "id -u; id -g; id -un; grep -E '^(Uid|Gid|Groups):' /proc/self/status"],
               edit=edit)
    lines = run_ok(rt, b).splitlines()
    assert lines[:3] == ["1000", "1000", "tester"], lines
    st = {l.split(":")[0]: l.split(":", 1)[1].split() for l in lines[3:]}
    assert st["Uid"] == ["1000"] * 4, st
    assert st["Gid"] == ["1000"] * 4, st
    assert sorted(map(int, st["Groups"])) == [5, 65534], st


def test_root_user_has_no_supplementary_groups(rt, bundle):
    b = bundle(["grep", "^Groups:", "/proc/self/status"])
    assert run_ok(rt, b).split() == ["Groups:"]


def test_user_nobody_cannot_write_root(rt, bundle):
    def edit(c):
        c["process"]["user"] = {"uid": 65534, "gid": 65534}
    b = bundle(["sh", "-c", "id -un; touch /root/x 2>/dev/null && echo WROTE; true"], edit=edit)
    assert run_ok(rt, b).split() == ["nobody"]


def test_umask(rt, bundle):
    # process.user.umask is supported by runc >= 1.1
    def edit(c):
        c["process"]["user"]["umask"] = 0o027
    b = bundle(["sh", "-c", "umask; touch /tmp/f; stat -c %a /tmp/f"], edit=edit)
    assert run_ok(rt, b).split() == ["0027", "640"]


def test_default_umask(rt, bundle):
    b = bundle(["sh", "-c", "umask"])
    assert run_ok(rt, b).strip() == "0022"


def test_rlimits(rt, bundle):
    def edit(c):
        c["process"]["rlimits"] = [
            {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1000},
            {"type": "RLIMIT_NPROC", "soft": 300, "hard": 400},
        ]
    b = bundle(["sh", "-c", "ulimit -n; ulimit -Hn; ulimit -u; ulimit -Hu"], edit=edit)
    assert run_ok(rt, b).split() == ["512", "1000", "300", "400"]


def test_default_rlimit_nofile(rt, bundle):
    b = bundle(["sh", "-c", "ulimit -n"], write=False)
    want = [r for r in b.config["process"]["rlimits"] if r["type"] == "RLIMIT_NOFILE"][0]
    b.write()
    assert run_ok(rt, b).strip() == str(want["soft"])


def _caps(out):
    return {l.split(":")[0]: int(l.split()[1], 16) for l in out.splitlines() if l.startswith("Cap")}


def test_capabilities_default(rt, bundle):
    b = bundle(["grep", "^Cap", "/proc/self/status"])
    got = _caps(run_ok(rt, b))
    caps = b.config["process"]["capabilities"]
    inh = cap_mask(caps.get("inheritable"))
    prm = cap_mask(caps.get("permitted"))
    assert got["CapBnd"] == cap_mask(caps.get("bounding")), hex(got["CapBnd"])
    assert got["CapEff"] == cap_mask(caps.get("effective")), hex(got["CapEff"])
    assert got["CapPrm"] == prm, hex(got["CapPrm"])
    assert got["CapInh"] == inh, hex(got["CapInh"])
    # ambient caps can only be raised if also inheritable and permitted
    assert got["CapAmb"] == cap_mask(caps.get("ambient")) & inh & prm, hex(got["CapAmb"])


def test_capabilities_custom(rt, bundle):
    def edit(c):
        s = ["CAP_CHOWN", "CAP_NET_RAW", "CAP_SYS_CHROOT"]
        c["process"]["capabilities"] = {
            "bounding": s + ["CAP_KILL"], "effective": s, "permitted": s,
            "inheritable": ["CAP_NET_RAW"], "ambient": ["CAP_NET_RAW"]}
    b = bundle(["grep", "^Cap", "/proc/self/status"], edit=edit)
    got = _caps(run_ok(rt, b))
    s = cap_mask(["CAP_CHOWN", "CAP_NET_RAW", "CAP_SYS_CHROOT"])
    assert got["CapBnd"] == s | cap_mask(["CAP_KILL"])
    assert got["CapEff"] == s
    assert got["CapPrm"] == s
    assert got["CapInh"] == cap_mask(["CAP_NET_RAW"])
    assert got["CapAmb"] == cap_mask(["CAP_NET_RAW"])


def test_capabilities_enforced(rt, bundle):
    # default caps lack CAP_CHOWN and CAP_SYS_ADMIN
    b = bundle(["sh", "-c", "touch /tmp/f; chown 1000 /tmp/f 2>/dev/null && echo CHOWNED; "
                            "hostname other 2>/dev/null && echo RENAMED; hostname"])
    assert run_ok(rt, b).split() == ["berth-test"]


@pytest.mark.parametrize("nnp", [True, False])
def test_no_new_privileges(rt, bundle, nnp):
    def edit(c):
        c["process"]["noNewPrivileges"] = nnp
    b = bundle(["grep", "^NoNewPrivs:", "/proc/self/status"], edit=edit)
    assert run_ok(rt, b).split() == ["NoNewPrivs:", "1" if nnp else "0"]


@pytest.fixture
def netns():
    name = "berth-" + uuid.uuid4().hex[:10]
    p = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if p.returncode != 0:
        pytest.fail(f"ip netns add failed: {p.stderr}")
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def test_join_network_namespace_by_path(rt, bundle, netns):
    addr = "10.%d.%d.7" % tuple(uuid.uuid4().bytes[:2])
    for cmd in (["ip", "-n", netns, "link", "set", "lo", "up"],
                ["ip", "-n", netns, "addr", "add", f"{addr}/32", "dev", "lo"]):
        subprocess.run(cmd, check=True, capture_output=True)
    dummy = subprocess.run(["ip", "-n", netns, "link", "add", "berth0", "type", "dummy"],
                           capture_output=True).returncode == 0

    def edit(c):
        for ns in c["linux"]["namespaces"]:
            if ns["type"] == "network":
                ns["path"] = f"/var/run/netns/{netns}"
    b = bundle(["sh", "-c", "ip addr show lo; ls /sys/class/net"], edit=edit)
    out = run_ok(rt, b)
    assert f"inet {addr}/32" in out, out
    if dummy:
        assert "berth0" in out.split(), out
    # the namespace file still exists and is still usable after the container
    assert os.path.exists(f"/var/run/netns/{netns}")
    p = subprocess.run(["ip", "-n", netns, "addr", "show", "lo"], capture_output=True, text=True)
    assert addr in p.stdout
