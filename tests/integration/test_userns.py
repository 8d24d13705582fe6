"""User namespaces (uid/gid maps) and time namespaces (offsets)."""

import os

import pytest

from conftest import run_container

HOST_BASE = 200000


def _chown_tree(root, uid, gid):
    for dirpath, dirnames, filenames in os.walk(root):
        os.lchown(dirpath, uid, gid)
        for n in dirnames + filenames:
            os.lchown(os.path.join(dirpath, n), uid, gid)


def _traversable(path):
    """The mapped root is an unprivileged uid on the host: it must be able
    to walk down to the rootfs (pytest's temp dirs are 0700)."""
    path = os.path.abspath(path)
    while path not in ("/", "/tmp"):
        st = os.stat(path)
        os.chmod(path, st.st_mode | 0o011)
        path = os.path.dirname(path)


def _userns(c, net=True):
    c["linux"]["namespaces"].append({"type": "user"})
    c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": HOST_BASE, "size": 65536}]
    c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": HOST_BASE, "size": 65536}]


def test_user_namespace_maps_root(rt, bundle, leftovers):
    b = bundle(["sh", "-c", "id -u; cat /proc/self/uid_map; touch /tmp/made-inside; ls -ln /tmp/made-inside",
                "@MARKER@"], write=False)
    _userns(b.config)
    b.write()
    _chown_tree(b.rootfs, HOST_BASE, HOST_BASE)
    _traversable(b.path)
    p = run_container(rt, b)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.split("\n")
    assert lines[0] == "0"
    assert lines[1].split() == ["0", str(HOST_BASE), "65536"]
    # inside it is root's file; on the host it belongs to the mapped uid
    assert " 0 " in lines[2]
    st = os.stat(b.rootfs / "tmp" / "made-inside")
    assert st.st_uid == HOST_BASE and st.st_gid == HOST_BASE
    assert leftovers(b) == []


def test_user_namespace_host_root_is_nobody(rt, bundle):
    """A file owned by the host's root (unmapped) shows as the overflow uid."""
    b = bundle(["stat", "-c", "%u", "/etc/hostsfile"], write=False)
    _userns(b.config)
    b.write()
    _chown_tree(b.rootfs, HOST_BASE, HOST_BASE)
    (b.rootfs / "etc" / "hostsfile").write_text("x\n")
    os.chown(b.rootfs / "etc" / "hostsfile", 0, 0)
    _traversable(b.path)
    p = run_container(rt, b)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "65534"


def test_user_namespace_without_mappings_is_refused(rt, bundle, leftovers):
    b = bundle(["true", "@MARKER@"],
               edit=lambda c: c["linux"]["namespaces"].append({"type": "user"}))
    p = rt("create", "-b", b.path, b.id)
    assert p.returncode != 0
    assert leftovers(b) == []


@pytest.mark.ocirun_only
def test_time_namespace_offsets(rt, bundle):
    """runc 1.1 has no time namespace support."""
    def edit(c):
        c["linux"]["namespaces"].append({"type": "time"})
        c["linux"]["timeOffsets"] = {"boottime": {"secs": 864000, "nanosecs": 0},
                                     "monotonic": {"secs": 86400, "nanosecs": 0}}
    b = bundle(["cat", "/proc/uptime"], edit=edit)
    with open("/proc/uptime") as f:
        host_uptime = float(f.read().split()[0])
    p = run_container(rt, b)
    assert p.returncode == 0, p.stderr
    inside = float(p.stdout.split()[0])
    assert inside - host_uptime > 864000 - 60


@pytest.mark.ocirun_only
def test_time_offsets_without_time_namespace_refused(rt, bundle, leftovers):
    b = bundle(["true", "@MARKER@"],
               edit=lambda c: c["linux"].__setitem__("timeOffsets", {"boottime": {"secs": 1}}))
    p = rt("create", "-b", b.path, b.id)
    assert p.returncode != 0
    assert "time namespace" in p.stderr
    assert leftovers(b) == []


@pytest.mark.ocirun_only
def test_user_namespace_with_network_namespace_joined_by_path(rt, bundle, leftovers):
    """The joined namespace belongs to the host's user namespace: it must be
    entered before the container's user namespace is made (runc's order).
    sysfs cannot be mounted for a network namespace the container's user
    namespace does not own: ocirun binds the host's /sys read-only instead
    (runc 1.1 does that only in rootless mode and fails here)."""
    import subprocess
    import uuid
    name = "bt-" + uuid.uuid4().hex[:8]
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        ino = os.stat(f"/run/netns/{name}").st_ino
        b = bundle(["sh", "-c", "id -u; readlink /proc/self/ns/net; echo $$", "@MARKER@"], write=False)
        _userns(b.config)
        ns = [n for n in b.config["linux"]["namespaces"] if n["type"] != "network"]
        ns.append({"type": "network", "path": f"/run/netns/{name}"})
        b.config["linux"]["namespaces"] = ns
        b.write()
        _chown_tree(b.rootfs, HOST_BASE, HOST_BASE)
        _traversable(b.path)
        p = run_container(rt, b)
        assert p.returncode == 0, p.stderr
        uid, net, pid = p.stdout.split()
        assert uid == "0" and net == f"net:[{ino}]" and pid == "1"
        assert leftovers(b) == []
    finally:
        subprocess.run(["ip", "netns", "del", name])


@pytest.mark.ocirun_only
def test_join_user_namespace_by_path(rt, bundle, leftovers):
    """A user namespace made elsewhere (here by util-linux's unshare, with
    setgroups denied as rootless tools do) is entered by path; the container
    still gets its own pid namespace, owned by that user namespace. (runc 1.1
    insists on uidMappings even when joining, which the spec does not ask.)"""
    import subprocess
    import time
    holder = subprocess.Popen(["unshare", "-U", "--map-root-user", "sleep", "60"])
    try:
        path = f"/proc/{holder.pid}/ns/user"
        ours = os.readlink("/proc/self/ns/user")
        for _ in range(200):
            if os.readlink(path) != ours:
                with open(f"/proc/{holder.pid}/uid_map") as f:
                    if f.read().split() == ["0", "0", "1"]:
                        break
            time.sleep(0.01)
        ns_id = os.readlink(path)
        assert ns_id != ours

        def edit(c):
            c["linux"]["namespaces"].append({"type": "user", "path": path})
            for m in c["mounts"]:  # gid 5 is not mapped in that namespace
                if m["destination"] == "/dev/pts":
                    m["options"] = [o for o in m["options"] if o != "gid=5"]
        b = bundle(["sh", "-c", "id -u; readlink /proc/self/ns/user; echo $$", "@MARKER@"], edit=edit)
        p = run_container(rt, b)
        assert p.returncode == 0, p.stderr
        assert p.stdout.split() == ["0", ns_id, "1"]
        assert leftovers(b) == []
    finally:
        holder.kill()
        holder.wait()
