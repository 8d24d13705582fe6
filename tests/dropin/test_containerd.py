"""containerd: a private containerd runs containers through the
io.containerd.runc.v2 shim with `ctr run --runc-binary <runtime>`.

The shim calls the runtime as ``--root R --log B/log.json --log-format json``
followed by create / start / exec / kill / ps / pause / resume / delete /
state, so every test here goes through that CLI contract.
"""

import json
import os
import re
import time

import pytest

import helpers
from conftest import IMAGE_TESTER, new_id
from helpers import Background, run, run_pty, wait_for

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
TRAP_LOOP = 'trap "echo got-term; exit 7" TERM; echo ready; while :; do sleep 0.05; done'


class Ctd:
    """The session's containerd, plus the ids this test used (removed after)."""

    def __init__(self, containerd):
        self.c = containerd
        self.ids = []

    def __getattr__(self, name):
        return getattr(self.c, name)

    def new_id(self):
        cid = new_id()
        self.ids.append(cid)
        return cid

    def cleanup(self):
        tasks = self.c.tasks()
        for cid in self.ids:
            if cid in tasks:
                self.c.ctr("task", "kill", "-s", "SIGKILL", "--all", cid)
                self.c.ctr("task", "rm", "-f", cid)
            self.c.ctr("container", "rm", cid)


@pytest.fixture
def ctd(containerd):
    c = Ctd(containerd)
    yield c
    c.cleanup()


def log_text(path):
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def stop_and_remove(ctd, cid):
    ctd.ctr("task", "kill", "-s", "SIGKILL", cid)
    wait_for(lambda: ctd.task_status(cid) in ("STOPPED", None), what=f"{cid} stopped")
    p = ctd.ctr("task", "rm", cid)
    assert p.returncode == 0, p.stderr
    p = ctd.ctr("container", "rm", cid)
    assert p.returncode == 0, p.stderr


# --------------------------------------------------------------------------
# run: exit codes, stdio, env, cwd, tty, read-only, user


def test_exit_code_stdout_stderr(ctd):
    cid = ctd.new_id()
    p = ctd.run(cid, "sh", "-c", "echo out; echo err >&2; exit 3")
    assert p.returncode == 3, p.stderr
    assert p.stdout == "out\n"
    assert p.stderr == "err\n"
    assert ctd.wait_clean(cid) == []


@pytest.mark.parametrize("code", [0, 1, 42, 255])
def test_exit_codes(ctd, code):
    cid = ctd.new_id()
    p = ctd.run(cid, "sh", "-c", f"exit {code}")
    assert p.returncode == code, p.stderr
    assert ctd.wait_clean(cid) == []


def test_short_lived_containers_start_reliably(ctd):
    """A container whose process exits at once must still start cleanly:
    the shim reaps it at once, so `start` must not mistake a process that
    already ran for one that died before start.  (4 at a time: the load
    widens any window between `start` opening the fifo and checking the
    process.)"""
    from concurrent.futures import ThreadPoolExecutor
    n = 80
    ids = [ctd.new_id() for _ in range(n)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda cid: ctd.run(cid, "true"), ids))
    failures = [f"{cid}: rc={p.returncode} {p.stderr.strip()}"
                for cid, p in zip(ids, results) if p.returncode != 0 or p.stderr]
    assert failures == [], f"{len(failures)}/{n} failed:\n" + "\n".join(failures)


def test_stdin(ctd):
    cid = ctd.new_id()
    # ctr never closes the task's stdin on EOF, so read a known number of lines
    p = ctd.run(cid, "sh", "-c", "read a; read b; echo got:$a:$b", input="hello\nworld\n")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "got:hello:world\n"


def test_env_and_cwd(ctd):
    cid = ctd.new_id()
    p = ctd.run(cid, "sh", "-c", 'echo "FOO=$FOO"; echo "SP=$SP"; echo "PATH=$PATH"; pwd',
                opts=["--env", "FOO=bar", "--env", "SP=a b  c", "--cwd", "/tmp"])
    assert p.returncode == 0, p.stderr
    assert p.stdout == f"FOO=bar\nSP=a b  c\nPATH={PATH}\n/tmp\n"


def test_cwd_created_when_missing(ctd):
    cid = ctd.new_id()
    p = ctd.run(cid, "pwd", opts=["--cwd", "/new/dir"])
    assert p.returncode == 0, p.stderr
    assert p.stdout == "/new/dir\n"


