"""berth-shim (the daemon that outlives the others) runs clean under
valgrind: a whole container lifecycle with no memory error and no leak.

Needs a build without sanitizers where the shim is linked dynamically
(valgrind cannot intercept malloc in a static binary): $VALGRIND_BUILD, made
by tests/run-all.sh with -Dstatic_shim=false."""

import glob
import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _build():
    b = os.environ.get("VALGRIND_BUILD")
    if not b:
        pytest.fail("VALGRIND_BUILD is not set (tests/run-all.sh sets it)", pytrace=False)
    return Path(b)


def _bundle(tmp_path):
    bundle = tmp_path / "bundle"
    rootfs = bundle / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    shutil.copy("/bin/busybox", rootfs / "bin" / "busybox")
    for applet in ("sh", "echo", "sleep", "true"):
        os.symlink("busybox", rootfs / "bin" / applet)
    for d in ("proc", "sys", "dev", "tmp", "etc"):
        (rootfs / d).mkdir()
    ocirun = str(_build() / "ocirun" / "ocirun")
    subprocess.run([ocirun, "spec"], cwd=bundle, check=True)
    c = json.loads((bundle / "config.json").read_text())
    c["process"]["terminal"] = False
    c["process"]["args"] = ["sh", "-c", "for i in 1 2 3 4 5; do echo line $i; done; exit 3"]
    c["linux"]["cgroupsPath"] = f"/berth-test/vg-{uuid.uuid4().hex[:8]}"
    (bundle / "config.json").write_text(json.dumps(c))
    return bundle, ocirun


def test_shim_lifecycle_clean_under_valgrind(tmp_path):
    if not shutil.which("valgrind"):
        pytest.fail("valgrind is not installed", pytrace=False)
    build = _build()
    bundle, ocirun = _bundle(tmp_path)
    state = tmp_path / "state"
    logs = str(tmp_path / "vg.%p.log")
    p = subprocess.run(["valgrind", "--leak-check=full", "--show-leak-kinds=definite,indirect",
                        "--errors-for-leak-kinds=definite,indirect", f"--log-file={logs}",
                        str(build / "shim" / "berth-shim"), "--id", "vg1", "--bundle", str(bundle),
                        "--runtime", ocirun, "--runtime-root", str(tmp_path / "rt"),
                        "--state-dir", str(state), "--log-path", str(tmp_path / "ctr.log")],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    ctl = str(build / "shim" / "berth-shimctl")
    out = subprocess.run([ctl, "--state-dir", str(state), "--timeout", "60000", "lifecycle"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["exit_code"] == 3
    lines = (tmp_path / "ctr.log").read_text().splitlines()
    assert [json.loads(l)["log"] for l in lines] == [f"line {i}\n" for i in range(1, 6)]
    # the daemon exits after Shutdown: wait for valgrind to write its reports
    deadline = time.time() + 60
    while state.exists() and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(1)
    reports = glob.glob(str(tmp_path / "vg.*.log"))
    assert reports
    for r in reports:
        text = Path(r).read_text()
        if "ERROR SUMMARY" not in text:
            continue  # a process that exec'd away (none expected) leaves no summary
        assert "ERROR SUMMARY: 0 errors" in text, text[-3000:]
