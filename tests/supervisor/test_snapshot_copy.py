"""The copy snapshotter (BERTH_SNAPSHOTTER=copy): `berth-fetch unpack` and
`mount` make the same tree as the overlay snapshotter's overlay mount —
files, contents, modes, owners, times, xattrs, hardlinks, symlinks,
devices, FIFOs, whiteouts and opaque directories applied as deletions —
with no overlay whiteouts or opaque xattrs anywhere. Needs root (overlay
mounts, chown, mknod)."""

import hashlib
import io
import json
import os
import stat
import subprocess
import tarfile

import pytest

import ocilayout
import test_unpack

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (overlay mounts, chown, mknod)")


def tar(entries):
    """entries: (name, kind, arg[, mode]): kind "dir", "file" (bytes),
    "link" (symlink target), "hard" (hardlink target), "fifo", "chr"
    ((major, minor)); a file's arg may be (bytes, {xattr: value})."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for e in entries:
            name, kind, arg = e[:3]
            ti = tarfile.TarInfo(name)
            ti.mtime = ocilayout.MTIME
            ti.uid, ti.gid = 1000, 1001
            ti.mode = e[3] if len(e) > 3 else {"dir": 0o755, "link": 0o777}.get(kind, 0o640)
            data = None
            if kind == "dir":
                ti.type = tarfile.DIRTYPE
            elif kind == "link":
                ti.type, ti.linkname = tarfile.SYMTYPE, arg
            elif kind == "hard":
                ti.type, ti.linkname = tarfile.LNKTYPE, arg
            elif kind == "fifo":
                ti.type = tarfile.FIFOTYPE
            elif kind == "chr":
                ti.type, (ti.devmajor, ti.devminor) = tarfile.CHRTYPE, arg
            else:
                if isinstance(arg, tuple):
                    arg, xattrs = arg
                    ti.pax_headers = {"SCHILY.xattr." + k: v for k, v in xattrs.items()}
                ti.size, data = len(arg), io.BytesIO(arg)
            t.addfile(ti, data)
    return buf.getvalue()


@pytest.fixture(scope="module")
def copytree(registry, images):
    """test/copytree: a lower layer with every kind of entry, and an upper
    one with whiteouts (a file, a directory, one name of a hardlink pair)
    and an opaque directory that has an entry before its marker."""
    l1 = tar([("etc", "dir", None), ("etc/keep", "file", (b"kept\n", {"user.test": "v1"})),
              ("etc/suid", "file", b"#!/bin/sh\n", 0o4755), ("etc/secret", "file", b"s\n", 0o600),
              ("etc/gone", "file", b"to be removed\n"), ("etc/hl1", "file", b"linked\n"),
              ("etc/hl2", "hard", "etc/hl1"), ("etc/hl3", "hard", "etc/hl1"),
              ("etc/abs", "link", "/etc/keep"), ("rel", "link", "etc"),
              ("opq", "dir", None), ("opq/old", "file", b"hidden\n"), ("opq/olddir", "dir", None, 0o700),
              ("opq/olddir/y", "file", b"y\n"), ("gonedir", "dir", None), ("gonedir/a", "file", b"a\n"),
              ("gonedir/b", "dir", None), ("gonedir/b/c", "file", b"c\n"),
              ("run", "dir", None), ("run/fifo", "fifo", None, 0o620),
              ("dev", "dir", None), ("dev/null", "chr", (1, 3), 0o666)])
    l2 = tar([("etc", "dir", None, 0o750), ("etc/.wh.gone", "file", b""), ("etc/.wh.hl2", "file", b""),
              ("etc/keep", "file", b"changed\n"), (".wh.gonedir", "file", b""),
              ("opq", "dir", None), ("opq/!early", "file", b"mine\n"), ("opq/.wh..wh..opq", "file", b""),
              ("opq/new", "file", b"new\n"), ("opq/olddir", "dir", None, 0o755),
              ("opq/olddir/z", "file", b"z\n")])
    img = ocilayout.single(images.layout, "copytree", [(l1, "gzip"), (l2, "zstd")])
    registry.push(images.layout, "copytree", "test/copytree:1")
    img.ref = f"{registry.host}/test/copytree:1"
    return img


@pytest.fixture(scope="module")
def layered_copy(registry, images):
    """test_unpack.py's test/layered under a tag of its own (its fixture
    makes random data, so it is not shared): busybox, etc files and a
    hardlink, a whiteout and an opaque directory, more files (zstd)."""
    t = test_unpack.tar
    bb = ocilayout.busybox_tar()
    l1 = t([("etc", "dir", None), ("etc/keep", "file", b"kept\n"), ("etc/gone", "file", b"to be removed\n"),
            ("opq", "dir", None), ("opq/old", "file", b"hidden\n"), ("etc/keep-link", "hard", "etc/keep")])
    l2 = t([("etc", "dir", None), ("etc/.wh.gone", "file", b""), ("opq", "dir", None),
            ("opq/.wh..wh..opq", "file", b""), ("opq/new", "file", b"new\n"), ("data", "dir", None),
            ("data/two", "file", os.urandom(1000))])
    l3 = t([("data", "dir", None), ("data/three", "file", b"three\n"), ("data/sym", "link", "/etc/keep")])
    img = ocilayout.single(images.layout, "layered-copy", [(bb, "gzip"), (l1, "gzip"), (l2, "gzip"), (l3, "zstd")])
    registry.push(images.layout, "layered-copy", "test/layered-copy:1")
    img.ref = f"{registry.host}/test/layered-copy:1"
    return img


def tree(top):
    """Everything lstat, the xattrs and the contents say about a tree, the
    top itself and directory times left out (a deletion touches them), and
    hardlinks as groups (an overlay mount counts the links of the lower
    layers' inodes, whiteouted names included)."""
    out, inodes = {}, {}
    for dirpath, dirs, files in os.walk(top):
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, top)
            st = os.lstat(p)
            xattrs = sorted((x, os.getxattr(p, x, follow_symlinks=False))
                            for x in os.listxattr(p, follow_symlinks=False))
            info = {"type": stat.S_IFMT(st.st_mode), "mode": stat.S_IMODE(st.st_mode),
                    "owner": (st.st_uid, st.st_gid), "rdev": st.st_rdev, "xattrs": xattrs}
            if not stat.S_ISDIR(st.st_mode):
                info["mtime"] = st.st_mtime_ns
                inodes.setdefault(st.st_ino, []).append(rel)
            if stat.S_ISLNK(st.st_mode):
                info["target"] = os.readlink(p)
            elif stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    info["sha256"] = hashlib.sha256(f.read()).hexdigest()
            out[rel] = info
    for group in inodes.values():
        for rel in group:
            out[rel]["links"] = sorted(group)
    return out


