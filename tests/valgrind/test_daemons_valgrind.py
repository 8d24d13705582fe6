"""berth-supervisor and berth-engine run clean under valgrind: an image
loaded, a container run attached, one detached, stopped and removed, then
both daemons stopped with SIGTERM — no memory error, no definite or
indirect leak.

Binaries from $VALGRIND_BUILD (a build without sanitizers, made by
tests/run-all.sh). The image is busybox-static, built here as an OCI
layout and turned into a docker-save tarball by skopeo; no registry."""

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "tests" / "lib"), str(REPO / "tests" / "supervisor")]
import berth_registry  # noqa: E402
import ocilayout  # noqa: E402

DOCKER = "/usr/bin/docker"
VG = ["valgrind", "--leak-check=full", "--show-leak-kinds=definite,indirect",
      "--errors-for-leak-kinds=definite,indirect", "--track-fds=no",
      f"--suppressions={Path(__file__).resolve().parent / 'libnftables.supp'}"]


def _build():
    b = os.environ.get("VALGRIND_BUILD")
    if not b:
        pytest.fail("VALGRIND_BUILD is not set (tests/run-all.sh sets it)", pytrace=False)
    return Path(b)


def _wait(ok, proc, what, log, timeout=60):
    deadline = time.time() + timeout
    while not ok():
        if proc.poll() is not None or time.time() > deadline:
            raise AssertionError(f"{what} did not start:\n{Path(log).read_text(errors='replace')[-3000:]}")
        time.sleep(0.1)


def _connects(path):
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(path))
        return True
    except OSError:
        return False


def test_supervisor_and_engine_clean_under_valgrind():
    for tool in ("valgrind", "skopeo"):
        if not shutil.which(tool):
            pytest.fail(f"{tool} is not installed", pytrace=False)
    if not os.access(DOCKER, os.X_OK):
        pytest.fail(f"{DOCKER} is not installed", pytrace=False)
    b = _build()
    base = Path(tempfile.mkdtemp(prefix="bvg-", dir="/tmp"))
    root, run = base / "root", base / "run"
    lay = ocilayout.Layout(str(base / "layout"))
    ocilayout.single(lay, "bb", [(ocilayout._tar(berth_registry.busybox_entries(ocilayout.BUSYBOX)), "gzip")])
    tar = base / "busybox.tar"
    subprocess.run(["skopeo", "copy", "--quiet", f"oci:{lay.path}:bb", f"oci-archive:{tar}:vg/busybox:1"],
                   check=True, capture_output=True, timeout=120)
    env = dict(os.environ, DOCKER_HOST=f"unix://{run}/engine.sock", DOCKER_CONFIG=str(base / "cli"))

    def docker(*args, check=True, timeout=180):
        p = subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=timeout, env=env)
        if check:
            assert p.returncode == 0, f"docker {' '.join(args)}: {p.stderr}"
        return p

    sup = eng = None
    try:
        sup = subprocess.Popen([*VG, f"--log-file={base}/vg-sup.%p.log", str(b / "supervisor" / "berth-supervisor"),
                                "--root", str(root), "--exec-root", str(run), "--shim",
                                str(b / "shim" / "berth-shim"), "--runtime", str(b / "ocirun" / "ocirun")],
                               stdout=open(base / "sup.log", "wb"), stderr=subprocess.STDOUT)
        _wait(lambda: (run / "supervisor.sock").exists(), sup, "supervisor", base / "sup.log", 120)
        eng = subprocess.Popen([*VG, f"--log-file={base}/vg-eng.%p.log", str(b / "engine" / "berth-engine"),
                                "--data-root", str(root), "--exec-root", str(run), "-H", f"unix://{run}/engine.sock"],
                               stdout=open(base / "eng.log", "wb"), stderr=subprocess.STDOUT)
        _wait(lambda: _connects(run / "engine.sock"), eng, "engine", base / "eng.log", 120)

        assert "Loaded image: vg/busybox:1" in docker("load", "-i", str(tar)).stdout
        p = docker("run", "--rm", "vg/busybox:1", "sh", "-c", "echo hi; exit 4", check=False)
        assert p.returncode == 4 and p.stdout == "hi\n", p.stderr
        docker("run", "-d", "--name", "vg-d", "vg/busybox:1", "sleep", "60")
        assert "vg-d" in docker("ps").stdout
        assert docker("exec", "vg-d", "echo", "x").stdout == "x\n"
        docker("stop", "-t", "1", "vg-d")
        docker("rm", "vg-d")
        docker("images")
        docker("rmi", "vg/busybox:1")

        for proc in (eng, sup):
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=120) == 0
        reports = glob.glob(str(base / "vg-*.log"))
        assert len(reports) >= 2
        for r in reports:
            text = Path(r).read_text(errors="replace")
            if "ERROR SUMMARY" not in text:
                continue  # a child that exec'd away (a worker, a shim) leaves no summary
            assert "ERROR SUMMARY: 0 errors" in text, f"{r}:\n{text[-4000:]}"
    finally:
        for proc in (eng, sup):
            if proc and proc.poll() is None:
                proc.kill()
                proc.wait()
        subprocess.run(["pkill", "-9", "-f", f"berth-shim .*{run}"], capture_output=True)
        subprocess.run(["umount", "-R", "-l", str(run)], capture_output=True)
        subprocess.run(["umount", "-R", "-l", str(root)], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
