"""CLI surface: --version, --help, spec."""

import json
import subprocess

import pytest


def run(argv, cwd=None):
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True,
                          timeout=30, stdin=subprocess.DEVNULL)


def test_version(runtime):
    p = run([runtime, "--version"])
    assert p.returncode == 0, p.stderr
    assert any("version" in line.lower() for line in p.stdout.splitlines()), p.stdout


def test_help(runtime):
    p = run([runtime, "--help"])
    assert p.returncode == 0, p.stderr
    out = p.stdout
    for sub in ("create", "start", "run", "kill", "delete", "state", "list", "spec"):
        assert sub in out, f"--help does not mention {sub!r}:\n{out}"


def test_spec_writes_config(runtime, tmp_path):
    p = run([runtime, "spec"], cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    cfg = json.loads((tmp_path / "config.json").read_text())
    for key in ("ociVersion", "process", "root", "mounts", "linux"):
        assert key in cfg, key
    assert isinstance(cfg["process"]["args"], list)
    assert cfg["root"]["path"] == "rootfs"
    ns = {n["type"] for n in cfg["linux"]["namespaces"]}
    assert {"pid", "network", "ipc", "uts", "mount"} <= ns, ns
    assert "user" not in ns
    dests = {m["destination"] for m in cfg["mounts"]}
    assert {"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys"} <= dests


def test_spec_refuses_to_overwrite(runtime, tmp_path):
    # runc: exit 1, 'File config.json exists. Remove it first', file untouched
    (tmp_path / "config.json").write_text('{"sentinel": true}')
    p = run([runtime, "spec"], cwd=tmp_path)
    assert p.returncode != 0
    assert "config.json" in p.stderr and "exists" in p.stderr, p.stderr
    assert json.loads((tmp_path / "config.json").read_text()) == {"sentinel": True}


def test_spec_bundle_option(runtime, tmp_path):
    d = tmp_path / "b"
    d.mkdir()
    p = run([runtime, "spec", "--bundle", str(d)])
    assert p.returncode == 0, p.stderr
    assert "ociVersion" in json.loads((d / "config.json").read_text())
    d2 = tmp_path / "b2"
    d2.mkdir()
    p = run([runtime, "spec", "-b", str(d2)])
    assert p.returncode == 0, p.stderr
    assert (d2 / "config.json").exists()


def test_spec_rootless(runtime, tmp_path):
    p = run([runtime, "spec", "--rootless"], cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    cfg = json.loads((tmp_path / "config.json").read_text())
    ns = {n["type"] for n in cfg["linux"]["namespaces"]}
    assert "user" in ns, ns
    assert "network" not in ns, ns
    assert cfg["linux"].get("uidMappings"), cfg["linux"]
    assert cfg["linux"].get("gidMappings"), cfg["linux"]
    m = cfg["linux"]["uidMappings"][0]
    assert {"containerID", "hostID", "size"} <= set(m)
    assert m["containerID"] == 0 and m["size"] == 1


@pytest.mark.ocirun_only
def test_error_prefix_on_spec_refusal(runtime, tmp_path):
    (tmp_path / "config.json").write_text("{}")
    p = run([runtime, "spec"], cwd=tmp_path)
    assert p.returncode != 0
    assert p.stderr.startswith("ocirun:"), p.stderr


@pytest.mark.ocirun_only
def test_ocirun_version_names_itself(runtime):
    p = run([runtime, "--version"])
    assert p.returncode == 0
    assert p.stdout.startswith("ocirun version"), p.stdout
