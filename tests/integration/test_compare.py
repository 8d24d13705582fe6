"""Differential tests: same bundle, run by $PEER_RUNTIME (runc) and $OCIRUN;
stdout and exit code must be identical."""

import json
import subprocess

import pytest

from conftest import find_leftovers, new_id

CASES = {
    "id": ["id"],
    "hostname": ["hostname"],
    "pid": ["sh", "-c", "echo $$"],
    "exit3": ["sh", "-c", "exit 3"],
    "kill9-self": ["sh", "-c", "kill -9 $$"],
    "caps": ["grep", "-E", "^(Cap|NoNewPrivs)", "/proc/self/status"],
    "ls-dev": ["ls", "/dev"],
    "ulimit": ["sh", "-c", "ulimit -n"],
    "cgroup-lines": ["sh", "-c", "cat /proc/self/cgroup | wc -l"],
    "pwd": ["pwd"],
    "umask": ["sh", "-c", "umask"],
    "env": ["env"],
    "net": ["ls", "/sys/class/net"],
    "mountpoints": ["sh", "-c", "awk '{print $5}' /proc/self/mountinfo | sort"],
    "dev-modes": ["sh", "-c", "ls -ln /dev | awk '{print $1, $3, $4, $NF}'"],
}


@pytest.mark.parametrize("name", list(CASES))
def test_same_result_as_peer(rt, peer, bundle, name):
    b = bundle(CASES[name])
    peer_id = peer.track(new_id())
    pp = peer("run", "-b", b.path, peer_id)
    assert find_leftovers(peer.root, peer_id, b.cgroups_path, b.path) == [], \
        "peer runtime left something behind (test setup problem)"
    po = rt("run", "-b", b.path, b.id)
    assert (po.returncode, po.stdout) == (pp.returncode, pp.stdout), (
        f"{name}: {rt.name} rc={po.returncode} vs {peer.name} rc={pp.returncode}\n"
        f"--- {rt.name} stdout:\n{po.stdout}--- {peer.name} stdout:\n{pp.stdout}"
        f"--- {rt.name} stderr:\n{po.stderr}")


def test_spec_same_as_peer(runtime, peer_runtime, tmp_path):
    docs = []
    for i, binary in enumerate((runtime, peer_runtime)):
        d = tmp_path / f"s{i}"
        d.mkdir()
        p = subprocess.run([binary, "spec"], cwd=d, capture_output=True, text=True,
                           timeout=30, stdin=subprocess.DEVNULL)
        assert p.returncode == 0, p.stderr
        doc = json.loads((d / "config.json").read_text())
        doc.pop("ociVersion", None)
        # the default hostname names the runtime ("runc" / "ocirun"); all else must match
        doc.pop("hostname", None)
        docs.append(doc)
    assert docs[0] == docs[1]


def test_spec_rootless_same_as_peer(runtime, peer_runtime, tmp_path):
    docs = []
    for i, binary in enumerate((runtime, peer_runtime)):
        d = tmp_path / f"s{i}"
        d.mkdir()
        p = subprocess.run([binary, "spec", "--rootless"], cwd=d, capture_output=True,
                           text=True, timeout=30, stdin=subprocess.DEVNULL)
        assert p.returncode == 0, p.stderr
        doc = json.loads((d / "config.json").read_text())
        doc.pop("ociVersion", None)
        # the default hostname names the runtime ("runc" / "ocirun"); all else must match
        doc.pop("hostname", None)
        docs.append(doc)
    assert docs[0] == docs[1]
