"""podman: ``podman --runtime <runtime>`` (through conmon) with private
root, runroot, tmpdir and runtime root, cgroupfs, the file events backend
and ``--network none``."""

import os
import re

import pytest

import helpers
from conftest import IMAGE, new_id
from helpers import run_pty, wait_for

TRAP_LOOP = 'trap "echo got-term; exit 7" TERM; echo ready; while :; do sleep 0.05; done'


class Pm:
    def __init__(self, podman):
        self.p = podman
        self.names = []

    def __getattr__(self, name):
        return getattr(self.p, name)

    def name(self):
        n = new_id("p")
        self.names.append(n)
        return n

    def run_argv(self, *args, name=None, cidfile=None):
        extra = []
        if name:
            extra += ["--name", name]
        if cidfile:
            extra += ["--cidfile", cidfile]
        return self.p.argv("run", *self.p.run_opts(), *extra, *args)

    def run(self, *args, input=None, timeout=60):
        """podman run --rm ...: (CompletedProcess, full id)."""
        name = self.name()
        cidfile = self.p.base / f"{name}.cid"
        p = helpers.run(self.run_argv("--rm", *args, name=name, cidfile=cidfile),
                        input=input, timeout=timeout, env=self.p.env)
        full = cidfile.read_text().strip() if cidfile.exists() else None
        if full:
            self.p.ids.add(full)
        return p, full

    def start(self, *args):
        name = self.name()
        p = helpers.run(self.run_argv("-d", *args, name=name), env=self.p.env)
        assert p.returncode == 0, f"podman run -d failed rc={p.returncode}: {p.stderr}"
        full = p.stdout.strip().splitlines()[-1]
        self.p.ids.add(full)
        return name, full

    def cleanup(self):
        if self.names:
            self.p.podman("rm", "-f", "-t", "0", "--ignore", *self.names)


@pytest.fixture
def pm(podman):
    p = Pm(podman)
    yield p
    p.cleanup()


def test_run_output_and_exit_code(pm):
    p, full = pm.run(IMAGE, "sh", "-c", "echo out; echo err >&2; exit 3")
    assert p.returncode == 3, p.stderr
    assert p.stdout == "out\n"
    assert p.stderr == "err\n"
    assert full
    assert helpers.settle(lambda: pm.leftovers(full), 10) == []


def test_run_env_workdir_user(pm):
    p, _ = pm.run("-e", "FOO=bar", "-w", "/tmp", "-u", "1000:1000", IMAGE, "sh", "-c",
                  'echo "FOO=$FOO"; pwd; id -u; id -g')
    assert p.returncode == 0, p.stderr
    assert p.stdout == "FOO=bar\n/tmp\n1000\n1000\n"


def test_run_stdin(pm):
    p, _ = pm.run("-i", IMAGE, "sh", "-c", "cat; echo end", input="a\nb\n")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "a\nb\nend\n"


def test_run_tty(pm):
    name = pm.name()
    rc, out = run_pty(pm.run_argv("--rm", "-t", IMAGE, "sh", "-c",
                                  "tty; [ -t 0 ] && [ -t 1 ] && echo both-tty; sleep 0.5; "
                                  "stty size; exit 4", name=name),
                      rows=40, cols=100, env=pm.env)
    assert rc == 4, out
    assert "/dev/pts/0\n" in out
    assert "both-tty\n" in out
    assert "40 100\n" in out


def test_run_tty_interactive_shell(pm):
    rc, out = run_pty(pm.run_argv("--rm", "-it", IMAGE, "sh", name=pm.name()),
                      input="echo hi-$((6*7))\nexit 5\n", wait_for_text="# ", env=pm.env)
    assert rc == 5, out
    assert "hi-42" in out


def test_exec(pm):
    name, full = pm.start("-e", "FOO=bar", IMAGE, "sh", "-c", TRAP_LOOP)
    p = pm.podman("exec", name, "sh", "-c",
                  'echo exec-out; echo exec-err >&2; echo "FOO=$FOO"; exit 5')
    assert p.returncode == 5, p.stderr
    assert p.stdout == "exec-out\nFOO=bar\n"
    assert p.stderr == "exec-err\n"
    p = pm.podman("exec", "-u", "1000", "-w", "/tmp", name, "sh", "-c", "id -u; pwd")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "1000\n/tmp\n"
    p = pm.podman("exec", "-i", name, "sh", "-c", "cat; echo end", input="x\n")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "x\nend\n"
    rc, out = run_pty(pm.argv("exec", "-t", name, "sh", "-c",
                              "tty; [ -t 0 ] && echo in-tty; sleep 0.5; stty size; exit 6"),
                      rows=30, cols=90, env=pm.env)
    assert rc == 6, out
    assert re.search(r"^/dev/pts/\d+$", out, re.M), out
    assert "in-tty\n" in out
    assert "30 90\n" in out
    p = pm.podman("stop", "-t", "10", name)
    assert p.returncode == 0, p.stderr
    p = pm.podman("inspect", "-f", "{{.State.ExitCode}}", name)
    assert p.stdout.strip() == "7", (p.stdout, p.stderr)
    p = pm.podman("rm", name)
    assert p.returncode == 0, p.stderr
    assert helpers.settle(lambda: pm.leftovers(full), 10) == []


def test_exec_missing_command(pm):
    name, full = pm.start(IMAGE, "sleep", "1000")
    p = pm.podman("exec", name, "nosuchcmd")
    assert p.returncode == 127, (p.returncode, p.stderr)
    assert "nosuchcmd" in p.stderr
    p = pm.podman("inspect", "-f", "{{.State.Running}}", name)
    assert p.stdout.strip() == "true"


def test_create_failure_reaches_user(pm):
    p, full = pm.run(IMAGE, "nosuchcmd")
    assert p.returncode == 127, (p.returncode, p.stderr)
    assert "nosuchcmd" in p.stderr
    assert "executable file not found" in p.stderr, p.stderr


def test_kill(pm):
    name, full = pm.start(IMAGE, "sh", "-c", 'trap "" TERM; echo ready; '
                                             'while :; do sleep 0.05; done')
    wait_for(lambda: "ready" in pm.podman("logs", name).stdout, what="ready")
    p = pm.podman("kill", name)
    assert p.returncode == 0, p.stderr
    p = pm.podman("wait", name, timeout=30)
    assert p.stdout.strip() == "137", (p.stdout, p.stderr)


def test_zz_nothing_left_behind(podman):
    def check():
        problems = []
        assert podman.ids
        root = podman.runtime_root()
        problems += [f"runtime state {root / i}" for i in podman.ids if (root / i).exists()]
        for d in helpers.cgroup_dirs(podman.cgroup_parent):
            problems += [f"cgroup {s}" for s in d.iterdir()
                         if s.is_dir() and s.name != "conmon"]
        problems += [f"mount {m}" for m in helpers.mounts()
                     if any(i in m for i in podman.ids)]
        problems += [f"conmon {pid}" for pid, c in helpers.processes()
                     if c and os.path.basename(c[0]) == "conmon"
                     and any(str(podman.base) in a for a in c)]
        problems += [f"container {c}" for c in podman.podman("ps", "-aq").stdout.split()]
        return problems

    assert helpers.settle(check, 10) == []
