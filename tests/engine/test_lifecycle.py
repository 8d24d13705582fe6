"""Container and exec lifecycle details a Docker user sees: exec events and
ExecIDs, the storage driver's name, what rmi leaves on disk, prune
filters, removals purged behind the answer."""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

import berth_registry
import ocilayout


def _events(stack, since, *filters):
    until = time.time() + 0.5
    args = ["events", "--since", str(int(since)), "--until", f"{until:.3f}", "--format", "{{json .}}"]
    for f in filters:
        args += ["--filter", f]
    out = stack.docker(*args, timeout=30).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_exec_events_and_exec_ids(stack, name):
    docker = pytest.importorskip("docker")
    t0 = time.time()
    cid = stack.docker("run", "-d", "--name", name, stack.image, "sleep", "60").stdout.strip()
    assert stack.inspect(name)["ExecIDs"] is None
    client = docker.APIClient(base_url=stack.host, version="auto")
    ex = client.exec_create(cid, ["sleep", "2"])["Id"]
    client.exec_start(ex, detach=True)
    # a running exec is listed, as dockerd lists it
    assert stack.inspect(name)["ExecIDs"] == [ex]
    deadline = time.time() + 20
    while client.exec_inspect(ex)["Running"] and time.time() < deadline:
        time.sleep(0.1)
    assert client.exec_inspect(ex)["ExitCode"] == 0
    assert stack.inspect(name)["ExecIDs"] is None
    # the CLI's own exec, with a non-zero exit
    assert stack.docker("exec", name, "sh", "-c", "exit 3", check=False).returncode == 3

    evs = _events(stack, t0, f"container={cid}")
    actions = [e["Action"] for e in evs]
    assert "exec_create: sleep 2" in actions and "exec_start: sleep 2" in actions, actions
    assert "exec_create: sh -c exit 3" in actions, actions
    dies = [e for e in evs if e["Action"] == "exec_die"]
    assert sorted(d["Actor"]["Attributes"]["exitCode"] for d in dies) == ["0", "3"], dies
    assert {d["Actor"]["Attributes"]["execID"] for d in dies} >= {ex}
    for e in evs:
        if e["Action"].startswith("exec_"):
            assert e["Type"] == "container" and e["Actor"]["Attributes"]["name"] == name, e
    # event=exec_create matches "exec_create: CMD", as with dockerd
    only = [e["Action"] for e in _events(stack, t0, f"container={cid}", "event=exec_create")]
    assert only and all(a.startswith("exec_create: ") for a in only), only
    stack.docker("rm", "-f", name)


def test_storage_driver_follows_the_snapshotter(stack, registry):
    """/info's Driver and a container's GraphDriver name the supervisor's
    snapshotter as Docker would: overlay2, or vfs for the copying one."""
    from conftest import Stack, _cleanup

    assert json.loads(stack.docker("info", "--format", "{{json .Driver}}").stdout) == "overlay2"
    # engines share the host's bridge and nftables table: one at a time
    stack.stop(stack.eng)
    other = Stack(tempfile.mkdtemp(prefix="bc-", dir="/tmp"))
    try:
        other.sup = other._spawn([other.sup_bin, "--root", str(other.root), "--exec-root", str(other.run),
                                  "--shim", other.shim_bin, "--runtime", other.ocirun, "--snapshotter", "copy"],
                                 "supervisor.log")
        other._wait(lambda: (other.run / "supervisor.sock").exists(), other.sup, "supervisor")
        other.start_engine()
        assert json.loads(other.docker("info", "--format", "{{json .Driver}}").stdout) == "vfs"
        other.docker("pull", registry.image, timeout=120)
        out = other.docker("run", "--name", "vfs1", "--network", "none", registry.image, "echo", "copied").stdout
        assert out == "copied\n"
        assert other.inspect("vfs1")["GraphDriver"]["Name"] == "vfs"
        other.docker("rm", "vfs1")
    finally:
        assert other.stop(other.eng) == 0, other.log("engine")[-3000:]
        assert other.stop(other.sup) == 0, other.log("supervisor")[-3000:]
        _cleanup(other)
        for w in ("engine", "supervisor"):
            for mark in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
                assert mark not in other.log(w), other.log(w)[-4000:]
        shutil.rmtree(other.base, ignore_errors=True)
        stack.start_engine()


def _snapshots(stack):
    ctr = os.path.join(os.path.dirname(stack.sup_bin), "berth-ctr")
    out = subprocess.run([ctr, "--address", f"ipc://{stack.run}/supervisor.sock", "--json", "snapshots", "ls"],
                         capture_output=True, text=True, check=True).stdout
    return {s["key"]: s for s in json.loads(out).get("snapshots", [])}


