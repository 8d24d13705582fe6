"""berth-fetch unpack / mount / snapshots: layers applied as overlay
snapshots keyed by chain id, whiteouts and opaque directories as overlayfs
sees them, and a container run by ocirun on the mounted image. Needs root
(overlay mounts, trusted.* xattrs, chown)."""

import hashlib
import io
import json
import os
import stat
import subprocess
import tarfile
import uuid

import pytest

import ocilayout
from conftest import build_dir

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (overlay mounts, trusted xattrs)")


def tar(entries):
    """entries: (name, kind, arg): kind "dir", "file" (bytes), "link"
    (symlink target), "hard" (hardlink target)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, kind, arg in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime = ocilayout.MTIME
            ti.uid, ti.gid = 1000, 1001
            if kind == "dir":
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                t.addfile(ti)
            elif kind == "link":
                ti.type, ti.linkname, ti.mode = tarfile.SYMTYPE, arg, 0o777
                t.addfile(ti)
            elif kind == "hard":
                ti.type, ti.linkname, ti.mode = tarfile.LNKTYPE, arg, 0o644
                t.addfile(ti)
            else:
                ti.size, ti.mode = len(arg), 0o640
                t.addfile(ti, io.BytesIO(arg))
    return buf.getvalue()


@pytest.fixture(scope="module")
def layered(registry, images, workdir):
    """test/layered: busybox + etc files (gzip), whiteout + opaque dir
    (gzip), more files (zstd)."""
    bb = ocilayout.busybox_tar()
    l1 = tar([("etc", "dir", None), ("etc/keep", "file", b"kept\n"), ("etc/gone", "file", b"to be removed\n"),
              ("opq", "dir", None), ("opq/old", "file", b"hidden\n"), ("etc/keep-link", "hard", "etc/keep")])
    l2 = tar([("etc", "dir", None), ("etc/.wh.gone", "file", b""), ("opq", "dir", None),
              ("opq/.wh..wh..opq", "file", b""), ("opq/new", "file", b"new\n"), ("data", "dir", None),
              ("data/two", "file", os.urandom(1000))])
    l3 = tar([("data", "dir", None), ("data/three", "file", b"three\n"), ("data/sym", "link", "/etc/keep")])
    img = ocilayout.single(images.layout, "layered", [(bb, "gzip"), (l1, "gzip"), (l2, "gzip"), (l3, "zstd")])
    registry.push(images.layout, "layered", "test/layered:1")
    diff_ids = [ocilayout.sha256(t) for t in (bb, l1, l2, l3)]
    chain = [diff_ids[0]]
    for d in diff_ids[1:]:
        chain.append("sha256:" + hashlib.sha256(f"{chain[-1]} {d}".encode()).hexdigest())
    img.chain = chain
    img.ref = f"{registry.host}/test/layered:1"
    return img


def unpack(fetch, ref):
    p = fetch.run("unpack", ref, check=True)
    chains = [l.split(" ", 1)[1] for l in p.stdout.splitlines() if l.startswith("chain ")]
    path = [l.split(" ", 1)[1] for l in p.stdout.splitlines() if l.startswith("path ")]
    return chains, path[0] if path else None


def snapshots(fetch):
    p = fetch.run("snapshots", "ls", check=True)
    return {l.split()[0]: l.split()[1:] for l in p.stdout.splitlines()}


def test_unpack_layers_as_snapshots(fetch, layered):
    chains, top = unpack(fetch, layered.ref)
    assert chains == layered.chain
    snaps = snapshots(fetch)
    assert set(snaps) == set(layered.chain)
    for i, c in enumerate(chains):
        assert snaps[c] == ["committed", chains[i - 1] if i else "-"]
    dirs = [fetch.root / "supervisor/snapshots" / str(i + 1) / "fs" for i in range(4)]
    assert str(dirs[3]) == top
    # layer 1: busybox, with ownership and modes
    assert (dirs[0] / "bin/busybox").read_bytes() == open("/bin/busybox", "rb").read()
    assert os.readlink(dirs[0] / "bin/sh") == "busybox"
    st = os.stat(dirs[1] / "etc/keep")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1000, 1001, 0o640)
    assert st.st_mtime == ocilayout.MTIME
    assert st.st_nlink == 2 and os.stat(dirs[1] / "etc/keep-link").st_ino == st.st_ino
    # layer 2: the whiteout and the opaque directory as overlayfs wants them
    wh = os.lstat(dirs[2] / "etc/gone")
    assert stat.S_ISCHR(wh.st_mode) and wh.st_rdev == 0
    assert os.getxattr(dirs[2] / "opq", "trusted.overlay.opaque") == b"y"
    assert not (dirs[2] / "etc/.wh.gone").exists()
    assert os.readlink(dirs[3] / "data/sym") == "/etc/keep"
    # nothing left behind by the extraction
    assert sorted(os.listdir(fetch.root / "supervisor/snapshots")) == ["1", "2", "3", "4"]
    meta = json.loads((fetch.root / "supervisor/meta/snapshots.json").read_text())
    assert len(meta["snapshots"]) == 4

    # a second unpack reuses every snapshot
    again, top2 = unpack(fetch, layered.ref)
    assert again == chains and top2 == top
    assert sorted(os.listdir(fetch.root / "supervisor/snapshots")) == ["1", "2", "3", "4"]

    p = fetch.run("snapshots", "usage", chains[0], check=True)
    size = int(p.stdout.split()[1])
    assert size >= os.path.getsize("/bin/busybox")


def test_shared_layers_between_images(fetch, layered, registry, images):
    unpack(fetch, layered.ref)
    chains, _ = unpack(fetch, f"{registry.host}/test/simple:oci")
    # the busybox layer is the same: same chain id, same snapshot
    assert chains == [layered.chain[0]]
    assert len(snapshots(fetch)) == 4


def test_snapshot_rm_refuses_parent(fetch, layered):
    chains, _ = unpack(fetch, layered.ref)
    p = fetch.run("snapshots", "rm", chains[0], check=False)
    assert "has children" in p.stderr
    for c in reversed(chains):
        fetch.run("snapshots", "rm", c, check=True)
    assert snapshots(fetch) == {}
    assert os.listdir(fetch.root / "supervisor/snapshots") == []


def test_diff_id_mismatch_refused(fetch, registry, images):
    bb = ocilayout.busybox_tar()
    img, mdesc = ocilayout.add_image(images.layout, [(bb, "gzip")])
    # a config whose diff id does not match the layer
    cfg = json.loads(open(os.path.join(images.layout.path, "blobs/sha256", img.config[7:]), "rb").read())
    cfg["rootfs"]["diff_ids"] = [ocilayout.sha256(b"something else")]
    cdesc = images.layout.blob(json.dumps(cfg).encode())
    m = json.loads(open(os.path.join(images.layout.path, "blobs/sha256", img.manifest[7:]), "rb").read())
    m["config"]["digest"], m["config"]["size"] = cdesc["digest"], cdesc["size"]
    md = images.layout.blob(json.dumps(m).encode())
    images.layout.tag("baddiff", ocilayout.OCI_MANIFEST, md)
    registry.push(images.layout, "baddiff", "test/baddiff:1")
    p = fetch.run("unpack", f"{registry.host}/test/baddiff:1", check=False)
    assert p.stderr.startswith("supervisor: ")
    assert "diff id mismatch" in p.stderr
    assert snapshots(fetch) == {}
    assert os.listdir(fetch.root / "supervisor/snapshots") == []


def test_mount_and_run(fetch, layered, tmp_path):
    ocirun = build_dir() / "ocirun" / "ocirun"
    if not os.access(ocirun, os.X_OK):
        pytest.skip(f"{ocirun} not built")
    bundle = tmp_path / "bundle"
    rootfs = bundle / "rootfs"
    rootfs.mkdir(parents=True)
    p = fetch.run("mount", layered.ref, str(rootfs), check=True)
    assert p.stdout.strip() == f"key {rootfs}"
    try:
        snaps = snapshots(fetch)
        assert snaps[str(rootfs)] == ["active", layered.chain[-1]]
        # overlayfs merged the layers
        assert (rootfs / "etc/keep").read_text() == "kept\n"
        assert not os.path.lexists(rootfs / "etc/gone")
        assert os.listdir(rootfs / "opq") == ["new"]
        subprocess.run(["ocirun", "spec"], executable=str(ocirun), cwd=bundle, check=True)
        config = json.loads((bundle / "config.json").read_text())
        config["process"]["terminal"] = False
        config["process"]["args"] = ["/bin/sh", "-c",
                                     "echo hi > /written; ls /opq; test -f /etc/keep && echo kept;"
                                     " test -f /data/three && echo three;"
                                     " test -e /etc/gone || echo gone; test -e /opq/old || echo hidden"]
        config["root"]["readonly"] = False
        (bundle / "config.json").write_text(json.dumps(config))
        cid = "berth-unpack-" + uuid.uuid4().hex[:8]
        state = tmp_path / "state"
        r = subprocess.run([str(ocirun), "--root", str(state), "run", "-b", str(bundle), cid],
                           capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == ["new", "kept", "three", "gone", "hidden"]
        # the container's write went to the active snapshot's upper dir
        snap_fs = fetch.root / "supervisor/snapshots" / str(len(layered.chain) + 1) / "fs"
        assert (snap_fs / "written").read_text() == "hi\n"
    finally:
        subprocess.run(["umount", str(rootfs)], check=False)
    fetch.run("snapshots", "rm", str(rootfs), check=True)
    assert str(rootfs) not in snapshots(fetch)
    assert not (fetch.root / "supervisor/snapshots" / str(len(layered.chain) + 1)).exists()
