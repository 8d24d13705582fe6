"""Spec and CLI features: bind/tmpfs mounts, propagation, --no-pivot,
--pid-file, --preserve-fds, --console-socket, --log/--log-format, sysctl,
oomScoreAdj, linux.devices, cgroup namespace, non-root users."""

import array
import fcntl
import json
import os
import re
import select
import socket
import subprocess
import time

import pytest

from conftest import run_container, wait_for

TIOCGPTN = 0x80045430  # _IOR('T', 0x30, unsigned int); not in the termios module
LOOP = 'trap "exit 0" TERM; while :; do sleep 0.05; done'


def run_ok(rt, b, *extra, **kw):
    p = run_container(rt, b, *extra, **kw)
    assert p.returncode == 0, f"rc={p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    return p.stdout


def mountinfo_entries(text):
    """Like parse_mountinfo, plus the optional fields (shared:N, master:N)."""
    res = []
    for line in text.splitlines():
        if " - " not in line:
            continue
        pre, _, post = line.partition(" - ")
        f = pre.split()
        p = post.split()
        res.append({
            "mountpoint": f[4].replace("\\040", " "), "root": f[3], "majmin": f[2],
            "opts": f[5].split(","), "optional": f[6:], "fstype": p[0],
            "superopts": p[2].split(",") if len(p) > 2 else [],
        })
    return res


def top_mount(text, mountpoint):
    """The last (topmost) mountinfo entry for mountpoint, or None."""
    found = None
    for m in mountinfo_entries(text):
        if m["mountpoint"] == mountpoint:
            found = m
    return found


def add_mount(c, dest, source, options, mtype="bind"):
    m = {"destination": dest, "type": mtype, "source": str(source)}
    if options is not None:
        m["options"] = options
    c["mounts"].append(m)


@pytest.fixture
def hostdir(tmp_path):
    """A host directory with a file in it, outside every bundle."""
    d = tmp_path / "hostdir"
    d.mkdir()
    (d / "from-host").write_text("host-content\n")
    yield d
    _umount_all(d)


def _mounts_at_or_under(path):
    path = os.path.realpath(str(path))
    with open("/proc/self/mountinfo") as f:
        mps = [m["mountpoint"] for m in mountinfo_entries(f.read())]
    return [mp for mp in mps if mp == path or mp.startswith(path + "/")]


# ------------------------------------------------------------- bind mounts


def test_bind_rw(rt, bundle, hostdir):
    b = bundle(["sh", "-c", "cat /data/from-host; echo inside > /data/from-inside && echo wrote"],
               edit=lambda c: add_mount(c, "/data", hostdir, ["rbind", "rw"]))
    assert run_ok(rt, b).split() == ["host-content", "wrote"]
    assert (hostdir / "from-inside").read_text() == "inside\n"
    # the bind mount went onto a directory inside the rootfs, not elsewhere
    assert (b.rootfs / "data").is_dir()
    assert not (b.rootfs / "data" / "from-inside").exists()


def test_bind_ro(rt, bundle, hostdir):
    b = bundle(["sh", "-c", "cat /data/from-host; echo x > /data/new 2>/dev/null && echo WROTE; "
                            "echo x >> /data/from-host 2>/dev/null && echo APPENDED; "
                            "cat /proc/self/mountinfo"],
               edit=lambda c: add_mount(c, "/data", hostdir, ["rbind", "ro"]))
    out = run_ok(rt, b)
    assert out.splitlines()[0] == "host-content", out
    assert "WROTE" not in out and "APPENDED" not in out, out
    assert not (hostdir / "new").exists()
    assert (hostdir / "from-host").read_text() == "host-content\n"
    m = top_mount(out, "/data")
    assert m is not None, out
    assert "ro" in m["opts"], m


