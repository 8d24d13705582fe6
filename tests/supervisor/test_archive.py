"""berth-fetch images export|import: docker save / OCI layout tarballs.
Round trips through a fresh root, the dual-format tarball of
tests/dropin/mkimage.py, Docker's manifest.json alone, corrupt and
inconsistent archives refused with nothing recorded, and skopeo reading
what we export. The legacy docker save layout (<id>/layer.tar, as Docker
20.10 and skopeo's docker-archive: write it) imported by berth-fetch and
the daemon, unpacked and compared file by file; layers that do not match
the config's diff_ids and unsafe paths refused."""

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile

import pytest

import ocilayout
from conftest import REPO, Fetch

MKIMAGE = REPO / "tests/dropin/mkimage.py"
MK_REPO = "localhost/berth-busybox"
BUSYBOX_BIN = "/bin/busybox"


def images_ls(fetch):
    return [line.split(" ") for line in fetch.run("images", "ls", check=True).stdout.splitlines()]


def members(path):
    with tarfile.open(path) as t:
        return {m.name: (t.extractfile(m).read() if m.isfile() else None) for m in t.getmembers()}


def rewrite(src, dst, change):
    """Copies the tar src to dst; change(name, data) returns new data, or None to drop the entry."""
    with tarfile.open(src) as tin, tarfile.open(dst, "w", format=tarfile.PAX_FORMAT) as tout:
        for m in tin.getmembers():
            data = tin.extractfile(m).read() if m.isfile() else None
            if data is not None:
                data = change(m.name, data)
                if data is None:
                    continue
                m.size = len(data)
                tout.addfile(m, io.BytesIO(data))
            else:
                tout.addfile(m)


@pytest.fixture(scope="module")
def mktar(tmp_path_factory):
    out = tmp_path_factory.mktemp("mkimage") / "busybox.tar"
    subprocess.run(["/usr/bin/python3", str(MKIMAGE), str(out)], check=True, capture_output=True)
    return out


def import_ok(fetch, path):
    p = fetch.run("images", "import", str(path), check=True)
    return [line.split(" ", 1)[1] for line in p.stdout.splitlines()]


def assert_nothing_recorded(fetch):
    assert images_ls(fetch) == []
    assert fetch.stored() == []
    assert not fetch.ingest.exists() or not any(fetch.ingest.iterdir())


def test_export_import_round_trip(registry, images, fetch, tmp_path):
    refs = [f"{registry.host}/test/simple:oci", f"{registry.host}/test/multi:latest",
            f"{registry.host}/test/docker:v2s2", f"{registry.host}/test/multiarch:oci"]
    for r in refs:
        fetch.pull(r)
    out = tmp_path / "all.tar"
    fetch.run("images", "export", *refs, "-o", str(out), check=True)
    files = members(out)
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads(files["index.json"])
    assert [m["annotations"]["io.containerd.image.name"] for m in index["manifests"]] == refs
    assert [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]] == \
        ["oci", "latest", "v2s2", "oci"]
    dm = json.loads(files["manifest.json"])
    assert [e["RepoTags"] for e in dm] == [[r] for r in refs]
    assert dm[0]["Config"] == "blobs/sha256/" + images.simple.config.split(":")[1]
    assert dm[1]["Layers"] == ["blobs/sha256/" + d.split(":")[1] for d in images.multi.layers]
    amd = images.multiarch.platforms["linux/amd64"]
    assert dm[3]["Config"] == "blobs/sha256/" + amd.config.split(":")[1]
    assert not [n for n in files if n.endswith(".tmp")]
    assert not [p for p in tmp_path.iterdir() if p.name != "all.tar" and p.name != "root"]

    other = Fetch(fetch.bin, tmp_path / "root2")
    assert import_ok(other, out) == refs
    assert images_ls(other) == images_ls(fetch)
    assert other.stored() == fetch.stored()
    for d in other.stored():
        other.check_blob(d)
    inspect = json.loads(other.run("images", "inspect", refs[1], check=True).stdout)
    assert inspect["layers"] == images.multi.layers
    # importing again changes nothing
    assert import_ok(other, out) == refs
    assert other.stored() == fetch.stored()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (overlay snapshots)")
