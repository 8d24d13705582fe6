"""dockerd: Debian's dockerd (private data-root, exec-root, socket, bridge)
with ``--add-runtime ocirun=<runtime>``; every container here is started
with ``docker run --runtime ocirun``.  runc stays dockerd's default runtime.

Containers use ``--network none`` unless networking is the point: the
default bridge is wired by dockerd from an OCI prestart hook
(libnetwork-setkey), tested on its own in test_bridge_network_*.
"""

import os
import re
import time

import pytest

import helpers
from conftest import IMAGE, IMAGE_TESTER, new_id
from helpers import run_pty, wait_for

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
TRAP_LOOP = 'trap "echo got-term; exit 7" TERM; echo ready; while :; do sleep 0.05; done'
NONET = ["--network", "none"]


class Dk:
    """The session's dockerd, plus the containers this test made."""

    def __init__(self, dockerd):
        self.d = dockerd
        self.names = []

    def __getattr__(self, name):
        return getattr(self.d, name)

    def cidfile(self):
        name = new_id("d")
        self.names.append(name)
        return name, self.d.base / f"{name}.cid"

    def run_rm(self, *args, input=None, timeout=60):
        """docker run --rm --name N --cidfile F <args>: (CompletedProcess, full id)."""
        name, cidfile = self.cidfile()
        p = self.d.run("--rm", "--name", name, "--cidfile", cidfile, *args,
                       input=input, timeout=timeout)
        full = cidfile.read_text().strip() if cidfile.exists() else None
        return p, full

    def start(self, *args):
        name, full = self.d.start_detached(*args)
        self.names.append(name)
        return name, full

    def cleanup(self):
        ids = set(self.d.docker("ps", "-aq", "--no-trunc").stdout.split())
        mine = [n for n in self.names
                if self.d.docker("inspect", "-f", "{{.Id}}", n).stdout.strip() in ids]
        if mine:
            self.d.docker("rm", "-f", *mine)


@pytest.fixture
def dk(dockerd):
    d = Dk(dockerd)
    yield d
    d.cleanup()


def remove(dk, name, full):
    p = dk.docker("rm", "-f", name)
    assert p.returncode == 0, p.stderr
    assert dk.wait_clean(full) == []


def state(dk, name):
    return dk.inspect(name)["State"]


# --------------------------------------------------------------------------
# run


def test_exit_code_stdout_stderr(dk):
    p, full = dk.run_rm(*NONET, IMAGE, "sh", "-c", "echo out; echo err >&2; exit 3")
    assert p.returncode == 3, p.stderr
    assert p.stdout == "out\n"
    assert p.stderr == "err\n"
    assert dk.wait_clean(full) == []


@pytest.mark.parametrize("code", [0, 1, 255])
def test_exit_codes(dk, code):
    p, full = dk.run_rm(*NONET, IMAGE, "sh", "-c", f"exit {code}")
    assert p.returncode == code, p.stderr
    assert dk.wait_clean(full) == []


def test_stdin_interactive(dk):
    p, _ = dk.run_rm("-i", *NONET, IMAGE, "sh", "-c", "cat; echo end", input="a\nb\n")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "a\nb\nend\n"


def test_tty(dk):
    name, cidfile = dk.cidfile()
    rc, out = run_pty(dk.run_argv("-t", "--rm", "--name", name, "--cidfile", cidfile, *NONET,
                                  IMAGE, "sh", "-c",
                                  "tty; [ -t 0 ] && [ -t 1 ] && echo both-tty; sleep 0.5; "
                                  "stty size; exit 4"),
                      rows=40, cols=100)
    assert rc == 4, out
    assert "/dev/pts/0\n" in out
    assert "both-tty\n" in out
    assert "40 100\n" in out
    assert dk.wait_clean(cidfile.read_text().strip()) == []


def test_tty_interactive_shell(dk):
    rc, out = run_pty(dk.run_argv("-it", "--rm", *NONET, IMAGE, "sh"),
                      input="echo hi-$((6*7))\nexit 5\n", wait_for_text="# ")
    assert rc == 5, out
    assert "hi-42" in out