def test_tty(ctd):
    cid = ctd.new_id()
    rc, out = run_pty(ctd.run_argv(
        # ctr sets the pty's size only after the task has started
        cid, "sh", "-c", "tty; [ -t 0 ] && [ -t 1 ] && echo both-tty; sleep 0.5; stty size; "
        "exit 4",
        opts=["--rm", "-t"]), rows=40, cols=100)
    assert rc == 4, out
    assert "/dev/pts/0\n" in out
    assert "40 100\n" in out
    assert "both-tty\n" in out
    assert ctd.wait_clean(cid) == []


def test_tty_interactive_shell(ctd):
    cid = ctd.new_id()
    rc, out = run_pty(ctd.run_argv(cid, "sh", opts=["--rm", "-t"]),
                      input="echo hi-$((6*7))\nexit 5\n", wait_for_text="# ")
    assert rc == 5, out
    assert "hi-42" in out


def test_read_only_rootfs(ctd):
    cid = ctd.new_id()
    p = ctd.run(cid, "sh", "-c",
                "touch /x 2>&1; echo rc=$?; touch /dev/shm/y && echo shm-ok; "
                "grep ' / / ' /proc/self/mountinfo", opts=["--read-only"])
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert "Read-only file system" in lines[0], p.stdout
    assert lines[1] == "rc=1"
    assert "shm-ok" in lines
    root_opts = lines[-1].split()[5].split(",")
    assert "ro" in root_opts, lines[-1]


def test_non_root_user_with_additional_groups(ctd):
    """The image's User is "tester": containerd resolves uid 1000, gid 1000
    and the additional groups 10 (wheel) and 29 (audio) from the image."""
    cid = ctd.new_id()
    p = ctd.run(cid, "sh", "-c",
                "id; pwd; grep -E '^(Uid|Gid|Groups):' /proc/self/status; "
                "touch /home/tester/f && stat -c %u:%g /home/tester/f; "
                "touch /not-mine 2>&1; true", image=IMAGE_TESTER)
    assert p.returncode == 0, p.stderr
    out = p.stdout.splitlines()
    m = re.match(r"uid=1000\(tester\) gid=1000\(tester\) groups=(.*)$", out[0])
    assert m, out[0]
    groups = {int(g.split("(")[0]) for g in m.group(1).split(",")}
    assert groups == {10, 29, 1000}, out[0]
    assert out[1] == "/home/tester"
    assert re.split(r"\s+", out[2]) == ["Uid:", "1000", "1000", "1000", "1000"]
    assert re.split(r"\s+", out[3]) == ["Gid:", "1000", "1000", "1000", "1000"]
    assert {int(g) for g in out[4].split()[1:]} == {10, 29, 1000}
    assert out[5] == "1000:1000"
    assert "Permission denied" in out[6]


PROBE = r"""
id
echo "cwd=$(pwd)"
umask
ulimit -n
ulimit -Hn
grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):' /proc/self/status
env | sort
ls -ln /dev | awk 'NR>1 {print $1, $3, $4, $5, $6, $NF}'
cat /proc/self/mountinfo
"""


def _normalize_probe(text):
    """Keep mountinfo's mount point, per-mount options, fstype and (except
    for the rootfs overlay, whose options hold host paths) super options."""
    out = []
    for line in text.splitlines():
        if " - " in line and re.match(r"^\d+ \d+ \d+:\d+ ", line):
            pre, _, post = line.partition(" - ")
            f, p = pre.split(), post.split()
            superopts = p[2] if len(p) > 2 and p[0] != "overlay" else ""
            out.append(f"mount {f[4]} {f[5]} {p[0]} {superopts}")
        else:
            out.append(line)
    return out


def test_same_view_as_peer(ctd, containerd, peer_runtime):
    """Identity, capabilities, env, /dev and mounts seen from inside are
    the same as with the peer runtime (runc) for the same ctr command."""
    res = {}
    for rt in (containerd.runtime, peer_runtime):
        cid = ctd.new_id()
        p = ctd.run(cid, "sh", "-c", PROBE, rt=rt, opts=["--env", "X=1"])
        assert p.returncode == 0, f"{rt}: {p.stderr}"
        res[rt] = _normalize_probe(p.stdout)
        assert ctd.wait_clean(cid, rt=rt) == []
    mine, peer = res[containerd.runtime], res[peer_runtime]
    assert mine == peer, helpers.diff(peer, mine, peer_runtime, containerd.runtime)


# --------------------------------------------------------------------------
# detached + exec