def test_imported_image_unpacks(registry, images, fetch, tmp_path):
    ref = f"{registry.host}/test/simple:oci"
    fetch.pull(ref)
    out = tmp_path / "simple.tar"
    fetch.run("images", "export", ref, "-o", str(out), check=True)
    other = Fetch(fetch.bin, tmp_path / "root2")
    import_ok(other, out)
    p = other.run("images", "unpack", ref, check=True)
    path = [line.split(" ", 1)[1] for line in p.stdout.splitlines() if line.startswith("path ")][0]
    assert os.path.isfile(os.path.join(path, "bin/busybox"))


def test_export_oci_format(registry, images, fetch, tmp_path):
    ref = f"{registry.host}/test/simple:oci"
    fetch.pull(ref)
    out = tmp_path / "oci.tar"
    fetch.run("images", "export", "--format", "oci", ref, "-o", str(out), check=True)
    files = members(out)
    assert "manifest.json" not in files
    assert set(files) >= {"oci-layout", "index.json"}
    blobs = sorted("sha256:" + n.rsplit("/", 1)[1] for n in files if n.startswith("blobs/sha256/") and files[n])
    assert blobs == sorted([images.simple.manifest, images.simple.config, *images.simple.layers])
    other = Fetch(fetch.bin, tmp_path / "root2")
    assert import_ok(other, out) == [ref]
    assert images_ls(other) == images_ls(fetch)


def test_export_errors(registry, fetch, tmp_path):
    out = tmp_path / "x.tar"
    p = fetch.run("images", "export", "no/such:image", "-o", str(out), check=False)
    assert p.stderr.startswith("supervisor: ") and "docker.io/no/such:image" in p.stderr
    assert not out.exists()
    p = fetch.run("images", "export", "busybox", "-o", str(out), "--format", "zip", check=False)
    assert p.returncode == 1 and "zip" in p.stderr
    assert fetch.run("images", "export", "busybox").returncode == 2


def test_import_mkimage_tarball(mktar, fetch):
    names = import_ok(fetch, mktar)
    assert names == [f"{MK_REPO}:latest", f"{MK_REPO}:tester"]
    files = members(mktar)
    index = json.loads(files["index.json"])
    assert [row[:2] for row in images_ls(fetch)] == [[n, m["digest"]] for n, m in zip(names, index["manifests"])]
    cfg = json.loads(fetch.run("images", "inspect", f"{MK_REPO}:tester", check=True).stdout)
    assert cfg["os"] == "linux" and cfg["architecture"] == "amd64"
    config = json.loads(fetch.check_blob(cfg["config"]))
    assert config["config"]["User"] == "tester"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (overlay snapshots)")
def test_import_mkimage_unpacks(mktar, fetch):
    import_ok(fetch, mktar)
    p = fetch.run("images", "unpack", f"{MK_REPO}:tester", check=True)
    path = [line.split(" ", 1)[1] for line in p.stdout.splitlines() if line.startswith("path ")][0]
    with open(os.path.join(path, "etc/berth-image")) as f:
        assert f.read() == "berth busybox image\n"


