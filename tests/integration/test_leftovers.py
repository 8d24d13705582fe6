"""Nothing left behind after normal use; no fds leaked into the container."""

import os

from conftest import run_container, wait_for


def test_run_leaves_nothing(rt, bundle, leftovers):
    b = bundle(["sh", "-c", "echo hi", "@MARKER@"])
    p = run_container(rt, b)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "hi\n"
    assert leftovers(b) == []
    assert not (rt.root / b.id).exists()


def test_run_failure_leaves_nothing(rt, bundle, leftovers):
    b = bundle(["sh", "-c", "exit 9", "@MARKER@"])
    assert run_container(rt, b).returncode == 9
    assert leftovers(b) == []


def test_create_start_delete_leaves_nothing(rt, bundle, leftovers):
    b = bundle(["sh", "-c", "sleep 0.1", "@MARKER@"])
    assert rt("create", "-b", b.path, b.id).returncode == 0
    assert leftovers(b) != [], "sanity: a created container must have state"
    assert rt("start", b.id).returncode == 0
    rt.wait_status(b.id, "stopped")
    assert rt("delete", b.id).returncode == 0
    assert leftovers(b) == []


def test_detached_kill_delete_leaves_nothing(rt, bundle, leftovers):
    b = bundle(["sh", "-c", "sleep 1000 & sleep 1000 & while :; do sleep 0.05; done",
                "@MARKER@"])
    assert rt("run", "-d", "-b", b.path, b.id).returncode == 0
    rt.wait_status(b.id, "running")
    assert rt("kill", b.id, "KILL").returncode == 0
    rt.wait_status(b.id, "stopped")
    assert rt("delete", b.id).returncode == 0
    assert leftovers(b) == []


def test_force_delete_running_leaves_nothing(rt, bundle, leftovers):
    b = bundle(["sh", "-c", "sleep 1000 & while :; do sleep 0.05; done", "@MARKER@"])
    assert rt("run", "-d", "-b", b.path, b.id).returncode == 0
    rt.wait_status(b.id, "running")
    assert rt("delete", "--force", b.id).returncode == 0
    assert leftovers(b) == []


def test_force_delete_created_leaves_nothing(rt, bundle, leftovers):
    b = bundle(["sh", "-c", "true", "@MARKER@"])
    assert rt("create", "-b", b.path, b.id).returncode == 0
    pid = rt.state(b.id)["pid"]
    assert rt("delete", "--force", b.id).returncode == 0
    assert leftovers(b) == []
    wait_for(lambda: not os.path.exists(f"/proc/{pid}") or
             open(f"/proc/{pid}/stat").read().split()[2] == "Z",
             timeout=5, what="init process gone")


def test_host_mount_table_unchanged(rt, bundle):
    with open("/proc/self/mountinfo") as f:
        before = sorted(l.split(" - ")[0].split(None, 4)[4] for l in f)
    b = bundle(["true"])
    assert run_container(rt, b).returncode == 0
    with open("/proc/self/mountinfo") as f:
        after = sorted(l.split(" - ")[0].split(None, 4)[4] for l in f)
    assert before == after


def test_only_stdio_fds_in_container(rt, bundle):
    b = bundle(["ls", "/proc/self/fd"])
    p = run_container(rt, b)
    assert p.returncode == 0, p.stderr
    # 0 1 2, plus 3 = the directory ls itself opened
    assert p.stdout.split() == ["0", "1", "2", "3"], p.stdout


def test_inherited_fds_not_leaked(rt, bundle, tmp_path):
    # the runtime is given extra open fds (non-CLOEXEC); none may reach the container
    extra = [os.open(tmp_path / f"extra{i}", os.O_CREAT | os.O_RDWR) for i in range(3)]
    r, w = os.pipe()
    try:
        for fd in extra + [r, w]:
            os.set_inheritable(fd, True)
        b = bundle(["sh", "-c", "ls /proc/self/fd; echo --; ls /proc/1/fd; true"])
        p = run_container(rt, b, pass_fds=tuple(extra + [r, w]))
        assert p.returncode == 0, p.stderr
        first, _, rest = p.stdout.partition("--")
        assert first.split() == ["0", "1", "2", "3"], p.stdout
        # pid 1 is the sh itself (the trailing `true` prevents exec of ls)
        assert rest.split() == ["0", "1", "2"], p.stdout
    finally:
        for fd in extra + [r, w]:
            os.close(fd)


def test_init_fds_after_start(rt, bundle):
    # the created-then-started init process also holds only stdio
    b = bundle(["sh", "-c", "ls /proc/self/fd > /tmp/fds"])
    with open(os.devnull, "wb") as dn:
        assert rt("create", "-b", b.path, b.id, stdout=dn, stderr=dn).returncode == 0
    assert rt("start", b.id).returncode == 0
    rt.wait_status(b.id, "stopped")
    assert (b.rootfs / "tmp" / "fds").read_text().split() == ["0", "1", "2", "3"]
