"""attach.sock and the json-file log."""

import json
import os
import re
import socket
import subprocess
import time

import pytest

from conftest import Attach, demux, parse_frames

RFC3339NANO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")


def test_two_clients_frames_and_stdin(make_shim):
    s = make_shim(["sh", "-c", "echo ready; while read l; do echo out:$l; echo err:$l >&2; done; exit 6"])
    s.start()
    s.ctl("create", "--stdin")
    a = Attach(s, stdin=True)
    b = Attach(s)
    c = Attach(s, stdout=False)  # stderr only
    assert a.answer["stdin"] is True and b.answer["stdin"] is False
    s.ctl("start")
    a.read_until(b"ready")
    a.send(b"one\n")
    b.read_until(b"err:one")
    # b's bytes are not stdin (it did not ask)
    b.send(b"ignored\n")
    a.send(b"two\n")
    s.ctl("close-stdin")
    assert s.wait()["exit_code"] == 6
    for cl in (a, b):
        got = demux(cl.read_all())
        assert got["stdout"] == b"ready\nout:one\nout:two\n", got
        assert got["stderr"] == b"err:one\nerr:two\n", got
    assert demux(c.read_all()) == {"stdout": b"", "stderr": b"err:one\nerr:two\n"}
    assert s.log_text("stdout") == "ready\nout:one\nout:two\n"


def test_output_of_a_process_started_at_create_waits_for_its_clients(make_shim):
    """create --start --hold 2: the process runs and exits at once, but its
    output is read (and its exit answered) only once two clients are here,
    so both get all of it."""
    s = make_shim(["sh", "-c", "echo early; echo warn >&2; exit 4"])
    s.start()
    pid = s.ctl("create", "--start", "--hold", "2")["pid"]
    time.sleep(0.3)
    assert s.log_entries() == []  # held: nothing read yet
    waiter = s.ctl_popen("wait")
    a = Attach(s)
    time.sleep(0.2)
    assert waiter.poll() is None  # one client of two: still held
    b = Attach(s)
    for cl in (a, b):
        assert demux(cl.read_all()) == {"stdout": b"early\n", "stderr": b"warn\n"}
    out, _ = waiter.communicate(timeout=10)
    ex = json.loads(out.strip().splitlines()[-1])["exit"]
    assert ex["exit_code"] == 4 and ex["pid"] == pid
    assert s.log_text("stdout") == "early\n" and s.log_text("stderr") == "warn\n"

    # clients that never come: the output is read after 2 s anyway
    t = make_shim(["sh", "-c", "echo alone"])
    t.start()
    t0 = time.time()
    t.ctl("create", "--start", "--hold", "1")
    assert t.wait()["exit_code"] == 0
    assert 1.5 < time.time() - t0 < 8
    assert t.log_text("stdout") == "alone\n"


def test_stdin_once_closes_on_first_client_eof(make_shim):
    s = make_shim(["sh", "-c", "cat; echo cat-done"])
    s.start()
    s.ctl("create", "--stdin-once")
    a = Attach(s, stdin=True)
    s.ctl("start")
    a.send(b"data\n")
    a.read_until(b"data\n")
    a.close_stdin()
    assert s.wait()["exit_code"] == 0
    assert demux(a.read_all())["stdout"] == b"data\ncat-done\n"


def test_stdin_without_once_survives_client(make_shim):
    s = make_shim(["sh", "-c", "read a; read b; echo $a$b"])
    s.start()
    s.ctl("create", "--stdin")
    a = Attach(s, stdin=True)
    s.ctl("start")
    a.send(b"x\n")
    a.close()  # gone without closing stdin
    time.sleep(0.2)
    assert s.state()["status"] == "RUNNING"
    b = Attach(s, stdin=True)
    b.send(b"y\n")
    assert s.wait()["exit_code"] == 0
    assert s.log_text() == "xy\n"


def test_attach_errors(make_shim):
    s = make_shim(["true"])
    s.start()
    bad = Attach(s, exec_id="nope")
    assert "no process" in bad.answer["error"]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(str(s.state_dir / "attach.sock"))
    sock.sendall(b"this is not json\n")
    ans = json.loads(sock.recv(4096).split(b"\n")[0])
    assert "error" in ans
    # a client after the exit gets an answer and an immediate end of stream
    s.run()
    s.wait()
    late = Attach(s)
    assert late.answer["ok"] is True and late.read_all(timeout=5) == b""