def test_env_workdir(dk):
    p, _ = dk.run_rm(*NONET, "-e", "FOO=bar", "-e", "SP=a b  c", "-w", "/tmp", IMAGE,
                     "sh", "-c", 'echo "FOO=$FOO"; echo "SP=$SP"; echo "PATH=$PATH"; pwd')
    assert p.returncode == 0, p.stderr
    assert p.stdout == f"FOO=bar\nSP=a b  c\nPATH={PATH}\n/tmp\n"


@pytest.mark.parametrize("args,uid,gid,groups", [
    (["-u", "1000:1000"], 1000, 1000, {1000}),   # an explicit group: no others
    (["-u", "tester", "--group-add", "5"], 1000, 1000, {5, 10, 29, 1000}),
    ([], 1000, 1000, {10, 29, 1000}),          # the image's User
], ids=["uid-gid", "name-group-add", "image-user"])
def test_user_and_groups(dk, args, uid, gid, groups):
    image = IMAGE_TESTER if not args else IMAGE
    p, _ = dk.run_rm(*NONET, *args, image, "sh", "-c",
                     "id -u; id -g; id -G; grep -E '^(Uid|Gid|Groups):' /proc/self/status")
    assert p.returncode == 0, p.stderr
    out = p.stdout.splitlines()
    assert int(out[0]) == uid and int(out[1]) == gid, p.stdout
    assert {int(g) for g in out[2].split()} == groups, p.stdout
    assert re.split(r"\s+", out[3]) == ["Uid:"] + [str(uid)] * 4
    assert {int(g) for g in out[5].split()[1:]} == groups


def test_read_only(dk):
    p, _ = dk.run_rm(*NONET, "--read-only", IMAGE, "sh", "-c",
                     "touch /x 2>&1; echo rc=$?; touch /dev/shm/y && echo shm-ok")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert "Read-only file system" in lines[0], p.stdout
    assert lines[1:] == ["rc=1", "shm-ok"]


def documented_departures(lines):
    """runc's view, changed where docs/decisions.md says ocirun departs on
    purpose: the /sys/fs/cgroup tmpfs is read-only when its mount says ro."""
    out = []
    for line in lines:
        if line.startswith("mount / /sys/fs/cgroup ") and " tmpfs " in line:
            line = re.sub(r"\brw\b", "ro", line)
        out.append(line)
    return out


def test_same_view_as_runc(dk, is_ocirun):
    """What a process sees inside is the same as under dockerd's runc."""
    probe = r"""
id; umask; ulimit -n; hostname >/dev/null
grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):' /proc/self/status
env | grep -v ^HOSTNAME= | sort
ls -ln /dev | awk 'NR>1 {print $1, $3, $4, $5, $6, $NF}'
cat /proc/self/mountinfo
"""
    res = {}
    for runtime in ("ocirun", "runc"):
        name, cidfile = dk.cidfile()
        p = dk.d.run("--rm", "--name", name, *NONET, IMAGE, "sh", "-c", probe,
                     runtime=runtime)
        assert p.returncode == 0, f"{runtime}: {p.stderr}"
        res[runtime] = _normalize_mounts(p.stdout)
    want = documented_departures(res["runc"]) if is_ocirun else res["runc"]
    assert res["ocirun"] == want, helpers.diff(want, res["ocirun"], "runc", "ocirun")


def _normalize_mounts(text):
    out = []
    for line in text.splitlines():
        if " - " in line and re.match(r"^\d+ \d+ \d+:\d+ ", line):
            pre, _, post = line.partition(" - ")
            f, p = pre.split(), post.split()
            # bind mounts of per-container files carry the container id
            root = re.sub(r"[0-9a-f]{64}", "ID", f[3])
            superopts = p[2] if len(p) > 2 and p[0] != "overlay" else ""
            out.append(f"mount {root} {f[4]} {f[5]} {p[0]} {superopts}")
        else:
            out.append(line)
    return out