def test_bind_single_file(rt, bundle, tmp_path):
    src = tmp_path / "single-file"
    src.write_text("single-file-content\n")
    b = bundle(["sh", "-c", "cat /etc/berth-single; echo appended >> /etc/berth-single; "
                            "test -f /etc/berth-single && echo is-file"],
               edit=lambda c: add_mount(c, "/etc/berth-single", src, ["bind"]))
    assert run_ok(rt, b).splitlines() == ["single-file-content", "is-file"]
    assert src.read_text() == "single-file-content\nappended\n"
    # the runtime created a (regular, empty) file as the mount point
    dest = b.rootfs / "etc" / "berth-single"
    assert dest.is_file() and not dest.is_symlink()
    assert dest.read_text() == ""


@pytest.mark.parametrize("recursive", [True, False], ids=["rbind", "bind"])
def test_rbind_includes_submounts(rt, bundle, hostdir, recursive):
    sub = hostdir / "sub"
    sub.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "berth-sub", str(sub)], check=True)
    (sub / "in-submount").write_text("submount\n")
    opt = "rbind" if recursive else "bind"
    b = bundle(["sh", "-c", "ls /data/sub; echo --; cat /proc/self/mountinfo"],
               edit=lambda c: add_mount(c, "/data", hostdir, [opt]))
    out = run_ok(rt, b)
    ls, _, mi = out.partition("--\n")
    m = top_mount(mi, "/data/sub")
    if recursive:
        assert ls.split() == ["in-submount"], out
        assert m is not None and m["fstype"] == "tmpfs", out
    else:
        assert ls.split() == [], out
        assert m is None, out


def test_bind_nosuid_nodev_noexec(rt, bundle, hostdir):
    # an executable on the bind mount: noexec must stop it
    subprocess.run(["cp", "/bin/busybox", str(hostdir / "echo")], check=True)
    b = bundle(["sh", "-c", "/data/echo EXECUTED 2>/dev/null; cat /proc/self/mountinfo"],
               edit=lambda c: add_mount(c, "/data", hostdir,
                                        ["rbind", "nosuid", "nodev", "noexec"]))
    out = run_ok(rt, b)
    assert "EXECUTED" not in out, out
    m = top_mount(out, "/data")
    assert m is not None, out
    for opt in ("nosuid", "nodev", "noexec"):
        assert opt in m["opts"], m


def test_bind_without_flags_is_exec(rt, bundle, hostdir):
    # control for the test above: the same binary runs without noexec
    subprocess.run(["cp", "/bin/busybox", str(hostdir / "echo")], check=True)
    b = bundle(["/data/echo", "EXECUTED"],
               edit=lambda c: add_mount(c, "/data", hostdir, ["rbind"]))
    assert run_ok(rt, b).split() == ["EXECUTED"]


def test_bind_relative_source(rt, bundle, tmp_path):
    # a relative bind source is relative to the bundle directory, not to the
    # runtime's cwd (which holds a decoy with the same name)
    b = bundle(["cat", "/data/which"],
               edit=lambda c: add_mount(c, "/data", "relsrc", ["rbind"]))
    (b.path / "relsrc").mkdir()
    (b.path / "relsrc" / "which").write_text("bundle-relative\n")
    decoy_cwd = tmp_path / "decoy-cwd"
    (decoy_cwd / "relsrc").mkdir(parents=True)
    (decoy_cwd / "relsrc" / "which").write_text("cwd-relative\n")
    assert run_ok(rt, b, cwd=decoy_cwd) == "bundle-relative\n"


def test_tmpfs_options(rt, bundle):
    b = bundle(["sh", "-c", "stat -c %a /scratch; "
                            "dd if=/dev/zero of=/scratch/big bs=1024 count=2048 2>/dev/null "
                            "&& echo FITS; cat /proc/self/mountinfo"],
               edit=lambda c: add_mount(c, "/scratch", "tmpfs",
                                        ["nosuid", "nodev", "size=1m", "mode=0750"],
                                        mtype="tmpfs"))
    out = run_ok(rt, b)
    assert out.splitlines()[0] == "750", out
    assert "FITS" not in out, "a 2 MiB file fit in a size=1m tmpfs"
    m = top_mount(out, "/scratch")
    assert m is not None and m["fstype"] == "tmpfs", out
    assert "size=1024k" in m["superopts"], m
    assert "mode=750" in m["superopts"], m
    assert "nosuid" in m["opts"] and "nodev" in m["opts"], m


