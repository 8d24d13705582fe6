"""OCI lifecycle hooks: each stage runs at its moment, with the container
state on stdin, its args and env, and the failure rules of the spec."""

import json
import os

import pytest

from conftest import run_container


def _hook(log, name, extra=""):
    # host /bin/sh: the path resolves in the runtime's namespace
    return {"path": "/bin/sh",
            "args": ["sh", "-c", f"cat > {log}/{name}.json; echo {name} >> {log}/order; {extra}"],
            "env": [f"HOOK_STAGE={name}"]}


def _bundle_with_hooks(bundle, tmp_path, args, **extra):
    log = tmp_path / "hooklog"
    log.mkdir()

    def edit(c):
        c["hooks"] = {
            "prestart": [_hook(log, "prestart", 'echo "$HOOK_STAGE" > ' + str(log) + "/env")],
            "createRuntime": [_hook(log, "createRuntime")],
            "createContainer": [_hook(log, "createContainer")],
            # startContainer runs inside the container: its path is the container's
            "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "cat > /start.json"]}],
            "poststart": [_hook(log, "poststart")],
            "poststop": [_hook(log, "poststop")],
        }
        c["hooks"].update(extra)
    b = bundle(args, edit=edit)
    return b, log


def test_all_stages_in_order_with_state(rt, bundle, tmp_path):
    b, log = _bundle_with_hooks(bundle, tmp_path, ["sh", "-c", "cat /start.json"])
    p = run_container(rt, b)
    assert p.returncode == 0, p.stderr
    order = (log / "order").read_text().split()
    assert order == ["prestart", "createRuntime", "createContainer", "poststart", "poststop"], order
    for stage in ("prestart", "createRuntime", "createContainer"):
        st = json.loads((log / f"{stage}.json").read_text())
        assert st["id"] == b.id and st["status"] == "creating" and st["pid"] > 0
        assert os.path.realpath(st["bundle"]) == os.path.realpath(b.path)
    if os.path.basename(rt.binary) == "ocirun":
        # runc 1.1 reports "created" here; the spec has poststart after the
        # process started, so ocirun says "running"
        assert json.loads((log / "poststart.json").read_text())["status"] == "running"
    assert json.loads((log / "poststop.json").read_text())["status"] == "stopped"
    # startContainer ran in the container, before the program
    assert json.loads(p.stdout)["id"] == b.id
    assert (log / "env").read_text().strip() == "prestart"


def test_prestart_runs_in_runtime_ns_with_container_pid(rt, bundle, tmp_path):
    """dockerd's networking hook relies on this: the pid in the state names
    a process whose /proc/<pid>/ns/net is the container's network namespace."""
    log = tmp_path / "ns"
    log.mkdir()

    def edit(c):
        c["hooks"] = {"prestart": [{"path": "/bin/sh", "args": [
            "sh", "-c",
            f"pid=$(sed 's/.*\"pid\":\\([0-9]*\\).*/\\1/'); readlink /proc/$pid/ns/net > {log}/net; "
            f"readlink /proc/self/ns/net > {log}/self"]}]}
    b = bundle(["readlink", "/proc/self/ns/net"], edit=edit)
    p = run_container(rt, b)
    assert p.returncode == 0, p.stderr
    container_net = (log / "net").read_text().strip()
    assert container_net == p.stdout.strip()
    assert (log / "self").read_text().strip() != container_net


@pytest.mark.parametrize("stage", ["prestart", "createRuntime", "createContainer"])
def test_failing_create_hook_fails_create(rt, bundle, tmp_path, stage, leftovers):
    def edit(c):
        c["hooks"] = {stage: [{"path": "/bin/sh", "args": ["sh", "-c", "echo hook-said-no >&2; exit 3"]}]}
    b = bundle(["true", "@MARKER@"], edit=edit)
    p = rt("create", "-b", b.path, b.id)
    assert p.returncode != 0
    if os.path.basename(rt.binary) == "ocirun":
        assert stage in p.stderr and "hook-said-no" in p.stderr and "exit status 3" in p.stderr
    assert leftovers(b) == []


@pytest.mark.ocirun_only
def test_failing_poststart_is_a_warning(rt, bundle, tmp_path):
    """runtime-spec: a failing poststart hook is logged, the rest still run."""
    log = tmp_path / "ps"
    log.mkdir()

    def edit(c):
        c["hooks"] = {"poststart": [
            {"path": "/bin/sh", "args": ["sh", "-c", "exit 1"]},
            {"path": "/bin/sh", "args": ["sh", "-c", f"touch {log}/second"]},
        ]}
    b = bundle(["true"], edit=edit)
    p = run_container(rt, b)
    assert p.returncode == 0, p.stderr
    assert (log / "second").exists()
    assert "poststart" in p.stderr


@pytest.mark.ocirun_only
def test_hook_timeout(rt, bundle, leftovers):
    def edit(c):
        c["hooks"] = {"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "10"], "timeout": 1}]}
    b = bundle(["true", "@MARKER@"], edit=edit)
    p = rt("create", "-b", b.path, b.id, timeout=8)
    assert p.returncode != 0
    assert "timed out" in p.stderr
    assert leftovers(b) == []


def test_invalid_hook_rejected(rt, bundle, leftovers):
    def edit(c):
        c["hooks"] = {"prestart": [{"path": "relative/path"}]}
    b = bundle(["true", "@MARKER@"], edit=edit)
    p = rt("create", "-b", b.path, b.id)
    assert p.returncode != 0
    assert leftovers(b) == []
