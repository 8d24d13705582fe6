"""Hostile bundles and container processes: symlinked mount destinations,
fd leaks, visibility of the runtime's state, /proc/self/exe, masked paths,
no_new_privs and the bounding set."""

import hashlib
import os
import shutil
import subprocess
import tempfile

import pytest

from conftest import cap_mask, parse_mountinfo, run_container


def run_ok(rt, b, *extra, **kw):
    p = run_container(rt, b, *extra, **kw)
    assert p.returncode == 0, f"rc={p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    return p.stdout


def host_mountpoints():
    with open("/proc/self/mountinfo") as f:
        return [m["mountpoint"].replace("\\040", " ") for m in parse_mountinfo(f.read())]


def tree(path):
    """Sorted relative paths of everything below path."""
    res = []
    for root, dirs, files in os.walk(path):
        for n in dirs + files:
            res.append(os.path.relpath(os.path.join(root, n), path))
    return sorted(res)


@pytest.fixture
def escape_dir():
    """A unique directory in the host's /tmp that a symlink in the rootfs
    points at; must stay untouched."""
    d = tempfile.mkdtemp(prefix="berth-escape-", dir="/tmp")
    with open(os.path.join(d, "sentinel"), "w") as f:
        f.write("host\n")
    yield d
    for mp in sorted((m for m in host_mountpoints() if m == d or m.startswith(d + "/")),
                     key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], capture_output=True)
    shutil.rmtree(d, ignore_errors=True)


# --------------------------------------------------- symlinked destinations


def _escape_mounts(escape_dir):
    return [m for m in host_mountpoints()
            if m == escape_dir or m.startswith(escape_dir + "/")]


SYMLINK_CASES = pytest.mark.parametrize("kind,dest", [
    ("absolute", "/mnt"),
    ("relative", "/mnt"),
    ("absolute", "/mnt/a/b"),
    ("relative", "/mnt/a/b"),
], ids=["abs", "rel", "abs-deep", "rel-deep"])


def _symlink_dest_bundle(bundle, tmp_path, escape_dir, kind, dest):
    """rootfs/mnt -> escape_dir (absolute, or a ../../.. chain); a bind
    mount of a fresh source dir goes to dest (/mnt or below)."""
    src = tmp_path / "bind-src"
    src.mkdir()
    (src / "from-src").write_text("src\n")
    sub = dest[len("/mnt"):]  # "" or "/a/b"

    def edit(c):
        c["mounts"].append({"destination": dest, "type": "bind", "source": str(src),
                            "options": ["rbind", "rw"]})
    b = bundle(["sh", "-c", f"cat {dest}/from-src; echo inside > {dest}/written; "
                            f"ls {escape_dir}{sub}", "@MARKER@"], edit=edit)
    target = escape_dir if kind == "absolute" else "../" * 12 + escape_dir.lstrip("/")
    os.symlink(target, b.rootfs / "mnt")
    return b, src, sub


@SYMLINK_CASES
def test_mount_destination_symlink_host_untouched(rt, bundle, tmp_path, escape_dir,
                                                  kind, dest, leftovers):
    """Whatever the runtime does with the symlink (follow it inside the
    rootfs, or refuse), nothing may happen to the host directory."""
    b, src, _ = _symlink_dest_bundle(bundle, tmp_path, escape_dir, kind, dest)
    with open(tmp_path / "out", "w") as out:
        p = rt("create", "-b", b.path, b.id, stdout=out)
    # all mounts are in place after create: none may be on the host's directory
    assert _escape_mounts(escape_dir) == []
    assert tree(escape_dir) == ["sentinel"], "runtime created files in the host directory"
    if p.returncode == 0:
        assert rt("start", b.id).returncode == 0
        rt.wait_status(b.id, "stopped")
        assert rt("delete", b.id).returncode == 0
    else:
        assert rt("state", b.id).returncode != 0
    assert leftovers(b) == []
    assert tree(escape_dir) == ["sentinel"]
    with open(os.path.join(escape_dir, "sentinel")) as f:
        assert f.read() == "host\n"
    assert _escape_mounts(escape_dir) == []


@SYMLINK_CASES
def test_mount_destination_symlink_resolved_in_rootfs(rt, bundle, tmp_path, escape_dir,
                                                      kind, dest):
    """runc semantics: the symlink is resolved with the rootfs as '/', so the
    mount lands on <rootfs><escape_dir><sub> (created by the runtime)."""
    b, src, sub = _symlink_dest_bundle(bundle, tmp_path, escape_dir, kind, dest)
    lines = run_ok(rt, b).split()
    assert lines == ["src", "from-src", "written"], lines
    assert (src / "written").read_text() == "inside\n"
    assert (b.rootfs / escape_dir.lstrip("/") / sub.lstrip("/")).is_dir()
    assert tree(escape_dir) == ["sentinel"]
    assert _escape_mounts(escape_dir) == []


