"""berth's hello-world image (packaging/hello/): the static binary, the
`docker save` tarball mkimage.py packs it into, and that other tools read
the tarball as Docker's and the OCI format: skopeo (docker-archive:,
oci-archive:), and umoci unpacking what skopeo copied to an OCI layout."""

import hashlib
import json
import os
import subprocess
import sys
import tarfile

import pytest

from conftest import MESSAGE, REPO, go_arch, need

MKIMAGE = REPO / "packaging" / "hello" / "mkimage.py"


def run(*args, **kw):
    p = subprocess.run(list(map(str, args)), capture_output=True, text=True, timeout=120, **kw)
    assert p.returncode == 0, f"{' '.join(map(str, args))} exited {p.returncode}:\n{p.stdout}\n{p.stderr}"
    return p


def member(tar, name):
    return tar.extractfile(name).read()


def test_binary_prints_the_path_and_exits_0(hello_bin):
    p = subprocess.run([str(hello_bin)], capture_output=True, text=True, timeout=10)
    assert p.returncode == 0
    assert p.stdout.startswith("\nHello from berth!\n")
    for layer in ("docker CLI", "berth-engine", "berth-supervisor", "berth-shim", "ocirun", "kernel",
                  "docker run -it --rm busybox sh"):
        assert layer in p.stdout
    assert p.stderr == ""


def test_binary_is_static_and_small(hello_bin):
    dyn = subprocess.run(["readelf", "-d", str(hello_bin)], capture_output=True, text=True)
    assert "(NEEDED)" not in dyn.stdout, dyn.stdout
    assert "INTERP" not in subprocess.run(["readelf", "-l", str(hello_bin)], capture_output=True,
                                          text=True).stdout
    assert ".symtab" not in subprocess.run(["readelf", "-S", str(hello_bin)], capture_output=True,
                                           text=True).stdout, "not stripped"
    assert hello_bin.stat().st_size < 1024 * 1024


def test_tarball_layout(hello_tar, hello_bin):
    with tarfile.open(hello_tar) as t:
        names = t.getnames()
        assert names == sorted(names)
        for m in t.getmembers():
            assert (m.mtime, m.uid, m.gid, m.uname, m.gname) == (0, 0, 0, "", ""), m.name
        assert json.loads(member(t, "oci-layout")) == {"imageLayoutVersion": "1.0.0"}

        dm = json.loads(member(t, "manifest.json"))
        assert len(dm) == 1 and dm[0]["RepoTags"] == ["hello-world:latest"]
        config = json.loads(member(t, dm[0]["Config"]))
        assert config["config"]["Cmd"] == ["/hello"]
        assert config["os"] == "linux"
        assert config["architecture"] == go_arch()

        # every blob is named by its digest
        for name in names:
            if name.startswith("blobs/sha256/") and t.getmember(name).isfile():
                assert hashlib.sha256(member(t, name)).hexdigest() == name.rsplit("/", 1)[1]

        # the OCI index points at a manifest whose config and layer are
        # the ones manifest.json names
        index = json.loads(member(t, "index.json"))
        assert len(index["manifests"]) == 1
        desc = index["manifests"][0]
        assert desc["annotations"]["io.containerd.image.name"] == "docker.io/library/hello-world:latest"
        assert desc["annotations"]["org.opencontainers.image.ref.name"] == "latest"
        manifest = json.loads(member(t, "blobs/sha256/" + desc["digest"].split(":")[1]))
        assert "blobs/sha256/" + manifest["config"]["digest"].split(":")[1] == dm[0]["Config"]
        assert ["blobs/sha256/" + d["digest"].split(":")[1] for d in manifest["layers"]] == dm[0]["Layers"]

        # the layer: /hello alone, root-owned, 0755, the built binary; its
        # diff id is its digest (uncompressed)
        layer_bytes = member(t, dm[0]["Layers"][0])
        assert config["rootfs"] == {"type": "layers",
                                    "diff_ids": ["sha256:" + hashlib.sha256(layer_bytes).hexdigest()]}
    import io
    with tarfile.open(fileobj=io.BytesIO(layer_bytes)) as lt:
        (entry,) = lt.getmembers()
        assert (entry.name, entry.mode, entry.uid, entry.gid) == ("hello", 0o755, 0, 0)
        assert lt.extractfile(entry).read() == hello_bin.read_bytes()


def test_reproducible(hello_bin, hello_tar, tmp_path):
    env = dict(os.environ)
    env.pop("SOURCE_DATE_EPOCH", None)
    outs = []
    for i in range(2):
        out = tmp_path / f"h{i}.tar"
        run(sys.executable, MKIMAGE, "--binary", hello_bin, "--output", out, env=env)
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    assert outs[0] == hello_tar.read_bytes(), "the build's tarball differs from a rebuild of the same binary"
    env["SOURCE_DATE_EPOCH"] = "1700000000"
    out = tmp_path / "epoch.tar"
    run(sys.executable, MKIMAGE, "--binary", hello_bin, "--output", out, env=env)
    with tarfile.open(out) as t:
        assert {m.mtime for m in t.getmembers()} == {1700000000}


def test_skopeo_reads_both_formats(hello_tar):
    need("skopeo")
    for transport in ("docker-archive", "oci-archive"):
        info = json.loads(run("skopeo", "inspect", f"{transport}:{hello_tar}").stdout)
        assert (info["Os"], info["Architecture"]) == ("linux", go_arch())
        assert len(info["Layers"]) == 1
    config = json.loads(run("skopeo", "inspect", "--config", f"docker-archive:{hello_tar}").stdout)
    assert config["config"]["Cmd"] == ["/hello"]


def test_copied_to_oci_and_unpacked_by_umoci_runs(hello_tar, tmp_path):
    need("skopeo")
    need("umoci")
    layout = tmp_path / "oci"
    run("skopeo", "copy", "--quiet", f"docker-archive:{hello_tar}", f"oci:{layout}:latest")
    bundle = tmp_path / "bundle"
    run("umoci", "unpack", "--rootless", "--image", f"{layout}:latest", bundle)
    spec = json.loads((bundle / "config.json").read_text())
    assert spec["process"]["args"] == ["/hello"]
    assert sorted(os.listdir(bundle / "rootfs")) == ["hello"]
    out = run(bundle / "rootfs" / "hello").stdout
    assert MESSAGE in out
