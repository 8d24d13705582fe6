"""berth-fetch images export|import: docker save / OCI layout tarballs.
Round trips through a fresh root, the dual-format tarball of
tests/dropin/mkimage.py, Docker's manifest.json alone, corrupt and
inconsistent archives refused with nothing recorded, and skopeo reading
what we export."""

import io
import json
import os
import shutil
import subprocess
import tarfile

import pytest

from conftest import REPO, Fetch

MKIMAGE = REPO / "tests/dropin/mkimage.py"
MK_REPO = "localhost/berth-busybox"


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
