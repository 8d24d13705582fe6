"""Create / Start / State / Wait / Kill / Delete / Shutdown over ocirun and runc."""

import os
import signal
import time

from conftest import RpcError, pid_alive, wait_for


def test_exit_code_and_status(make_shim):
    s = make_shim(["sh", "-c", "echo out; echo err >&2; exit 7"])
    s.start()
    info = s.ctl("connect")
    assert info["id"] == s.id and info["task_pid"] == 0
    assert info["shim_pid"] == s.pid
    pid = s.ctl("create")["pid"]
    st = s.state()
    assert st["status"] == "CREATED" and st["pid"] == pid
    assert s.ctl("start")["pid"] == pid
    ex = s.wait()
    assert ex["exit_code"] == 7 and ex["signal"] == 0 and ex["pid"] == pid
    assert not ex["oom_killed"] and ex["exited_at"].endswith("Z")
    st = s.state()
    assert st["status"] == "STOPPED" and st["exit"]["exit_code"] == 7
    # the exit file was written when the process was reaped
    ef = s.exit_file()
    assert ef["exit_code"] == 7 and ef["pid"] == pid and ef["exited_at"] == ex["exited_at"]
    assert s.log_text("stdout") == "out\n" and s.log_text("stderr") == "err\n"
    d = s.ctl("delete")
    assert d["exit"]["exit_code"] == 7
    shim_pid = s.pid
    s.ctl("shutdown")
    wait_for(lambda: not pid_alive(shim_pid), what="shim exit")
    assert not s.state_dir.exists()
    # the runtime forgot the container
    assert not (s.runtime_root / s.id).exists()


def test_create_with_start(make_shim):
    """Create --start: the runtime's run --detach, no Start call; the first
    output is the container's (in its log), not taken as runtime warnings."""
    s = make_shim(["sh", "-c", "echo first; echo err >&2; exec sleep 1000"])
    s.start()
    pid = s.ctl("create", "--start")["pid"]
    wait_for(lambda: s.log_text("stdout") == "first\n" and s.log_text("stderr") == "err\n",
             what="the first output in the log")
    st = s.state()
    assert st["status"] == "RUNNING" and st["pid"] == pid
    err = s.ctl("start", check=False)
    assert isinstance(err, RpcError) and err.code == "FAILED_PRECONDITION", err
    s.ctl("kill", "KILL")
    ex = s.wait()
    assert ex["pid"] == pid and ex["signal"] == signal.SIGKILL
    assert s.state()["status"] == "STOPPED"
    s.ctl("delete")
    s.ctl("shutdown")


def test_create_with_start_quick_exit_and_failure(make_shim):
    s = make_shim(["sh", "-c", "exit 9"])
    s.start()
    pid = s.ctl("create", "--start")["pid"]
    ex = s.wait()
    assert ex["pid"] == pid and ex["exit_code"] == 9
    assert s.state()["status"] == "STOPPED"
    s.ctl("delete")
    s.ctl("shutdown")

    bad = make_shim(["/no/such/program"])
    bad.start()
    err = bad.ctl("create", "--start", check=False)
    assert isinstance(err, RpcError) and err.code == "INTERNAL", err
    assert "/no/such/program" in err.message, err.message
    assert bad.state()["status"] == "UNKNOWN"
    # nothing left with the runtime
    wait_for(lambda: not (bad.runtime_root / bad.id).exists(), what="the runtime's state removed")


def test_killed_by_signal(make_shim):
    s = make_shim(["sleep", "1000"])
    s.start()
    s.run()
    assert s.state()["status"] == "RUNNING"
    s.ctl("kill", "KILL")
    ex = s.wait()
    assert ex["signal"] == 9 and ex["exit_code"] == 137
    assert s.exit_file()["signal"] == 9
    # a second kill of an exited process is refused, clearly
    err = s.ctl("kill", "TERM", check=False)
    assert isinstance(err, RpcError) and err.code == "FAILED_PRECONDITION"
    assert "already exited" in err.message


def test_kill_all_and_sigterm(make_shim):
    s = make_shim(["sh", "-c", "sleep 1000 & sleep 1000 & wait"])
    s.start()
    s.run()
    wait_for(lambda: len(s.ctl("pids")["processes"]) >= 3, what="three processes")
    s.ctl("kill", "--all", "KILL")
    assert s.wait()["signal"] == 9


def test_wait_after_exit_and_many_waiters(make_shim):
    s = make_shim(["sh", "-c", "read x; exit 3"])
    s.start()
    s.ctl("create", "--stdin")
    s.ctl("start")
    waiters = [s.ctl_popen("wait") for _ in range(8)]
    time.sleep(0.3)
    assert all(w.poll() is None for w in waiters), "Wait answered before the exit"
    s.ctl("close-stdin")
    for w in waiters:
        out, err = w.communicate(timeout=20)
        assert '"exit_code":3' in out, (out, err)
    # after the exit: answered at once, every time
    t0 = time.monotonic()
    for _ in range(3):
        assert s.wait()["exit_code"] == 3
    assert time.monotonic() - t0 < 3


