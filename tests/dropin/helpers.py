"""Helpers for the drop-in tests: processes, ptys, cgroups, mounts, and
undoing what dockerd does to the host (iptables, sysctls)."""

import errno
import fcntl
import os
import re
import select
import shlex
import signal
import struct
import subprocess
import tempfile
import termios
import time
from pathlib import Path

DEFAULT_TIMEOUT = 60


def run(argv, *, timeout=DEFAULT_TIMEOUT, input=None, env=None, cwd=None):
    """Run argv; returns CompletedProcess with text stdout/stderr.

    Output goes through temporary files, not pipes: a daemon or shim that a
    command starts could inherit a pipe and keep us waiting for EOF.
    """
    argv = [str(a) for a in argv]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        stdin = subprocess.DEVNULL
        inf = None
        if input is not None:
            inf = tempfile.TemporaryFile()
            inf.write(input.encode() if isinstance(input, str) else input)
            inf.seek(0)
            stdin = inf
        try:
            p = subprocess.run(argv, stdin=stdin, stdout=out, stderr=err, env=env,
                               cwd=cwd, timeout=timeout)
        finally:
            if inf:
                inf.close()
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(
            argv, p.returncode, out.read().decode(errors="replace"),
            err.read().decode(errors="replace"))


class Background:
    """A command left running, its stdout/stderr in files."""

    def __init__(self, argv, *, env=None, stdin=subprocess.DEVNULL, directory=None):
        self.argv = [str(a) for a in argv]
        d = directory or tempfile.gettempdir()
        self._out = tempfile.NamedTemporaryFile(dir=d, prefix="bg-out-", delete=False)
        self._err = tempfile.NamedTemporaryFile(dir=d, prefix="bg-err-", delete=False)
        self.proc = subprocess.Popen(self.argv, stdin=stdin, stdout=self._out,
                                     stderr=self._err, env=env, start_new_session=True)

    @property
    def stdout(self):
        return Path(self._out.name).read_text(errors="replace")

    @property
    def stderr(self):
        return Path(self._err.name).read_text(errors="replace")

    def wait_output(self, text, timeout=20):
        wait_for(lambda: text in self.stdout or self.proc.poll() is not None,
                 timeout=timeout, what=f"{text!r} in the output of {self.argv}")
        assert text in self.stdout, (
            f"{self.argv} exited rc={self.proc.returncode} before printing {text!r}:"
            f" stdout={self.stdout!r} stderr={self.stderr!r}")

    def wait(self, timeout=30):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{self.argv} still running after {timeout}s: stdout={self.stdout!r} "
                f"stderr={self.stderr!r}") from None

    def kill(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
            self.proc.wait(timeout=10)

    def close(self):
        self.kill()
        for f in (self._out, self._err):
            f.close()
            try:
                os.unlink(f.name)
            except OSError:
                pass


def run_pty(argv, *, input=None, timeout=DEFAULT_TIMEOUT, rows=40, cols=100, env=None,
            wait_for_text=None, input_delay=0.0):
    """Run argv with a pty as its controlling terminal and stdin/stdout/stderr.

    ``input`` is written to the pty master, after ``wait_for_text`` appears
    in the output (or after ``input_delay`` seconds).  Returns (rc, output)
    with "\\r\\n" (and "\\r\\r\\n": two ptys in a row) turned into "\\n".
    """
    argv = [str(a) for a in argv]
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def child_setup():
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    p = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                         start_new_session=True, preexec_fn=child_setup)
    os.close(slave)
    buf = b""
    sent = input is None
    start = time.monotonic()
    deadline = start + timeout
    try:
        while True:
            now = time.monotonic()
            if now > deadline:
                raise AssertionError(
                    f"{argv} on a pty: no exit after {timeout}s; output so far: {buf!r}")
            if not sent and (
                    (wait_for_text is not None and wait_for_text.encode() in buf)
                    or (wait_for_text is None and now - start >= input_delay)):
                data = input.encode() if isinstance(input, str) else input
                os.write(master, data)
                sent = True
            r, _, _ = select.select([master], [], [], 0.05)
            if r:
                try:
                    chunk = os.read(master, 65536)
                except OSError as e:
                    if e.errno == errno.EIO:  # every slave fd closed
                        chunk = b""
                    else:
                        raise
                if not chunk:
                    break
                buf += chunk
            elif p.poll() is not None:
                # exited; drain what is left without blocking
                r, _, _ = select.select([master], [], [], 0.2)
                if not r:
                    break
        rc = p.wait(timeout=max(1, deadline - time.monotonic()))
    finally:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
            p.wait()
        os.close(master)
    return rc, re.sub(r"\r+\n", "\n", buf.decode(errors="replace"))