# ------------------------------------------------------------- propagation


def _make_shared(path):
    """Bind-mount path onto itself and make it shared; returns its peer group."""
    subprocess.run(["mount", "--bind", str(path), str(path)], check=True)
    subprocess.run(["mount", "--make-shared", str(path)], check=True)
    with open("/proc/self/mountinfo") as f:
        m = top_mount(f.read(), os.path.realpath(str(path)))
    group = [o for o in m["optional"] if o.startswith("shared:")]
    assert group, f"could not make {path} shared: {m}"
    return group[0].split(":")[1]


def _umount_all(path):
    for mp in sorted(_mounts_at_or_under(path), key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], capture_output=True)


# rootfsPropagation with the bundle on a shared host mount (peer group G):
# default and rslave -> "/" is a slave of G; private/rprivate -> no
# propagation at all.  ("slave" and "shared" are left out: runc 1.1 makes
# the rootfs parent private for pivot_root, so both end up private there.)
@pytest.mark.parametrize("prop", [None, "private", "rprivate", "rslave"])
def test_rootfs_propagation(rt, bundle, prop):
    def edit(c):
        if prop is not None:
            c["linux"]["rootfsPropagation"] = prop
    b = bundle(["cat", "/proc/self/mountinfo"], edit=edit)
    group = _make_shared(b.path)
    try:
        out = run_ok(rt, b)
    finally:
        _umount_all(b.path)
    root = top_mount(out, "/")
    assert root is not None and root["root"].endswith("/rootfs"), out
    if prop in (None, "rslave"):
        assert root["optional"] == [f"master:{group}"], root
    else:
        assert root["optional"] == [], root


@pytest.fixture
def shared_dir(tmp_path):
    """A host directory that is a shared mount (its own peer group)."""
    d = tmp_path / "shared"
    d.mkdir()
    try:
        yield d, _make_shared(d)
    finally:
        _umount_all(d)


@pytest.mark.parametrize("prop", ["rslave", "rprivate"])
def test_bind_propagation(rt, bundle, shared_dir, prop):
    """rslave: the container's bind is a slave of the host's peer group and
    sees mounts made later on the host; rprivate: neither."""
    d, group = shared_dir
    script = ("while [ ! -e /tmp/go ]; do sleep 0.02; done; "
              "cat /proc/self/mountinfo > /tmp/mi; ls /data/sub > /tmp/ls; touch /tmp/done")
    b = bundle(["sh", "-c", script, "@MARKER@"],
               edit=lambda c: add_mount(c, "/data", d, ["rbind", prop]))
    (d / "sub").mkdir()
    p = rt("run", "-d", "-b", b.path, b.id)
    assert p.returncode == 0, p.stderr
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "berth-late", str(d / "sub")],
                       check=True)
        (d / "sub" / "late-mount").write_text("x")
        (b.rootfs / "tmp" / "go").touch()
        wait_for((b.rootfs / "tmp" / "done").exists, what="container finished")
    finally:
        subprocess.run(["umount", "-l", str(d / "sub")], capture_output=True)
    mi = (b.rootfs / "tmp" / "mi").read_text()
    ls = (b.rootfs / "tmp" / "ls").read_text().split()
    m = top_mount(mi, "/data")
    assert m is not None, mi
    if prop == "rslave":
        assert f"master:{group}" in m["optional"], m
        assert not any(o.startswith("shared:") for o in m["optional"]), m
        assert ls == ["late-mount"], "host mount did not propagate into the rslave bind"
    else:
        assert not any(o.startswith(("shared:", "master:")) for o in m["optional"]), m
        assert ls == [], "host mount propagated into an rprivate bind"


