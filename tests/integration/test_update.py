"""`update` of a running container's limits, in both directions."""

import json

from conftest import cgroup_v1_mount


def _read(ctrl, b, name):
    with open(f"{cgroup_v1_mount(ctrl)}{b.cgroups_path}/{name}") as f:
        return int(f.read())


def test_update_raises_and_lowers_memory_with_swap(rt, bundle):
    def edit(c):
        c["linux"].setdefault("resources", {})["memory"] = {"limit": 64 << 20, "swap": 64 << 20}
    b = bundle(["sleep", "60"], edit=edit)
    assert rt("run", "-d", "-b", b.path, b.id).returncode == 0
    # raising: memory+swap must grow first, or the kernel refuses
    res = {"memory": {"limit": 128 << 20, "swap": 256 << 20}, "pids": {"limit": 20}}
    spec = b.path / "resources.json"
    spec.write_text(json.dumps(res))
    p = rt("update", "--resources", str(spec), b.id)
    assert p.returncode == 0, p.stderr
    assert _read("memory", b, "memory.limit_in_bytes") == 128 << 20
    assert _read("memory", b, "memory.memsw.limit_in_bytes") == 256 << 20
    assert _read("pids", b, "pids.max") == 20
    # lowering: the memory limit must shrink first
    p = rt("update", "--memory", "32m", "--memory-swap", "48m", b.id)
    assert p.returncode == 0, p.stderr
    assert _read("memory", b, "memory.limit_in_bytes") == 32 << 20
    assert _read("memory", b, "memory.memsw.limit_in_bytes") == 48 << 20
    assert rt("delete", "--force", b.id).returncode == 0
