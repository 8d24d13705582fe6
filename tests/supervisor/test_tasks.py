"""Containers and tasks of berth-supervisor, driven through berth-ctr.

Every test runs a supervisor of its own (``task_supervisor``: --runtime is
ocirun from the build, or runc) and a busybox image pulled from the test
registry. Afterwards, whatever a test left running is torn down.
"""

import json
import os
import pty
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from conftest import TIMEOUT, Supervisor, _teardown_tasks


def uid(prefix="t"):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def tasks(sv):
    p = sv.ctr("--json", "tasks", "ls")
    return {t["id"]: t for t in json.loads(p.stdout)["tasks"]}


def containers(sv):
    p = sv.ctr("--json", "containers", "ls")
    return {c["id"]: c for c in json.loads(p.stdout)["containers"]}


def wait_for(cond, timeout=15, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def mounts_under(path):
    with open("/proc/self/mountinfo") as f:
        return [l.split()[4] for l in f if l.split()[4].startswith(str(path))]


def test_run_output_and_exit_code(task_supervisor, busybox):
    sv = task_supervisor
    cid = uid()
    p = sv.ctr("run", "--rm", busybox, cid, "sh", "-c", "echo hi; echo err >&2; exit 3", check=None)
    assert p.returncode == 3, p.stderr
    assert p.stdout == "hi\n"
    assert p.stderr == "err\n"
    assert cid not in containers(sv)
    assert cid not in tasks(sv)
    assert not (sv.exec_root / "bundles" / cid).exists()
    assert not (sv.exec_root / "shims" / cid).exists()
    assert mounts_under(sv.exec_root) == []


def test_run_default_cmd_env_cwd_user(task_supervisor, busybox):
    sv = task_supervisor
    cid = uid()
    p = sv.ctr("run", "--rm", "--env", "FOO=bar", "--cwd", "/tmp", "--user", "1000:1001", busybox, cid,
               "sh", "-c", 'echo "$FOO $(pwd) $(id -u):$(id -g)"')
    assert p.stdout == "bar /tmp 1000:1001\n"
    # without a command: the image's Cmd (/bin/sh) reads stdin (-i)
    p = sv.ctr("run", "--rm", "-i", busybox, uid(), input="echo from-stdin; exit 4\n", check=None)
    assert p.returncode == 4 and p.stdout == "from-stdin\n", p.stderr
    # a user by name, resolved through the image's /etc/passwd
    p = sv.ctr("run", "--rm", "--user", "alice", busybox, uid(), "sh", "-c", "echo $(id -u):$(id -g)")
    assert p.stdout.strip() == "1234:2345"
    p = sv.ctr("run", "--rm", "--user", "nobody:staff", busybox, uid(), "sh", "-c", "echo $(id -u):$(id -g)")
    assert p.stdout.strip() == "65534:50"
    p = sv.ctr("run", "--rm", "--user", "nosuchuser", busybox, uid(), "true", check=False)
    assert "nosuchuser" in p.stderr and "supervisor:" in p.stderr


def test_run_tty(task_supervisor, busybox):
    sv = task_supervisor
    cid = uid()
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(sv.ctr_bin, [sv.ctr_bin, "--address", sv.address, "run", "--rm", "-t", busybox, cid,
                              "sh", "-c", "tty; stty size; read x; echo got-$x; exit 5"])
    out = b""
    sent = False
    deadline = time.time() + TIMEOUT
    while time.time() < deadline:
        r, _, _ = select.select([fd], [], [], 0.5)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        if not sent and b"/dev/pts" in out and out.count(b"\n") >= 2:
            os.write(fd, b"abc\r")
            sent = True
    _, status = os.waitpid(pid, 0)
    text = out.decode(errors="replace")
    assert os.WEXITSTATUS(status) == 5, text
    assert "/dev/pts/0" in text
    assert "got-abc" in text


def test_detached_exec_kill_pause(task_supervisor, busybox):
    sv = task_supervisor
    cid = uid()
    p = sv.ctr("run", "-d", busybox, cid, "sh", "-c", "trap 'exit 7' TERM; while true; do sleep 0.1; done")
    assert p.stdout.strip() == cid
    t = tasks(sv)[cid]
    assert t["status"] == "RUNNING" and t["pid"] > 0
    p = sv.ctr("tasks", "exec", "--exec-id", "e1", cid, "sh", "-c", "echo in-exec; exit 2", check=None)
    assert p.returncode == 2 and p.stdout == "in-exec\n", p.stderr
    ps = sv.ctr("tasks", "ps", cid).stdout
    assert str(t["pid"]) in ps
    sv.ctr("tasks", "pause", cid)
    assert tasks(sv)[cid]["status"] == "PAUSED"
    sv.ctr("tasks", "resume", cid)
    assert tasks(sv)[cid]["status"] == "RUNNING"
    m = json.loads(sv.ctr("tasks", "metrics", cid).stdout)
    assert m["pids_current"] >= 1 and m["memory_usage"] > 0
    sv.ctr("tasks", "kill", cid)
    p = sv.ctr("tasks", "wait", cid, check=None)
    assert p.returncode == 7 and p.stdout.strip() == "7"
    t = tasks(sv)[cid]
    assert t["status"] == "STOPPED" and t["exit_code"] == 7
    # a container with a task cannot go
    p = sv.ctr("containers", "rm", cid, check=False)
    assert "task" in p.stderr
    sv.ctr("tasks", "rm", cid)
    sv.ctr("containers", "rm", cid)
    assert cid not in containers(sv)


def test_kill_signal_all_and_force_rm(task_supervisor, busybox):
    sv = task_supervisor
    cid = uid()
    sv.ctr("run", "-d", busybox, cid, "sh", "-c", "sleep 1000 & sleep 1000")
    p = sv.ctr("tasks", "rm", cid, check=False)  # running: refused without -f
    sv.ctr("tasks", "kill", "-s", "KILL", "--all", cid)
    p = sv.ctr("tasks", "wait", cid, check=None)
    assert p.returncode == 137
    sv.ctr("tasks", "rm", cid)
    # -f kills a running one
    sv.ctr("tasks", "start", cid, check=False)
    sv.ctr("run", "-d", busybox, cid + "b", "sleep", "1000")
    sv.ctr("tasks", "rm", "-f", cid + "b")
    sv.ctr("containers", "rm", cid, cid + "b")
    assert mounts_under(sv.exec_root) == []


def test_missing_command_leaves_nothing(task_supervisor, busybox):
    sv = task_supervisor
    cid = uid()
    p = sv.ctr("run", busybox, cid, "/no/such/cmd", check=False)
    assert p.returncode != 0
    err = p.stderr
    assert "/no/such/cmd" in err, err
    assert any(layer in err for layer in ("ocirun:", "runc:", "shim:")), err
    assert cid not in tasks(sv)
    assert not (sv.exec_root / "bundles" / cid).exists()
    assert not (sv.exec_root / "shims" / cid).exists()
    assert mounts_under(sv.exec_root) == []
    sv.ctr("containers", "rm", cid)
    assert cid not in containers(sv)


def test_container_create_errors(task_supervisor, busybox):
    sv = task_supervisor
    p = sv.ctr("run", "--rm", "127.0.0.1:1/not/there:1", uid(), "true", check=False)
    assert "not found" in p.stderr
    p = sv.ctr("run", "--rm", busybox, "-bad-id", "true", check=False)
    cid = uid()
    sv.ctr("containers", "create", busybox, cid, "true")
    p = sv.ctr("containers", "create", busybox, cid, "true", check=False)
    assert "already exists" in p.stderr
    info = json.loads(sv.ctr("containers", "info", cid).stdout)["container"]
    spec = json.loads(info["spec_json"])
    assert spec["process"]["args"] == ["true"]
    assert spec["root"]["path"] == "rootfs"
    sv.ctr("containers", "rm", cid)
    p = sv.ctr("containers", "rm", cid, check=False)
    assert "not found" in p.stderr


def test_twenty_at_once(task_supervisor, busybox):
    sv = task_supervisor
    ids = [uid("m") for _ in range(20)]
    procs = [sv.ctr_popen("run", "--rm", busybox, i, "sh", "-c", f"echo {i}; exit {n % 5}")
             for n, i in enumerate(ids)]
    for n, (i, p) in enumerate(zip(ids, procs)):
        out, err = p.communicate(timeout=120)
        assert p.returncode == n % 5, err
        assert out == f"{i}\n"
    assert not set(ids) & set(tasks(sv))
    assert not set(ids) & set(containers(sv))
    assert mounts_under(sv.exec_root) == []


def test_supervisor_kill9_and_restart(task_supervisor, busybox):
    sv = task_supervisor
    ids = [uid("r") for _ in range(10)]
    for i in ids:
        sv.ctr("run", "-d", busybox, i, "sh", "-c",
               "trap 'exit 9' TERM; while [ ! -e /tmp/go ]; do sleep 0.1; done; exit $(cat /tmp/go)")
    sv.kill9()
    # three exit while the supervisor is down, with their own codes
    for n, i in enumerate(ids[:3]):
        subprocess.run(["sh", "-c", f"echo {40 + n} > {sv.exec_root}/bundles/{i}/rootfs/tmp/go"], check=True)
    time.sleep(1.0)
    sv.start()
    t = tasks(sv)
    assert set(ids) <= set(t)
    for n, i in enumerate(ids[:3]):
        assert t[i]["status"] == "STOPPED", t[i]
        assert t[i]["exit_code"] == 40 + n
        p = sv.ctr("tasks", "wait", i, check=None)
        assert p.returncode == 40 + n
    for i in ids[3:]:
        assert t[i]["status"] == "RUNNING"
        sv.ctr("tasks", "kill", i)
    for i in ids[3:]:
        p = sv.ctr("tasks", "wait", i, check=None)
        assert p.returncode == 9
    for i in ids:
        sv.ctr("tasks", "rm", i)
        sv.ctr("containers", "rm", i)
    assert mounts_under(sv.exec_root) == []


def test_shim_killed(task_supervisor, busybox):
    sv = task_supervisor
    cid = uid()
    sv.ctr("run", "-d", busybox, cid, "sleep", "1000")
    shim_pid = tasks(sv)[cid]["shim_pid"]
    assert shim_pid > 0
    os.kill(shim_pid, signal.SIGKILL)
    t = wait_for(lambda: (lambda t: t if t["status"] == "STOPPED" else None)(tasks(sv)[cid]), what="task stopped")
    assert t["exit_reason"] == "shim died"
    assert t["exit_code"] == 137
    p = sv.ctr("tasks", "wait", cid, check=None)
    assert p.returncode == 137 and "shim died" in p.stdout
    assert mounts_under(sv.exec_root) == []  # leftovers cleaned at once
    # still reported after a restart
    sv.restart()
    t = tasks(sv)[cid]
    assert t["status"] == "STOPPED" and t["exit_reason"] == "shim died"
    sv.ctr("tasks", "rm", cid)
    sv.ctr("containers", "rm", cid)
    assert not (sv.exec_root / "shims" / cid).exists()


def test_shim_killed_while_supervisor_down(task_supervisor, busybox):
    sv = task_supervisor
    cid = uid()
    sv.ctr("run", "-d", busybox, cid, "sleep", "1000")
    shim_pid = tasks(sv)[cid]["shim_pid"]
    sv.kill9()
    os.kill(shim_pid, signal.SIGKILL)
    time.sleep(0.2)
    sv.start()
    t = tasks(sv)[cid]
    assert t["status"] == "STOPPED" and t["exit_reason"] == "shim died" and t["exit_code"] == 137
    assert mounts_under(sv.exec_root) == []
    sv.ctr("tasks", "rm", cid)
    sv.ctr("containers", "rm", cid)


def test_runtime_runc(task_supervisor, busybox):
    sv = task_supervisor
    runc = "/usr/sbin/runc"
    if not os.access(runc, os.X_OK):
        pytest.skip("runc is not installed")
    cid = uid()
    p = sv.ctr("run", "--rm", "--runtime", runc, busybox, cid, "sh", "-c", "echo via-runc; exit 6", check=None)
    assert p.returncode == 6 and p.stdout == "via-runc\n", p.stderr
    assert (sv.exec_root / "runtime" / "runc").is_dir()
    cid = uid()
    sv.ctr("run", "-d", "--runtime", "runc", busybox, cid, "sleep", "1000")
    p = sv.ctr("tasks", "exec", "--exec-id", "x", cid, "echo", "exec-runc")
    assert p.stdout == "exec-runc\n"
    sv.ctr("tasks", "rm", "-f", cid)
    sv.ctr("containers", "rm", cid)


def test_events_published(task_supervisor, busybox):
    sv = task_supervisor
    ev = sv.ctr_popen("--json", "events", "--topic", "/")
    time.sleep(0.5)
    cid = uid()
    sv.ctr("run", "--rm", busybox, cid, "sh", "-c", "exit 4", check=None)
    time.sleep(0.5)
    ev.terminate()
    out, _ = ev.communicate(timeout=10)
    for topic in ("/containers/create", "/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete",
                  "/containers/delete"):
        assert topic in out, out


def snapshots(sv):
    return sv.ctr("snapshots", "ls").stdout


def test_memory_limit_and_oom(task_supervisor, busybox):
    sv = task_supervisor
    cid = uid()
    ev = sv.ctr_popen("--json", "events", "--topic", "/tasks/")
    time.sleep(0.3)
    p = sv.ctr("run", "--memory", "16m", busybox, cid, "sh", "-c",
               "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max;"
               " head -c 200m /dev/zero | tail > /dev/null", check=None)
    assert p.stdout.splitlines()[0] == str(16 << 20)
    assert p.returncode == 137, p.stderr
    t = tasks(sv)[cid]
    assert t["oom_killed"] is True
    time.sleep(0.3)
    ev.terminate()
    out, _ = ev.communicate(timeout=10)
    assert "/tasks/oom" in out
    sv.ctr("tasks", "rm", cid)
    sv.ctr("containers", "rm", cid)


def test_half_created_container_rolled_back(task_supervisor, busybox):
    sv = task_supervisor
    cid = uid()
    sv.ctr("containers", "create", busybox, cid, "true")
    assert cid in snapshots(sv)
    sv.kill9()
    rec = sv.root / "supervisor/meta/containers" / f"{cid}.json"
    j = json.loads(rec.read_text())
    j["state"] = "creating"  # as a crash between snapshot and record leaves it
    rec.write_text(json.dumps(j))
    sv.start()
    assert cid not in containers(sv)
    assert cid not in snapshots(sv)
    assert not rec.exists()


def test_shim_without_container_is_cleaned(task_supervisor, busybox):
    sv = task_supervisor
    cid = uid()
    sv.ctr("run", "-d", busybox, cid, "sleep", "1000")
    shim_pid = tasks(sv)[cid]["shim_pid"]
    sv.kill9()
    (sv.root / "supervisor/meta/containers" / f"{cid}.json").unlink()
    sv.start()
    assert cid not in tasks(sv)
    wait_for(lambda: not os.path.exists(f"/proc/{shim_pid}"), what="shim gone")
    assert not (sv.exec_root / "shims" / cid).exists()
    assert not (sv.exec_root / "bundles" / cid).exists()
    assert mounts_under(sv.exec_root) == []


def test_many_waiters_and_update(task_supervisor, busybox):
    sv = task_supervisor
    cid = uid()
    sv.ctr("run", "-d", busybox, cid, "sh", "-c", "while [ ! -e /tmp/go ]; do sleep 0.05; done; exit 12")
    waiters = [sv.ctr_popen("tasks", "wait", cid) for _ in range(8)]
    time.sleep(0.3)
    assert all(w.poll() is None for w in waiters)
    p = sv.ctr("tasks", "exec", "--exec-id", "go", cid, "touch", "/tmp/go")
    for w in waiters:
        out, _ = w.communicate(timeout=30)
        assert w.returncode == 12 and out.strip() == "12"
    sv.ctr("tasks", "rm", cid)
    sv.ctr("containers", "rm", cid)


def test_clean_restart_keeps_tasks(task_supervisor, busybox):
    sv = task_supervisor
    cid = uid()
    sv.ctr("run", "-d", busybox, cid, "sh", "-c", "trap 'exit 3' TERM; while true; do sleep 0.1; done")
    waiter = sv.ctr_popen("tasks", "wait", cid)
    time.sleep(0.3)
    sv.restart()  # SIGTERM: exits 0, no sanitizer report, the container runs on
    waiter.communicate(timeout=30)
    assert waiter.returncode != 0  # its supervisor went away
    sv.check_sanitizers()
    t = tasks(sv)[cid]
    assert t["status"] == "RUNNING"
    sv.ctr("tasks", "kill", cid)
    assert sv.ctr("tasks", "wait", cid, check=None).returncode == 3
    sv.ctr("tasks", "rm", cid)
    sv.ctr("containers", "rm", cid)


def test_long_exec_root(supervisor_bin, ctr_bin, task_runtime, task_image):
    """The shims' unix sockets live under the exec root: a root too long for
    the engine's 64-character ids is warned of at start, and a task whose
    socket would not fit is refused with the reason, nothing left behind."""
    base = tempfile.mkdtemp(prefix="bsl-", dir="/tmp")
    os.makedirs(os.path.join(base, "r" * 24))
    sv = Supervisor(supervisor_bin, ctr_bin, os.path.join(base, "r" * 24), extra=["--runtime", task_runtime])
    sv.start()
    try:
        assert "is long" in sv.log_text() and "64-character" in sv.log_text()
        sv.ctr("images", "pull", task_image, timeout=120)
        long_id = "x" * 64
        p = sv.ctr("run", "--rm", task_image, long_id, "true", check=False)
        assert "longer than the 107 bytes" in p.stderr, p.stderr
        assert long_id not in sv.ctr("containers", "ls").stdout, sv.log_text()[-3000:]
        assert not (sv.exec_root / "shims" / long_id).exists()
        assert sv.ctr("run", "--rm", task_image, "short", "echo", "fits").stdout == "fits\n"
        assert sv.stop() == 0
        sv.check_sanitizers()
    finally:
        _teardown_tasks(sv)
        subprocess.run(["umount", "-R", "-q", str(sv.root)], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def _spares(sv):
    d = sv.exec_root / "shims"
    return sorted(p for p in d.iterdir() if p.name.startswith(".spare-")) if d.is_dir() else []


def _alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def test_spare_shim_adopted_then_idle_gone(task_supervisor, busybox):
    """After a task is created the supervisor keeps one shim started ahead
    (shims/.spare-N); the next task's shim is that one (its pid is the
    spare's), with its own state dir, log and attach socket. Unused for
    10 s, the spare goes; a clean stop takes it too."""
    sv = task_supervisor
    first = uid("s")
    p = sv.ctr("run", "--rm", busybox, first, "echo", "one", check=None)
    assert p.returncode == 0 and p.stdout == "one\n", p.stderr
    spare = wait_for(lambda: _spares(sv), what="a spare shim")[0]
    spare_pid = int((spare / "shim.pid").read_text())
    assert _alive(spare_pid)
    cid = uid("s")
    sv.ctr("run", "-d", busybox, cid, "sh", "-c", "trap 'exit 7' TERM; while true; do sleep 0.1; done")
    state = sv.exec_root / "shims" / cid
    assert int((state / "shim.pid").read_text()) == spare_pid
    assert not spare.exists()
    assert (state / "attach.sock").exists() and (state / "shim.sock").exists()
    assert tasks(sv)[cid]["status"] == "RUNNING"
    sv.ctr("tasks", "kill", cid)
    assert sv.ctr("tasks", "wait", cid, check=None).returncode == 7
    sv.ctr("tasks", "rm", cid)
    sv.ctr("containers", "rm", cid)
    assert not state.exists()
    # a new spare came behind; it goes once unused for 10 s
    left = wait_for(lambda: _spares(sv), what="the next spare")[0]
    left_pid = int((left / "shim.pid").read_text())
    wait_for(lambda: not _spares(sv), timeout=20, what="the idle spare to go")
    assert wait_for(lambda: not _alive(left_pid), timeout=5, what="the idle spare's exit")


def test_shim_client_leaving_during_handshake(task_supervisor, busybox):
    """Clients that connect to a shim's socket and close at once (nng
    1.5.2 then stops accepting): the shim replaces its listener, at the
    path its state dir was moved to when the spare was adopted, and a
    restarted supervisor reconnects to it and drives the container."""
    sv = task_supervisor
    p = sv.ctr("run", "--rm", busybox, uid("s"), "true", check=None)
    assert p.returncode == 0, p.stderr
    wait_for(lambda: _spares(sv), what="a spare shim")
    cid = uid("h")
    sv.ctr("run", "-d", busybox, cid, "sh", "-c", "trap 'exit 7' TERM; while true; do sleep 0.1; done")
    state = sv.exec_root / "shims" / cid
    for _ in range(20):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(str(state / "shim.sock"))
        s.close()
    wait_for(lambda: "had stopped accepting" in (state / "shim.log").read_text(errors="replace"),
             what="the shim's new listener")
    assert oct((state / "shim.sock").stat().st_mode & 0o777) == "0o600"
    sv.restart()
    p = sv.ctr("tasks", "exec", "--exec-id", "e1", cid, "sh", "-c", "echo in-exec", check=None, timeout=20)
    assert p.returncode == 0 and p.stdout == "in-exec\n", p.stderr
    sv.ctr("tasks", "kill", cid)
    assert sv.ctr("tasks", "wait", cid, check=None).returncode == 7
    sv.ctr("tasks", "rm", cid)
    sv.ctr("containers", "rm", cid)


def test_spare_shim_left_by_a_killed_supervisor(task_supervisor, busybox):
    """kill -9 of the supervisor leaves its spare running; the next
    supervisor kills it and removes its dir. A clean stop shuts the spare
    down itself."""
    sv = task_supervisor
    sv.ctr("run", "--rm", busybox, uid("k"), "true")
    spare = wait_for(lambda: _spares(sv), what="a spare shim")[0]
    pid = int((spare / "shim.pid").read_text())
    sv.kill9()
    assert _alive(pid)
    sv.start()
    assert wait_for(lambda: not _alive(pid), timeout=5, what="the old spare's end")
    assert not spare.exists()
    sv.ctr("run", "--rm", busybox, uid("k"), "true")
    spare = wait_for(lambda: _spares(sv), what="a spare shim")[0]
    pid = int((spare / "shim.pid").read_text())
    sv.restart()
    assert wait_for(lambda: not _alive(pid), timeout=5, what="the spare's shutdown")
    assert not spare.exists()