def test_volumes_and_tmpfs(dk, tmp_path):
    rw, ro = tmp_path / "rw", tmp_path / "ro"
    rw.mkdir()
    ro.mkdir()
    (ro / "f").write_text("from-host\n")
    p, _ = dk.run_rm(*NONET, "-v", f"{rw}:/data", "-v", f"{ro}:/ro:ro",
                     "--tmpfs", "/run:size=1m", IMAGE, "sh", "-c",
                     "echo from-ctr > /data/out; cat /ro/f; touch /ro/x 2>&1; "
                     "grep ' /run ' /proc/self/mountinfo")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert (rw / "out").read_text() == "from-ctr\n"
    assert lines[0] == "from-host"
    assert "Read-only file system" in lines[1]
    assert " - tmpfs " in lines[2] and "size=1024k" in lines[2], lines[2]


def test_device_and_device_cgroup(dk):
    """--device adds a node the cgroup allows; a node made with mknod
    (CAP_MKNOD is in docker's default set) cannot be opened: the device
    cgroup denies it."""
    st = os.stat("/dev/null")
    maj, mnr = os.major(st.st_rdev), os.minor(st.st_rdev)
    p, _ = dk.run_rm(*NONET, "--device", "/dev/null:/dev/mynull", IMAGE, "sh", "-c",
                     "echo x > /dev/mynull && echo dev-ok; "
                     f"mknod /tmp/n c {maj} {mnr} && echo mknod-ok; "
                     "mknod /tmp/mem c 1 1 && echo mknod2-ok; "
                     "head -c1 /tmp/mem >/dev/null 2>&1 || echo mem-denied")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["dev-ok", "mknod-ok", "mknod2-ok", "mem-denied"], p.stdout


def test_cap_add_same_as_runc(dk):
    """(--privileged asks for every capability, which this sandbox cannot
    grant: runc fails as well.)  --cap-add SYS_ADMIN lets the container
    mount, with docker's default seccomp profile in force."""
    probe = ("grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)|^Seccomp:' /proc/self/status; "
             "mount -t tmpfs none /tmp && echo mounted; "
             "ip link set lo down 2>&1 | sed 's/.*: //'; echo ip-rc=$?")
    res = {}
    for runtime in ("ocirun", "runc"):
        p = dk.d.run("--rm", *NONET, "--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN",
                     "--cap-drop", "CHOWN", IMAGE, "sh", "-c", probe, runtime=runtime)
        assert p.returncode == 0, f"{runtime}: {p.stderr}"
        res[runtime] = p.stdout.splitlines()
    assert "mounted" in res["ocirun"]
    assert res["ocirun"] == res["runc"], helpers.diff(res["runc"], res["ocirun"],
                                                      "runc", "ocirun")


def test_cpu_limits(dk):
    name, full = dk.start(*NONET, "--cpus", "0.5", "--cpuset-cpus", "0", IMAGE,
                          "sleep", "1000")
    rel = f"{dk.cgroup_parent}/{full}"
    cpu = helpers.cgroup_dir("cpu", rel)
    if cpu is not None:
        assert (cpu / "cpu.cfs_quota_us").read_text().strip() == "50000"
        assert (cpu / "cpu.cfs_period_us").read_text().strip() == "100000"
        assert (helpers.cgroup_dir("cpuset", rel) / "cpuset.cpus").read_text().strip() == "0"
    else:
        d = helpers.Path("/sys/fs/cgroup") / rel
        assert (d / "cpu.max").read_text().split() == ["50000", "100000"]
        assert (d / "cpuset.cpus").read_text().strip() == "0"
    p = dk.docker("exec", name, "cat", "/proc/self/status")
    assert re.search(r"^Cpus_allowed_list:\s+0$", p.stdout, re.M), p.stdout
    remove(dk, name, full)


# --------------------------------------------------------------------------
# detached + exec


@pytest.fixture(scope="class")
def running(dockerd):
    name, full = dockerd.start_detached(*NONET, "-e", "FOO=bar", IMAGE, "sh", "-c", TRAP_LOOP)
    yield name
    dockerd.docker("rm", "-f", name)


