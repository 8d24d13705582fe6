"""Faults: the process that started the shim and every client killed while
the container keeps writing; bad RPC input; Pause / Resume / Pids / Update /
Stats over the runtime."""

import json
import os
import signal
import subprocess
import time

from conftest import Attach, RpcError, demux, pid_alive, wait_for


def test_kill9_starter_and_clients_then_reconnect(make_shim):
    n = 3000
    s = make_shim(["sh", "-c", f"i=0; while [ $i -lt {n} ]; do echo line-$i; "
                               "if [ $((i % 500)) = 0 ]; then sleep 0.2; fi; i=$((i+1)); done; exit 21"])

    # the starter: a shell in its own process group that runs berth-shim and
    # then lingers, like a daemon going on with its work; it is SIGKILLed
    # with its whole group
    starter_proc = subprocess.Popen(
        ["setsid", "sh", "-c", '"$@"; exec sleep 1000', "sh",
         s.shim_bin, "--id", s.id, "--bundle", str(s.bundle), "--runtime", s.runtime,
         "--runtime-root", str(s.runtime_root), "--state-dir", str(s.state_dir),
         "--log-path", str(s.log_path)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: (s.state_dir / "shim.sock").exists() and s.alive(), what="shim up")
    s.started = True
    s.ctl("create")

    # clients: an attach that reads, waiters, all to be killed
    attach_reader = subprocess.Popen([s.shimctl_bin, "--state-dir", str(s.state_dir), "attach"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     stdin=subprocess.DEVNULL)
    waiters = [s.ctl_popen("wait") for _ in range(3)]
    time.sleep(0.2)
    s.ctl("start")
    time.sleep(0.3)

    os.killpg(starter_proc.pid, signal.SIGKILL)
    starter_proc.wait()
    for p in [attach_reader, *waiters]:
        p.kill()
        p.wait()
    assert s.alive(), "the shim died with its starter"

    # reconnect: a new client sees the same container; no line is lost
    st = s.state()
    assert st["status"] in ("RUNNING", "STOPPED")
    ex = s.wait()
    assert ex["exit_code"] == 21
    lines = [e["log"] for e in s.log_entries()]
    assert lines == [f"line-{i}\n" for i in range(n)]
    assert s.exit_file()["exit_code"] == 21


def test_client_killed_mid_wait_others_unaffected(make_shim):
    s = make_shim(["sh", "-c", "sleep 1; exit 2"])
    s.start()
    s.run()
    doomed = [s.ctl_popen("wait") for _ in range(5)]
    survivor = s.ctl_popen("wait")
    time.sleep(0.2)
    for p in doomed:
        p.kill()
    out, _ = survivor.communicate(timeout=20)
    assert json.loads(out)["exit"]["exit_code"] == 2
    assert s.wait()["exit_code"] == 2


def test_deadline_exceeded_on_wait(make_shim):
    s = make_shim(["sleep", "1000"])
    s.start()
    s.run()
    t0 = time.monotonic()
    err = s.ctl("wait", ctl_timeout=300, check=False)
    assert isinstance(err, RpcError) and err.code == "DEADLINE_EXCEEDED"
    assert time.monotonic() - t0 < 5
    # the shim is fine afterwards
    assert s.state()["status"] == "RUNNING"


def test_unavailable_when_no_shim(make_shim):
    s = make_shim(["true"])
    err = s.ctl("state", check=False)
    assert isinstance(err, RpcError) and err.code == "UNAVAILABLE"


def test_bad_rpc_input_never_crashes(make_shim):
    s = make_shim(["sleep", "1000"])
    s.start()
    s.run()
    err = s.ctl("call", "shim.NoSuchMethod", check=False)
    assert err.code == "INVALID_ARGUMENT" and "unknown method" in err.message
    err = s.ctl("call", "shim.Kill", "--payload-hex", "0a64ff", check=False)
    assert err.code == "INVALID_ARGUMENT" and "berth.shim.KillRequest" in err.message
    err = s.ctl("raw", "ffffffff0f0013", check=False)
    assert err.code == "INVALID_ARGUMENT" and "berth.rpc.Request" in err.message
    err = s.ctl("call", "shim.State", "--payload-size", str(2 << 20), check=False)
    assert err.code == "INVALID_ARGUMENT" and "exceeds the limit" in err.message
    # KillRequest{signal: 99}
    err = s.ctl("call", "shim.Kill", "--payload-hex", "1063", check=False)
    assert err.code == "INVALID_ARGUMENT" and "invalid signal 99" in err.message
    err = s.ctl("resize", "0", "0", check=False)
    assert err.code == "INVALID_ARGUMENT"
    assert s.ctl("call", "shim.Connect")["payload_len"] > 0
    assert s.state()["status"] == "RUNNING"


def test_pause_resume_pids_stats_update(make_shim):
    s = make_shim(["sh", "-c", "while true; do echo tick; sleep 0.05; done"])
    s.start()
    pid = s.run()
    procs = s.ctl("pids")["processes"]
    assert pid in [p["pid"] for p in procs]
    s.ctl("exec", "sl", "--", "sleep", "1000")
    epid = s.ctl("start", "--exec", "sl")["pid"]
    procs = s.ctl("pids")["processes"]
    assert {"pid": epid, "exec_id": "sl"} in procs

    st = s.ctl("stats")
    assert st["memory_usage"] > 0 and st["pids_current"] >= 2 and st["cpu_usage_ns"] > 0
    assert st["cgroup_version"] in ("v1", "v2")

    s.ctl("pause")
    assert s.state()["status"] == "PAUSED"
    n = len(s.log_entries())
    time.sleep(0.4)
    assert len(s.log_entries()) == n, "a paused container wrote"
    err = s.ctl("pause", check=False)
    assert err.code == "FAILED_PRECONDITION"
    s.ctl("resume")
    assert s.state()["status"] == "RUNNING"
    wait_for(lambda: len(s.log_entries()) > n, what="output after resume")

    res = s.root / "res.json"
    res.write_text(json.dumps({"pids": {"limit": 77}}))
    s.ctl("update", res)
    assert s.ctl("stats")["pids_limit"] == 77
    res.write_text("not json")
    err = s.ctl("update", res, check=False)
    assert err.code == "INVALID_ARGUMENT"

    s.ctl("kill", "--exec", "sl", "KILL")
    s.ctl("kill", "KILL")
    s.wait()
    assert not pid_alive(pid)


def test_stats_and_pids_before_create(make_shim):
    s = make_shim(["true"])
    s.start()
    for cmd in ("stats", "pids", "pause", "resume"):
        err = s.ctl(cmd, check=False)
        assert isinstance(err, RpcError) and err.code == "FAILED_PRECONDITION", cmd


def test_many_concurrent_calls(make_shim):
    s = make_shim(["sleep", "1000"])
    s.start()
    s.run()
    procs = [s.ctl_popen("state") for _ in range(30)] + [s.ctl_popen("wait") for _ in range(10)]
    for p in procs[:30]:
        out, _ = p.communicate(timeout=30)
        assert json.loads(out)["status"] == "RUNNING"
    s.ctl("kill", "KILL")
    for p in procs[30:]:
        out, _ = p.communicate(timeout=30)
        assert json.loads(out)["exit"]["signal"] == 9


def test_attach_survives_other_client_crash(make_shim):
    s = make_shim(["sh", "-c", "i=0; while [ $i -lt 50 ]; do echo n$i; sleep 0.01; i=$((i+1)); done"])
    s.start()
    s.ctl("create")
    keep = Attach(s)
    crash = subprocess.Popen([s.shimctl_bin, "--state-dir", str(s.state_dir), "attach"],
                             stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    time.sleep(0.2)
    s.ctl("start")
    time.sleep(0.1)
    crash.kill()
    crash.wait()
    s.wait()
    assert demux(keep.read_all())["stdout"].split() == [f"n{i}".encode() for i in range(50)]


def test_spare_shim_refuses_work_until_adopted(shim_bin, shimctl_bin, tmp_path):
    """berth-shim --spare serves without a container: Connect answers (no
    id), Create and Exec are refused until shim.Adopt, Shutdown ends it and
    removes its dir; an Adopt naming a dir that is not its own is refused."""
    d = tmp_path / ".spare-1"
    p = subprocess.run([shim_bin, "--spare", "--state-dir", str(d)], capture_output=True, text=True, timeout=20)
    assert p.returncode == 0, p.stderr
    pid = int((d / "shim.pid").read_text())

    def ctl(*args):
        return subprocess.run([shimctl_bin, "--state-dir", str(d), *args], capture_output=True, text=True,
                              timeout=20)

    c = ctl("connect")
    assert c.returncode == 0, c.stderr
    assert json.loads(c.stdout).get("shim_pid") == pid
    assert not json.loads(c.stdout).get("id")
    for args in (("create",), ("exec", "e1", "--", "true")):
        r = ctl(*args)
        assert r.returncode != 0
        assert "spare shim has no container" in r.stdout + r.stderr, (r.stdout, r.stderr)
    # --spare takes no container options
    bad = subprocess.run([shim_bin, "--spare", "--id", "x", "--state-dir", str(tmp_path / "other")],
                         capture_output=True, text=True, timeout=20)
    assert bad.returncode != 0
    r = ctl("shutdown")
    assert r.returncode == 0, r.stderr
    wait_for(lambda: not pid_alive(pid), what="the spare's exit")
    assert not d.exists()