@pytest.fixture(scope="class")
def running(containerd):
    """One detached container for the exec tests (env FOO=bar)."""
    cid = new_id()
    containerd.run_detached(cid, "sh", "-c", TRAP_LOOP, opts=["--env", "FOO=bar"])
    yield cid
    containerd.ctr("task", "kill", "-s", "SIGKILL", cid)
    containerd.ctr("task", "rm", "-f", cid)
    containerd.ctr("container", "rm", cid)


class TestExec:
    """exec into one detached container (env FOO=bar)."""

    def test_exec_output_and_exit_code(self, containerd, running):
        p = run(containerd.exec_argv(running, "e1", "sh", "-c",
                                     'echo exec-out; echo exec-err >&2; echo "FOO=$FOO"; exit 5'))
        assert p.returncode == 5, p.stderr
        assert p.stdout == "exec-out\nFOO=bar\n"
        assert p.stderr == "exec-err\n"
        assert containerd.task_status(running) == "RUNNING"

    def test_exec_sees_container_namespaces(self, containerd, running):
        init = containerd.task_pid(running)
        p = run(containerd.exec_argv(running, "ens", "sh", "-c",
                                     "echo $$; for n in pid mnt uts ipc net; do "
                                     "readlink /proc/self/ns/$n; done"))
        assert p.returncode == 0, p.stderr
        lines = p.stdout.split()
        assert int(lines[0]) > 1  # in the container's pid namespace, not pid 1
        host = [os.readlink(f"/proc/{init}/ns/{ns}") for ns in ("pid", "mnt", "uts", "ipc", "net")]
        assert lines[1:] == host

    def test_exec_user_and_cwd(self, containerd, running):
        p = run(containerd.exec_argv(running, "e2", "sh", "-c", "id -u; id -g; pwd",
                                     opts=["--user", "1000", "--cwd", "/tmp"]))
        assert p.returncode == 0, p.stderr
        assert p.stdout == "1000\n1000\n/tmp\n"

    def test_exec_stdin(self, containerd, running):
        p = run(containerd.exec_argv(running, "e3", "sh", "-c", "read l; echo got:$l"),
                input="via-stdin\n")
        assert p.returncode == 0, p.stderr
        assert p.stdout == "got:via-stdin\n"

    def test_exec_tty(self, containerd, running):
        rc, out = run_pty(containerd.exec_argv(running, "e4", "sh", "-c",
                                               # ctr resizes an exec's pty only after start
                                               "tty; [ -t 0 ] && echo in-tty; sleep 0.5; "
                                               "stty size; exit 6",
                                               opts=["-t"]), rows=30, cols=90)
        assert rc == 6, out
        assert re.search(r"^/dev/pts/\d+$", out, re.M), out
        assert "30 90\n" in out
        assert "in-tty\n" in out

    def test_exec_missing_command(self, containerd, running):
        p = run(containerd.exec_argv(running, "e5", "nosuchcmd"))
        assert p.returncode != 0
        assert "nosuchcmd" in p.stderr, p.stderr
        assert "did not terminate successfully" not in p.stderr, p.stderr
        assert containerd.task_status(running) == "RUNNING"


def test_exec_detached_shows_in_ps(ctd):
    cid = ctd.new_id()
    log = ctd.run_detached(cid, "sh", "-c", "sleep 1000 & sleep 1001 & echo ready; wait")
    wait_for(lambda: "ready" in log_text(log), what="container ready")
    p = run(ctd.exec_argv(cid, "ed", "sleep", "1002", opts=["-d"]))
    assert p.returncode == 0, p.stderr
    p = ctd.ctr("task", "ps", cid)
    assert p.returncode == 0, p.stderr
    pids = [int(line.split()[0]) for line in p.stdout.splitlines()[1:]]
    init = ctd.task_pid(cid)
    assert init in pids
    cmds = {}
    for pid in pids:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmds[pid] = f.read().replace(b"\0", b" ").decode().strip()
    assert sorted(cmds.values()) == sorted([cmds[init], "sleep 1000", "sleep 1001",
                                            "sleep 1002"]), cmds
    stop_and_remove(ctd, cid)
    assert ctd.wait_clean(cid) == []


# --------------------------------------------------------------------------
# pause / resume / metrics


def _frozen(ns_cid):
    d = helpers.cgroup_dir("freezer", ns_cid)
    if d is not None:
        return d.joinpath("freezer.state").read_text().strip()
    return "FROZEN" if (helpers.Path("/sys/fs/cgroup") / ns_cid / "cgroup.freeze") \
        .read_text().strip() == "1" else "THAWED"