class TestExec:
    def test_exec_output_and_exit_code(self, dockerd, running):
        p = dockerd.docker("exec", running, "sh", "-c",
                           'echo exec-out; echo exec-err >&2; echo "FOO=$FOO"; exit 5')
        assert p.returncode == 5, p.stderr
        assert p.stdout == "exec-out\nFOO=bar\n"
        assert p.stderr == "exec-err\n"

    def test_exec_user_workdir_env(self, dockerd, running):
        p = dockerd.docker("exec", "-u", "1000", "-w", "/tmp", "-e", "BAR=baz", running,
                           "sh", "-c", 'id -u; id -g; pwd; echo "$FOO $BAR"')
        assert p.returncode == 0, p.stderr
        assert p.stdout == "1000\n1000\n/tmp\nbar baz\n"

    def test_exec_stdin(self, dockerd, running):
        p = dockerd.docker("exec", "-i", running, "sh", "-c", "cat; echo end",
                           input="x\ny\n")
        assert p.returncode == 0, p.stderr
        assert p.stdout == "x\ny\nend\n"

    def test_exec_tty(self, dockerd, running):
        rc, out = run_pty(dockerd.argv("exec", "-t", running, "sh", "-c",
                                       "tty; [ -t 0 ] && echo in-tty; sleep 0.5; stty size; "
                                       "exit 6"), rows=30, cols=90, env=dockerd.env)
        assert rc == 6, out
        assert re.search(r"^/dev/pts/\d+$", out, re.M), out
        assert "in-tty\n" in out
        assert "30 90\n" in out

    def test_exec_missing_command(self, dockerd, running):
        p = dockerd.docker("exec", running, "nosuchcmd")
        assert p.returncode == 126, (p.returncode, p.stdout, p.stderr)
        out = p.stdout + p.stderr  # docker 20.10 prints this error on stdout
        assert "nosuchcmd" in out
        assert "executable file not found" in out, out
        assert state(dockerd, running)["Running"]

    def test_top(self, dockerd, running):
        p = dockerd.docker("exec", "-d", running, "sleep", "1002")
        assert p.returncode == 0, p.stderr
        wait_for(lambda: "sleep 1002" in dockerd.docker("top", running).stdout,
                 what="sleep 1002 in docker top")
        p = dockerd.docker("top", running, "-o", "pid,args")
        assert p.returncode == 0, p.stderr
        lines = p.stdout.splitlines()
        assert lines[0].split() == ["PID", "COMMAND"]
        pids = {int(line.split()[0]): line.split(None, 1)[1] for line in lines[1:]}
        init = state(dockerd, running)["Pid"]
        assert init in pids, pids
        assert any(c.startswith("sleep 1002") for c in pids.values()), pids


# --------------------------------------------------------------------------
# pause, stats, kill, stop, update, restart


def test_pause_unpause(dk):
    name, full = dk.start(*NONET, IMAGE, "sh", "-c",
                          "i=0; while :; do i=$((i+1)); echo $i; sleep 0.02; done")
    count = lambda: len(dk.docker("logs", name).stdout.split())  # noqa: E731
    wait_for(lambda: count() > 3, what="counter running")
    p = dk.docker("pause", name)
    assert p.returncode == 0, p.stderr
    st = state(dk, name)
    assert st["Paused"] and st["Status"] == "paused", st
    d = helpers.cgroup_dir("freezer", f"{dk.cgroup_parent}/{full}")
    if d is not None:
        assert (d / "freezer.state").read_text().strip() == "FROZEN"
    time.sleep(0.2)
    n1 = count()
    time.sleep(0.5)
    assert count() == n1, "output went on while paused"
    p = dk.docker("unpause", name)
    assert p.returncode == 0, p.stderr
    st = state(dk, name)
    assert st["Running"] and not st["Paused"], st
    wait_for(lambda: count() > n1 + 3, what="counter running again")
    remove(dk, name, full)


def test_stats_no_stream(dk):
    name, full = dk.start(*NONET, "--memory", "64m", IMAGE, "sh", "-c",
                          "sleep 1000 & sleep 1001 & wait")
    wait_for(lambda: len(dk.docker("top", name).stdout.splitlines()) == 4,
             what="3 processes")
    p = dk.docker("stats", "--no-stream", "--format", "{{.MemUsage}}|{{.PIDs}}", name)
    assert p.returncode == 0, p.stderr
    mem, pids = p.stdout.strip().split("|")
    assert pids == "3", p.stdout
    used, limit = [s.strip() for s in mem.split("/")]
    assert limit == "64MiB", p.stdout
    assert re.match(r"^[0-9.]+[KMG]i?B$", used) and not used.startswith("0B"), p.stdout
    remove(dk, name, full)


