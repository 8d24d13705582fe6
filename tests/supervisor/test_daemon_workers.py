"""berth-supervisor's worker processes: the daemon links neither libcurl nor
libarchive, and runs every pull, import and export as a `berth-fetch
worker` child. A worker that dies gives a clear error and records nothing;
a stopping daemon kills its workers; --registry-mirror and
--max-concurrent-downloads reach the worker; progress events still tell
the config from the layers (kind)."""

import json
import os
import subprocess
import tempfile
import shutil
import time

import pytest

import ocilayout
from conftest import Supervisor
from test_daemon_images import check_pulled, pull, read_events, start_events
from test_daemon_lifecycle import BIG, verified_content

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="berth-supervisor runs as root only")

HEAVY = ("libcurl", "libarchive", "libgnutls", "libkrb5", "libxml2", "libicu", "libzstd", "libz.so")


def children(pid):
    """Pids of pid's children (every thread's)."""
    out = []
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{t}/children") as f:
                out += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return out


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def wait_for_worker(sv, mode, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        for c in children(sv.pid):
            args = cmdline(c)
            if b"worker" in args and mode.encode() in args:
                return c
        time.sleep(0.005)
    raise AssertionError(f"no `worker {mode}` child of the daemon appeared")


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


@pytest.fixture(scope="module")
def big(registry, images):
    """test/workers-big:1: busybox and one layer of 160 MiB of random bytes,
    a pull that lasts long enough to catch its worker."""
    img = ocilayout.single(images.layout, "workers-big", [(ocilayout.busybox_tar(), "gzip"),
                                                          (ocilayout.random_tar("workers-big", BIG), "zstd")])
    registry.push(images.layout, "workers-big", "test/workers-big:1")
    img.ref = f"{registry.host}/test/workers-big:1"
    return img


@pytest.fixture
def mirrored(supervisor_bin, ctr_bin, registry):
    base = tempfile.mkdtemp(prefix="bsv-", dir="/tmp")
    sv = Supervisor(supervisor_bin, ctr_bin, base,
                    extra=["--registry-mirror", f"http://{registry.host}", "--max-concurrent-downloads", "1"])
    sv.start()
    yield sv
    rc = sv.stop()
    assert rc == 0, f"berth-supervisor exited {rc} on SIGTERM:\n{sv.log_text()}"
    sv.check_sanitizers()
    subprocess.run(["umount", "-R", "-q", str(sv.root)], capture_output=True)
    shutil.rmtree(base, ignore_errors=True)


def test_daemon_links_no_heavy_libraries(supervisor_bin, fetch_bin):
    libs = subprocess.run(["ldd", supervisor_bin], capture_output=True, text=True, check=True).stdout
    for lib in HEAVY:
        assert lib not in libs, f"berth-supervisor links {lib}:\n{libs}"
    # the worker has them
    libs = subprocess.run(["ldd", fetch_bin], capture_output=True, text=True, check=True).stdout
    assert "libcurl" in libs and "libarchive" in libs


def test_pull_runs_in_a_worker(supervisor, registry, images):
    ref = f"{registry.host}/test/multi:latest"
    out = pull(supervisor, ref)
    check_pulled(supervisor, out, images.multi, ref)
    assert "worker pull: pid" in supervisor.log_text()
    assert not children(supervisor.pid), "a worker outlived its pull"


def test_worker_killed_is_a_clear_error(supervisor, big):
    puller = supervisor.ctr_popen("images", "pull", big.ref)
    worker = wait_for_worker(supervisor, "pull")
    os.kill(worker, 9)
    _, err = puller.communicate(timeout=60)
    assert puller.returncode == 1
    assert err.startswith("berth-ctr: supervisor: worker pull"), err
    assert "killed by signal 9" in err and "[INTERNAL]" in err
    images = json.loads(supervisor.ctr("--json", "images", "ls").stdout)["images"]
    assert images == [], "a pull whose worker died recorded an image"
    verified_content(supervisor)
    # the daemon is fine and the pull can be repeated
    out = pull(supervisor, big.ref)
    assert out["image"]["target"]["digest"] == big.manifest and out["image"]["unpacked"] is True


def test_sigterm_kills_the_worker(supervisor, big):
    puller = supervisor.ctr_popen("images", "pull", big.ref)
    worker = wait_for_worker(supervisor, "pull")
    t = time.time()
    assert supervisor.stop() == 0
    assert time.time() - t < 4, "the stop waited for the pull"
    _, err = puller.communicate(timeout=30)
    assert puller.returncode == 1 and "[UNAVAILABLE]" in err, err
    deadline = time.time() + 10
    while alive(worker) and time.time() < deadline:
        time.sleep(0.05)
    assert not alive(worker), "the worker outlived the daemon"
    supervisor.start()
    assert json.loads(supervisor.ctr("--json", "images", "ls").stdout)["images"] == []
    verified_content(supervisor)


def test_registry_mirror(mirrored, registry, images):
    # docker.io/library/mirrortest:1 exists only on the loopback registry,
    # which the daemon knows as a mirror; docker.io itself is not reachable
    registry.push(images.layout, "multi", "library/mirrortest:1")
    out = pull(mirrored, "mirrortest:1")
    check_pulled(mirrored, out, images.multi, "docker.io/library/mirrortest:1")
    assert "GET /v2/library/mirrortest/manifests/1 " in registry.log_text()


def test_bad_daemon_options(supervisor_bin, tmp_path):
    for args in (["--max-concurrent-downloads", "0"], ["--max-concurrent-downloads", "x"],
                 ["--registry-mirror", "mirror.example"]):
        p = subprocess.run([supervisor_bin, "--root", str(tmp_path / "r"), "--exec-root", str(tmp_path / "x"), *args],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 2, (args, p.stderr)
        assert args[0] in p.stderr


def test_progress_events_carry_kind(supervisor, registry, images):
    ref = f"{registry.host}/test/multi:latest"
    ev = start_events(supervisor, "--topic", "/images/pull")
    out = pull(supervisor, ref)
    got = read_events(ev, lambda e: e.get("pull", {}).get("message") == "done")
    pulls = [e["pull"] for e in got if e["pull"]["job_id"] == out["job_id"]]
    kinds = {}
    for p in pulls:
        if p.get("digest"):
            kinds.setdefault(p["digest"], set()).add(p.get("kind"))
    assert kinds[images.multi.config] == {"config"}, kinds
    for layer in images.multi.layers:
        assert kinds[layer] == {"layer"}, kinds
        sts = [p["status"] for p in pulls if p.get("digest") == layer]
        assert "DOWNLOADING" in sts or "DOWNLOADED" in sts, sts
        assert sts[-1] == "DONE", sts


def test_import_export_through_workers(supervisor, registry, images, tmp_path):
    ref = f"{registry.host}/test/multi:latest"
    pull(supervisor, ref)
    out = tmp_path / "multi.tar"
    supervisor.ctr("images", "export", str(out), ref)
    assert out.stat().st_size > 0
    supervisor.ctr("images", "rm", "--sync", ref)
    p = supervisor.ctr("--json", "images", "import", str(out))
    imported = json.loads(p.stdout)["images"]
    assert [i["name"] for i in imported] == [ref] and imported[0]["unpacked"] is True
    log = supervisor.log_text()
    assert "worker export: pid" in log and "worker import: pid" in log
    # a worker's error comes back with its code
    p = supervisor.ctr("images", "import", str(tmp_path / "missing.tar"), check=False)
    assert p.stderr.startswith("berth-ctr: supervisor: ") and "missing.tar" in p.stderr
    p = supervisor.ctr("images", "export", "--format", "tar", str(tmp_path / "x.tar"), ref, check=False)
    assert "[INVALID_ARGUMENT]" in p.stderr


def mount_fstype(path):
    """The fs type of the mount on path, from /proc/self/mountinfo."""
    for line in open("/proc/self/mountinfo"):
        f = line.split()
        if f[4] == str(path):
            return f[f.index("-") + 1]
    return None


def test_snapshotter_copy_option(copy_task_supervisor, task_image):
    """--snapshotter copy: the root is made in copy mode, the pull's worker
    unpacks in it (given the mode on its command line, against
    $BERTH_SNAPSHOTTER=overlay), a container's rootfs is a bind mount of a
    full copy, and its tasks run."""
    sv = copy_task_supervisor
    out = pull(sv, task_image)
    assert out["image"]["unpacked"] is True
    meta = json.loads((sv.root / "supervisor/meta/snapshots.json").read_text())
    assert meta["mode"] == "copy"
    assert "snapshotter copy" in sv.log_text()
    for s in meta["snapshots"].values():
        snap = sv.root / "supervisor/snapshots" / str(s["id"])
        assert (snap / "fs/bin/busybox").is_file() and not (snap / "work").exists()
    p = sv.ctr("run", "--rm", task_image, "copy1", "sh", "-c",
               "echo hi > /tmp/x; cat /tmp/x; grep -c alice /etc/group", check=None)
    assert p.returncode == 0 and p.stdout == "hi\n2\n", p.stderr
    sv.ctr("run", "-d", task_image, "copy2", "sh", "-c", "trap 'exit 5' TERM; while true; do sleep 0.1; done")
    rootfs = sv.exec_root / "bundles" / "copy2" / "rootfs"
    assert mount_fstype(rootfs) not in (None, "overlay"), mount_fstype(rootfs)
    p = sv.ctr("tasks", "exec", "--exec-id", "e1", "copy2", "sh", "-c", "ls /bin/busybox", check=None)
    assert p.returncode == 0 and p.stdout == "/bin/busybox\n", p.stderr
    sv.ctr("tasks", "kill", "copy2")
    assert sv.ctr("tasks", "wait", "copy2", check=None).stdout.strip() == "5"
    sv.ctr("tasks", "rm", "copy2")
    sv.ctr("containers", "rm", "copy2")
    # the root is copy now: a daemon asking for overlay on it is refused
    sv.stop()
    sv.extra = ["--snapshotter", "overlay"]
    with pytest.raises(RuntimeError, match="copy snapshotter"):
        sv.start(timeout=10)


def test_fetch_snapshotter_option(fetch_bin, registry, images, tmp_path, monkeypatch):
    """berth-fetch --snapshotter wins over $BERTH_SNAPSHOTTER; a bad value is a usage error."""
    monkeypatch.setenv("BERTH_SNAPSHOTTER", "overlay")
    root = tmp_path / "root"
    args = [fetch_bin, "--root", str(root)]
    p = subprocess.run([*args, "--snapshotter", "copy", "unpack", f"{registry.host}/test/multi:latest"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert json.loads((root / "supervisor/meta/snapshots.json").read_text())["mode"] == "copy"
    top = [line.split(" ", 1)[1] for line in p.stdout.splitlines() if line.startswith("path ")][0]
    assert os.path.isfile(os.path.join(top, "bin/busybox"))
    p = subprocess.run([*args, "--snapshotter", "zfs", "snapshots", "ls"], capture_output=True, text=True)
    assert p.returncode == 2 and "zfs" in p.stderr
