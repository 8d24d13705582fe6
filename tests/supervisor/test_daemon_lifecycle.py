"""berth-supervisor's life: one instance per exec root and address, root
only, a clean stop on SIGTERM, and a kill -9 in the middle of a pull that
leaves only verified content and no half-recorded image; gc while a pull
runs."""

import hashlib
import json
import os
import subprocess
import time

import pytest

import ocilayout
from conftest import Supervisor

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="berth-supervisor runs as root only")

BIG = 160 << 20


@pytest.fixture(scope="module")
def big(registry, images):
    """test/big:1: busybox and one layer of 160 MiB of random bytes (zstd)."""
    img = ocilayout.single(images.layout, "big", [(ocilayout.busybox_tar(), "gzip"),
                                                  (ocilayout.random_tar("big", BIG), "zstd")])
    registry.push(images.layout, "big", "test/big:1")
    img.ref = f"{registry.host}/test/big:1"
    return img


def verified_content(sv):
    """Every blob in the store hashes to its name; returns the digests."""
    out = json.loads(sv.ctr("--json", "content", "ls").stdout)["blobs"]
    for b in out:
        p = sv.content / "blobs/sha256" / b["digest"].split(":", 1)[1]
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        assert "sha256:" + h.hexdigest() == b["digest"], f"{p} does not match its digest"
        assert p.stat().st_size == b["size"]
    return [b["digest"] for b in out]


def wait_for_ingest(sv, timeout=60):
    ingest = sv.content / "ingest"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if ingest.exists() and any((d / "data").exists() and (d / "data").stat().st_size > 0
                                   for d in ingest.iterdir()):
            return
        time.sleep(0.01)
    raise AssertionError("no download started")


def test_second_instance_refused(supervisor):
    p = subprocess.run(supervisor.args(), capture_output=True, text=True, timeout=30)
    assert p.returncode == 1
    assert "another berth-supervisor" in p.stderr and f"pid {supervisor.pid}" in p.stderr
    # another exec root, the same address
    other = Supervisor(supervisor.bin, supervisor.ctr_bin, supervisor.base / "other")
    p = subprocess.run(other.args() + ["--address", supervisor.address], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 1
    assert "already serves" in p.stderr and supervisor.address in p.stderr
    # the first one is unharmed
    supervisor.ctr("version")


def test_non_root_refused(supervisor_bin, tmp_path):
    os.chmod(tmp_path, 0o777)
    p = subprocess.run(["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", supervisor_bin,
                        "--root", str(tmp_path / "root"), "--exec-root", str(tmp_path / "run")],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1
    assert "must run as root" in p.stderr and "uid 65534" in p.stderr
    assert not (tmp_path / "run").exists()


def test_sigterm_clean(supervisor):
    run = supervisor.exec_root
    assert (run / "supervisor.sock").exists() and (run / "supervisor.pid").read_text().strip() == str(supervisor.pid)
    assert oct((run / "supervisor.sock").stat().st_mode & 0o777) == "0o600"
    assert oct((run / "supervisor-events.sock").stat().st_mode & 0o777) == "0o600"
    assert supervisor.stop() == 0
    assert not (run / "supervisor.sock").exists()
    assert not (run / "supervisor-events.sock").exists()
    assert not (run / "supervisor.pid").exists()
    assert "stopping" in supervisor.log_text()
    p = supervisor.ctr("version", check=False)
    assert "[UNAVAILABLE]" in p.stderr
    supervisor.start()
    supervisor.ctr("version")


def test_kill9_during_pull(supervisor, big):
    puller = supervisor.ctr_popen("images", "pull", big.ref)
    wait_for_ingest(supervisor)
    supervisor.kill9()
    _, err = puller.communicate(timeout=30)
    assert puller.returncode == 1 and "[UNAVAILABLE]" in err

    supervisor.start()
    verified_content(supervisor)
    images = json.loads(supervisor.ctr("--json", "images", "ls").stdout)["images"]
    assert images == [], "an image was recorded by a pull that did not finish"

    p = supervisor.ctr("--json", "images", "pull", big.ref, timeout=300)
    out = json.loads(p.stdout)
    assert out["image"]["target"]["digest"] == big.manifest
    assert out["image"]["unpacked"] is True
    stored = verified_content(supervisor)
    assert set([big.manifest, big.config, *big.layers]) <= set(stored)
    ingest = supervisor.content / "ingest"
    assert not ingest.exists() or not any(ingest.iterdir())


def test_gc_during_pull(supervisor, big):
    puller = supervisor.ctr_popen("--json", "images", "pull", big.ref)
    wait_for_ingest(supervisor)
    gc = supervisor.ctr_popen("content", "gc")
    out, err = puller.communicate(timeout=300)
    assert puller.returncode == 0, err
    gc_out, gc_err = gc.communicate(timeout=60)
    assert gc.returncode == 0, gc_err
    removed = [l.split()[1] for l in gc_out.splitlines()]
    assert not set(removed) & {big.manifest, big.config, *big.layers}
    assert set([big.manifest, big.config, *big.layers]) <= set(verified_content(supervisor))
    assert json.loads(out)["image"]["unpacked"] is True