# ------------------------------------------------------------- CLI options


def test_no_pivot(rt, bundle):
    b = bundle(["sh", "-c", "cat /etc/berth-rootfs; ls /work 2>/dev/null && echo HOST-VISIBLE; "
                            "ls /; cat /proc/self/mountinfo"])
    out = run_ok(rt, b, "--no-pivot")
    lines = out.splitlines()
    assert lines[0] == "berth busybox rootfs", out
    assert "HOST-VISIBLE" not in out
    root = top_mount(out, "/")
    assert root is not None and root["root"].endswith("/rootfs"), out
    st = os.stat(b.rootfs)
    assert root["majmin"] == f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}", root


@pytest.mark.parametrize("kind", ["relative", "absolute"])
def test_run_detach_pid_file(rt, bundle, tmp_path, kind):
    b = bundle(["sh", "-c", LOOP, "@MARKER@"])
    workdir = tmp_path / "pidwd"
    workdir.mkdir()
    arg = "c.pid" if kind == "relative" else str(tmp_path / "abs.pid")
    p = rt("run", "-d", "--pid-file", arg, "-b", b.path, b.id, cwd=workdir)
    assert p.returncode == 0, p.stderr
    path = workdir / "c.pid" if kind == "relative" else tmp_path / "abs.pid"
    text = path.read_text()
    assert re.fullmatch(r"\d+\n?", text), repr(text)
    pid = int(text)
    assert pid == rt.state(b.id)["pid"]
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        assert b.marker.encode() in f.read()
    if kind == "relative":
        assert not (b.path / "c.pid").exists()


def _run_with_fd3(rt, b, *extra, tmp_path):
    """Run the runtime with fd 3 open (not CLOEXEC) on a file: a shell opens
    it as fd 3 and execs the runtime."""
    f = tmp_path / "fd3-file"
    f.write_text("preserved-content\n")
    argv = ["/bin/sh", "-c", 'exec 3<"$0"; exec "$@"', str(f),
            *rt.cmd("run", *extra, "-b", b.path, b.id)]
    return subprocess.run(argv, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=30)


def test_preserve_fds(rt, bundle, tmp_path):
    b = bundle(["sh", "-c", "cat /proc/self/fd/3; ls /proc/self/fd; true"])
    p = _run_with_fd3(rt, b, "--preserve-fds", "1", tmp_path=tmp_path)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.split()
    assert lines[0] == "preserved-content", p.stdout
    # 0 1 2, the preserved 3, and 4 = the directory ls itself opened
    assert lines[1:] == ["0", "1", "2", "3", "4"], p.stdout


def test_without_preserve_fds_fd3_absent(rt, bundle, tmp_path):
    b = bundle(["sh", "-c", "cat /proc/self/fd/3 2>/dev/null && echo LEAKED; ls /proc/self/fd; true"])
    p = _run_with_fd3(rt, b, tmp_path=tmp_path)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["0", "1", "2", "3"], p.stdout


# ------------------------------------------------------------- terminal


def _terminal_bundle(bundle, args):
    def edit(c):
        c["process"]["terminal"] = True
    return bundle(args, edit=edit)


@pytest.fixture
def console_listener(tmp_path):
    path = tmp_path / "console.sock"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(path))
    srv.listen(1)
    srv.settimeout(10)
    yield path, srv
    srv.close()


def _read_until_eof(fd, timeout=10):
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.2)
        if not r:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO once the slave side is closed
            break
        if not chunk:
            break
        data += chunk
    return data