def test_kill_default_sigkill_137(dk):
    name, full = dk.start(*NONET, IMAGE, "sh", "-c",
                          'trap "" TERM; echo ready; while :; do sleep 0.05; done')
    p = dk.docker("kill", name)
    assert p.returncode == 0, p.stderr
    p = dk.docker("wait", name, timeout=30)
    assert p.stdout.strip() == "137", (p.stdout, p.stderr)
    assert state(dk, name)["ExitCode"] == 137
    remove(dk, name, full)


def test_kill_sigterm_honoured(dk):
    name, full = dk.start(*NONET, IMAGE, "sh", "-c", TRAP_LOOP)
    wait_for(lambda: "ready" in dk.docker("logs", name).stdout, what="ready")
    p = dk.docker("kill", "-s", "TERM", name)
    assert p.returncode == 0, p.stderr
    p = dk.docker("wait", name, timeout=30)
    assert p.stdout.strip() == "7", (p.stdout, p.stderr)
    assert "got-term" in dk.docker("logs", name).stdout
    remove(dk, name, full)


def test_stop_graceful(dk):
    name, full = dk.start(*NONET, IMAGE, "sh", "-c", TRAP_LOOP)
    wait_for(lambda: "ready" in dk.docker("logs", name).stdout, what="ready")
    t0 = time.monotonic()
    p = dk.docker("stop", "-t", "10", name)
    assert p.returncode == 0, p.stderr
    assert time.monotonic() - t0 < 5
    st = state(dk, name)
    assert st["ExitCode"] == 7 and not st["Running"], st
    remove(dk, name, full)


def test_stop_escalates_to_sigkill(dk):
    name, full = dk.start(*NONET, IMAGE, "sh", "-c",
                          'trap "" TERM; echo ready; while :; do sleep 0.05; done')
    wait_for(lambda: "ready" in dk.docker("logs", name).stdout, what="ready")
    t0 = time.monotonic()
    p = dk.docker("stop", "-t", "1", name)
    assert p.returncode == 0, p.stderr
    assert time.monotonic() - t0 >= 0.9
    st = state(dk, name)
    assert st["ExitCode"] == 137 and not st["Running"], st
    remove(dk, name, full)


def test_update_resources(dk):
    """docker update goes through the shim's `update --resources -`."""
    name, full = dk.start(*NONET, "--memory", "64m", "--memory-swap", "64m",
                          "--pids-limit", "50", "--cpu-shares", "1024", IMAGE,
                          "sleep", "1000")
    rel = f"{dk.cgroup_parent}/{full}"
    assert int(helpers.cgroup_limit("memory", rel)) == 64 << 20
    assert helpers.cgroup_limit("pids", rel) == "50"
    p = dk.docker("update", "--memory", "128m", "--memory-swap", "256m",
                  "--pids-limit", "20", "--cpu-shares", "512", name)
    assert p.returncode == 0, p.stderr
    assert int(helpers.cgroup_limit("memory", rel)) == 128 << 20
    assert helpers.cgroup_limit("pids", rel) == "20"
    cpu = helpers.cgroup_dir("cpu", rel)
    if cpu is not None:
        assert (cpu / "cpu.shares").read_text().strip() == "512"
    hc = dk.inspect(name)["HostConfig"]
    assert hc["Memory"] == 128 << 20 and hc["PidsLimit"] == 20
    assert state(dk, name)["Running"]
    remove(dk, name, full)


