"""Fixtures for the berth-shim tests.

Binaries come from $BERTH_BUILD (default <repo>/build): shim/berth-shim,
shim/berth-shimctl and ocirun/ocirun.  Tests that take the ``runtime``
fixture run twice: over ocirun and over runc (the conformance suite of the
shim over both runtimes).

Each test gets a short temporary directory under /tmp (unix socket paths
are limited to 108 bytes), a busybox bundle per container, its own runtime
--root, and cgroupsPath /berth-shim-test/<id>.  Afterwards every shim still
running is told to shut down (or killed), the runtime deletes what is left,
and the cgroup directories are removed.
"""

import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUSYBOX = "/bin/busybox"
CGROUP_PARENT = "berth-shim-test"
TIMEOUT = 30


def build_dir():
    return Path(os.environ.get("BERTH_BUILD") or REPO / "build").resolve()


def _binary(rel):
    p = build_dir() / rel
    if not (p.is_file() and os.access(p, os.X_OK)):
        pytest.fail(f"{p} not found: build first or set $BERTH_BUILD", pytrace=False)
    return str(p)


@pytest.fixture(scope="session")
def shim_bin():
    return _binary("shim/berth-shim")


@pytest.fixture(scope="session")
def shimctl_bin():
    return _binary("shim/berth-shimctl")


RUNTIMES = ["ocirun", "runc"]


def _sanitized(path):
    p = subprocess.run(["ldd", path], capture_output=True, text=True)
    return "libasan" in p.stdout