def test_console_socket(rt, bundle, console_listener, leftovers):
    path, srv = console_listener
    b = _terminal_bundle(bundle, ["sh", "-c", "tty; echo hi-from-tty; sleep 0.2", "@MARKER@"])
    p = rt("create", "--console-socket", path, "-b", b.path, b.id)
    assert p.returncode == 0, p.stderr
    conn, _ = srv.accept()
    with conn:
        conn.settimeout(10)
        msg, fds, _flags, _addr = socket.recv_fds(conn, 1024, 4)
    assert len(fds) == 1, f"expected exactly one fd, got {fds} (msg {msg!r})"
    master = fds[0]
    try:
        assert os.isatty(master)
        # TIOCGPTN only works on a pty master
        buf = array.array("I", [0])
        fcntl.ioctl(master, TIOCGPTN, buf, True)
        ptn = buf[0]
        assert rt("start", b.id).returncode == 0
        out = _read_until_eof(master).decode(errors="replace")
    finally:
        os.close(master)
    lines = [l.strip() for l in out.splitlines() if l.strip()]
    assert "hi-from-tty" in lines, repr(out)
    assert lines[0] == f"/dev/pts/{ptn}", repr(out)
    rt.wait_status(b.id, "stopped")
    d = rt("delete", b.id)
    assert d.returncode == 0, d.stderr
    assert leftovers(b) == []


def test_terminal_without_console_socket_fails(rt, bundle, leftovers):
    b = _terminal_bundle(bundle, ["true", "@MARKER@"])
    p = rt("create", "-b", b.path, b.id)
    assert p.returncode != 0
    # runc: 'cannot allocate tty if runc will detach without setting console socket'
    assert "console" in p.stderr.lower(), p.stderr
    assert leftovers(b) == []
    assert rt("state", b.id).returncode != 0


@pytest.mark.ocirun_only
def test_ocirun_terminal_without_console_socket_message(rt, bundle):
    b = _terminal_bundle(bundle, ["true"])
    p = rt("create", "-b", b.path, b.id)
    assert p.returncode != 0
    assert "--console-socket" in p.stderr and "terminal" in p.stderr, p.stderr


# ------------------------------------------------------------- logging


def test_log_json(rt, tmp_path):
    log = tmp_path / "log.json"
    p = rt("--log", log, "--log-format", "json", "state", "no-such-ctr-berth")
    assert p.returncode != 0
    assert p.stderr.strip(), "runc also reports the error on stderr"
    lines = [l for l in log.read_text().splitlines() if l.strip()]
    assert lines, "nothing written to the --log file"
    entries = [json.loads(l) for l in lines]
    errs = [e for e in entries if e.get("level") == "error"]
    assert errs, entries
    e = errs[-1]
    assert "time" in e and e["time"], e
    msg = e.get("msg", "").lower()
    assert "does not exist" in msg or "no-such-ctr-berth" in msg, e


def test_log_text(rt, tmp_path):
    log = tmp_path / "log.txt"
    p = rt("--log", log, "--log-format", "text", "state", "no-such-ctr-berth")
    assert p.returncode != 0
    text = log.read_text()
    errs = [l for l in text.splitlines() if "level=error" in l]
    assert errs, text
    assert any("does not exist" in l or "no-such-ctr-berth" in l for l in errs), text


def test_log_format_invalid(rt, tmp_path):
    log = tmp_path / "log.xml"
    p = rt("--log", log, "--log-format", "xml", "list")
    assert p.returncode != 0
    # runc: 'invalid log-format: xml'
    assert "format" in p.stderr.lower() and "xml" in p.stderr, p.stderr


@pytest.mark.ocirun_only
def test_systemd_cgroup_not_supported(rt, bundle, leftovers):
    b = bundle(["true", "@MARKER@"])
    p = rt("--systemd-cgroup", "run", "-b", b.path, b.id)
    assert p.returncode != 0
    err = p.stderr.lower()
    assert "systemd" in err and "not supported" in err, p.stderr
    assert leftovers(b) == []
    assert rt("state", b.id).returncode != 0


def test_debug_accepted(rt, bundle):
    b = bundle(["echo", "debug-ok"])
    p = rt("--debug", "run", "-b", b.path, b.id)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "debug-ok\n"


# ------------------------------------------------------------- spec features