def test_rmi_removes_unused_snapshots(stack, registry, name):
    """docker rmi takes the image's layers off the disk, but not the layers
    another image or a container still stands on."""
    lay = ocilayout.Layout(str(registry.dir / "gc-layout"))
    base = ocilayout._tar(berth_registry.busybox_entries(ocilayout.BUSYBOX))
    ocilayout.single(lay, "gcimg", [(base, "gzip"), (ocilayout.random_tar("gc", 65536), "gzip")])
    registry.push(lay, "gcimg", "gcimg:latest")
    ref = f"{registry.host}/gcimg:latest"
    before = _snapshots(stack)
    stack.docker("pull", ref, timeout=120)
    added = set(_snapshots(stack)) - set(before)
    assert len(added) == 1, added  # the base layer is busybox's, shared
    top = added.pop()
    # a container on it keeps the layers while it exists
    stack.docker("create", "--name", name, ref, "true")
    stack.docker("rmi", "-f", ref)
    assert top in _snapshots(stack)
    stack.docker("rm", name)
    stack.docker("image", "prune", "-f")
    after = _snapshots(stack)
    assert top not in after, after
    assert set(before) <= set(after)  # busybox's own layers stay
    stack.docker("run", "--rm", "--network", "none", stack.image, "true")


def test_container_prune_filters(stack, name):
    old = stack.docker("create", "--name", name + "-old", "--label", "keep=no", stack.image, "true").stdout.strip()
    time.sleep(1.2)
    cut = time.time()
    time.sleep(0.2)
    new = stack.docker("create", "--name", name + "-new", "--label", "keep=no", stack.image, "true").stdout.strip()
    kept = stack.docker("create", "--name", name + "-kept", "--label", "keep=yes", stack.image, "true").stdout.strip()
    # until: only what was created before the time
    out = stack.docker("container", "prune", "-f", "--filter", f"until={cut:.3f}", "--filter", "label=keep=no").stdout
    assert old in out and new not in out and kept not in out, out
    # label!=: everything but the kept one
    out = stack.docker("container", "prune", "-f", "--filter", "label!=keep=yes").stdout
    assert new in out and kept not in out, out
    # a duration before now, as dockerd reads it: nothing that young goes
    out = stack.docker("container", "prune", "-f", "--filter", "until=10m").stdout
    assert kept not in out
    p = stack.docker("container", "prune", "-f", "--filter", "bogus=1", check=False)
    assert p.returncode != 0 and "Invalid filter 'bogus'" in p.stderr, p.stderr
    p = stack.docker("container", "prune", "-f", "--filter", "until=yesterday", check=False)
    assert p.returncode != 0 and "invalid until filter" in p.stderr, p.stderr
    stack.docker("rm", kept)


def test_image_prune_all_keeps_used_images(stack, registry, name):
    lay = ocilayout.Layout(str(registry.dir / "prune-layout"))
    base = ocilayout._tar(berth_registry.busybox_entries(ocilayout.BUSYBOX))
    for tag in ("prune-a", "prune-b"):
        ocilayout.single(lay, tag, [(base, "gzip"), (ocilayout.random_tar(tag, 4096), "gzip")])
        registry.push(lay, tag, f"{tag}:latest")
        stack.docker("pull", f"{registry.host}/{tag}:latest", timeout=120)
    a, b = f"{registry.host}/prune-a:latest", f"{registry.host}/prune-b:latest"
    stack.docker("create", "--name", name, b, "true")
    # the default (dangling only) takes no named image
    stack.docker("image", "prune", "-f")
    assert stack.docker("image", "inspect", a, check=False).returncode == 0
    # -a with a label filter nothing has: nothing goes
    stack.docker("image", "prune", "-af", "--filter", "label=nobody=here")
    assert stack.docker("image", "inspect", a, check=False).returncode == 0
    out = stack.docker("image", "prune", "-af").stdout
    assert "untagged: " + a in out and "deleted: sha256:" in out, out
    assert stack.docker("image", "inspect", a, check=False).returncode != 0
    # the image a container uses stays
    assert stack.docker("image", "inspect", b, check=False).returncode == 0
    stack.docker("rm", name)
    stack.docker("rmi", b)
    # -a may have taken the session's busybox too: the other tests need it
    stack.docker("pull", stack.image, timeout=120)


def test_system_prune_and_security_options(stack, name):
    stack.docker("create", "--name", name, stack.image, "true")
    out = stack.docker("system", "prune", "-f").stdout
    assert "Total reclaimed space" in out, out
    assert stack.docker("inspect", name, check=False).returncode != 0
    info = json.loads(stack.docker("info", "--format", "{{json .}}").stdout)
    assert "name=seccomp,profile=default" in info["SecurityOptions"], info["SecurityOptions"]


def _supervisor_containers(stack):
    ctr = os.path.join(os.path.dirname(stack.sup_bin), "berth-ctr")
    out = subprocess.run([ctr, "--address", f"ipc://{stack.run}/supervisor.sock", "--json", "containers", "ls"],
                         capture_output=True, text=True, check=True).stdout
    return {c["id"] for c in json.loads(out).get("containers", [])}


