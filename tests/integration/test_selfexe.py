"""The container must never reach the host's runtime binary (CVE-2019-5736).

A container program that resolves to /proc/self/exe (directly, through a
symlink, or as a script's interpreter) would, without a defence, run the
host's runtime binary as the container process, which could then reopen it
for writing. ocirun execs through a sealed trampoline, so what runs is the
trampoline; for every runtime the host binary must be unchanged.
"""

import hashlib
import os

import pytest

from conftest import run_container


def _digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _variants(b):
    rootfs = b.rootfs
    os.symlink("/proc/self/exe", rootfs / "bin" / "evil-link")
    (rootfs / "bin" / "evil-script").write_text("#!/proc/self/exe\n")
    os.chmod(rootfs / "bin" / "evil-script", 0o755)


@pytest.mark.parametrize("prog", ["/proc/self/exe", "/bin/evil-link", "/bin/evil-script"])
def test_host_binary_unreachable_as_entrypoint(rt, bundle, prog):
    before = _digest(rt.binary)
    b = bundle([prog, "--version"], write=False)
    _variants(b)
    b.write()
    p = run_container(rt, b)
    assert _digest(rt.binary) == before
    if os.path.basename(rt.binary) == "ocirun":
        # what ran is the trampoline, never ocirun itself
        assert "ocirun version" not in p.stdout
        assert p.returncode != 0


@pytest.mark.ocirun_only
def test_exec_cannot_run_host_binary(rt, bundle):
    b = bundle(["sleep", "30"], write=False)
    _variants(b)
    b.write()
    assert rt("run", "-d", "-b", b.path, b.id).returncode == 0
    for prog in ("/proc/self/exe", "/bin/evil-link", "/bin/evil-script"):
        p = rt("exec", b.id, prog, "--version")
        assert "ocirun version" not in p.stdout
        assert p.returncode != 0
    assert rt("delete", "--force", b.id).returncode == 0


@pytest.mark.ocirun_only
def test_init_exe_unreadable_before_start(rt, bundle):
    """Between create and start the init is ocirun code inside the
    container's pid namespace. It is not dumpable, so another process in the
    container (without CAP_SYS_PTRACE) cannot follow its /proc/1/exe to the
    host's binary."""
    b = bundle(["true"])
    assert rt("create", "-b", b.path, b.id).returncode == 0
    p = rt("exec", b.id, "readlink", "/proc/1/exe")
    assert p.returncode != 0, p.stdout
    assert "ocirun" not in p.stdout
    # a dumpable process's link is readable the same way: the check is real
    q = rt("exec", b.id, "readlink", "/proc/self/exe")
    assert q.returncode == 0 and q.stdout.strip() == "/bin/busybox"
    assert rt("delete", b.id).returncode == 0
