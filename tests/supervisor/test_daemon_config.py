"""berth-supervisor reads the shared configuration file
(docs/configuration.md): the keys it uses, options over keys, errors."""

import json
import subprocess
import tempfile
import time
from pathlib import Path


def _run(supervisor_bin, cfg, *args, timeout=20):
    d = Path(tempfile.mkdtemp(prefix="bsc-", dir="/tmp"))
    (d / "engine.json").write_text(json.dumps(cfg))
    return d, subprocess.Popen([supervisor_bin, "--config-file", str(d / "engine.json"), *args],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_unknown_key_and_missing_file(supervisor_bin):
    d, p = _run(supervisor_bin, {"data_root": "/x"})
    assert p.wait(timeout=20) == 2
    assert 'unknown key "data_root"' in p.stdout.read()
    p = subprocess.run([supervisor_bin, "--config-file", "/nonexistent/engine.json"], capture_output=True, text=True,
                       timeout=20)
    assert p.returncode == 2 and "/nonexistent/engine.json" in p.stderr


def test_roots_from_the_file_and_options_over_them(supervisor_bin, ctr_bin):
    base = Path(tempfile.mkdtemp(prefix="bsc-", dir="/tmp"))
    cfg = {"data-root": str(base / "data"), "exec-root": str(base / "run"), "log-level": "debug",
           "insecure-registries": ["reg.example:5000"]}
    d, p = _run(supervisor_bin, cfg)
    try:
        deadline = time.time() + 20
        while not (base / "run" / "supervisor.sock").exists():
            assert p.poll() is None and time.time() < deadline, p.stdout.read()
            time.sleep(0.05)
        v = json.loads(subprocess.run([ctr_bin, "--address", f"ipc://{base}/run/supervisor.sock", "--json", "version"],
                                      capture_output=True, text=True, timeout=20, check=True).stdout)
        assert v["root"] == str(base / "data" / "supervisor")
    finally:
        p.terminate()
        assert p.wait(timeout=20) == 0
    # --root wins over data-root
    d2, p = _run(supervisor_bin, cfg, "--root", str(base / "other"))
    try:
        deadline = time.time() + 20
        while not (base / "run" / "supervisor.sock").exists():
            assert p.poll() is None and time.time() < deadline, p.stdout.read()
            time.sleep(0.05)
        v = json.loads(subprocess.run([ctr_bin, "--address", f"ipc://{base}/run/supervisor.sock", "--json", "version"],
                                      capture_output=True, text=True, timeout=20, check=True).stdout)
        assert v["root"] == str(base / "other" / "supervisor")
    finally:
        p.terminate()
        assert p.wait(timeout=20) == 0
