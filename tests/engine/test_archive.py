"""docker cp / export / diff and ps -s / inspect -s against berth-engine,
with the real docker CLI (Debian's 20.10), and the archive endpoints
straight on the socket for what the CLI never sends (crafted tars,
paths that try to leave the container)."""

import base64
import io
import json
import os
import secrets
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

import pytest

from conftest import Stack, UnixHTTP, _cleanup


def api(stack, method, url, body=None, headers=None):
    c = UnixHTTP(str(stack.sock))
    try:
        c.request(method, "/v1.41" + url, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, r.headers, r.read()
    finally:
        c.close()


def mounts(stack):
    """The mount points under the stack's directories but the running
    containers' rootfs and network namespaces (containers of other tests
    come and go), and any on the engine's view directory."""
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    view = str(stack.run / "engine-rootfs")
    return sorted(p for p in points
                  if p.startswith(view) or
                  (p.startswith(str(stack.base)) and "/bundles/" not in p and "/netns" not in p))


def diff(stack, ref):
    out = stack.docker("diff", ref).stdout
    return [tuple(line.split(" ", 1)) for line in out.splitlines()]


def tar_bytes(entries):
    """entries: (name, kind, data/target); kind: file, dir, sym, hard."""
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, kind, x in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime = int(time.time())
            if kind == "file":
                ti.size = len(x)
                t.addfile(ti, io.BytesIO(x))
                continue
            ti.type = {"dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE}[kind]
            if kind == "dir":
                ti.mode = 0o755
            else:
                ti.linkname = x
            t.addfile(ti)
    return bio.getvalue()


def put_tar(stack, ref, path, data):
    return api(stack, "PUT", f"/containers/{ref}/archive?path={path}&noOverwriteDirNonDir=true", body=data,
               headers={"Content-Type": "application/x-tar"})


# ---------------------------------------------------------------- diff, export


def test_diff_after_changes(stack, name):
    stack.docker("run", "--name", name, stack.image, "sh", "-c",
                 "touch /tmp/new; mkdir /tmp/d; echo x > /tmp/d/f; echo y >> /etc/passwd; rm /bin/ls")
    assert diff(stack, name) == [("C", "/bin"), ("D", "/bin/ls"), ("C", "/etc"), ("C", "/etc/passwd"),
                                 ("C", "/tmp"), ("A", "/tmp/d"), ("A", "/tmp/d/f"), ("A", "/tmp/new")]
    # a fresh container has no changes: the runtime's mount points are not any
    stack.docker("run", "--name", name + "f", stack.image, "true")
    assert diff(stack, name + "f") == []
    code, _, body = api(stack, "GET", f"/containers/{name}/changes")
    assert code == 200
    assert {"Path": "/bin/ls", "Kind": 2} in json.loads(body)
    code, _, body = api(stack, "GET", "/containers/nosuch-ctr/changes")
    assert code == 404 and "No such container" in json.loads(body)["message"]
    stack.docker("rm", name, name + "f")


def test_diff_running_container(stack, name):
    stack.docker("run", "-d", "--name", name, stack.image, "sh", "-c", "mkdir -p /srv/a; sleep 60")
    deadline = time.time() + 10
    while ("A", "/srv/a") not in diff(stack, name) and time.time() < deadline:
        time.sleep(0.1)
    assert diff(stack, name) == [("A", "/srv"), ("A", "/srv/a")]
    stack.docker("rm", "-f", name)


def test_export_lists_busybox(stack, name, tmp_path):
    stack.docker("run", "--name", name, stack.image, "sh", "-c", "echo hello > /tmp/exported")
    out = tmp_path / "e.tar"
    with open(out, "wb") as f:
        p = subprocess.run(["docker", "export", name], stdout=f, stderr=subprocess.PIPE, env=stack.env(),
                           timeout=60)
    assert p.returncode == 0, p.stderr
    names = subprocess.run(["tar", "tf", str(out)], capture_output=True, text=True, check=True).stdout.split()
    for want in ("bin/", "bin/busybox", "bin/sh", "etc/passwd", "tmp/exported"):
        assert want in names, names[:20]
    assert not any(n.startswith("/") or n.startswith("../") for n in names)
    with tarfile.open(out) as t:
        assert t.extractfile("tmp/exported").read() == b"hello\n"
        assert t.getmember("bin/sh").issym() or t.getmember("bin/sh").islnk()
    # a running one too, and docker export -o
    stack.docker("run", "-d", "--name", name + "r", stack.image, "sleep", "60")
    stack.docker("export", "-o", str(tmp_path / "r.tar"), name + "r")
    with tarfile.open(tmp_path / "r.tar") as t:
        assert "etc/group" in t.getnames()
    stack.docker("rm", "-f", name, name + "r")


# ---------------------------------------------------------------- cp


def check_cp_out(stack, ref, tmp_path):
    # a file, to a new name and into a directory
    stack.docker("cp", f"{ref}:/etc/passwd", str(tmp_path / "passwd"))
    assert "alice:x:1234" in (tmp_path / "passwd").read_text()
    (tmp_path / "into").mkdir()
    stack.docker("cp", f"{ref}:/etc/group", str(tmp_path / "into"))
    assert (tmp_path / "into" / "group").exists()
    # a directory, to a new name (renamed) and into an existing one
    stack.docker("cp", f"{ref}:/tmp/d", str(tmp_path / "dnew"))
    assert (tmp_path / "dnew" / "f").read_text() == "in ctr\n"
    assert (tmp_path / "dnew" / "sub" / "g").read_text() == "deep\n"
    stack.docker("cp", f"{ref}:/tmp/d", str(tmp_path / "into"))
    assert (tmp_path / "into" / "d" / "f").read_text() == "in ctr\n"
    # the contents of a directory: ctr:/path/.
    (tmp_path / "dot").mkdir()
    stack.docker("cp", f"{ref}:/tmp/d/.", str(tmp_path / "dot"))
    assert sorted(os.listdir(tmp_path / "dot")) == ["f", "sub"]
    # to stdout: a tar
    p = subprocess.run(["docker", "cp", f"{ref}:/tmp/d", "-"], capture_output=True, env=stack.env(), timeout=60)
    assert p.returncode == 0
    with tarfile.open(fileobj=io.BytesIO(p.stdout)) as t:
        assert sorted(t.getnames()) == ["d", "d/f", "d/sub", "d/sub/g"]
    # not there
    p = stack.docker("cp", f"{ref}:/nonexistent", str(tmp_path / "x"), check=False)
    assert p.returncode != 0 and "No such container:path" in p.stderr


def check_cp_in(stack, ref, tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a").write_text("A\n")
    (src / "sub" / "b").write_text("B\n")
    (tmp_path / "single").write_text("single\n")
    stack.docker("cp", str(src), f"{ref}:/tmp/")
    stack.docker("cp", str(tmp_path / "single"), f"{ref}:/tmp/renamed")
    stack.docker("cp", str(src) + "/.", f"{ref}:/etc/")
    big = tmp_path / "big"
    big.write_bytes(os.urandom(6 << 20))  # more than the engine keeps in memory for a body
    stack.docker("cp", str(big), f"{ref}:/tmp/big")
    return src


def test_cp_running(stack, name, tmp_path):
    stack.docker("run", "-d", "--name", name, stack.image, "sh", "-c",
                 "mkdir -p /tmp/d/sub; echo 'in ctr' > /tmp/d/f; echo deep > /tmp/d/sub/g; sleep 120")
    deadline = time.time() + 10
    while stack.docker("exec", name, "cat", "/tmp/d/sub/g", check=False).returncode and time.time() < deadline:
        time.sleep(0.1)
    before = mounts(stack)
    check_cp_out(stack, name, tmp_path)
    check_cp_in(stack, name, tmp_path)
    p = stack.docker("exec", name, "sh", "-c", "cat /tmp/src/a /tmp/src/sub/b /tmp/renamed /etc/a /etc/sub/b; "
                                               "wc -c < /tmp/big")
    assert p.stdout.split("\n")[:5] == ["A", "B", "single", "A", "B"]
    assert int(p.stdout.split("\n")[5]) == 6 << 20
    assert mounts(stack) == before
    stack.docker("rm", "-f", name)


def test_cp_exited_and_created(stack, name, tmp_path):
    stack.docker("run", "--name", name, stack.image, "sh", "-c",
                 "mkdir -p /tmp/d/sub; echo 'in ctr' > /tmp/d/f; echo deep > /tmp/d/sub/g")
    before = mounts(stack)
    (tmp_path / "out").mkdir()
    check_cp_out(stack, name, tmp_path / "out")
    check_cp_in(stack, name, tmp_path)
    assert mounts(stack) == before
    stack.docker("start", "-a", name)  # the same command runs again; the copies are kept
    out = tmp_path / "back"
    stack.docker("cp", f"{name}:/tmp/src", str(out))
    assert (out / "sub" / "b").read_text() == "B\n"
    # a created container: cp in, then it sees the file when it starts
    stack.docker("create", "--name", name + "c", stack.image, "cat", "/tmp/put-before-start")
    (tmp_path / "put-before-start").write_text("before start\n")
    stack.docker("cp", str(tmp_path / "put-before-start"), f"{name}c:/tmp/")
    assert mounts(stack) == before
    p = stack.docker("start", "-a", name + "c")
    assert p.stdout == "before start\n"
    stack.docker("rm", name, name + "c")


def test_cp_follows_binds_and_volumes(stack, name, tmp_path):
    host = tmp_path / "bind"
    host.mkdir()
    (host / "on-host").write_text("bound\n")
    stack.docker("run", "-d", "--name", name, "-v", f"{host}:/data", stack.image, "sleep", "60")
    stack.docker("cp", f"{name}:/data/on-host", str(tmp_path / "got"))
    assert (tmp_path / "got").read_text() == "bound\n"
    (tmp_path / "to-bind").write_text("via cp\n")
    stack.docker("cp", str(tmp_path / "to-bind"), f"{name}:/data/")
    assert (host / "to-bind").read_text() == "via cp\n"
    stack.docker("stop", "-t", "1", name)
    # exited: the bind is mounted for the copy, then undone
    before = mounts(stack)
    stack.docker("cp", f"{name}:/data/to-bind", str(tmp_path / "got2"))
    assert (tmp_path / "got2").read_text() == "via cp\n"
    assert mounts(stack) == before
    stack.docker("rm", name)


def test_stat_header_and_errors(stack, name):
    stack.docker("run", "-d", "--name", name, stack.image, "sh", "-c",
                 "ln -s /etc/passwd /tmp/pw; mkdir /tmp/sticky; chmod 1777 /tmp/sticky; sleep 60")
    time.sleep(0.5)
    code, headers, _ = api(stack, "HEAD", f"/containers/{name}/archive?path=/etc/passwd")
    assert code == 200
    st = json.loads(base64.b64decode(headers["X-Docker-Container-Path-Stat"]))
    assert st["name"] == "passwd" and st["size"] > 0 and st["linkTarget"] == ""
    perm = int(stack.docker("exec", name, "stat", "-c", "%a", "/etc/passwd").stdout, 8)
    assert st["mode"] == perm and st["mtime"].endswith("Z")
    code, headers, _ = api(stack, "HEAD", f"/containers/{name}/archive?path=/tmp/sticky")
    st = json.loads(base64.b64decode(headers["X-Docker-Container-Path-Stat"]))
    assert st["mode"] == (1 << 31) | (1 << 20) | 0o777  # os.ModeDir | os.ModeSticky | 0777
    code, headers, _ = api(stack, "HEAD", f"/containers/{name}/archive?path=/tmp/pw")
    st = json.loads(base64.b64decode(headers["X-Docker-Container-Path-Stat"]))
    assert st["mode"] & (1 << 27) and st["linkTarget"] == "/etc/passwd" and st["name"] == "pw"
    code, headers, body = api(stack, "GET", f"/containers/{name}/archive?path=/nonexistent")
    assert code == 404
    assert json.loads(body)["message"] == f"Could not find the file /nonexistent in container {name}"
    code, _, body = api(stack, "GET", "/containers/nosuch-ctr/archive?path=/etc")
    assert code == 404 and "No such container" in json.loads(body)["message"]
    code, _, body = put_tar(stack, name, "/etc/passwd", tar_bytes([("x", "file", b"x")]))
    assert code == 400 and json.loads(body)["message"] == "extraction point is not a directory"
    code, _, body = put_tar(stack, name, "/nonexistent", tar_bytes([("x", "file", b"x")]))
    assert code == 404
    # a directory can not be replaced by a file with noOverwriteDirNonDir
    code, _, body = put_tar(stack, name, "/", tar_bytes([("tmp", "file", b"x")]))
    assert code == 400 and "cannot overwrite directory" in json.loads(body)["message"]
    code, _, body = api(stack, "GET", f"/containers/{name}/archive")
    assert code == 400
    stack.docker("rm", "-f", name)


# ---------------------------------------------------------------- security


@pytest.fixture
def marker():
    """A file on the host that no copy may reach."""
    tag = secrets.token_hex(6)
    p = Path(f"/tmp/host-secret-{tag}")
    p.write_text("host only\n")
    yield tag, p
    p.unlink(missing_ok=True)


def test_cp_out_never_reads_the_host(stack, name, tmp_path, marker):
    tag, secret = marker
    stack.docker("run", "-d", "--name", name, stack.image, "sh", "-c",
                 "ln -s / /tmp/rootlink; ln -s ../../../../.. /tmp/uplink; sleep 60")
    time.sleep(0.5)
    for path in (f"/tmp/rootlink/tmp/host-secret-{tag}", f"/tmp/uplink/tmp/host-secret-{tag}",
                 f"/etc/../../../../tmp/host-secret-{tag}"):
        p = stack.docker("cp", f"{name}:{path}", str(tmp_path / "x"), check=False)
        assert p.returncode != 0 and not (tmp_path / "x").exists(), path
        code, _, body = api(stack, "GET", f"/containers/{name}/archive?path={path}")
        assert code == 404, (path, body)
    # through the links: the container's own files
    for path in ("/tmp/rootlink/etc/passwd", "/tmp/uplink/etc/passwd", "/etc/../../../etc/passwd"):
        out = tmp_path / secrets.token_hex(4)
        stack.docker("cp", f"{name}:{path}", str(out))
        assert "alice:x:1234" in out.read_text(), path
    # a link followed with -L
    stack.docker("exec", name, "ln", "-s", "../../../../etc", "/tmp/etclink")
    stack.docker("cp", "-L", f"{name}:/tmp/etclink", str(tmp_path / "etc"))
    assert "alice" in (tmp_path / "etc" / "passwd").read_text()
    # the links to / themselves, followed: the container's root, never the host's
    for link in ("rootlink", "uplink"):
        code, _, body = api(stack, "GET", f"/containers/{name}/archive?path=/tmp/{link}/")
        assert code == 200
        with tarfile.open(fileobj=io.BytesIO(body)) as t:
            names = t.getnames()
            assert f"{link}/bin/busybox" in names and f"{link}/tmp/{link}" in names
            assert b"alice" in t.extractfile(f"{link}/etc/passwd").read()
            assert not any("host-secret" in n for n in names)
            assert len(names) < 1000
    stack.docker("rm", "-f", name)


def test_cp_in_never_writes_the_host(stack, name, tmp_path):
    tag = secrets.token_hex(6)
    stack.docker("run", "-d", "--name", name, stack.image, "sh", "-c",
                 "ln -s / /tmp/rootlink; ln -s ../../../../.. /tmp/uplink; sleep 60")
    time.sleep(0.5)
    f = tmp_path / f"escape-{tag}"
    f.write_text("x\n")
    before = mounts(stack)
    for dest in ("/tmp/rootlink/tmp/", "/tmp/uplink/tmp/", "/etc/../../../../tmp/"):
        stack.docker("cp", str(f), f"{name}:{dest}")
        assert not Path(f"/tmp/escape-{tag}").exists(), dest
        assert stack.docker("exec", name, "cat", f"/tmp/escape-{tag}").stdout == "x\n"
        stack.docker("exec", name, "rm", f"/tmp/escape-{tag}")

    # crafted tars straight to the socket
    code, _, body = put_tar(stack, name, "/tmp", tar_bytes([(f"../../../../tmp/escape1-{tag}", "file", b"1")]))
    assert code == 400 and "outside" in json.loads(body)["message"]
    assert not Path(f"/tmp/escape1-{tag}").exists()
    # a symlink to / in the tar, then a file through it: confined to the container
    code, _, body = put_tar(stack, name, "/tmp", tar_bytes([("lnk", "sym", "/"),
                                                            (f"lnk/tmp/escape2-{tag}", "file", b"2")]))
    assert not Path(f"/tmp/escape2-{tag}").exists()
    if code == 200:
        assert stack.docker("exec", name, "cat", f"/tmp/escape2-{tag}").stdout == "2"
    # a symlink planted in the container, a file through it
    code, _, body = put_tar(stack, name, "/tmp", tar_bytes([(f"uplink/tmp/escape3-{tag}", "file", b"3")]))
    assert not Path(f"/tmp/escape3-{tag}").exists()
    # relative symlinks out of the destination are refused (as dockerd)
    code, _, body = put_tar(stack, name, "/tmp", tar_bytes([("up", "sym", "../../../../../../"),
                                                            (f"up/tmp/escape4-{tag}", "file", b"4")]))
    assert code == 400 and not Path(f"/tmp/escape4-{tag}").exists()
    # absolute names land in the destination
    code, _, body = put_tar(stack, name, "/tmp", tar_bytes([(f"/tmp/escape5-{tag}", "file", b"5")]))
    assert code == 200 and not Path(f"/tmp/escape5-{tag}").exists()
    assert stack.docker("exec", name, "cat", f"/tmp/tmp/escape5-{tag}").stdout == "5"
    # hard links out of the destination are refused; in the container they stay in it
    code, _, body = put_tar(stack, name, "/tmp", tar_bytes([(f"hl-{tag}", "hard", "../../../../etc/passwd")]))
    assert code == 400
    code, _, body = put_tar(stack, name, "/", tar_bytes([(f"hl-{tag}", "hard", "/etc/passwd")]))
    assert code == 200, body
    assert "alice" in stack.docker("exec", name, "cat", f"/hl-{tag}").stdout
    host_passwd = Path("/etc/passwd").stat()
    assert Path("/etc/passwd").stat().st_nlink == host_passwd.st_nlink
    assert mounts(stack) == before
    stack.docker("rm", "-f", name)


# ---------------------------------------------------------------- sizes


def test_sizes(stack, name):
    stack.docker("run", "--name", name, stack.image, "dd", "if=/dev/zero", "of=/tmp/big", "bs=1024",
                 "count=1024")
    code, _, body = api(stack, "GET", f"/containers/{name}/json?size=1")
    doc = json.loads(body)
    assert doc["SizeRw"] >= 1 << 20
    assert doc["SizeRootFs"] > doc["SizeRw"]
    code, _, body = api(stack, "GET", f"/containers/{name}/json")
    assert "SizeRw" not in json.loads(body)
    p = stack.docker("inspect", "-s", "--format", "{{.SizeRw}} {{.SizeRootFs}}", name)
    rw, rootfs = map(int, p.stdout.split())
    assert rw >= 1 << 20 and rootfs > rw
    code, _, body = api(stack, "GET", "/containers/json?all=1&size=1")
    mine = [c for c in json.loads(body) if c["Names"] == [f"/{name}"]][0]
    assert mine["SizeRw"] == rw and mine["SizeRootFs"] == rootfs
    code, _, body = api(stack, "GET", "/containers/json?all=1")
    assert all("SizeRw" not in c for c in json.loads(body))
    p = stack.docker("ps", "-a", "-s", "--filter", f"name={name}", "--format", "{{.Size}}")
    assert p.stdout.startswith("1.05MB (virtual "), p.stdout
    stack.docker("rm", name)


# ---------------------------------------------------------------- the copy snapshotter


@pytest.fixture(scope="module")
def copy_stack(registry):
    base = tempfile.mkdtemp(prefix="be-cp-", dir="/tmp")
    st = Stack(base)
    old = os.environ.get("BERTH_SNAPSHOTTER")
    os.environ["BERTH_SNAPSHOTTER"] = "copy"
    try:
        st.start_supervisor()
    finally:
        if old is None:
            os.environ.pop("BERTH_SNAPSHOTTER")
        else:
            os.environ["BERTH_SNAPSHOTTER"] = old
    st.start_engine()
    st.docker("pull", registry.image, timeout=120)
    st.image = registry.image
    yield st
    for c in st.docker("ps", "-aq", check=False).stdout.split():
        st.docker("rm", "-f", c, check=False)
    rc = (st.stop(st.eng), st.stop(st.sup))
    _cleanup(st)
    logs = {w: st.log(w) for w in ("engine", "supervisor")}
    subprocess.run(["rm", "-rf", base])
    for what, text in logs.items():
        assert "Sanitizer" not in text and "runtime error:" not in text, f"{what}:\n{text[-4000:]}"
    assert rc == (0, 0)


def test_copy_snapshotter_diff_cp_sizes(copy_stack, name, tmp_path):
    st = copy_stack
    st.docker("run", "--name", name, st.image, "sh", "-c",
              "touch /tmp/new; echo y >> /etc/passwd; rm /bin/ls; dd if=/dev/zero of=/tmp/big bs=1024 count=1024")
    assert diff(st, name) == [("C", "/bin"), ("D", "/bin/ls"), ("C", "/etc"), ("C", "/etc/passwd"),
                              ("C", "/tmp"), ("A", "/tmp/big"), ("A", "/tmp/new")]
    before = mounts(st)
    st.docker("cp", f"{name}:/etc/passwd", str(tmp_path / "pw"))
    assert (tmp_path / "pw").read_text().endswith("y\n")
    (tmp_path / "in").write_text("in\n")
    st.docker("cp", str(tmp_path / "in"), f"{name}:/tmp/")
    st.docker("cp", f"{name}:/tmp/in", str(tmp_path / "back"))
    assert (tmp_path / "back").read_text() == "in\n"
    assert mounts(st) == before
    rw, rootfs = map(int, st.docker("inspect", "-s", "--format", "{{.SizeRw}} {{.SizeRootFs}}",
                                    name).stdout.split())
    assert rw >= 1 << 20 and rootfs > rw
    st.docker("rm", name)
