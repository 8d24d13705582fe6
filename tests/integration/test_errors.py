"""Bad input: non-zero exit, a short error naming the cause, nothing left behind."""

import shutil

import pytest

from conftest import new_id


def assert_error(p, *keywords, max_lines=4):
    """Non-zero exit, short stderr that mentions one of the keywords."""
    assert p.returncode != 0, f"expected failure, got rc=0; stdout={p.stdout!r}"
    err = p.stderr.strip()
    assert err, "no error message on stderr"
    lines = err.splitlines()
    assert len(lines) <= max_lines, f"error message too long ({len(lines)} lines):\n{err}"
    low = err.lower()
    assert any(k.lower() in low for k in keywords), \
        f"stderr does not mention any of {keywords}:\n{err}"


def no_leftovers(leftovers, rt, cid, b=None, bundle_path=None):
    if b is not None:
        probs = leftovers(b)
    else:
        probs = leftovers(cid, f"/berth-test/{cid}", bundle_path)
    assert probs == [], probs
    assert rt("state", cid).returncode != 0, "container state exists after failure"


@pytest.mark.parametrize("cmd", ["run", "create"])
def test_missing_bundle_dir(rt, tmp_path, leftovers, cmd):
    cid = rt.new_id()
    missing = tmp_path / "no-such-bundle"
    p = rt(cmd, "-b", missing, cid)
    assert_error(p, str(missing), "no such file")
    no_leftovers(leftovers, rt, cid, bundle_path=missing)


@pytest.mark.parametrize("cmd", ["run", "create"])
def test_bundle_without_config(rt, bundle, leftovers, cmd):
    b = bundle(["true"])
    (b.path / "config.json").unlink()
    p = rt(cmd, "-b", b.path, b.id)
    assert_error(p, "config.json")
    no_leftovers(leftovers, rt, b.id, b)


@pytest.mark.parametrize("text", ["{bad", "", "[1, 2]", '{"ociVersion": "1.0.2",'])
def test_malformed_json(rt, bundle, leftovers, text):
    b = bundle(["true"])
    (b.path / "config.json").write_text(text)
    p = rt("create", "-b", b.path, b.id)
    # runc: 'invalid character ...' / 'unexpected end of JSON input' /
    # 'cannot unmarshal array into Go value of type specs.Spec'
    assert_error(p, "config.json", "json", "invalid", "unexpected", "unmarshal", "parse", "eof", "empty")
    no_leftovers(leftovers, rt, b.id, b)


@pytest.mark.parametrize("edit,keyword", [
    (lambda c: c["process"].__setitem__("args", "sh"), "args"),
    (lambda c: c["process"].__setitem__("env", "PATH=/bin"), "env"),
    (lambda c: c["process"]["user"].__setitem__("uid", "root"), "uid"),
    (lambda c: c["root"].__setitem__("readonly", "yes"), "readonly"),
    (lambda c: c.__setitem__("mounts", {"destination": "/x"}), "mounts"),
], ids=["args-string", "env-string", "uid-string", "readonly-string", "mounts-object"])
def test_wrong_types(rt, bundle, leftovers, edit, keyword):
    b = bundle(["true"], edit=edit)
    p = rt("run", "-b", b.path, b.id)
    # runc: 'json: cannot unmarshal string into Go struct field Process.process.args of type []string'
    assert_error(p, keyword)
    no_leftovers(leftovers, rt, b.id, b)


def test_missing_process_args(rt, bundle, leftovers):
    b = bundle(["true"], edit=lambda c: c["process"].__setitem__("args", []))
    p = rt("run", "-b", b.path, b.id)
    assert_error(p, "args")
    no_leftovers(leftovers, rt, b.id, b)


@pytest.mark.parametrize("cmd", [["start"], ["state"], ["kill"], ["kill", "@ID@", "KILL"],
                                 ["delete"], ["delete", "--force"]],
                         ids=["start", "state", "kill", "kill-KILL", "delete", "delete-force"])
def test_unknown_id(rt, cmd):
    cid = new_id()
    if "@ID@" in cmd:
        args = [a.replace("@ID@", cid) for a in cmd]
    else:
        args = [*cmd, cid]
    p = rt(*args)
    if cmd == ["delete", "--force"]:
        # runc: `delete --force` of an unknown id is silently successful
        # (so cleanup scripts can call it unconditionally)
        assert p.returncode == 0, p.stderr
        return
    # runc: 'container does not exist'
    assert_error(p, "does not exist", "not found", "no such container", cid)
    assert not (rt.root / cid).exists()


def test_invalid_id(rt, bundle, leftovers):
    b = bundle(["true"])
    for bad in ("../escape", "a/b", ""):
        p = rt("create", "-b", b.path, bad)
        # runc: 'invalid container ID format' / 'container id cannot be empty'
        assert_error(p, "id")
    assert not (rt.root.parent / "escape").exists()


def test_duplicate_id(rt, bundle, leftovers):
    b = bundle(["sh", "-c", "while :; do sleep 0.05; done", "@MARKER@"])
    p = rt("create", "-b", b.path, b.id)
    assert p.returncode == 0, p.stderr
    st = rt.state(b.id)
    b2 = bundle(["true"])
    p = rt("create", "-b", b2.path, b.id)
    # runc: 'container with given ID already exists'
    assert_error(p, "already exists", "exists")
    st_after = rt.state(b.id)
    assert st_after["status"] == "created"
    assert st_after["pid"] == st["pid"]
    assert st_after["bundle"] == st["bundle"]
    p = rt("run", "-b", b2.path, b.id)
    assert_error(p, "already exists", "exists")
    assert rt.state(b.id)["status"] == "created"
    # the first container is still usable
    assert rt("start", b.id).returncode == 0
    rt.wait_status(b.id, "running")
    assert rt("delete", "--force", b.id).returncode == 0
    assert leftovers(b) == []