def _file_id(path):
    st = os.stat(path)
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    return (st.st_ino, st.st_dev, st.st_mtime_ns, st.st_ctime_ns, st.st_size,
            st.st_mode, st.st_uid, st.st_gid, digest)


SHADOW_TARGETS = pytest.mark.parametrize(
    "target", ["/etc/shadow", "../../../../../../../etc/shadow"], ids=["absolute", "relative"])


def _shadow_bundle(bundle, tmp_path, target):
    if not os.path.isfile("/etc/shadow"):
        pytest.skip("no /etc/shadow on this host")
    src = tmp_path / "fake-shadow"
    src.write_text("not-the-shadow-file\n")

    def edit(c):
        c["mounts"].append({"destination": "/x", "type": "bind", "source": str(src),
                            "options": ["bind", "rw"]})
    b = bundle(["sh", "-c", "cat /x; echo overwritten > /x; cat /etc/shadow"], edit=edit)
    os.symlink(target, b.rootfs / "x")
    return b, src


@SHADOW_TARGETS
def test_bind_destination_symlink_to_host_file_untouched(rt, bundle, tmp_path, target):
    b, src = _shadow_bundle(bundle, tmp_path, target)
    before = _file_id("/etc/shadow")
    run_container(rt, b)  # may succeed (runc) or refuse; the host file is what matters
    assert _file_id("/etc/shadow") == before, "host /etc/shadow was modified"
    assert "/etc/shadow" not in host_mountpoints()


@SHADOW_TARGETS
def test_bind_destination_symlink_to_host_file_resolved_in_rootfs(rt, bundle, tmp_path, target):
    b, src = _shadow_bundle(bundle, tmp_path, target)
    before = _file_id("/etc/shadow")
    out = run_ok(rt, b).split()
    # runc semantics: the mount went onto <rootfs>/etc/shadow, created by the runtime
    assert out == ["not-the-shadow-file", "overwritten"], out
    assert src.read_text() == "overwritten\n"
    assert (b.rootfs / "etc" / "shadow").is_file()
    assert _file_id("/etc/shadow") == before, "host /etc/shadow was modified"
    assert "/etc/shadow" not in host_mountpoints()


# --------------------------------------------------- fds


def test_inherited_fds_not_leaked_create_start(rt, bundle, tmp_path):
    # extra non-CLOEXEC fds, one at a high number, given to `create` and `start`
    fds = [os.open(tmp_path / f"extra{i}", os.O_CREAT | os.O_RDWR) for i in range(3)]
    r, w = os.pipe()
    fds += [r, w, os.dup2(r, 200)]
    try:
        for fd in fds:
            os.set_inheritable(fd, True)
        # pid 1 is this sh (the trailing `true` prevents exec of the last ls)
        b = bundle(["sh", "-c", "ls /proc/self/fd; echo --; ls /proc/1/fd; true"])
        with open(tmp_path / "out", "w+") as out, open(os.devnull, "wb") as dn:
            p = rt("create", "-b", b.path, b.id, stdout=out, stderr=dn, pass_fds=tuple(fds))
            assert p.returncode == 0
            assert rt("start", b.id, pass_fds=tuple(fds)).returncode == 0
            rt.wait_status(b.id, "stopped")
            out.seek(0)
            text = out.read()
    finally:
        for fd in fds:
            os.close(fd)
    first, _, rest = text.partition("--")
    assert first.split() == ["0", "1", "2", "3"], text
    assert rest.split() == ["0", "1", "2"], text


# --------------------------------------------------- runtime not visible


def test_state_dir_not_visible(rt, bundle):
    state_dir = rt.root
    b = bundle(["sh", "-c", "while [ ! -e /tmp/go ]; do sleep 0.02; done; "
                            f"for p in {state_dir} {state_dir}/@ID@ /run/ocirun /run/runc; do "
                            "  ls $p >/dev/null 2>&1 && echo VISIBLE:$p; "
                            "  ls /proc/1/root$p >/dev/null 2>&1 && echo VISIBLE-VIA-PROC:$p; "
                            "done; "
                            "ls /proc/1/cwd/ > /dev/null && readlink /proc/1/cwd; echo end"],
               write=False)
    b.config["process"]["args"] = [a.replace("@ID@", b.id) for a in b.config["process"]["args"]]
    b.write()
    with open(b.path / "out", "w+") as out:
        p = rt("run", "-d", "-b", b.path, b.id, stdout=out)
        assert p.returncode == 0, p.stderr
        # sanity: the state dir exists on the host while the container runs
        assert (state_dir / b.id).is_dir()
        (b.rootfs / "tmp" / "go").touch()
        rt.wait_status(b.id, "stopped")
        out.seek(0)
        lines = out.read().split()
    assert not [l for l in lines if l.startswith("VISIBLE")], lines
    # init's cwd is the spec's cwd, not a runtime directory
    assert lines[-2:] == ["/", "end"], lines