def test_import_docker_manifest_json_only(mktar, fetch, tmp_path):
    """Without index.json: Docker's manifest.json, names normalised."""
    out = tmp_path / "docker.tar"

    def change(name, data):
        if name in ("index.json", "oci-layout"):
            return None
        if name == "manifest.json":
            dm = json.loads(data)
            dm[0]["RepoTags"] = ["busybox:latest"]
            return json.dumps(dm).encode()
        return data
    rewrite(mktar, out, change)
    names = import_ok(fetch, out)
    assert names == ["docker.io/library/busybox:latest", f"{MK_REPO}:tester"]
    insp = json.loads(fetch.run("images", "inspect", "busybox", check=True).stdout)
    assert insp["target"]["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    layer = json.loads(members(mktar)["manifest.json"])[0]["Layers"][0]
    assert insp["layers"] == ["sha256:" + layer.rsplit("/", 1)[1]]
    assert insp["diff_ids"] == insp["layers"]


def test_import_corrupt_blob_refused(mktar, fetch, tmp_path):
    layer = json.loads(members(mktar)["manifest.json"])[0]["Layers"][0]
    out = tmp_path / "corrupt.tar"

    def change(name, data):
        if name == layer:
            b = bytearray(data)
            b[len(b) // 2] ^= 0xff
            return bytes(b)
        return data
    rewrite(mktar, out, change)
    p = fetch.run("images", "import", str(out), check=False)
    assert p.returncode == 1
    assert p.stderr.startswith("supervisor: ") and layer in p.stderr and "digest" in p.stderr, p.stderr
    assert_nothing_recorded(fetch)


def test_import_descriptor_size_mismatch_refused(mktar, fetch, tmp_path):
    out = tmp_path / "size.tar"

    def change(name, data):
        if name == "index.json":
            idx = json.loads(data)
            idx["manifests"][1]["size"] += 1
            return json.dumps(idx).encode()
        return data
    rewrite(mktar, out, change)
    p = fetch.run("images", "import", str(out), check=False)
    assert p.returncode == 1 and "size" in p.stderr and f"{MK_REPO}:tester" in p.stderr, p.stderr
    assert_nothing_recorded(fetch)


def test_import_missing_blob_and_junk_refused(mktar, fetch, tmp_path):
    layer = json.loads(members(mktar)["manifest.json"])[0]["Layers"][0]
    out = tmp_path / "missing.tar"
    rewrite(mktar, out, lambda name, data: None if name == layer else data)
    p = fetch.run("images", "import", str(out), check=False)
    assert p.returncode == 1 and "not in the archive" in p.stderr, p.stderr
    assert_nothing_recorded(fetch)
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar at all\n" * 100)
    p = fetch.run("images", "import", str(junk), check=False)
    assert p.returncode == 1 and p.stderr.startswith("supervisor: ")
    assert_nothing_recorded(fetch)


def test_skopeo_reads_export(registry, images, fetch, tmp_path):
    if not shutil.which("skopeo"):
        pytest.skip("skopeo is not installed")
    ref = f"{registry.host}/test/multi:latest"
    fetch.pull(ref)
    out = tmp_path / "multi.tar"
    fetch.run("images", "export", ref, "-o", str(out), check=True)
    for transport in (f"docker-archive:{out}", f"oci-archive:{out}:latest"):
        p = subprocess.run(["skopeo", "inspect", transport], capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, f"{transport}: {p.stderr}"
        info = json.loads(p.stdout)
        assert info["Os"] == "linux" and info["Architecture"] == "amd64"
        if transport.startswith("oci"):
            assert info["Layers"] == images.multi.layers
            assert info["Digest"] == images.multi.manifest
        else:
            assert len(info["Layers"]) == len(images.multi.layers)
    p = subprocess.run(["skopeo", "inspect", "--config", f"docker-archive:{out}"], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    assert "sha256:" + json.loads(p.stdout)["rootfs"]["diff_ids"][0].split(":")[1] == \
        json.loads(fetch.check_blob(images.multi.config))["rootfs"]["diff_ids"][0]


# ---------- the legacy docker save layout (Docker 20.10, skopeo's docker-archive:) ----------

LEGACY_REF = "localhost/legacy:v1"


class Legacy:
    """A legacy tarball written by skopeo, and what went into it."""


@pytest.fixture(scope="module")
def legacy(tmp_path_factory):
    if not shutil.which("skopeo"):
        pytest.skip("skopeo is not installed")
    d = tmp_path_factory.mktemp("legacy")
    lay = ocilayout.Layout(str(d / "layout"))
    lg = Legacy()
    lg.tars = [ocilayout.busybox_tar(), ocilayout.random_tar("two"), ocilayout.random_tar("three", 300000)]
    # skopeo's docker-archive: cannot hold zstd; it writes the layers uncompressed
    ocilayout.single(lay, "legacy", [(t, "gzip") for t in lg.tars])
    lg.diff_ids = [ocilayout.sha256(t) for t in lg.tars]
    lg.path = d / "legacy.tar"
    subprocess.run(["skopeo", "copy", "--insecure-policy", f"oci:{d / 'layout'}:legacy",
                    f"docker-archive:{lg.path}:{LEGACY_REF}"], check=True, capture_output=True, timeout=120)
    lg.files = members(lg.path)
    lg.manifest = json.loads(lg.files["manifest.json"])
    assert not [n for n in lg.files if n.startswith("blobs/")], "skopeo wrote the new layout"
    return lg


def docker2010_tar(out, tars, tags, shared=None):
    """A tarball as Debian's dockerd 20.10 `docker save` writes it: <id>/layer.tar
    (regular files, uncompressed), <id>/json, <id>/VERSION, <config hex>.json,
    manifest.json, repositories. shared: a second image (tags) on the same first
    layer, whose <id>/layer.tar is a symlink to the first one's, as Docker makes it."""
    def cfg_for(ts):
        return json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                           "rootfs": {"type": "layers", "diff_ids": [ocilayout.sha256(t) for t in ts]}}).encode()

    entries, manifest = [], []
    cfg = cfg_for(tars)
    ids = [hashlib.sha256(b"id" + t).hexdigest() for t in tars]
    for i, t in zip(ids, tars):
        entries += [(i, None), (f"{i}/VERSION", b"1.0"), (f"{i}/json", b"{}"), (f"{i}/layer.tar", t)]
    entries.append((hashlib.sha256(cfg).hexdigest() + ".json", cfg))
    manifest.append({"Config": hashlib.sha256(cfg).hexdigest() + ".json", "RepoTags": tags,
                     "Layers": [f"{i}/layer.tar" for i in ids]})
    if shared:
        scfg = cfg_for(tars[:1])
        sid = hashlib.sha256(b"shared").hexdigest()
        entries += [(sid, None), (f"{sid}/layer.tar", ("link", f"../{ids[0]}/layer.tar"))]
        entries.append((hashlib.sha256(scfg).hexdigest() + ".json", scfg))
        manifest.append({"Config": hashlib.sha256(scfg).hexdigest() + ".json", "RepoTags": shared,
                         "Layers": [f"{sid}/layer.tar"]})
    entries.append(("manifest.json", json.dumps(manifest).encode()))
    entries.append(("repositories", b"{}"))
    with tarfile.open(out, "w") as t:
        for name, data in entries:
            ti = tarfile.TarInfo(name)
            if data is None:
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                t.addfile(ti)
            elif isinstance(data, tuple):
                ti.type, ti.linkname = tarfile.SYMTYPE, data[1]
                t.addfile(ti)
            else:
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
    return out


def mounted_image(root, top, mnt):
    """Mounts the snapshot chain ending in top read-only on mnt (overlay of
    every layer's fs, or a bind mount of the copy snapshotter's full tree)."""
    meta = json.loads((root / "supervisor/meta/snapshots.json").read_text())
    snaps = meta["snapshots"]
    fs, key = [], top
    while key:
        fs.append(str(root / "supervisor/snapshots" / str(snaps[key]["id"]) / "fs"))
        key = snaps[key].get("parent")
    mnt.mkdir(exist_ok=True)
    if meta.get("mode") == "copy" or len(fs) == 1:
        subprocess.run(["mount", "--bind", "-o", "ro", fs[0], str(mnt)], check=True)
    else:
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o", "ro,lowerdir=" + ":".join(fs), str(mnt)],
                       check=True)
    return mnt


def check_tree(mnt, tars):
    """Every file of the layer tars is in the mounted tree, with its bytes."""
    want = {}
    for t in tars:
        with tarfile.open(fileobj=io.BytesIO(t)) as tf:
            for m in tf.getmembers():
                want[m.name] = ("file", tf.extractfile(m).read()) if m.isfile() else \
                    ("link", m.linkname) if m.issym() else ("dir", None)
    for name, (kind, data) in want.items():
        p = mnt / name
        if kind == "file":
            assert p.read_bytes() == data, name
        elif kind == "link":
            assert os.readlink(p) == data, name
        else:
            assert p.is_dir(), name


def fetch_unpack(fetch, name):
    p = fetch.run("images", "unpack", name, check=True)
    return [line.split(" ", 1)[1] for line in p.stdout.splitlines() if line.startswith("chain ")]


def test_import_legacy_skopeo(legacy, fetch):
    assert all("/" not in p for p in legacy.manifest[0]["Layers"])  # <hex>.tar, linked from <id>/layer.tar
    assert import_ok(fetch, legacy.path) == [LEGACY_REF]
    insp = json.loads(fetch.run("images", "inspect", LEGACY_REF, check=True).stdout)
    assert insp["target"]["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert insp["layers"] == legacy.diff_ids and insp["diff_ids"] == legacy.diff_ids
    assert insp["config"] == "sha256:" + legacy.manifest[0]["Config"].split(".")[0]
    manifest = json.loads(fetch.check_blob(insp["manifest"]))
    assert [lay["mediaType"] for lay in manifest["layers"]] == ["application/vnd.docker.image.rootfs.diff.tar"] * 3
    assert manifest["config"]["mediaType"] == "application/vnd.docker.container.image.v1+json"
    # only what the image needs is kept (no v1 <id>/json, VERSION, repositories)
    assert sorted(fetch.stored()) == sorted([insp["manifest"], insp["config"], *legacy.diff_ids])
    for d in fetch.stored():
        fetch.check_blob(d)
    assert not fetch.ingest.exists() or not any(fetch.ingest.iterdir())
    # again: nothing changes
    assert import_ok(fetch, legacy.path) == [LEGACY_REF]
    assert sorted(fetch.stored()) == sorted([insp["manifest"], insp["config"], *legacy.diff_ids])


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (snapshots, mounts)")
def test_import_legacy_unpacks(legacy, fetch, tmp_path):
    import_ok(fetch, legacy.path)
    chain = fetch_unpack(fetch, LEGACY_REF)
    assert chain[0] == legacy.diff_ids[0] and len(chain) == 3
    mnt = mounted_image(fetch.root, chain[-1], tmp_path / "mnt")
    try:
        check_tree(mnt, legacy.tars)
        with open(BUSYBOX_BIN, "rb") as f:
            assert (mnt / "bin/busybox").read_bytes() == f.read()
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (snapshots, mounts)")
def test_import_docker2010_layout_with_shared_layer(legacy, fetch, tmp_path):
    out = docker2010_tar(tmp_path / "d20.tar", legacy.tars[:2], ["legacy:a"], shared=["legacy:shared"])
    assert import_ok(fetch, out) == ["docker.io/library/legacy:a", "docker.io/library/legacy:shared"]
    a = json.loads(fetch.run("images", "inspect", "legacy:a", check=True).stdout)
    s = json.loads(fetch.run("images", "inspect", "legacy:shared", check=True).stdout)
    assert a["layers"] == legacy.diff_ids[:2] and s["layers"] == legacy.diff_ids[:1]
    chain = fetch_unpack(fetch, "legacy:a")
    mnt = mounted_image(fetch.root, chain[-1], tmp_path / "mnt")
    try:
        check_tree(mnt, legacy.tars[:2])
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_import_legacy_links_followed(legacy, fetch, tmp_path):
    """manifest.json naming <id>/layer.tar, a symlink to ../<hex>.tar (as skopeo writes them)."""
    links = {}
    with tarfile.open(legacy.path) as t:
        for m in t.getmembers():
            if m.issym():
                links[m.linkname.rsplit("/", 1)[1]] = m.name
    out = tmp_path / "links.tar"

    def change(name, data):
        if name == "manifest.json":
            dm = json.loads(data)
            dm[0]["Layers"] = [links[p] for p in dm[0]["Layers"]]
            return json.dumps(dm).encode()
        return data
    rewrite(legacy.path, out, change)
    assert import_ok(fetch, out) == [LEGACY_REF]
    insp = json.loads(fetch.run("images", "inspect", LEGACY_REF, check=True).stdout)
    assert insp["layers"] == legacy.diff_ids


def test_import_legacy_diff_id_mismatch_refused(legacy, fetch, tmp_path):
    """A layer that is not the one the config's diff_ids name: refused, nothing recorded."""
    out = tmp_path / "mismatch.tar"
    first = legacy.manifest[0]["Layers"][1]

    def change(name, data):
        if name == first:
            return ocilayout.random_tar("other")
        return data
    rewrite(legacy.path, out, change)
    p = fetch.run("images", "import", str(out), check=False)
    assert p.returncode == 1 and p.stderr.startswith("supervisor: "), p.stderr
    assert "diff_ids[1]" in p.stderr and legacy.diff_ids[1] in p.stderr, p.stderr
    assert_nothing_recorded(fetch)
    # Docker 20.10's layout: the same
    out = docker2010_tar(tmp_path / "d20.tar", [legacy.tars[0], ocilayout.random_tar("x")], ["legacy:bad"])
    cfgs = [n for n in members(out) if n.endswith(".json") and n != "manifest.json"]
    bad = tmp_path / "d20-bad.tar"
    rewrite(out, bad, lambda name, data: ocilayout.random_tar("y") if name.endswith("layer.tar") and
            data != legacy.tars[0] else data)
    p = fetch.run("images", "import", str(bad), check=False)
    assert p.returncode == 1 and "diff_ids[1]" in p.stderr, p.stderr
    assert_nothing_recorded(fetch)
    assert cfgs


@pytest.mark.parametrize("path", ["../x.tar", "/etc/passwd", "a/../../b.tar", "./../y.tar", "a//b.tar"])
def test_import_legacy_unsafe_paths_refused(legacy, fetch, tmp_path, path):
    out = tmp_path / "unsafe.tar"

    def change(name, data):
        if name == "manifest.json":
            dm = json.loads(data)
            dm[0]["Layers"][0] = path
            return json.dumps(dm).encode()
        return data
    rewrite(legacy.path, out, change)
    p = fetch.run("images", "import", str(out), check=False)
    assert p.returncode == 1 and "unsafe path" in p.stderr, p.stderr
    assert_nothing_recorded(fetch)


def test_import_legacy_link_out_of_archive_refused(legacy, fetch, tmp_path):
    out = tmp_path / "link.tar"
    with tarfile.open(legacy.path) as tin, tarfile.open(out, "w") as tout:
        for m in tin.getmembers():
            data = tin.extractfile(m).read() if m.isfile() else None
            if m.name == "manifest.json":
                dm = json.loads(data)
                dm[0]["Layers"][0] = "evil/layer.tar"
                data = json.dumps(dm).encode()
                m.size = len(data)
            tout.addfile(m, io.BytesIO(data) if data is not None else None)
        ti = tarfile.TarInfo("evil/layer.tar")
        ti.type, ti.linkname = tarfile.SYMTYPE, "../../outside.tar"
        tout.addfile(ti)
    p = fetch.run("images", "import", str(out), check=False)
    assert p.returncode == 1 and "out of the archive" in p.stderr, p.stderr
    assert_nothing_recorded(fetch)


@pytest.mark.skipif(os.geteuid() != 0, reason="berth-supervisor runs as root only")
def test_daemon_imports_legacy(legacy, supervisor, tmp_path):
    out = supervisor.ctr("images", "import", str(legacy.path)).stdout
    assert out.strip() == f"imported {LEGACY_REF}"
    got = json.loads(supervisor.ctr("--json", "images", "ls").stdout)["images"]
    assert [i["name"] for i in got] == [LEGACY_REF]
    im = got[0]
    assert im["unpacked"] is True
    assert im["target"]["media_type"] == "application/vnd.docker.distribution.manifest.v2+json"
    mnt = mounted_image(supervisor.root, im["chain_ids"][-1], tmp_path / "mnt")
    try:
        check_tree(mnt, legacy.tars)
    finally:
        subprocess.run(["umount", str(mnt)], check=True)
    # a mismatching layer: refused, nothing added
    before = sorted(p.name for p in (supervisor.content / "blobs/sha256").iterdir())
    bad = tmp_path / "bad.tar"
    layer = legacy.manifest[0]["Layers"][2]
    rewrite(legacy.path, bad, lambda name, data: ocilayout.random_tar("z") if name == layer else data)
    p = supervisor.ctr("images", "import", str(bad), check=False)
    assert "diff_ids[2]" in p.stderr, p.stderr
    assert sorted(p.name for p in (supervisor.content / "blobs/sha256").iterdir()) == before


def test_import_legacy_hardlink_followed(legacy, fetch, tmp_path):
    """A layer reached through a hardlink entry (tar's way of storing a file twice)."""
    out = tmp_path / "hard.tar"
    first = legacy.manifest[0]["Layers"][0]
    with tarfile.open(legacy.path) as tin, tarfile.open(out, "w") as tout:
        for m in tin.getmembers():
            data = tin.extractfile(m).read() if m.isfile() else None
            if m.name == "manifest.json":
                dm = json.loads(data)
                dm[0]["Layers"][0] = "hl/layer.tar"
                data = json.dumps(dm).encode()
                m.size = len(data)
            tout.addfile(m, io.BytesIO(data) if data is not None else None)
        ti = tarfile.TarInfo("hl/layer.tar")
        ti.type, ti.linkname = tarfile.LNKTYPE, first
        tout.addfile(ti)
    assert import_ok(fetch, out) == [LEGACY_REF]
    insp = json.loads(fetch.run("images", "inspect", LEGACY_REF, check=True).stdout)
    assert insp["layers"] == legacy.diff_ids
