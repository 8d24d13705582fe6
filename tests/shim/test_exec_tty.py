"""Exec'd processes and terminals, over ocirun and runc."""

import json
import time

from conftest import Attach, RpcError, demux, wait_for


def test_exec_output_exit_code_and_wait(make_shim):
    s = make_shim(["sleep", "1000"])
    s.start()
    s.run()
    s.ctl("exec", "e1", "--", "sh", "-c", "echo from-exec; echo to-err >&2; exit 9")
    a = Attach(s, exec_id="e1")
    assert a.answer == {"ok": True, "tty": False, "stdin": False}
    assert s.state("e1")["status"] == "UNKNOWN"
    pid = s.ctl("start", "--exec", "e1")["pid"]
    ex = s.wait("e1")
    assert ex["exit_code"] == 9 and ex["pid"] == pid
    out = demux(a.read_all())
    assert out == {"stdout": b"from-exec\n", "stderr": b"to-err\n"}
    # exec output is not the container's log
    assert s.log_entries() == []
    # the container is untouched
    assert s.state()["status"] == "RUNNING"
    assert s.state("e1")["status"] == "STOPPED"
    d = s.ctl("delete", "--exec", "e1")
    assert d["exit"]["exit_code"] == 9
    err = s.ctl("state", "--exec", "e1", check=False)
    assert isinstance(err, RpcError) and err.code == "NOT_FOUND"


def test_exec_stdin_kill_and_errors(make_shim):
    s = make_shim(["sleep", "1000"])
    s.start()
    s.run()
    s.ctl("exec", "--stdin-once", "cat1", "--", "cat")
    a = Attach(s, exec_id="cat1", stdin=True)
    assert a.answer["stdin"] is True
    s.ctl("start", "--exec", "cat1")
    a.send(b"echo me\n")
    assert b"echo me\n" in a.read_until(b"echo me\n")
    a.close_stdin()  # StdinOnce: cat sees EOF and exits 0
    assert s.wait("cat1")["exit_code"] == 0

    s.ctl("exec", "sl", "--", "sleep", "1000")
    s.ctl("start", "--exec", "sl")
    err = s.ctl("delete", "--exec", "sl", check=False)
    assert isinstance(err, RpcError) and err.code == "FAILED_PRECONDITION"
    s.ctl("kill", "--exec", "sl", "KILL")
    assert s.wait("sl")["signal"] == 9
    s.ctl("delete", "--exec", "sl")

    # unknown ids, duplicates, bad ids, bad process JSON
    for args in (["start", "--exec", "nope"], ["kill", "--exec", "nope"], ["wait", "--exec", "nope"]):
        err = s.ctl(*args, check=False)
        assert isinstance(err, RpcError) and err.code == "NOT_FOUND", args
    err = s.ctl("exec", "cat1", "--", "true", check=False)
    assert isinstance(err, RpcError) and err.code == "ALREADY_EXISTS"
    err = s.ctl("exec", "bad/id", "--", "true", check=False)
    assert isinstance(err, RpcError) and err.code == "INVALID_ARGUMENT"
    bad = s.root / "bad.json"
    bad.write_text("[1, 2")
    err = s.ctl("exec", "--process", bad, "x1", check=False)
    assert isinstance(err, RpcError) and err.code == "INVALID_ARGUMENT"


def test_exec_failure_returns_runtime_error(make_shim):
    s = make_shim(["sleep", "1000"])
    s.start()
    s.run()
    s.ctl("exec", "bad", "--", "/no/such/binary")
    err = s.ctl("start", "--exec", "bad", check=False)
    assert isinstance(err, RpcError) and err.code == "INTERNAL"
    assert "/no/such/binary" in err.message, err.message
    # it can be deleted afterwards
    s.ctl("delete", "--exec", "bad")


def test_exec_needs_running_container(make_shim):
    s = make_shim(["true"])
    s.start()
    s.run()
    s.wait()
    err = s.ctl("exec", "late", "--", "true", check=False)
    assert isinstance(err, RpcError) and err.code == "FAILED_PRECONDITION"


def test_tty_container_output_stdin_resize(make_shim):
    script = "stty size; read line; echo got:$line; stty size; exit 4"
    s = make_shim(["sh", "-c", script], terminal=True)
    s.start()
    s.ctl("create", "--stdin")
    st = s.state()
    assert st["terminal"] is True and st["stdin"] is True
    s.ctl("resize", "100", "30")
    a = Attach(s, stdin=True)
    assert a.answer["tty"] is True
    s.ctl("start")
    a.read_until(b"30 100")
    s.ctl("resize", "120", "40")
    a.send(b"hello\n")
    out = a.read_all()
    assert s.wait()["exit_code"] == 4
    assert b"got:hello" in out and b"40 120" in out
    # raw bytes, no frames: the pty's CRLF is there
    assert b"\r\n" in out
    # the log has the terminal's output as stdout
    text = s.log_text()
    assert "got:hello" in text and all(e["stream"] == "stdout" for e in s.log_entries())


def test_tty_exec_and_resize_errors(make_shim):
    s = make_shim(["sleep", "1000"])
    s.start()
    s.run()
    err = s.ctl("resize", "80", "24", check=False)
    assert isinstance(err, RpcError) and err.code == "FAILED_PRECONDITION"
    s.ctl("exec", "--tty", "t1", "--", "sh", "-c", "tty; stty size")
    a = Attach(s, exec_id="t1")
    assert a.answer["tty"] is True
    s.ctl("start", "--exec", "t1")
    assert s.wait("t1")["exit_code"] == 0
    out = a.read_all()
    assert b"/dev/pts/" in out, out


def test_close_stdin_tty_sends_eof(make_shim):
    s = make_shim(["cat"], terminal=True)
    s.start()
    s.ctl("create", "--stdin")
    a = Attach(s, stdin=True)
    s.ctl("start")
    a.send(b"abc\n")
    a.read_until(b"abc")
    s.ctl("close-stdin")
    assert s.wait()["exit_code"] == 0


def test_process_json_is_given_as_is(make_shim):
    s = make_shim(["sleep", "1000"])
    s.start()
    s.run()
    proc = {"args": ["sh", "-c", "echo $FOO; pwd"], "cwd": "/tmp", "env": ["FOO=bar", "PATH=/bin"],
            "user": {"uid": 0, "gid": 0}}
    f = s.root / "p.json"
    f.write_text(json.dumps(proc))
    s.ctl("exec", "--process", f, "pj")
    a = Attach(s, exec_id="pj")
    s.ctl("start", "--exec", "pj")
    s.wait("pj")
    assert demux(a.read_all())["stdout"] == b"bar\n/tmp\n"


def test_exec_exits_before_runtime_returns(make_shim):
    """An exec that is gone before `runtime exec` reports its pid: the exit is
    kept and matched to the pid afterwards."""
    s = make_shim(["sleep", "1000"])
    s.start()
    s.run()
    for i in range(5):
        s.ctl("exec", f"q{i}", "--", "true")
        s.ctl("start", "--exec", f"q{i}")
    for i in range(5):
        assert s.wait(f"q{i}")["exit_code"] == 0
    t0 = time.monotonic()
    wait_for(lambda: s.state()["status"] == "RUNNING")
    assert time.monotonic() - t0 < 5
