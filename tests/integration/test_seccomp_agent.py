"""SCMP_ACT_NOTIFY: the seccomp notify fd reaches the agent at
linux.seccomp.listenerPath with the runtime-spec's ContainerProcessState,
and the agent decides the outcome of the notified syscalls."""

import errno
import fcntl
import json
import os
import socket
import struct
import threading

import pytest

from conftest import run_container

# ioctl numbers: _IOWR('!', 0, struct seccomp_notif) and _IOWR('!', 1, struct seccomp_notif_resp)
NOTIF_RECV = 0xC0502100
NOTIF_SEND = 0xC0182101
NOTIF_SIZE = 80
RESP_FMT = "=QqiI"


class Agent(threading.Thread):
    """Accepts one connection, keeps the fd, answers every notification
    with -ENOSPC so the container can tell the agent decided it."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(1)
        self.state = None
        self.fds = []
        self.answered = 0

    def run(self):
        conn, _ = self.sock.accept()
        msg, fds, _, _ = socket.recv_fds(conn, 65536, 4)
        conn.close()
        self.state = json.loads(msg.decode())
        self.fds = fds
        fd = fds[0]
        while True:
            buf = bytearray(NOTIF_SIZE)
            try:
                fcntl.ioctl(fd, NOTIF_RECV, buf)
            except OSError:
                return  # the filter's last user is gone
            notif_id = struct.unpack_from("=Q", buf, 0)[0]
            resp = bytearray(struct.pack(RESP_FMT, notif_id, 0, -errno.ENOSPC, 0))
            try:
                fcntl.ioctl(fd, NOTIF_SEND, resp)
                self.answered += 1
            except OSError:
                pass


@pytest.mark.ocirun_only
def test_notify_reaches_agent(rt, bundle, tmp_path):
    path = str(tmp_path / "agent.sock")
    agent = Agent(path)
    agent.start()

    def edit(c):
        c["linux"]["seccomp"] = {
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": path,
            "listenerMetadata": "berth-test",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}],
        }
    b = bundle(["sh", "-c", "mkdir /tmp/agent-decides 2>&1; echo rc=$?"], edit=edit)
    p = run_container(rt, b)
    assert p.returncode == 0, p.stderr
    assert "No space left on device" in p.stdout, p.stdout
    assert "rc=1" in p.stdout
    agent.join(5)
    st = agent.state
    assert st["fds"] == ["seccompFd"] and st["metadata"] == "berth-test"
    assert st["pid"] > 0 and st["state"]["id"] == b.id
    assert agent.answered >= 1
    assert not (b.rootfs / "tmp" / "agent-decides").exists()
    for fd in agent.fds:
        os.close(fd)


@pytest.mark.ocirun_only
def test_notify_without_agent_fails_create(rt, bundle, tmp_path, leftovers):
    def edit(c):
        c["linux"]["seccomp"] = {
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": str(tmp_path / "nobody-listens.sock"),
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}],
        }
    b = bundle(["true", "@MARKER@"], edit=edit)
    p = rt("create", "-b", b.path, b.id)
    assert p.returncode != 0
    assert "seccomp agent" in p.stderr
    assert leftovers(b) == []