def test_sysctl(rt, bundle):
    def edit(c):
        c["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1",
                                "net.ipv4.ip_default_ttl": "42"}
    host_fwd = open("/proc/sys/net/ipv4/ip_forward").read()
    host_ttl = open("/proc/sys/net/ipv4/ip_default_ttl").read()
    b = bundle(["sh", "-c", "cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv4/ip_default_ttl"],
               edit=edit)
    assert run_ok(rt, b).split() == ["1", "42"]
    assert open("/proc/sys/net/ipv4/ip_forward").read() == host_fwd
    assert open("/proc/sys/net/ipv4/ip_default_ttl").read() == host_ttl


# only raising: lowering needs CAP_SYS_RESOURCE, which the test host may lack
@pytest.mark.parametrize("adj", [123, 1000])
def test_oom_score_adj(rt, bundle, adj):
    b = bundle(["cat", "/proc/self/oom_score_adj"],
               edit=lambda c: c["process"].__setitem__("oomScoreAdj", adj))
    assert run_ok(rt, b).strip() == str(adj)


def test_extra_device(rt, bundle):
    def edit(c):
        c["linux"]["devices"] = [{"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3,
                                  "fileMode": 0o666, "uid": 1000, "gid": 1000}]
    b = bundle(["sh", "-c", "stat -c '%t %T %a %u %g %F' /dev/mynull; "
                            "echo x > /dev/mynull && echo write-ok"], edit=edit)
    lines = run_ok(rt, b).splitlines()
    assert lines == ["1 3 666 1000 1000 character special file", "write-ok"], lines


@pytest.mark.parametrize("cgroupns", [True, False], ids=["cgroupns", "no-cgroupns"])
def test_cgroup_namespace(rt, bundle, cgroupns):
    def edit(c):
        if cgroupns:
            c["linux"]["namespaces"].append({"type": "cgroup"})
    b = bundle(["cat", "/proc/self/cgroup"], edit=edit)
    lines = run_ok(rt, b).splitlines()
    paths = [l.split(":", 2)[2] for l in lines]
    if cgroupns:
        assert paths and all(p == "/" for p in paths), lines
    else:
        assert any(p.endswith(f"/berth-test/{b.id}") for p in paths), lines


def test_non_root_user_no_caps(rt, bundle):
    def edit(c):
        c["process"]["user"] = {"uid": 1000, "gid": 1000}
        c["process"]["cwd"] = "/root"
        c["process"]["capabilities"] = {k: [] for k in
                                        ("bounding", "effective", "permitted",
                                         "inheritable", "ambient")}
    b = bundle(["sh", "-c", "id -u; pwd; touch x 2>/dev/null && echo WROTE; "
                            "grep ^Cap /proc/self/status"], edit=edit)
    lines = run_ok(rt, b).splitlines()
    assert lines[:2] == ["1000", "/root"], lines
    assert "WROTE" not in lines
    caps = {l.split(":")[0]: int(l.split()[1], 16) for l in lines if l.startswith("Cap")}
    assert set(caps) >= {"CapEff", "CapPrm", "CapInh", "CapBnd", "CapAmb"}, lines
    assert all(v == 0 for v in caps.values()), {k: hex(v) for k, v in caps.items()}


def test_kill_created_then_delete_leaves_nothing(rt, bundle, leftovers):
    b = bundle(["sh", "-c", LOOP, "@MARKER@"])
    p = rt("create", "-b", b.path, b.id)
    assert p.returncode == 0, p.stderr
    pid = rt.state(b.id)["pid"]
    assert rt("kill", b.id, "SIGKILL").returncode == 0
    rt.wait_status(b.id, "stopped")
    p = rt("delete", b.id)
    assert p.returncode == 0, p.stderr
    assert leftovers(b) == []
    wait_for(lambda: not os.path.exists(f"/proc/{pid}") or
             open(f"/proc/{pid}/stat").read().split()[2] == "Z",
             timeout=5, what="init process gone")