def test_proc_exe_is_container_program(rt, bundle):
    b = bundle(["sh", "-c", "readlink /proc/1/exe; readlink /proc/self/exe; "
                            "ls -l /proc/1/exe"])
    lines = run_ok(rt, b).splitlines()
    assert lines[0] == "/bin/busybox", lines
    assert lines[1] == "/bin/busybox", lines
    name = os.path.basename(rt.binary)
    assert not any(name in l or "memfd" in l for l in lines), lines


# --------------------------------------------------- masked paths, privileges


def test_masked_paths_cannot_be_unmounted(rt, bundle):
    b = bundle(["true"], write=False)
    masked = [p for p in b.config["linux"]["maskedPaths"]
              if p.startswith("/proc/") and os.path.isfile(p)]
    if not masked:
        pytest.skip("none of the spec's masked /proc files exist on this host")
    script = "; ".join(
        f"umount {p} 2>/dev/null && echo UNMOUNTED:{p}; "
        f"umount -l {p} 2>/dev/null && echo LAZY-UNMOUNTED:{p}; "
        f"echo {p} $(cat {p} 2>/dev/null | wc -c)"
        for p in masked)
    b.config["process"]["args"] = ["sh", "-c", script + "; cat /proc/self/mountinfo"]
    b.write()
    out = run_ok(rt, b)
    assert "UNMOUNTED" not in out, out
    mps = [m["mountpoint"] for m in parse_mountinfo(out)]
    for p in masked:
        assert f"{p} 0" in out.splitlines(), f"{p} readable inside:\n{out}"
        assert p in mps, f"{p} is not masked by a mount"


def test_no_sys_admin_remount_fails(rt, bundle):
    b = bundle(["sh", "-c", "mount -o remount,rw /proc/sys 2>/dev/null && echo REMOUNTED; "
                            "mount -t tmpfs x /tmp 2>/dev/null && echo MOUNTED; "
                            "echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null && echo WROTE; "
                            "echo done"])
    assert run_ok(rt, b).split() == ["done"]


def _caps(out):
    return {l.split(":")[0]: int(l.split()[1], 16) for l in out.splitlines()
            if l.startswith("Cap")}


@pytest.mark.parametrize("uid", [0, 1000])
def test_no_new_privs_and_bounding_set(rt, bundle, uid):
    def edit(c):
        c["process"]["user"] = {"uid": uid, "gid": uid}
        c["process"]["noNewPrivileges"] = True
    b = bundle(["grep", "-E", "^(Cap|NoNewPrivs)", "/proc/self/status"], edit=edit)
    out = run_ok(rt, b)
    caps = _caps(out)
    assert "NoNewPrivs:\t1" in out, out
    want = cap_mask(b.config["process"]["capabilities"]["bounding"])
    assert want, "sanity: the default spec has a non-empty bounding set"
    assert caps["CapBnd"] == want, (hex(caps["CapBnd"]), hex(want))
    assert caps["CapBnd"] & cap_mask(["CAP_SYS_ADMIN"]) == 0


@pytest.mark.parametrize("fd", range(3, 12))
def test_cwd_through_runtime_fd_is_refused(rt, bundle, fd, leftovers):
    """CVE-2024-21626: a cwd of /proc/self/fd/N must never resolve to a
    descriptor the runtime holds open on the host (state dir, cgroup dir...):
    either it fails, or the process ends up inside the container."""
    b = bundle(["sh", "-c", "pwd; ls /", "@MARKER@"], cwd=f"/proc/self/fd/{fd}")
    p = rt("run", "-b", b.path, b.id)
    if p.returncode == 0:
        # it may only have landed somewhere inside the container's own tree
        assert p.stdout.startswith("/"), p.stdout
        assert "(unreachable)" not in p.stdout
    assert leftovers(b) == []


def test_exec_cwd_through_runtime_fd_is_refused(rt, bundle):
    b = bundle(["sleep", "30"])
    assert rt("run", "-d", "-b", b.path, b.id).returncode == 0
    for fd in range(3, 12):
        p = rt("exec", "--cwd", f"/proc/self/fd/{fd}", b.id, "pwd")
        if p.returncode == 0:
            assert p.stdout.startswith("/") and "(unreachable)" not in p.stdout, (fd, p.stdout)
    assert rt("delete", "--force", b.id).returncode == 0