def test_shimctl_attach_demuxes(make_shim):
    s = make_shim(["sh", "-c", "sleep 0.3; echo to-out; echo to-err >&2"])
    s.start()
    s.ctl("create")
    p = subprocess.Popen([s.shimctl_bin, "--state-dir", str(s.state_dir), "attach"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    time.sleep(0.2)
    s.ctl("start")
    out, err = p.communicate(timeout=20)
    assert out == b"to-out\n" and err == b"to-err\n"


def test_log_format_and_long_lines(make_shim):
    # 40000 bytes without a newline, then a newline; a 16384-byte line + "\n";
    # JSON-hostile bytes; invalid UTF-8; a last line without "\n"
    script = (
        "head -c 40000 /dev/zero | tr '\\0' a; echo; "
        "head -c 16384 /dev/zero | tr '\\0' b; echo; "
        "printf '<q\"\\\\&>\\t\\001\\n'; printf '\\377ok\\n'; printf 'end'"
    )
    s = make_shim(["sh", "-c", script])
    s.start()
    s.run()
    assert s.wait()["exit_code"] == 0
    raw = s.log_path.read_text()
    entries = [json.loads(line) for line in raw.splitlines()]
    for e in entries:
        assert set(e) == {"log", "stream", "time"} and e["stream"] == "stdout"
        assert RFC3339NANO.match(e["time"]), e["time"]
        assert len(e["log"].encode()) <= 16384 + 1
    logs = [e["log"] for e in entries]
    # Docker's copier: partial 16 KiB entries, then the rest with "\n"
    assert logs[0] == "a" * 16384 and logs[1] == "a" * 16384 and logs[2] == "a" * 7232 + "\n"
    assert logs[3] == "b" * 16384 and logs[4] == "\n"
    assert logs[5] == '<q"\\&>\t\x01\n'
    assert logs[6] == "\ufffdok\n"
    assert logs[7] == "end"
    assert len(logs) == 8
    # escaped as Go's encoding/json does
    assert "\\u003cq\\\"\\\\\\u0026\\u003e\\t\\u0001\\n" in raw


def test_log_rotation(make_shim):
    s = make_shim(["sh", "-c", "i=0; while [ $i -lt 2000 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxx; "
                               "i=$((i+1)); done"])
    s.start("--log-opt", "max-size=8k", "--log-opt", "max-file=3")
    s.run()
    s.wait()
    files = [s.log_path, s.log_path.with_name(s.log_path.name + ".1"),
             s.log_path.with_name(s.log_path.name + ".2")]
    assert all(f.exists() for f in files)
    assert not s.log_path.with_name(s.log_path.name + ".3").exists()
    for f in files:
        assert f.stat().st_size <= 8192
    # the newest lines, in order, none torn, across the files (oldest first)
    lines = []
    for f in reversed(files):
        lines += [json.loads(line)["log"] for line in f.read_text().splitlines()]
    nums = [int(line.split("-")[1]) for line in lines]
    assert nums == list(range(nums[0], 2000))
    assert nums[0] > 0  # older ones were rotated away


def test_log_max_file_one_truncates(make_shim):
    s = make_shim(["sh", "-c", "i=0; while [ $i -lt 500 ]; do echo line-$i-yyyyyyyyyyyyyyyy; "
                               "i=$((i+1)); done"])
    s.start("--log-opt", "max-size=2k")
    s.run()
    s.wait()
    assert s.log_path.stat().st_size <= 2048
    assert not s.log_path.with_name(s.log_path.name + ".1").exists()
    assert s.log_entries()[-1]["log"] == "line-499-yyyyyyyyyyyyyyyy\n"


def test_full_log_disk_does_not_stop_container(make_shim, workdir):
    """The log's file system fills up: the shim says so in its own log, drops
    output, and the container runs on, exits, and is reported."""
    mnt = workdir / "tiny"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)],
                       capture_output=True)
    if r.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs: {r.stderr}")
    try:
        s = make_shim(["sh", "-c", "i=0; while [ $i -lt 3000 ]; do echo filler-$i-zzzzzzzzzzzzzzzzzz; "
                                   "i=$((i+1)); done; echo finished >&2; exit 3"])
        s.log_path = mnt / "ctr.log"
        s.start()
        s.run()
        ex = s.wait()
        assert ex["exit_code"] == 3
        shim_log = (s.state_dir / "shim.log").read_text()
        assert "No space left on device" in shim_log
        # what was written is whole lines only
        for line in s.log_path.read_text().splitlines():
            json.loads(line)
        assert s.state()["status"] == "STOPPED"
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_slow_attach_client_does_not_block(make_shim):
    """A client that never reads is dropped; the container and the log go on."""
    s = make_shim(["sh", "-c", "head -c 20000000 /dev/zero | tr '\\0' x | fold -w 100; echo done"])
    s.start()
    s.ctl("create")
    lazy = Attach(s)
    lazy.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.ctl("start")
    t0 = time.monotonic()
    assert s.wait(timeout=120)["exit_code"] == 0
    assert time.monotonic() - t0 < 60
    entries = s.log_entries()
    # fold leaves the last 100 x without "\n": "done" ends that line
    assert len(entries) == 200000 and entries[-1]["log"] == "x" * 100 + "done\n"
    shim_log = (s.state_dir / "shim.log").read_text()
    assert "disconnecting it" in shim_log
    lazy.close()


def test_frames_are_exact_under_load(make_shim):
    s = make_shim(["sh", "-c", "i=0; while [ $i -lt 3000 ]; do echo o$i; echo e$i >&2; i=$((i+1)); done"])
    s.start()
    s.ctl("create")
    a = Attach(s)
    s.ctl("start")
    s.wait()
    frames = parse_frames(a.read_all())
    out = b"".join(v for k, v in frames if k == "stdout").decode().split()
    err = b"".join(v for k, v in frames if k == "stderr").decode().split()
    assert out == [f"o{i}" for i in range(3000)]
    assert err == [f"e{i}" for i in range(3000)]
    assert os.path.getsize(s.log_path) > 0