def test_wait_before_create_is_refused(make_shim):
    s = make_shim(["true"])
    s.start()
    err = s.ctl("wait", check=False)
    assert isinstance(err, RpcError) and err.code == "FAILED_PRECONDITION"


def test_start_twice_and_create_twice(make_shim):
    s = make_shim(["sleep", "1000"])
    s.start()
    s.run()
    err = s.ctl("start", check=False)
    assert isinstance(err, RpcError) and err.code == "FAILED_PRECONDITION"
    err = s.ctl("create", check=False)
    assert isinstance(err, RpcError) and err.code == "ALREADY_EXISTS"


def test_delete_running_needs_force(make_shim):
    s = make_shim(["sleep", "1000"])
    s.start()
    pid = s.run()
    err = s.ctl("delete", check=False)
    assert isinstance(err, RpcError) and err.code == "FAILED_PRECONDITION"
    err = s.ctl("shutdown", check=False)
    assert isinstance(err, RpcError) and err.code == "FAILED_PRECONDITION"
    d = s.ctl("delete", "--force")
    assert d["pid"] == pid and d["exit"]["signal"] == 9
    assert not pid_alive(pid)
    err = s.ctl("delete", check=False)
    assert isinstance(err, RpcError) and err.code == "NOT_FOUND"
    s.ctl("shutdown")


def test_delete_created_never_started(make_shim):
    s = make_shim(["true"])
    s.start()
    pid = s.ctl("create")["pid"]
    d = s.ctl("delete")
    assert d["pid"] == pid
    assert not pid_alive(pid)
    assert not (s.runtime_root / s.id).exists()


def test_runtime_create_failure_returns_its_stderr(make_shim):
    s = make_shim(["/no/such/program"])
    s.start()
    err = s.ctl("create", check=False)
    assert isinstance(err, RpcError), err
    assert err.code == "INTERNAL"
    assert "runtime create failed" in err.message
    # the runtime's own words, whatever runtime it is
    assert "/no/such/program" in err.message, err.message
    # the error text did not go into the container's log
    assert s.log_entries() == []
    # nothing half-created: a fixed bundle can be created with the same shim
    assert s.state()["status"] == "UNKNOWN"


def test_shim_refuses_second_instance_and_bad_args(make_shim):
    s = make_shim(["true"])
    s.start()
    p = s.start(check=False)
    assert p.returncode == 1 and "already running" in p.stderr
    p = s.start("--log-opt", "bogus=1", check=False)
    assert p.returncode != 0 and "unknown log option" in p.stderr


def test_shim_detaches_and_is_subreaper(make_shim):
    s = make_shim(["sleep", "1000"])
    s.start()
    pid = s.pid
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().split(")")[-1].split()
    ppid, pgrp, session = int(fields[1]), int(fields[2]), int(fields[3])
    assert ppid != os.getpid()
    # double fork: a session of its own (whose leader exited), not ours
    assert session != os.getsid(0) and pgrp == session, "not in a session of its own"
    cpid = s.run()
    with open(f"/proc/{cpid}/stat") as f:
        assert int(f.read().split(")")[-1].split()[1]) == pid, "container init is not the shim's child"


def test_stop_with_sigterm_then_wait(make_shim):
    s = make_shim(["sh", "-c", "trap 'echo bye; exit 42' TERM; while true; do sleep 0.05; done"])
    s.start()
    s.run()
    time.sleep(0.3)
    s.ctl("kill", "TERM")
    ex = s.wait()
    assert ex["exit_code"] == 42
    assert "bye\n" in s.log_text("stdout")


def test_oom_killed_flag(make_shim):
    def limit(c):
        c["linux"].setdefault("resources", {})["memory"] = {"limit": 16 * 1024 * 1024,
                                                             "swap": 16 * 1024 * 1024}

    # a shell string growing without bound
    s = make_shim(["sh", "-c", "x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done"], edit=limit)
    s.start()
    s.run()
    ex = s.wait(timeout=60)
    assert ex["signal"] == 9, ex
    assert ex["oom_killed"] is True
    assert s.exit_file()["oom_killed"] is True


def test_shim_signal_leaves_container(make_shim):
    """SIGTERM to the shim: it exits, its sockets go, the container keeps running
    (a supervisor decides what happens to it)."""
    s = make_shim(["sleep", "1000"])
    s.start()
    cpid = s.run()
    spid = s.pid
    os.kill(spid, signal.SIGTERM)
    wait_for(lambda: not pid_alive(spid), what="shim exit")
    assert pid_alive(cpid)
    assert not (s.state_dir / "shim.sock").exists()
    err = s.ctl("state", check=False)
    assert isinstance(err, RpcError) and err.code == "UNAVAILABLE"


def test_exit_status_survives_reconnect(make_shim):
    s = make_shim(["sh", "-c", "exit 5"])
    s.start()
    s.run()
    s.wait()
    # a new client (a restarted supervisor) reads it again, also from the file
    assert s.state()["exit"]["exit_code"] == 5
    assert s.exit_file()["exit_code"] == 5