def test_pause_resume(ctd):
    cid = ctd.new_id()
    log = ctd.run_detached(cid, "sh", "-c",
                           "i=0; while :; do i=$((i+1)); echo $i; sleep 0.02; done")
    wait_for(lambda: len(log_text(log).split()) > 3, what="counter running")
    p = ctd.ctr("task", "pause", cid)
    assert p.returncode == 0, p.stderr
    assert ctd.task_status(cid) == "PAUSED"
    assert _frozen(f"{ctd.ns}/{cid}") == "FROZEN"
    time.sleep(0.2)
    n1 = len(log_text(log).split())
    time.sleep(0.5)
    assert len(log_text(log).split()) == n1, "output went on while paused"
    p = ctd.ctr("task", "resume", cid)
    assert p.returncode == 0, p.stderr
    assert ctd.task_status(cid) == "RUNNING"
    assert _frozen(f"{ctd.ns}/{cid}") == "THAWED"
    wait_for(lambda: len(log_text(log).split()) > n1 + 3, what="counter running again")
    stop_and_remove(ctd, cid)
    assert ctd.wait_clean(cid) == []


def test_metrics_and_memory_limit(ctd):
    cid = ctd.new_id()
    limit = 64 << 20
    log = ctd.run_detached(cid, "sh", "-c", "sleep 1000 & sleep 1001 & echo ready; wait",
                           opts=["--memory-limit", str(limit)])
    wait_for(lambda: "ready" in log_text(log), what="container ready")
    assert int(helpers.cgroup_limit("memory", f"{ctd.ns}/{cid}")) == limit
    p = ctd.ctr("task", "metrics", "--format", "json", cid)
    assert p.returncode == 0, p.stderr
    m = json.loads(p.stdout)
    assert m["pids"]["current"] == 3, m["pids"]
    if "usage" in m["memory"]:          # cgroup v1
        assert m["memory"]["usage"]["limit"] == limit
        assert m["memory"]["usage"]["usage"] > 0
        assert m["cpu"]["usage"]["total"] > 0
    else:                               # cgroup v2
        assert m["memory"]["usage_limit"] == limit
        assert m["memory"]["usage"] > 0
        assert m["cpu"]["usage_usec"] > 0
    p = ctd.ctr("task", "metrics", cid)
    assert p.returncode == 0, p.stderr
    stop_and_remove(ctd, cid)
    assert ctd.wait_clean(cid) == []


# --------------------------------------------------------------------------
# kill


def _attached(ctd, cid, script, opts=()):
    bg = Background(ctd.run_argv(cid, "sh", "-c", script, opts=("--rm", *opts)),
                    directory=ctd.base)
    return bg


def test_kill_sigterm_honoured(ctd):
    cid = ctd.new_id()
    bg = _attached(ctd, cid, TRAP_LOOP)
    try:
        bg.wait_output("ready")
        p = ctd.ctr("task", "kill", cid)  # default SIGTERM
        assert p.returncode == 0, p.stderr
        assert bg.wait(timeout=20) == 7, bg.stderr
        assert "got-term" in bg.stdout
    finally:
        bg.close()
    assert ctd.wait_clean(cid) == []


def test_kill_sigkill_137(ctd):
    cid = ctd.new_id()
    bg = _attached(ctd, cid, 'trap "" TERM; echo ready; while :; do sleep 0.05; done')
    try:
        bg.wait_output("ready")
        p = ctd.ctr("task", "kill", "-s", "SIGKILL", cid)
        assert p.returncode == 0, p.stderr
        assert bg.wait(timeout=20) == 137, bg.stderr
    finally:
        bg.close()
    assert ctd.wait_clean(cid) == []


def test_kill_all(ctd):
    """--all signals every process of the container: the init's trap runs
    and its children die, so the second `wait` returns and init exits 9.
    Without --all the children would live on and the task never exit."""
    cid = ctd.new_id()
    bg = _attached(ctd, cid, 'trap "echo term-init" TERM; sleep 1000 & sleep 1001 & '
                             'echo ready; wait; wait; echo children-gone; exit 9')
    try:
        bg.wait_output("ready")
        p = ctd.ctr("task", "kill", "--all", cid)
        assert p.returncode == 0, p.stderr
        assert bg.wait(timeout=20) == 9, (bg.stdout, bg.stderr)
        assert "term-init" in bg.stdout
        assert "children-gone" in bg.stdout
    finally:
        bg.close()
    assert ctd.wait_clean(cid) == []


