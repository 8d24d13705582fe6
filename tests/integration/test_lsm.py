"""AppArmor, SELinux and personality on a host without AppArmor/SELinux."""

import os

import pytest

from conftest import run_container

APPARMOR = os.path.exists("/sys/module/apparmor/parameters/enabled") and \
    open("/sys/module/apparmor/parameters/enabled").read().startswith("Y")
SELINUX = os.path.exists("/sys/fs/selinux/enforce")


@pytest.mark.ocirun_only
def test_personality_linux32(rt, bundle):
    """runc 1.1 ignores linux.personality; the spec says to apply it."""
    b = bundle(["uname", "-m"], edit=lambda c: c["linux"].__setitem__("personality", {"domain": "LINUX32"}))
    p = run_container(rt, b)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() in ("i686", "i386", "armv8l")


def test_personality_invalid_domain(rt, bundle, leftovers):
    b = bundle(["true", "@MARKER@"],
               edit=lambda c: c["linux"].__setitem__("personality", {"domain": "WINDOWS"}))
    p = rt("create", "-b", b.path, b.id)
    if os.path.basename(rt.binary) != "ocirun" and p.returncode == 0:
        rt("delete", "--force", b.id)
        pytest.skip("the peer runtime ignores linux.personality")
    assert p.returncode != 0
    assert leftovers(b) == []


@pytest.mark.skipif(APPARMOR, reason="AppArmor is enabled here")
def test_apparmor_profile_without_apparmor_is_an_error(rt, bundle, leftovers):
    b = bundle(["true", "@MARKER@"],
               edit=lambda c: c["process"].__setitem__("apparmorProfile", "berth-test-profile"))
    p = rt("create", "-b", b.path, b.id)
    if os.path.basename(rt.binary) == "ocirun":
        assert p.returncode != 0
        assert "AppArmor" in p.stderr
        assert leftovers(b) == []
    else:
        rt("delete", "--force", b.id)


@pytest.mark.skipif(SELINUX, reason="SELinux is enabled here")
def test_selinux_label_without_selinux_is_an_error(rt, bundle, leftovers):
    b = bundle(["true", "@MARKER@"], edit=lambda c: c["process"].__setitem__(
        "selinuxLabel", "system_u:system_r:container_t:s0:c1,c2"))
    p = rt("create", "-b", b.path, b.id)
    assert p.returncode != 0
    assert "selinux" in p.stderr.lower()
    assert leftovers(b) == []