@pytest.fixture(scope="session")
def ocirun_for_shim(tmp_path_factory):
    """ocirun, or for an ASan build a wrapper that turns LeakSanitizer off for
    `ocirun exec` only: LSan's exit-time check spins forever in a process
    that has joined another pid namespace (it cannot stop the world there).
    The shim itself and every other verb keep leak detection."""
    path = _binary("ocirun/ocirun")
    if not _sanitized(path):
        return path
    wrapper = tmp_path_factory.mktemp("ocirun-wrap") / "ocirun"
    wrapper.write_text(
        "#!/bin/sh\n"
        'case " $* " in *" exec "*) ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"; '
        "export ASAN_OPTIONS;; esac\n"
        f'exec {path} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


@pytest.fixture(params=RUNTIMES)
def runtime(request):
    if request.param == "ocirun":
        return request.getfixturevalue("ocirun_for_shim")
    path = shutil.which("runc") or "/usr/sbin/runc"
    if not os.access(path, os.X_OK):
        pytest.fail("runc is required (apt install runc)", pytrace=False)
    return path


@pytest.fixture(scope="session")
def rootfs_template(tmp_path_factory):
    if not os.path.isfile(BUSYBOX):
        pytest.fail(f"{BUSYBOX} is required (apt install busybox-static)", pytrace=False)
    root = tmp_path_factory.mktemp("shim-rootfs") / "rootfs"
    (root / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    applets = subprocess.run([BUSYBOX, "--list"], check=True, capture_output=True,
                             text=True).stdout.split()
    for applet in applets:
        if "/" in applet or applet == "busybox":
            continue
        link = root / "bin" / applet
        if not link.exists():
            link.symlink_to("busybox")
    for d in ("proc", "sys", "dev", "tmp", "etc", "root"):
        (root / d).mkdir(parents=True, exist_ok=True)
    os.chmod(root / "tmp", 0o1777)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\n")
    return root


def cgroup_mounts():
    res = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            if post.split()[0] in ("cgroup", "cgroup2"):
                res.append(pre.split()[4])
    return res


def remove_cgroups(rel):
    for mp in cgroup_mounts():
        d = Path(mp) / rel
        if not d.is_dir():
            continue
        try:
            for pid in (d / "cgroup.procs").read_text().split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except OSError:
                    pass
        except OSError:
            pass
        for _ in range(40):
            try:
                os.rmdir(d)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.05)


@pytest.fixture(scope="session", autouse=True)
def _remove_cgroup_parent():
    yield
    for mp in cgroup_mounts():
        try:
            os.rmdir(Path(mp) / CGROUP_PARENT)
        except OSError:
            pass


class RpcError(Exception):
    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class Shim:
    """One berth-shim with its container, driven through berth-shimctl."""

    def __init__(self, env, cid, bundle, runtime, shim_bin, shimctl_bin, root):
        self.env = env
        self.id = cid
        self.bundle = bundle
        self.runtime = runtime
        self.shim_bin = shim_bin
        self.shimctl_bin = shimctl_bin
        self.root = Path(root)
        self.state_dir = self.root / "state"
        self.runtime_root = self.root / "rt"
        self.log_path = self.root / "logs" / f"{cid}-json.log"
        self.started = False

    @property
    def runtime_name(self):
        return os.path.basename(self.runtime)

    def start(self, *extra, log=True, check=True, starter=None):
        argv = [self.shim_bin, "--id", self.id, "--bundle", str(self.bundle),
                "--runtime", self.runtime, "--runtime-root", str(self.runtime_root),
                "--state-dir", str(self.state_dir), "--debug", *extra]
        if log:
            argv += ["--log-path", str(self.log_path)]
        if starter:
            argv = starter(argv)
        p = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT,
                           stdin=subprocess.DEVNULL)
        if check:
            assert p.returncode == 0, f"berth-shim failed: {p.stderr}"
            self.started = True
        return p

    @property
    def pid(self):
        return int((self.state_dir / "shim.pid").read_text())

    def ctl(self, *args, timeout=TIMEOUT, check=True, ctl_timeout=None):
        argv = [self.shimctl_bin, "--state-dir", str(self.state_dir)]
        if ctl_timeout is not None:
            argv += ["--timeout", str(ctl_timeout)]
        argv += [str(a) for a in args]
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        try:
            out = json.loads(p.stdout.strip().splitlines()[-1]) if p.stdout.strip() else {}
        except json.JSONDecodeError:
            raise AssertionError(f"shimctl {args}: not JSON: {p.stdout!r} {p.stderr!r}")
        if "error" in out:
            err = RpcError(out["error"]["code"], out["error"].get("message", ""))
            if check:
                raise err
            return err
        assert p.returncode == 0, f"shimctl {args}: rc {p.returncode}: {p.stderr}"
        return out

    def ctl_popen(self, *args, ctl_timeout=None):
        argv = [self.shimctl_bin, "--state-dir", str(self.state_dir)]
        if ctl_timeout is not None:
            argv += ["--timeout", str(ctl_timeout)]
        argv += [str(a) for a in args]
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, text=True)

    # --- convenience -----------------------------------------------------

    def run(self, *create_args):
        """Create + start; returns the pid."""
        self.ctl("create", *create_args)
        return self.ctl("start")["pid"]

    def wait(self, exec_id=None, timeout=TIMEOUT):
        args = ["wait"] + (["--exec", exec_id] if exec_id else [])
        return self.ctl(*args, timeout=timeout)["exit"]

    def state(self, exec_id=None):
        return self.ctl("state", *(["--exec", exec_id] if exec_id else []))

    def log_entries(self, path=None):
        p = Path(path or self.log_path)
        if not p.exists():
            return []
        return [json.loads(line) for line in p.read_text().splitlines() if line]

    def log_text(self, stream=None):
        return "".join(e["log"] for e in self.log_entries()
                       if stream is None or e["stream"] == stream)

    def exit_file(self):
        return json.loads((self.state_dir / "exit").read_text())

    def alive(self):
        try:
            pid = self.pid
        except (OSError, ValueError):
            return False
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().split(")")[-1].split()[0] != "Z"
        except OSError:
            return False

    def cleanup(self):
        if self.started and self.alive():
            pid = self.pid
            try:
                self.ctl("delete", "--force", check=False, timeout=15)
                self.ctl("shutdown", "--now", check=False, timeout=15)
            except Exception:
                pass
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and pid_alive(pid):
                time.sleep(0.05)
            if pid_alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        subprocess.run([self.runtime, "--root", str(self.runtime_root), "delete", "--force",
                        self.id], capture_output=True, timeout=15)
        remove_cgroups(f"{CGROUP_PARENT}/{self.id}")


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture(scope="session", autouse=True)
def sanitizer_logs():
    """The shim detaches and sends its stderr to /dev/null: sanitizer reports
    of every program the tests start go to files here instead, and a test
    after which a report appears fails."""
    d = tempfile.mkdtemp(prefix="bs-san-", dir="/tmp")
    saved = {k: os.environ.get(k) for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS")}
    for k in saved:
        os.environ[k] = ":".join(x for x in (saved[k], f"log_path={d}/{k[:4].lower()}") if x)
    yield Path(d)
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    shutil.rmtree(d, ignore_errors=True)


def sanitizer_reports(d):
    return {p.name: p.read_text(errors="replace") for p in Path(d).iterdir()}


@pytest.fixture
def workdir(sanitizer_logs):
    before = set(sanitizer_reports(sanitizer_logs))
    d = tempfile.mkdtemp(prefix="bs-", dir="/tmp")
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)
    new = {k: v for k, v in sanitizer_reports(sanitizer_logs).items() if k not in before}
    for name in new:
        os.unlink(Path(sanitizer_logs) / name)
    assert not new, "sanitizer reports:\n" + "\n".join(f"{k}:\n{v[:4000]}" for k, v in new.items())