# --------------------------------------------------------------------------
# limits


def test_memory_limit_oom_137(ctd):
    cid = ctd.new_id()
    p = ctd.run(cid, "sh", "-c", "exec tail /dev/zero", opts=["--memory-limit", str(32 << 20)])
    assert p.returncode == 137, p.stderr
    assert ctd.wait_clean(cid) == []


def test_pids_limit(ctd, layer_rootfs):
    """ctr 1.6 has no pids flag: a full spec (ctr oci spec + pids.limit 8)
    goes in through --config, with the image's rootfs as root.path.  The
    init and 7 children fit; the 8th fork fails."""
    cid = ctd.new_id()
    p = ctd.ctr("oci", "spec")
    assert p.returncode == 0, p.stderr
    spec = json.loads(p.stdout)
    spec["root"] = {"path": str(layer_rootfs), "readonly": True}
    spec["process"]["args"] = ["sh", "-c", "cat /proc/self/cgroup >/dev/null; i=0; "
                               "while [ $i -lt 20 ]; do sleep 10 & i=$((i+1)); "
                               "echo forked:$i; done"]
    spec["process"]["env"] = [f"PATH={PATH}"]
    spec["linux"]["cgroupsPath"] = f"/{ctd.ns}/{cid}"
    spec["linux"].setdefault("resources", {})["pids"] = {"limit": 8}
    cfg = ctd.base / f"{cid}.json"
    cfg.write_text(json.dumps(spec))
    p = run(ctd.argv("run", "--rm", *ctd.run_opts(), "--config", cfg, cid))
    assert p.returncode == 2, (p.stdout, p.stderr)  # ash: fork failure is fatal
    assert p.stdout.split() == [f"forked:{i}" for i in range(1, 8)]
    assert "can't fork" in p.stderr
    assert ctd.wait_clean(cid) == []


# --------------------------------------------------------------------------
# removal and errors


def test_task_rm_force_running(ctd):
    cid = ctd.new_id()
    ctd.run_detached(cid, "sh", "-c", TRAP_LOOP)
    pid = ctd.task_pid(cid)
    p = ctd.ctr("task", "rm", "-f", cid)
    assert p.returncode == 0, p.stderr
    assert ctd.task_status(cid) is None
    assert not helpers.pid_alive(pid)
    p = ctd.ctr("container", "rm", cid)
    assert p.returncode == 0, p.stderr
    assert ctd.wait_clean(cid) == []


@pytest.mark.parametrize("cmd,opts,words", [
    (["nosuchcmd"], [], ["nosuchcmd", "not found"]),
    (["pwd"], ["--cwd", "/etc/passwd"], ["/etc/passwd", "not a directory"]),
], ids=["missing-command", "cwd-is-a-file"])
def test_create_failure_reaches_user(ctd, cmd, opts, words):
    """containerd reads the runtime's JSON --log: its message must reach the
    ctr user, not just an exit status."""
    cid = ctd.new_id()
    p = ctd.run(cid, *cmd, opts=opts)
    assert p.returncode != 0
    err = p.stderr.lower()
    for w in words:
        assert w.lower() in err, p.stderr
    assert "did not terminate successfully" not in p.stderr
    assert ctd.wait_clean(cid) == []


@pytest.mark.ocirun_only
def test_create_failure_is_ocirun_message(ctd):
    cid = ctd.new_id()
    p = ctd.run(cid, "nosuchcmd")
    assert p.returncode != 0
    # the shim's generic prefix, then ocirun's one line (not runc's wording)
    assert "OCI runtime create failed:" in p.stderr, p.stderr
    assert "runc create failed" not in p.stderr


def test_zz_nothing_left_behind(containerd):
    """After every test above: no runtime state, cgroups, mounts or shims."""
    ns = containerd.ns

    def check():
        problems = []
        sd = containerd.runtime_root() / ns
        if sd.exists():
            problems += [f"runtime state {p}" for p in sd.iterdir()]
        for d in helpers.cgroup_dirs(ns):
            problems += [f"cgroup {s}" for s in d.iterdir() if s.is_dir()]
        problems += [f"mount {m}" for m in helpers.mounts_under(containerd.base)]
        sock = str(containerd.sock)
        problems += [f"shim {pid}" for pid, c in helpers.processes()
                     if c and os.path.basename(c[0]) == "containerd-shim-runc-v2" and sock in c]
        tasks = containerd.tasks()
        problems += [f"task {t}" for t in tasks]
        return problems

    assert helpers.settle(check, 10) == []
