"""Fixtures for berth-engine's tests: the real docker CLI (Debian's
docker.io, API 1.41) and docker-py against berth-engine in front of
berth-supervisor, with images from a real registry on 127.0.0.1.

The binaries come from $BERTH_BUILD (default <repo>/build)."""

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "lib"))
sys.path.insert(0, str(REPO / "tests" / "supervisor"))
import berth_registry  # noqa: E402
import ocilayout  # noqa: E402

DOCKER = "/usr/bin/docker"  # Debian's CLI 20.10 (API 1.41)


def build_dir():
    return Path(os.environ.get("BERTH_BUILD") or REPO / "build").resolve()


def need(path):
    if not os.access(path, os.X_OK):
        pytest.skip(f"{path} is not installed (packaging/install-deps.sh)")


@pytest.fixture(scope="session")
def workdir():
    d = tempfile.mkdtemp(prefix="be-reg-")
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def registry(workdir):
    need(berth_registry.REGISTRY_BIN)
    if not shutil.which("skopeo"):
        pytest.skip("skopeo is not installed")
    reg = berth_registry.Registry(workdir, "anon")
    lay = ocilayout.Layout(str(workdir / "layout"))
    ocilayout.single(lay, "busybox", [(ocilayout._tar(berth_registry.busybox_entries(ocilayout.BUSYBOX)), "gzip")])
    reg.push(lay, "busybox", "busybox:latest")
    reg.image = f"{reg.host}/busybox:latest"
    yield reg
    reg.stop()


class UnixHTTP(http.client.HTTPConnection):
    """http.client over the engine's unix socket."""

    def __init__(self, path):
        super().__init__("localhost", timeout=60)
        self._path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(60)
        s.connect(self._path)
        self.sock = s


class Stack:
    """berth-supervisor + berth-engine with their own roots."""

    def __init__(self, base):
        b = build_dir()
        self.sup_bin = str(b / "supervisor" / "berth-supervisor")
        self.eng_bin = str(b / "engine" / "berth-engine")
        self.shim_bin = str(b / "shim" / "berth-shim")
        self.ocirun = str(b / "ocirun" / "ocirun")
        for p in (self.sup_bin, self.eng_bin, self.shim_bin, self.ocirun):
            if not os.access(p, os.X_OK):
                pytest.fail(f"{p} not found: build first or set $BERTH_BUILD", pytrace=False)
        self.base = Path(base)
        self.root = self.base / "root"
        self.run = self.base / "run"
        self.sock = self.run / "engine.sock"
        self.host = f"unix://{self.sock}"
        self.config = self.base / "docker-config"
        self.config.mkdir(parents=True, exist_ok=True)
        self.sup = self.eng = None

    def _spawn(self, args, log, **popen):
        return subprocess.Popen(args, stdout=open(self.base / log, "ab"), stderr=subprocess.STDOUT, **popen)

    def start_supervisor(self):
        if self.sup is None or self.sup.poll() is not None:
            # a supervisor killed with -9 leaves its socket file: gone, its
            # existence below means the new one listens
            (self.run / "supervisor.sock").unlink(missing_ok=True)
        self.sup = self._spawn([self.sup_bin, "--root", str(self.root), "--exec-root", str(self.run),
                                "--shim", self.shim_bin, "--runtime", self.ocirun], "supervisor.log")
        self._wait(lambda: (self.run / "supervisor.sock").exists(), self.sup, "supervisor")

    def start_engine(self, extra_args=(), **popen):
        """extra_args: more engine options (more -H, TLS); popen: more
        subprocess.Popen arguments (pass_fds, preexec_fn)."""
        self.eng = self._spawn([self.eng_bin, "--data-root", str(self.root), "--exec-root", str(self.run),
                                "-H", self.host, "--log-level", "debug", *extra_args], "engine.log", **popen)
        self._wait(self._engine_up, self.eng, "engine")

    def _engine_up(self):
        return self._listening(self.sock)

    @staticmethod
    def _listening(path):
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(str(path))
            return True
        except OSError:
            return False

    def _wait(self, ok, proc, what):
        deadline = time.time() + 20
        while not ok():
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"{what} did not start:\n{self.log(what)}")
            time.sleep(0.02)

    def log(self, what):
        p = self.base / f"{what}.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def env(self):
        e = dict(os.environ)
        e["DOCKER_HOST"] = self.host
        e["DOCKER_CONFIG"] = str(self.config)
        return e

    def docker(self, *args, input=None, check=True, timeout=60, cli=DOCKER):
        p = subprocess.run([cli, *args], input=input, capture_output=True, text=True, timeout=timeout,
                           env=self.env())
        if check and p.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} exited {p.returncode}:\n{p.stderr}\n"
                                 f"--- engine log tail:\n{self.log('engine')[-3000:]}")
        return p

    def inspect(self, ref):
        return json.loads(self.docker("inspect", ref).stdout)[0]

    def kill9(self, which):
        proc = self.eng if which == "engine" else self.sup
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def stop(self, proc, sig=signal.SIGTERM):
        if proc and proc.poll() is None:
            proc.send_signal(sig)
            try:
                return proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                return proc.wait()
        return proc.returncode if proc else None


def _cleanup(stack):
    # what a failed test may leave: containers and their shims, mounts
    subprocess.run(["pkill", "-9", "-f", f"berth-shim .*{stack.run}"], capture_output=True)
    time.sleep(0.2)
    subprocess.run(["umount", "-R", "-l", str(stack.run)], capture_output=True)
    subprocess.run(["umount", "-R", "-l", str(stack.root)], capture_output=True)


@pytest.fixture(scope="session")
def stack(registry):
    need(DOCKER)
    base = tempfile.mkdtemp(prefix="be-", dir="/tmp")
    st = Stack(base)
    st.start_supervisor()
    st.start_engine()
    st.docker("pull", registry.image, timeout=120)
    st.image = registry.image
    yield st
    for c in st.docker("ps", "-aq", check=False).stdout.split():
        st.docker("rm", "-f", c, check=False)
    rc_eng = st.stop(st.eng)
    rc_sup = st.stop(st.sup)
    _cleanup(st)
    logs = {w: st.log(w) for w in ("engine", "supervisor")}
    shutil.rmtree(base, ignore_errors=True)
    # a clean shutdown, and no sanitizer report in either daemon's log
    for what, text in logs.items():
        for mark in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
            assert mark not in text, f"{what}: {mark}:\n{text[-6000:]}"
    assert rc_eng == 0, f"berth-engine exited {rc_eng} on SIGTERM:\n{logs['engine'][-3000:]}"
    assert rc_sup == 0, f"berth-supervisor exited {rc_sup} on SIGTERM:\n{logs['supervisor'][-3000:]}"


_n = [0]


@pytest.fixture
def name():
    """A container name unique in the session."""
    _n[0] += 1
    return f"t{os.getpid()}-{_n[0]}"