@pytest.mark.parametrize("cmd", ["run", "create"])
@pytest.mark.parametrize("prog", ["/nonexistent", "nonexistent-cmd"])
def test_command_not_found(rt, bundle, leftovers, cmd, prog):
    b = bundle([prog])
    p = rt(cmd, "-b", b.path, b.id)
    # runc: 'exec: "/nonexistent": stat /nonexistent: no such file or directory'
    #       'exec: "nonexistent-cmd": executable file not found in $PATH'
    assert_error(p, prog)
    assert p.returncode != 0
    no_leftovers(leftovers, rt, b.id, b)


def test_command_not_executable(rt, bundle, leftovers):
    b = bundle(["/etc/passwd"])
    p = rt("run", "-b", b.path, b.id)
    assert_error(p, "/etc/passwd", "permission denied")
    no_leftovers(leftovers, rt, b.id, b)


def test_missing_rootfs(rt, bundle, leftovers):
    b = bundle(["true"])
    shutil.rmtree(b.rootfs)
    p = rt("run", "-b", b.path, b.id)
    assert_error(p, "rootfs", "no such file")
    no_leftovers(leftovers, rt, b.id, b)


def test_impossible_cpuset(rt, bundle, leftovers):
    def edit(c):
        c["linux"]["resources"]["cpu"] = {"cpus": "999"}
    b = bundle(["true"], edit=edit)
    p = rt("create", "-b", b.path, b.id)
    # runc: 'unable to apply cgroup configuration: failed to write "999":
    #        write /sys/fs/cgroup/cpuset/<path>/cpuset.cpus: numerical result out of range'
    # (plus a 'level=warning ... unable to get oom kill count' line)
    assert_error(p, "999", "cpuset")
    no_leftovers(leftovers, rt, b.id, b)


def test_bad_mount_source(rt, bundle, leftovers):
    def edit(c):
        c["mounts"].append({"destination": "/mnt", "type": "bind",
                            "source": "/nonexistent-berth-src", "options": ["rbind"]})
    b = bundle(["true"], edit=edit)
    p = rt("run", "-b", b.path, b.id)
    assert_error(p, "/nonexistent-berth-src", "/mnt")
    no_leftovers(leftovers, rt, b.id, b)


def test_unknown_subcommand(runtime):
    import subprocess
    p = subprocess.run([runtime, "no-such-subcommand"], capture_output=True, text=True,
                       timeout=30, stdin=subprocess.DEVNULL)
    assert p.returncode != 0
    assert "no-such-subcommand" in p.stderr + p.stdout


def test_missing_id_argument(rt, bundle):
    b = bundle(["true"])
    for cmd in ("create", "run", "start", "state", "kill", "delete"):
        p = rt(cmd, "-b", b.path) if cmd in ("create", "run") else rt(cmd)
        assert p.returncode != 0, cmd
        assert p.stderr.strip(), cmd


# ------------------------------------------------------------ ocirun only


def _ocirun_error_cases(rt, bundle, tmp_path):
    b = bundle(["true"])
    bad = bundle(["true"])
    (bad.path / "config.json").write_text("{bad")
    nocfg = bundle(["true"])
    (nocfg.path / "config.json").unlink()
    nf = bundle(["/nonexistent"])
    return {
        "missing-bundle": rt("run", "-b", tmp_path / "nope", rt.new_id()),
        "no-config": rt("run", "-b", nocfg.path, nocfg.id),
        "malformed": rt("run", "-b", bad.path, bad.id),
        "not-found": rt("run", "-b", nf.path, nf.id),
        "unknown-id": rt("state", new_id()),
        "kill-unknown": rt("kill", new_id(), "KILL"),
    }


@pytest.mark.ocirun_only
def test_ocirun_error_prefix(rt, bundle, tmp_path):
    for name, p in _ocirun_error_cases(rt, bundle, tmp_path).items():
        assert p.returncode != 0, name
        assert p.stderr.startswith("ocirun:") or "\nocirun:" in p.stderr, \
            f"{name}: stderr lacks 'ocirun:' prefix: {p.stderr!r}"


@pytest.mark.ocirun_only
def test_ocirun_malformed_json_names_config(rt, bundle):
    b = bundle(["true"])
    (b.path / "config.json").write_text('{"ociVersion": ')
    p = rt("create", "-b", b.path, b.id)
    assert p.returncode != 0
    assert "config.json" in p.stderr, p.stderr


@pytest.mark.ocirun_only
def test_ocirun_wrong_type_names_field(rt, bundle):
    b = bundle(["true"], edit=lambda c: c["process"].__setitem__("args", "sh"))
    p = rt("create", "-b", b.path, b.id)
    assert p.returncode != 0
    assert "process.args" in p.stderr, p.stderr


@pytest.mark.ocirun_only
def test_ocirun_unknown_id_names_id(rt):
    cid = new_id()
    p = rt("state", cid)
    assert p.returncode != 0
    assert cid in p.stderr, p.stderr