def diff(a, b, a_name, b_name):
    """Unified diff of two lists of lines, for assertion messages."""
    import difflib
    return "\n" + "\n".join(difflib.unified_diff(a, b, a_name, b_name, lineterm="", n=1))


def wait_for(pred, timeout=10, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def settle(check, timeout=10, interval=0.1):
    """Call ``check()`` until it returns something empty or ``timeout``
    passes; returns its last result (the problems that did not go away)."""
    deadline = time.monotonic() + timeout
    while True:
        res = check()
        if not res or time.monotonic() >= deadline:
            return res
        time.sleep(interval)


# --------------------------------------------------------------------------
# cgroups, mounts, processes


def cgroup_mounts():
    """[(mountpoint, fstype, controllers)] of the cgroup hierarchies."""
    res = []
    seen = set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            fields = post.split()
            if fields[0] not in ("cgroup", "cgroup2"):
                continue
            mp = pre.split()[4].replace("\\040", " ")
            root = pre.split()[3]
            if root != "/" or mp in seen:
                continue
            seen.add(mp)
            opts = fields[2].split(",") if len(fields) > 2 else []
            res.append((mp, fields[0], opts))
    return res


def cgroup_dir(controller, rel):
    """Host path of cgroup ``rel`` for a v1 controller (or 'unified')."""
    for mp, fstype, opts in cgroup_mounts():
        if controller == "unified" and fstype == "cgroup2":
            return Path(mp) / rel.lstrip("/")
        if fstype == "cgroup" and controller in opts:
            return Path(mp) / rel.lstrip("/")
    return None


def cgroup_v2_only():
    ms = cgroup_mounts()
    return bool(ms) and all(fstype == "cgroup2" for _, fstype, _ in ms) and \
        any(mp == "/sys/fs/cgroup" for mp, _, _ in ms)


def cgroup_limit(kind, rel):
    """Read a limit from the host cgroup ``rel``: kind memory|pids."""
    if cgroup_v2_only():
        name = {"memory": "memory.max", "pids": "pids.max"}[kind]
        return (Path("/sys/fs/cgroup") / rel.lstrip("/") / name).read_text().strip()
    name = {"memory": "memory.limit_in_bytes", "pids": "pids.max"}[kind]
    return (cgroup_dir(kind, rel) / name).read_text().strip()


def cgroup_dirs(rel):
    """Existing directories for cgroup ``rel`` in every hierarchy."""
    rel = rel.strip("/")
    return [Path(mp) / rel for mp, _, _ in cgroup_mounts() if (Path(mp) / rel).is_dir()]


def remove_cgroup_tree(rel):
    """rmdir cgroup ``rel`` (depth first) in every hierarchy, killing what is
    left in it.  Never raises."""
    for d in cgroup_dirs(rel):
        subdirs = sorted((p for p in d.rglob("*") if p.is_dir()),
                         key=lambda p: len(p.parts), reverse=True)
        for sub in subdirs + [d]:
            try:
                for pid in (sub / "cgroup.procs").read_text().split():
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except OSError:
                        pass
            except OSError:
                pass
            for _ in range(40):
                try:
                    os.rmdir(sub)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)


def mounts():
    res = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            res.append(line.split()[4].replace("\\040", " "))
    return res


def mounts_under(path):
    path = os.path.realpath(str(path))
    return [m for m in mounts() if m == path or m.startswith(path + "/")]


def unmount_under(path):
    for mp in sorted(mounts_under(path), key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], capture_output=True)


def processes():
    """[(pid, cmdline list)] of every process but us."""
    res = []
    me = os.getpid()
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == me:
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if cmd:
            res.append((int(d), [a.decode(errors="replace") for a in cmd.split(b"\0")
                                 if a]))
    return res


def pids_matching(pred):
    return [(pid, cmd) for pid, cmd in processes() if pred(cmd)]


