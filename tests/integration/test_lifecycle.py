"""create / start / state / kill / delete / list."""

import json
import os
import re
import time

import pytest

from conftest import wait_for

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")

# init waits for /tmp/stop (written by the test through the bundle rootfs)
WAIT_STOP = ("touch /tmp/started; while [ ! -e /tmp/stop ]; do sleep 0.05; done; "
             "echo done > /tmp/finished")
LOOP = 'trap "exit 0" TERM; while :; do sleep 0.05; done'


def create(rt, b, *extra, **kw):
    p = rt("create", *extra, "-b", b.path, b.id, **kw)
    assert p.returncode == 0, f"create failed rc={p.returncode}: {p.stderr}"
    return p


def start_running(rt, bundle, script=LOOP, **kw):
    b = bundle(["sh", "-c", script, "@MARKER@"], **kw)
    create(rt, b)
    assert rt("start", b.id).returncode == 0
    rt.wait_status(b.id, "running")
    return b


def test_create_state_start_stop_delete(rt, bundle, leftovers):
    b = bundle(["sh", "-c", WAIT_STOP, "@MARKER@"])
    p = create(rt, b)
    assert p.stdout == ""

    st = rt.state(b.id)
    assert st["status"] == "created"
    for key in ("ociVersion", "id", "pid", "status", "bundle", "rootfs", "created", "owner"):
        assert key in st, f"state lacks {key}: {st}"
    assert st["id"] == b.id
    assert isinstance(st["pid"], int) and st["pid"] > 0
    assert os.path.isdir(f"/proc/{st['pid']}")
    assert os.path.isabs(st["bundle"])
    assert os.path.realpath(st["bundle"]) == os.path.realpath(b.path)
    assert os.path.realpath(st["rootfs"]) == os.path.realpath(b.rootfs)
    assert RFC3339.match(st["created"]), st["created"]
    assert isinstance(st["owner"], str)
    assert isinstance(st["ociVersion"], str) and st["ociVersion"]

    # the user process has not been started yet
    time.sleep(0.3)
    assert not (b.rootfs / "tmp" / "started").exists()
    assert rt.state(b.id)["status"] == "created"

    p = rt("start", b.id)
    assert p.returncode == 0, p.stderr
    wait_for(lambda: (b.rootfs / "tmp" / "started").exists(), what="process started")
    st2 = rt.state(b.id)
    assert st2["status"] == "running"
    assert st2["pid"] == st["pid"]
    assert st2["created"] == st["created"]

    # starting twice is an error
    p = rt("start", b.id)
    assert p.returncode != 0

    (b.rootfs / "tmp" / "stop").touch()
    wait_for(lambda: (b.rootfs / "tmp" / "finished").exists(), what="process finished")
    rt.wait_status(b.id, "stopped")
    assert rt("start", b.id).returncode != 0

    p = rt("delete", b.id)
    assert p.returncode == 0, p.stderr
    p = rt("state", b.id)
    assert p.returncode != 0
    assert p.stdout.strip() == ""
    assert leftovers(b) == []