def assert_no_overlay_marks(top):
    for dirpath, dirs, files in os.walk(top):
        for name in dirs + files + ["."]:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            assert not (stat.S_ISCHR(st.st_mode) and st.st_rdev == 0), f"an overlay whiteout: {p}"
            assert ".wh." not in name, p
            assert not [x for x in os.listxattr(p, follow_symlinks=False) if x.startswith("trusted.overlay.")], p


def unpack(fetch, ref, *opts):
    p = fetch.run(*opts, "unpack", ref, check=True)
    chains = [l.split(" ", 1)[1] for l in p.stdout.splitlines() if l.startswith("chain ")]
    path = [l.split(" ", 1)[1] for l in p.stdout.splitlines() if l.startswith("path ")]
    return chains, path[0]


class Mounted:
    """`berth-fetch mount` of ref on tmp/name; undone on exit."""

    def __init__(self, fetch, ref, where, *opts):
        self.fetch, self.ref, self.dir, self.opts = fetch, ref, where, opts

    def __enter__(self):
        self.dir.mkdir()
        p = self.fetch.run(*self.opts, "mount", self.ref, str(self.dir), check=True)
        assert p.stdout.strip() == f"key {self.dir}"
        return self.dir

    def __exit__(self, *exc):
        subprocess.run(["umount", str(self.dir)], check=False)
        self.fetch.run("snapshots", "rm", str(self.dir), check=True)


def both_modes(fetch_bin, tmp_path, monkeypatch, ref, *opts):
    """The overlay mode's mounted tree and the copy mode's unpacked top
    snapshot and mounted tree, each from a root of its own."""
    from conftest import Fetch
    ov, cp = Fetch(fetch_bin, tmp_path / "overlay"), Fetch(fetch_bin, tmp_path / "copy")
    monkeypatch.setenv("BERTH_SNAPSHOTTER", "overlay")
    ov_chains, _ = unpack(ov, ref, *opts)
    with Mounted(ov, ref, tmp_path / "ovmnt", *opts) as m:
        ov_tree = tree(m)
    monkeypatch.setenv("BERTH_SNAPSHOTTER", "copy")
    cp_chains, top = unpack(cp, ref, *opts)
    assert cp_chains == ov_chains
    cp_top = tree(top)
    assert_no_overlay_marks(top)
    with Mounted(cp, ref, tmp_path / "cpmnt", *opts) as m:
        key = str(m)
        p = cp.run("snapshots", "mounts", key, check=True)
        snaps = json.loads((cp.root / "supervisor/meta/snapshots.json").read_text())
        fs = cp.root / "supervisor/snapshots" / str(snaps["snapshots"][key]["id"]) / "fs"
        assert p.stdout.split("\n")[:3] == ["type bind", f"source {fs}", "options rbind,rw"]
        cp_mnt = tree(m)
    return ov_tree, cp_top, cp_mnt, cp