@pytest.fixture
def make_shim(runtime, shim_bin, shimctl_bin, rootfs_template, workdir):
    """make_shim(args, terminal=False, edit=None, runtime=None) -> Shim (not started)."""
    shims = []

    def make(args, *, terminal=False, edit=None, rt=None, env=None):
        cid = "s-" + uuid.uuid4().hex[:10]
        root = workdir / cid
        bundle = root / "bundle"
        bundle.mkdir(parents=True)
        subprocess.run(["cp", "-a", str(rootfs_template), str(bundle / "rootfs")], check=True)
        p = subprocess.run([runtime, "spec"], cwd=bundle, capture_output=True, text=True,
                           timeout=TIMEOUT)
        assert p.returncode == 0, p.stderr
        config = json.loads((bundle / "config.json").read_text())
        config["process"]["terminal"] = terminal
        config["process"]["args"] = list(args)
        if env:
            config["process"]["env"] += list(env)
        config["root"]["readonly"] = False
        config["hostname"] = "shim-test"
        config.setdefault("linux", {})["cgroupsPath"] = f"/{CGROUP_PARENT}/{cid}"
        if edit:
            edit(config)
        (bundle / "config.json").write_text(json.dumps(config, indent=1))
        s = Shim(None, cid, bundle, rt or runtime, shim_bin, shimctl_bin, root)
        shims.append(s)
        return s

    yield make
    for s in shims:
        try:
            s.cleanup()
        except Exception:
            pass


# --------------------------------------------------------------------------
# attach protocol client


class Attach:
    """A client of attach.sock."""

    def __init__(self, shim, exec_id="", stdin=False, stdout=True, stderr=True):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect(str(shim.state_dir / "attach.sock"))
        hdr = {"exec_id": exec_id, "stdin": stdin, "stdout": stdout, "stderr": stderr}
        self.sock.sendall(json.dumps(hdr).encode() + b"\n")
        line = b""
        while not line.endswith(b"\n"):
            b = self.sock.recv(1)
            if not b:
                break
            line += b
        self.answer = json.loads(line) if line else {}
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def close_stdin(self):
        self.sock.shutdown(socket.SHUT_WR)

    def read_all(self, timeout=TIMEOUT):
        """Everything until the shim closes the connection."""
        self.sock.settimeout(timeout)
        chunks = [self.buf]
        self.buf = b""
        while True:
            b = self.sock.recv(65536)
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks)

    def read_until(self, needle, timeout=TIMEOUT):
        self.sock.settimeout(timeout)
        while needle not in self.buf:
            b = self.sock.recv(65536)
            if not b:
                break
            self.buf += b
        return self.buf

    def close(self):
        self.sock.close()


def parse_frames(data):
    """Docker stream frames -> [(stream, bytes)]; asserts the framing is exact."""
    out = []
    i = 0
    while i < len(data):
        assert len(data) - i >= 8, f"truncated frame header at {i}"
        kind, size = data[i], struct.unpack(">I", data[i + 4:i + 8])[0]
        assert kind in (1, 2) and data[i + 1:i + 4] == b"\0\0\0", f"bad header {data[i:i+8]!r}"
        assert len(data) - i - 8 >= size, "truncated frame"
        out.append(("stdout" if kind == 1 else "stderr", data[i + 8:i + 8 + size]))
        i += 8 + size
    return out


def demux(data):
    res = {"stdout": b"", "stderr": b""}
    for k, v in parse_frames(data):
        res[k] += v
    return res


def wait_for(pred, timeout=10, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