def kill_matching(pred, sig=signal.SIGKILL):
    for pid, _ in pids_matching(pred):
        try:
            os.kill(pid, sig)
        except OSError:
            pass


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def stop_pid(pid, timeout=15):
    """SIGTERM, wait, then SIGKILL."""
    if not pid_alive(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except OSError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.05)
    if pid_alive(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


# --------------------------------------------------------------------------
# host state dockerd changes


IPT_TABLES = ("filter", "nat")  # the tables dockerd writes


def _iptables_save(binary, table):
    p = subprocess.run([binary + "-save", "-t", table], capture_output=True, text=True)
    if p.returncode != 0:
        return None
    chains, rules = {}, []
    for line in p.stdout.splitlines():
        if line.startswith(":"):
            name, policy = line[1:].split()[:2]
            chains[name] = policy
        elif line.startswith("-A "):
            rules.append(line)
    return chains, rules


class IptablesSnapshot:
    """What iptables (the variant dockerd calls) looked like; ``restore()``
    deletes the rules and chains added since and resets changed policies."""

    def __init__(self, binary="iptables"):
        self.binary = binary
        self.before = {t: _iptables_save(binary, t) for t in IPT_TABLES}

    def restore(self):
        problems = []
        for table in IPT_TABLES:
            now = _iptables_save(self.binary, table)
            if not now:
                continue
            chains_now, rules_now = now
            before = self.before.get(table) or ({}, [])
            chains_before, rules_before = before
            remaining = list(rules_before)
            added = []
            for r in rules_now:
                if r in remaining:
                    remaining.remove(r)
                else:
                    added.append(r)
            for r in reversed(added):
                args = ["-D"] + shlex.split(r)[1:]
                p = subprocess.run([self.binary, "-w", "-t", table, *args],
                                   capture_output=True, text=True)
                if p.returncode != 0:
                    problems.append(f"{table}: {' '.join(args)}: {p.stderr.strip()}")
            for c in chains_now:
                if c not in chains_before and chains_now[c] == "-":
                    subprocess.run([self.binary, "-w", "-t", table, "-F", c],
                                   capture_output=True)
            for c in chains_now:
                if c not in chains_before and chains_now[c] == "-":
                    p = subprocess.run([self.binary, "-w", "-t", table, "-X", c],
                                       capture_output=True, text=True)
                    if p.returncode != 0:
                        problems.append(f"{table}: -X {c}: {p.stderr.strip()}")
            for c, pol in chains_now.items():
                if pol == "-":
                    continue
                want = chains_before.get(c, "ACCEPT")
                if want != pol:
                    subprocess.run([self.binary, "-w", "-t", table, "-P", c, want],
                                   capture_output=True)
        return problems

    def added(self):
        """Rules/chains present now and not before (for the leftovers check)."""
        res = []
        for table in IPT_TABLES:
            now = _iptables_save(self.binary, table)
            if not now:
                continue
            chains_before, rules_before = self.before.get(table) or ({}, [])
            chains_now, rules_now = now
            res += [f"{table}: chain {c}" for c, p in chains_now.items()
                    if p == "-" and c not in chains_before]
            res += [f"{table}: {r}" for r in rules_now if r not in rules_before]
            res += [f"{table}: policy {c} {p} (was {chains_before.get(c, 'ACCEPT')})"
                    for c, p in chains_now.items()
                    if p != "-" and p != chains_before.get(c, "ACCEPT")]
        return res


class SysctlSnapshot:
    def __init__(self, *names):
        self.values = {}
        for n in names:
            p = Path("/proc/sys") / n.replace(".", "/")
            try:
                self.values[p] = p.read_text()
            except OSError:
                pass

    def restore(self):
        for p, v in self.values.items():
            try:
                if p.read_text() != v:
                    p.write_text(v)
            except OSError:
                pass


class CreatedPaths:
    """Remembers which of ``paths`` did not exist; ``cleanup()`` removes the
    ones that appeared since (files, then directories, deepest first, only
    when empty)."""

    def __init__(self, files=(), dirs=()):
        self.files = [Path(f) for f in files if not os.path.lexists(f)]
        self.dirs = [Path(d) for d in dirs if not os.path.lexists(d)]

    def cleanup(self):
        for f in self.files:
            try:
                f.unlink()
            except OSError:
                pass
        for d in sorted(self.dirs, key=lambda p: len(p.parts), reverse=True):
            try:
                d.rmdir()
            except OSError:
                pass

    def leftovers(self):
        return [str(p) for p in self.files + self.dirs if os.path.lexists(p)]