def test_copy_equals_overlay(copytree, fetch_bin, tmp_path, monkeypatch):
    ov, top, mnt, cp = both_modes(fetch_bin, tmp_path, monkeypatch, copytree.ref, "--allow-devices")
    assert sorted(top) == sorted(ov)
    for rel in ov:
        assert top[rel] == ov[rel], rel
    assert mnt == top
    # what the whiteouts and the opaque directory removed
    for gone in ("etc/gone", "etc/hl2", "gonedir", "gonedir/b/c", "opq/old", "opq/olddir/y"):
        assert gone not in top, gone
    assert sorted(k for k in top if k.startswith("opq/")) == ["opq/!early", "opq/new", "opq/olddir", "opq/olddir/z"]
    # what the copy keeps
    assert top["etc/keep"]["xattrs"] == [] and top["etc/keep"]["sha256"] == hashlib.sha256(b"changed\n").hexdigest()
    assert top["etc/hl1"]["links"] == ["etc/hl1", "etc/hl3"]
    assert top["etc/suid"]["mode"] == 0o4755 and top["etc/suid"]["owner"] == (1000, 1001)
    assert top["etc"]["mode"] == 0o750
    assert top["etc/abs"]["target"] == "/etc/keep" and top["rel"]["target"] == "etc"
    assert stat.S_ISFIFO(top["run/fifo"]["type"]) and top["run/fifo"]["mode"] == 0o620
    assert stat.S_ISCHR(top["dev/null"]["type"]) and top["dev/null"]["rdev"] == os.makedev(1, 3)
    # the lower snapshot holds the whole first layer, xattr included, and no overlay workdir
    snaps = json.loads((cp.root / "supervisor/meta/snapshots.json").read_text())
    assert snaps["mode"] == "copy"
    first = cp.root / "supervisor/snapshots/1"
    assert sorted(os.listdir(first)) == ["fs"]
    assert os.getxattr(first / "fs/etc/keep", "user.test") == b"v1"
    assert (first / "fs/gonedir/b/c").read_text() == "c\n"


def test_layered_copy_equals_overlay(layered_copy, fetch_bin, tmp_path, monkeypatch):
    ov, top, mnt, _ = both_modes(fetch_bin, tmp_path, monkeypatch, layered_copy.ref)
    assert top == ov
    assert mnt == top
    assert "etc/gone" not in top and "opq/old" not in top
    assert sorted(k for k in top if k.startswith("opq/")) == ["opq/new"]
    assert top["etc/keep"]["links"] == ["etc/keep", "etc/keep-link"]
    assert top["data/sym"]["target"] == "/etc/keep"
    assert top["bin/busybox"]["sha256"] == hashlib.sha256(open("/bin/busybox", "rb").read()).hexdigest()


def test_mode_mismatch_refused(copytree, fetch, monkeypatch):
    monkeypatch.setenv("BERTH_SNAPSHOTTER", "copy")
    unpack(fetch, copytree.ref, "--allow-devices")
    monkeypatch.setenv("BERTH_SNAPSHOTTER", "overlay")
    p = fetch.run("snapshots", "ls", check=False)
    assert p.stderr.startswith("supervisor: ")
    assert "made by the copy snapshotter" in p.stderr and "by the overlay snapshotter" in p.stderr
    # auto follows the recorded mode
    monkeypatch.delenv("BERTH_SNAPSHOTTER")
    p = fetch.run("snapshots", "ls", check=True)
    assert len(p.stdout.splitlines()) == 2
    monkeypatch.setenv("BERTH_SNAPSHOTTER", "bogus")
    p = fetch.run("snapshots", "ls", check=False)
    assert "BERTH_SNAPSHOTTER=\"bogus\"" in p.stderr


def test_copy_unsafe_whiteout_refused(registry, images, fetch, monkeypatch, tmp_path):
    """A whiteout reaching through a lower layer's absolute symlink: refused,
    the target untouched, no snapshot of the layer left."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "f").write_text("keep me\n")
    l1 = tar([("out", "link", str(victim))])
    l2 = tar([("out/.wh.f", "file", b"")])
    ocilayout.single(images.layout, "copyunsafe", [(l1, "gzip"), (l2, "gzip")])
    registry.push(images.layout, "copyunsafe", "test/copyunsafe:1")
    monkeypatch.setenv("BERTH_SNAPSHOTTER", "copy")
    p = fetch.run("unpack", f"{registry.host}/test/copyunsafe:1", check=False)
    assert "unsafe layer" in p.stderr and "goes through a symlink" in p.stderr, p.stderr
    assert (victim / "f").read_text() == "keep me\n"
    snaps = json.loads((fetch.root / "supervisor/meta/snapshots.json").read_text())["snapshots"]
    assert [v["kind"] for v in snaps.values()] == ["committed"]
    assert sorted(os.listdir(fetch.root / "supervisor/snapshots")) == ["1"]