def test_create_pid_file(rt, bundle, tmp_path):
    b = bundle(["sh", "-c", LOOP])
    pidfile = tmp_path / "pidfile"
    create(rt, b, "--pid-file", pidfile)
    text = pidfile.read_text()
    assert text.strip().isdigit(), repr(text)
    assert int(text) == rt.state(b.id)["pid"]
    # relative --pid-file is relative to the runtime's cwd
    b2 = bundle(["sh", "-c", LOOP])
    p = rt("create", "--pid-file", "rel.pid", "-b", b2.path, b2.id, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert int((tmp_path / "rel.pid").read_text()) == rt.state(b2.id)["pid"]


def test_run_detach(rt, bundle, tmp_path, leftovers):
    b = bundle(["sh", "-c", LOOP, "@MARKER@"])
    pidfile = tmp_path / "run.pid"
    t0 = time.monotonic()
    p = rt("run", "-d", "--pid-file", pidfile, "-b", b.path, b.id, timeout=15)
    assert p.returncode == 0, p.stderr
    assert time.monotonic() - t0 < 10
    st = rt.state(b.id)
    assert st["status"] == "running"
    assert int(pidfile.read_text()) == st["pid"]
    # default signal is SIGTERM
    assert rt("kill", b.id).returncode == 0
    rt.wait_status(b.id, "stopped")
    assert rt("delete", b.id).returncode == 0
    assert leftovers(b) == []


def test_run_detach_long_option(rt, bundle):
    b = bundle(["sh", "-c", LOOP])
    p = rt("run", "--detach", "-b", b.path, b.id)
    assert p.returncode == 0, p.stderr
    assert rt.state(b.id)["status"] == "running"


@pytest.mark.parametrize("sig", ["KILL", "SIGKILL", "9"])
def test_kill_signal_forms(rt, bundle, sig, leftovers):
    b = start_running(rt, bundle, "while :; do sleep 0.05; done")
    p = rt("kill", b.id, sig)
    assert p.returncode == 0, p.stderr
    rt.wait_status(b.id, "stopped")
    assert rt("delete", b.id).returncode == 0
    assert leftovers(b) == []


def test_kill_default_is_sigterm(rt, bundle):
    b = start_running(rt, bundle, 'trap "echo term > /tmp/got; exit 0" TERM; '
                                  'trap "echo int > /tmp/got; exit 0" INT; '
                                  'while :; do sleep 0.05; done')
    assert rt("kill", b.id).returncode == 0
    rt.wait_status(b.id, "stopped")
    assert (b.rootfs / "tmp" / "got").read_text().strip() == "term"


def test_kill_created_container(rt, bundle):
    b = bundle(["sh", "-c", LOOP, "@MARKER@"])
    create(rt, b)
    assert rt("kill", b.id, "KILL").returncode == 0
    rt.wait_status(b.id, "stopped")
    assert rt("delete", b.id).returncode == 0


def test_kill_all(rt, bundle):
    # init (pid 1, no TERM handler) ignores SIGTERM; its child does not.
    b = start_running(rt, bundle, "sleep 1000 & wait $!; touch /tmp/child-gone; "
                                  "while :; do sleep 0.05; done")
    gone = b.rootfs / "tmp" / "child-gone"
    assert rt("kill", b.id, "TERM").returncode == 0
    time.sleep(0.4)
    assert not gone.exists(), "kill without --all must only signal init"
    assert rt.status(b.id) == "running"
    p = rt("kill", "--all", b.id, "TERM")
    assert p.returncode == 0, p.stderr
    wait_for(gone.exists, what="child killed by kill --all")
    assert rt.status(b.id) == "running"
    p = rt("kill", "-a", b.id, "KILL")
    assert p.returncode == 0, p.stderr
    rt.wait_status(b.id, "stopped")


def test_kill_stopped_container_fails(rt, bundle):
    b = bundle(["true"])
    create(rt, b)
    assert rt("start", b.id).returncode == 0
    rt.wait_status(b.id, "stopped")
    p = rt("kill", b.id, "KILL")
    assert p.returncode != 0
    assert p.stderr.strip()


def test_kill_invalid_signal(rt, bundle):
    b = start_running(rt, bundle)
    p = rt("kill", b.id, "NOSUCHSIG")
    assert p.returncode != 0
    assert "signal" in p.stderr.lower(), p.stderr
    assert rt.status(b.id) == "running"


def test_delete_running_needs_force(rt, bundle, leftovers):
    b = start_running(rt, bundle)
    p = rt("delete", b.id)
    assert p.returncode != 0
    assert "running" in p.stderr, p.stderr
    assert rt.status(b.id) == "running"
    p = rt("delete", "--force", b.id)
    assert p.returncode == 0, p.stderr
    assert rt("state", b.id).returncode != 0
    assert leftovers(b) == []


def test_delete_force_short_and_created(rt, bundle, leftovers):
    b = bundle(["sh", "-c", LOOP, "@MARKER@"])
    create(rt, b)
    p = rt("delete", "-f", b.id)
    assert p.returncode == 0, p.stderr
    assert rt("state", b.id).returncode != 0
    assert leftovers(b) == []


def test_delete_created_without_force(rt, bundle, leftovers):
    # runc allows deleting a created (not yet started) container
    b = bundle(["sh", "-c", LOOP, "@MARKER@"])
    create(rt, b)
    p = rt("delete", b.id)
    assert p.returncode == 0, p.stderr
    assert leftovers(b) == []


def test_list(rt, bundle):
    # empty root: header only / JSON null
    p = rt("list")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    p = rt("list", "--format", "json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) is None
    assert p.stdout.strip() == "null"
    p = rt("list", "-q")
    assert p.returncode == 0 and p.stdout == ""

    b1 = start_running(rt, bundle)
    b2 = bundle(["sh", "-c", LOOP])
    create(rt, b2)
    st1, st2 = rt.state(b1.id), rt.state(b2.id)

    p = rt("list")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    rows = {l.split()[0]: l.split() for l in lines[1:]}
    assert set(rows) == {b1.id, b2.id}
    assert rows[b1.id][1:5] == [str(st1["pid"]), "running", str(b1.path), st1["created"]]
    assert rows[b2.id][1:5] == [str(st2["pid"]), "created", str(b2.path), st2["created"]]
    # columns are aligned: every row starts its fields where the header does
    for col in ("PID", "STATUS", "BUNDLE"):
        pos = lines[0].index(col)
        for l in lines[1:]:
            assert l[pos - 1] == " " and l[pos] != " ", (col, lines)

    p = rt("list", "--format", "json")
    assert p.returncode == 0, p.stderr
    arr = json.loads(p.stdout)
    assert isinstance(arr, list) and len(arr) == 2
    by_id = {o["id"]: o for o in arr}
    for b, st in ((b1, st1), (b2, st2)):
        o = by_id[b.id]
        for key in ("id", "pid", "status", "bundle", "created"):
            assert key in o, (key, o)
        assert o["pid"] == st["pid"]
        assert o["status"] == st["status"]
        assert o["bundle"] == str(b.path)
        assert o["created"] == st["created"]

    p = rt("list", "-q")
    assert p.returncode == 0
    assert sorted(p.stdout.split()) == sorted([b1.id, b2.id])
    assert len(p.stdout.splitlines()) == 2

    # stopped containers are listed as stopped
    assert rt("kill", b1.id, "KILL").returncode == 0
    rt.wait_status(b1.id, "stopped")
    p = rt("list", "--format", "json")
    assert {o["id"]: o["status"] for o in json.loads(p.stdout)}[b1.id] == "stopped"


def test_stdout_appears_only_after_start(rt, bundle, tmp_path):
    b = bundle(["sh", "-c", "echo hello-from-container; echo to-stderr >&2"])
    out = tmp_path / "out.txt"
    err = tmp_path / "err.txt"
    with open(out, "wb") as fo, open(err, "wb") as fe:
        p = rt("create", "-b", b.path, b.id, stdout=fo, stderr=fe)
    assert p.returncode == 0, err.read_text()
    time.sleep(0.3)
    assert "hello-from-container" not in out.read_text()
    assert rt("start", b.id).returncode == 0
    wait_for(lambda: "hello-from-container" in out.read_text(), what="output after start")
    wait_for(lambda: "to-stderr" in err.read_text(), what="stderr after start")
    rt.wait_status(b.id, "stopped")
    assert out.read_text() == "hello-from-container\n"


def test_stdin_passed_to_run(rt, bundle, tmp_path):
    b = bundle(["sh", "-c", "read line; echo got:$line"])
    inp = tmp_path / "in.txt"
    inp.write_text("hello\n")
    with open(inp, "rb") as fi:
        p = rt("run", "-b", b.path, b.id, stdin=fi)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "got:hello\n"


def test_bundle_defaults_to_cwd(rt, bundle):
    b = bundle(["echo", "from-cwd"])
    p = rt("run", b.id, cwd=b.path)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "from-cwd\n"


def test_stopped_state_pid_is_zero(rt, bundle):
    b = bundle(["true"])
    create(rt, b)
    assert rt("start", b.id).returncode == 0
    rt.wait_status(b.id, "stopped")
    st = rt.state(b.id)
    assert st["status"] == "stopped"
    # runc reports pid 0 for a stopped container
    assert st["pid"] == 0