def _until(pred, timeout=10):
    deadline = time.time() + timeout
    while not pred():
        if time.time() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_removal_is_seen_at_once_and_purged_behind(stack, name):
    """docker rm answers once the container is gone for every client (name
    free, 404, a destroy event); its supervisor container, snapshot and
    directory go right behind it (docs/decisions.md), and rmi waits for
    that."""
    cid = stack.docker("run", "-d", "--name", name, "--network", "none", stack.image, "sleep", "60").stdout.strip()
    stack.docker("rm", "-f", name)
    assert stack.docker("inspect", name, check=False).returncode != 0
    # the name is free at once
    again = stack.docker("create", "--name", name, "--network", "none", stack.image, "true").stdout.strip()
    assert again != cid
    assert _until(lambda: cid not in _supervisor_containers(stack))
    ctrs = stack.root / "engine" / "containers"
    assert _until(lambda: not (ctrs / cid).exists() and not (ctrs / f".removed-{cid}").exists())
    stack.docker("rm", name)
    # --rm: gone from the supervisor too, shortly after the run returns
    out = stack.docker("run", "--rm", "--network", "none", stack.image, "echo", "hi").stdout
    assert out == "hi\n"
    assert _until(lambda: not [d for d in os.listdir(ctrs) if d.startswith(".removed-")])


def test_a_purge_the_engine_did_not_finish_is_done_at_its_next_start(stack, name):
    """A kill -9 of the engine between a removal and its purge: the next
    engine finishes it (the supervisor's container and the directory go)."""
    cid = stack.docker("create", "--name", name, "--network", "none", stack.image, "true").stdout.strip()
    ctrs = stack.root / "engine" / "containers"
    # the supervisor cannot answer: the purge waits on it
    stack.sup.send_signal(signal.SIGSTOP)
    try:
        stack.docker("rm", name, timeout=30)
        assert (ctrs / f".removed-{cid}").is_dir()
        stack.kill9("engine")
    finally:
        stack.sup.send_signal(signal.SIGCONT)
    # only the next engine can take the moved directory away
    assert (ctrs / f".removed-{cid}").is_dir()
    stack.start_engine()
    assert _until(lambda: cid not in _supervisor_containers(stack))
    assert _until(lambda: not (ctrs / f".removed-{cid}").exists())
    assert stack.docker("inspect", name, check=False).returncode != 0


def _wait_for(cond, what, timeout=20):
    deadline = time.time() + timeout
    while not cond():
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_detached_run_created_and_started_in_one_call(stack, name):
    """run -d (no attach): the task is created and started by one runtime
    call; nothing of the process's first output is lost, its pid and exit
    are the ones reported, and the events come as with two calls."""
    t0 = time.time()
    stack.docker("run", "-d", "--name", name, stack.image, "sh", "-c",
                 "echo first; echo second >&2; exec sleep 60")
    _wait_for(lambda: stack.docker("logs", name).stdout == "first\n", "the first line in the log")
    assert stack.docker("logs", name).stderr == "second\n"
    st = stack.inspect(name)["State"]
    assert st["Status"] == "running" and st["Running"] and st["Pid"] > 0, st
    with open(f"/proc/{st['Pid']}/cmdline", "rb") as f:
        assert f.read().split(b"\0")[0] == b"sleep"
    acts = [e["Action"] for e in _events(stack, t0, f"container={name}")]
    assert acts[:2] == ["create", "start"], acts
    stack.docker("rm", "-f", name)

    # an exit before the start is answered, and a command that is not there
    stack.docker("run", "-d", "--name", name, stack.image, "sh", "-c", "exit 7")
    assert stack.docker("wait", name).stdout.strip() == "7"
    st = stack.inspect(name)["State"]
    assert st["Status"] == "exited" and st["ExitCode"] == 7, st
    stack.docker("rm", name)
    p = stack.docker("run", "-d", "--name", name, stack.image, "no-such-command", check=False)
    assert p.returncode == 127, p.stderr
    assert "executable file not found" in p.stderr, p.stderr
    assert stack.inspect(name)["State"]["Status"] == "created"
    stack.docker("rm", name)

    # a created container attached at its start: all its output
    stack.docker("create", "--name", name, stack.image, "sh", "-c", "echo one; echo two")
    assert stack.docker("start", "-a", name).stdout == "one\ntwo\n"
    stack.docker("rm", name)
    # run attached (one call, the output held for the client), many times
    for _ in range(5):
        p = stack.docker("run", "--rm", stack.image, "sh", "-c", "echo one; echo two >&2; exit 3",
                         check=False)
        assert (p.returncode, p.stdout, p.stderr) == (3, "one\n", "two\n")
    p = stack.docker("run", "--rm", stack.image, "seq", "1", "50000", check=False)
    assert p.returncode == 0 and p.stdout.count("\n") == 50000


def test_container_and_snapshot_dirs_are_separate_trees(stack):
    """On ext4 the engine's containers directory and the supervisor's
    snapshots directory carry the "T" attribute (docs/decisions.md)."""
    fstype = subprocess.run(["stat", "-f", "-c", "%T", str(stack.root)], capture_output=True,
                            text=True).stdout.strip()
    if fstype != "ext2/ext3" or not shutil.which("lsattr"):
        pytest.skip(f"not ext4 ({fstype}) or no lsattr")
    for d in (stack.root / "engine" / "containers", stack.root / "supervisor" / "snapshots"):
        flags = subprocess.run(["lsattr", "-d", str(d)], capture_output=True, text=True,
                               check=True).stdout.split()[0]
        assert "T" in flags, (d, flags)
