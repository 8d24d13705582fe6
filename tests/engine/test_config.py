"""berth-engine's configuration file (docs/configuration.md): keys the
engine reads, options over keys, clear errors."""

import grp
import json
import os
import stat
import subprocess
import time

import pytest


@pytest.fixture(autouse=True)
def alone(stack):
    """One engine at a time: engines share the host's bridge and nftables
    table (as two dockerds would), so the stack's engine steps aside."""
    stack.stop(stack.eng)
    yield
    stack.start_engine()


def _engine(stack, tmp_path, cfg, *args, wait=True):
    (tmp_path / "engine.json").write_text(json.dumps(cfg))
    sock = tmp_path / "e.sock"
    p = subprocess.Popen([stack.eng_bin, "--config-file", str(tmp_path / "engine.json"), "--exec-root",
                          str(stack.run), "-H", f"unix://{sock}", "--pid-file", str(tmp_path / "e.pid"), *args],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if wait:
        deadline = time.time() + 20
        while not sock.exists():
            assert p.poll() is None and time.time() < deadline, p.stdout.read()
            time.sleep(0.05)
    return p, f"unix://{sock}"


def _stop(p):
    p.terminate()
    return p.wait(timeout=30)


def test_unknown_key_refused(stack, tmp_path):
    p, _ = _engine(stack, tmp_path, {"insecure-registry": []}, wait=False)
    assert p.wait(timeout=20) == 2
    assert 'unknown key "insecure-registry"' in p.stdout.read()


def test_missing_explicit_file_refused(stack, tmp_path):
    p = subprocess.run([stack.eng_bin, "--config-file", str(tmp_path / "nope.json")], capture_output=True,
                       text=True, timeout=20)
    assert p.returncode == 2 and "nope.json" in p.stderr


def test_keys_and_runtimes(stack, tmp_path):
    cfg = {"data-root": str(tmp_path / "root"), "log-level": "debug", "live-restore": True,
           "insecure-registries": ["reg.example:5000"], "default-runtime": "runc",
           "runtimes": {"runc": {"path": "/usr/sbin/runc"}, "ocirun": {"path": stack.ocirun}}}
    p, host = _engine(stack, tmp_path, cfg)
    try:
        out = stack.docker("-H", host, "info", "--format", "{{json .}}").stdout
        info = json.loads(out)
        assert "DockerRootDir" in info, out
        assert info["DockerRootDir"] == str(tmp_path / "root")
        assert info["DefaultRuntime"] == "runc" and "ocirun" in info["Runtimes"]
        assert info["RegistryConfig"]["IndexConfigs"]["reg.example:5000"]["Secure"] is False
        assert info["Debug"] is True
        stack.docker("-H", host, "pull", stack.image, timeout=120)
        # the default runtime is runc: its state dir names it
        out = stack.docker("-H", host, "run", "--rm", stack.image, "echo", "via-runc").stdout
        assert out == "via-runc\n"
        assert (stack.run / "runtime" / "runc").is_dir()
        out = stack.docker("-H", host, "run", "--rm", "--runtime", "ocirun", stack.image, "echo", "via-ocirun")
        assert out.stdout == "via-ocirun\n"
        bad = stack.docker("-H", host, "run", "--rm", "--runtime", "nosuch", stack.image, "true", check=False)
        assert bad.returncode != 0 and "Unknown runtime specified nosuch" in bad.stderr
    finally:
        assert _stop(p) == 0


def test_socket_mode_and_group(stack, tmp_path):
    """The unix socket is 0660 and belongs to the berth group when
    /etc/group has one, as dockerd's belongs to docker."""
    added = False
    try:
        grp.getgrnam("berth")
    except KeyError:
        subprocess.run(["groupadd", "--system", "berth"], check=True)
        added = True
    try:
        p, host = _engine(stack, tmp_path, {"data-root": str(tmp_path / "root")})
        try:
            st = os.stat(host[len("unix://"):])
            assert stat.S_IMODE(st.st_mode) == 0o660
            assert st.st_gid == grp.getgrnam("berth").gr_gid
        finally:
            assert _stop(p) == 0
    finally:
        if added:
            subprocess.run(["groupdel", "berth"], check=True)
