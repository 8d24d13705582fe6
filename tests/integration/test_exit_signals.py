"""Exit status propagation and signal forwarding by `run`."""

import signal
import subprocess

import pytest

from conftest import run_container, wait_for


@pytest.mark.parametrize("code", [0, 1, 3, 42, 255])
def test_exit_code_propagated(rt, bundle, code):
    b = bundle(["sh", "-c", f"exit {code}"])
    p = run_container(rt, b)
    assert p.returncode == code, p.stderr


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGSEGV])
def test_child_killed_by_signal_is_128_plus_sig(rt, bundle, sig):
    # a child of init (not init itself: pid 1 ignores default-action signals
    # sent from inside its namespace); sh then exits with the child's status
    b = bundle(["sh", "-c", f'sh -c "kill -{int(sig)} \\$\\$"; exit $?'])
    p = run_container(rt, b)
    assert p.returncode == 128 + sig, p.stderr


def test_init_cannot_sigkill_itself(rt, bundle):
    # The process is PID 1 of its pid namespace: the kernel drops SIGKILL sent
    # to it from inside the namespace, so `kill -9 $$` is a no-op and sh exits
    # 0 (runc: 0).  A runtime that interposes its own init would report 137.
    b = bundle(["sh", "-c", "kill -9 $$"])
    p = run_container(rt, b)
    assert p.returncode == 0, p.stderr


def _start_trap_container(rt, bundle, sig="TERM", code=7):
    b = bundle(["sh", "-c",
                f'trap "exit {code}" {sig}; touch /tmp/ready; '
                f'while :; do sleep 0.1; done', "@MARKER@"])
    proc = rt.popen("run", "-b", b.path, b.id,
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        rt.wait_status(b.id, "running")
        wait_for(lambda: (b.rootfs / "tmp" / "ready").exists(), what="trap installed")
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return b, proc


@pytest.mark.parametrize("sig,name,code", [
    (signal.SIGTERM, "TERM", 7),
    (signal.SIGINT, "INT", 9),
    (signal.SIGHUP, "HUP", 11),
    (signal.SIGUSR1, "USR1", 13),
])
def test_run_forwards_signals(rt, bundle, leftovers, sig, name, code):
    b, proc = _start_trap_container(rt, bundle, name, code)
    try:
        proc.send_signal(sig)
        rc = proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert rc == code, proc.stderr.read().decode()
    proc.stderr.close()
    wait_for(lambda: not leftovers(b), timeout=5, what="cleanup after run")


def test_run_exit_status_via_runtime_kill(rt, bundle):
    b, proc = _start_trap_container(rt, bundle, "TERM", 5)
    try:
        assert rt("kill", b.id, "TERM").returncode == 0
        rc = proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    assert rc == 5


def test_run_sigkill_container_from_outside(rt, bundle):
    b = bundle(["sh", "-c", "while :; do sleep 0.1; done", "@MARKER@"])
    proc = rt.popen("run", "-b", b.path, b.id, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL)
    try:
        rt.wait_status(b.id, "running")
        assert rt("kill", b.id, "KILL").returncode == 0
        assert proc.wait(timeout=10) == 137
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