def test_restart(dk):
    name, full = dk.start(*NONET, IMAGE, "sh", "-c", TRAP_LOOP)
    wait_for(lambda: "ready" in dk.docker("logs", name).stdout, what="ready")
    st1 = state(dk, name)
    p = dk.docker("restart", "-t", "5", name)
    assert p.returncode == 0, p.stderr
    st2 = state(dk, name)
    assert st2["Running"], st2
    assert st2["Pid"] != st1["Pid"] and st2["StartedAt"] != st1["StartedAt"]
    logs = dk.docker("logs", name).stdout
    assert logs.count("ready") == 2 and "got-term" in logs, logs
    p = dk.docker("exec", name, "echo", "after-restart")
    assert p.returncode == 0 and p.stdout == "after-restart\n", p.stderr
    remove(dk, name, full)


# --------------------------------------------------------------------------
# limits


def test_memory_oom_137(dk):
    name, cidfile = dk.cidfile()
    p = dk.d.run("--name", name, "--cidfile", cidfile, *NONET, "--memory", "32m",
                 "--memory-swap", "32m", IMAGE, "sh", "-c", "exec tail /dev/zero")
    assert p.returncode == 137, p.stderr
    st = state(dk, name)
    assert st["OOMKilled"] is True, st
    assert st["ExitCode"] == 137
    remove(dk, name, cidfile.read_text().strip())


def test_pids_limit(dk):
    p, full = dk.run_rm(*NONET, "--pids-limit", "8", IMAGE, "sh", "-c",
                        "i=0; while [ $i -lt 20 ]; do sleep 10 & i=$((i+1)); "
                        "echo forked:$i; done")
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert p.stdout.split() == [f"forked:{i}" for i in range(1, 8)]
    assert "can't fork" in p.stderr
    assert dk.wait_clean(full) == []


# --------------------------------------------------------------------------
# default bridge network (prestart hook)


def test_bridge_network_eth0(dk):
    """dockerd wires the default bridge from its libnetwork-setkey prestart
    hook: without hooks run at the right moment, there is no eth0."""
    name, full = dk.start(IMAGE, "sh", "-c", TRAP_LOOP)
    net = dk.inspect(name)["NetworkSettings"]
    ip = net["IPAddress"]
    assert ip.startswith(dk.subnet_prefix + "."), net
    p = dk.docker("exec", name, "sh", "-c", "ip -4 -o addr show dev eth0; ip -4 route")
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert f"inet {ip}/24" in p.stdout, p.stdout
    assert f"default via {dk.gateway} dev eth0" in p.stdout, p.stdout
    remove(dk, name, full)


def test_bridge_network_reaches_gateway(dk):
    p, full = dk.run_rm(IMAGE, "sh", "-c",
                        f"hostname; ping -c 1 -W 2 {dk.gateway} >/dev/null && echo ping-ok")
    assert p.returncode == 0, (p.stdout, p.stderr)
    lines = p.stdout.splitlines()
    assert lines[0] == full[:12]
    assert "ping-ok" in lines, p.stdout
    assert dk.wait_clean(full) == []


# --------------------------------------------------------------------------
# errors and leftovers


def test_create_failure_reaches_user(dk):
    p, full = dk.run_rm(*NONET, IMAGE, "nosuchcmd")
    assert p.returncode == 127, (p.returncode, p.stderr)
    assert "nosuchcmd" in p.stderr
    assert "executable file not found" in p.stderr, p.stderr
    assert "did not terminate successfully" not in p.stderr
    if full:
        assert dk.wait_clean(full) == []


def test_zz_nothing_left_behind(dockerd):
    def check():
        problems = []
        root = dockerd.runtime_state_root()
        if root.exists():
            problems += [f"runtime state {p}" for p in root.iterdir()]
        for d in helpers.cgroup_dirs(dockerd.cgroup_parent):
            problems += [f"cgroup {s}" for s in d.iterdir() if s.is_dir()]
        problems += [f"mount {m}" for m in helpers.mounts_under(dockerd.data)
                     if "/overlay2/" in m and m.endswith("/merged")]
        problems += [f"shim {pid}" for pid, c in helpers.processes()
                     if c and os.path.basename(c[0]) == "containerd-shim-runc-v2"
                     and any(str(dockerd.exec_root) in a for a in c)]
        problems += [f"container {c}" for c in dockerd.docker("ps", "-aq").stdout.split()]
        return problems

    assert helpers.settle(check, 10) == []
