"""Fixtures for the registry tests of berth-fetch (supervisor/).

A real registry: Debian's ``docker-registry`` (distribution 2.8) on
127.0.0.1 with a free port and a temporary storage directory; images are
built at test time as OCI layouts (ocilayout.py) and pushed with ``skopeo
copy``. Three registries: anonymous, htpasswd (Basic), and token auth
(Bearer) with a small token server written here that signs JWTs with a
throw-away key. Nothing leaves 127.0.0.1.

The binary comes from $BERTH_BUILD (default <repo>/build):
supervisor/berth-fetch.
"""

import base64
import hashlib
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import pytest

import ocilayout

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
from berth_registry import REGISTRY_BIN, TIMEOUT, Registry, free_port  # noqa: E402,F401

REPO = Path(__file__).resolve().parents[2]


def build_dir():
    return Path(os.environ.get("BERTH_BUILD") or REPO / "build").resolve()


@pytest.fixture(scope="session")
def fetch_bin():
    p = build_dir() / "supervisor" / "berth-fetch"
    if not (p.is_file() and os.access(p, os.X_OK)):
        pytest.fail(f"{p} not found: build first or set $BERTH_BUILD", pytrace=False)
    return str(p)


def need(tool):
    if not shutil.which(tool):
        pytest.skip(f"{tool} is not installed (packaging/install-deps.sh)")


@pytest.fixture(scope="session")
def workdir():
    d = tempfile.mkdtemp(prefix="berth-reg-")
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


class Images:
    """The images pushed to the anonymous registry, by name."""


@pytest.fixture(scope="session")
def images(workdir):
    need("zstd")
    lay = ocilayout.Layout(str(workdir / "layout"))
    bb = ocilayout.busybox_tar()
    im = Images()
    im.layout = lay
    im.simple = ocilayout.single(lay, "simple", [(bb, "gzip")])
    im.multi = ocilayout.single(lay, "multi", [(bb, "gzip"), (ocilayout.random_tar("two"), "gzip"),
                                               (ocilayout.random_tar("three"), "zstd")])
    im.gzip2 = ocilayout.single(lay, "gzip2", [(bb, "gzip"), (ocilayout.random_tar("docker"), "gzip")])
    im.multiarch = ocilayout.multiarch(lay, "multiarch", {
        "linux/amd64": [(bb, "gzip"), (ocilayout.random_tar("amd64"), "gzip")],
        "linux/arm64/v8": [(ocilayout.random_tar("arm64"), "gzip")],
    })
    return im


@pytest.fixture(scope="session")
def registry(workdir, images):
    need("skopeo")
    if not os.access(REGISTRY_BIN, os.X_OK):
        pytest.skip("docker-registry is not installed (packaging/install-deps.sh)")
    reg = Registry(workdir, "anon")
    lay = images.layout
    reg.push(lay, "simple", "test/simple:oci")
    reg.push(lay, "multi", "test/multi:latest")
    reg.push(lay, "gzip2", "test/docker:v2s2", "--format", "v2s2")
    reg.push(lay, "multiarch", "test/multiarch:oci", "--all")
    reg.push(lay, "multiarch", "test/multiarch:list", "--all", "--format", "v2s2")
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def basic_registry(workdir, images):
    need("skopeo")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # bcrypt ($2b$) through libcrypt: no htpasswd tool needed
    htpasswd = workdir / "htpasswd"
    htpasswd.write_text("alice:" + crypt.crypt("wonderland", crypt.mksalt(crypt.METHOD_BLOWFISH)) + "\n")
    reg = Registry(workdir, "basic",
                   f"auth:\n  htpasswd:\n    realm: basic-realm\n    path: {htpasswd}\n")
    reg.push(images.layout, "simple", "private/simple:1", creds="alice:wonderland")
    yield reg
    reg.stop()


# ---------- token auth: a token server and a registry that trusts it ----------

def _b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


class TokenServer:
    """GET /token?service=..&scope=..: checks Basic credentials and answers a
    JWT (RS256, x5c header) granting what the scope asks for."""

    USER, PASSWORD = "bob", "builder"
    SERVICE, ISSUER = "berth-test-registry", "berth-test-issuer"

    def __init__(self, workdir):
        self.dir = Path(workdir) / "token"
        self.dir.mkdir()
        self.key = self.dir / "key.pem"
        self.cert = self.dir / "cert.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=berth-test-token", "-keyout", str(self.key), "-out", str(self.cert)],
                       check=True, capture_output=True)
        der = subprocess.run(["openssl", "x509", "-in", str(self.cert), "-outform", "DER"],
                             check=True, capture_output=True).stdout
        self.x5c = base64.b64encode(der).decode()
        self.requests = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                from urllib.parse import urlparse, parse_qs
                q = parse_qs(urlparse(self.path).query)
                auth = self.headers.get("Authorization", "")
                server.requests.append({"path": self.path, "auth": auth})
                want = "Basic " + base64.b64encode(f"{server.USER}:{server.PASSWORD}".encode()).decode()
                if auth != want:
                    self.send_response(401)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(b'{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}')
                    return
                access = []
                for s in q.get("scope", []):
                    typ, name, actions = s.split(":", 2)
                    access.append({"type": typ, "name": name, "actions": actions.split(",")})
                tok = server.sign({"iss": server.ISSUER, "sub": server.USER, "aud": q.get("service", [""])[0],
                                   "exp": int(time.time()) + 300, "nbf": int(time.time()) - 10,
                                   "iat": int(time.time()), "jti": os.urandom(8).hex(), "access": access})
                body = json.dumps({"token": tok}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.realm = f"http://127.0.0.1:{self.port}/token"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def sign(self, claims):
        head = _b64url(json.dumps({"alg": "RS256", "typ": "JWT", "x5c": [self.x5c]}).encode())
        body = _b64url(json.dumps(claims).encode())
        signing_input = f"{head}.{body}".encode()
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(self.key)], input=signing_input,
                             check=True, capture_output=True).stdout
        return f"{head}.{body}.{_b64url(sig)}"

    def stop(self):
        self.httpd.shutdown()


@pytest.fixture(scope="session")
def token_registry(workdir, images):
    need("skopeo")
    need("openssl")
    ts = TokenServer(workdir)
    reg = Registry(workdir, "token",
                   f"auth:\n  token:\n    realm: {ts.realm}\n    service: {ts.SERVICE}\n"
                   f"    issuer: {ts.ISSUER}\n    rootcertbundle: {ts.cert}\n")
    reg.push(images.layout, "simple", "tok/simple:1", creds=f"{ts.USER}:{ts.PASSWORD}")
    reg.tokens = ts
    yield reg
    reg.stop()
    ts.stop()


# ---------- running berth-fetch ----------

class Fetch:
    def __init__(self, binary, root):
        self.bin = binary
        self.root = Path(root)

    def run(self, *args, check=None):
        p = subprocess.run([self.bin, "--root", str(self.root), *args], capture_output=True, text=True,
                           timeout=TIMEOUT)
        for marker in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
            if marker in p.stderr:
                raise AssertionError(f"berth-fetch {' '.join(args)}: sanitizer report:\n{p.stderr}")
        if check is True and p.returncode != 0:
            raise AssertionError(f"berth-fetch {' '.join(args)} failed ({p.returncode}): {p.stderr}")
        if check is False and p.returncode == 0:
            raise AssertionError(f"berth-fetch {' '.join(args)} succeeded: {p.stdout}")
        return p

    def pull(self, ref, *opts):
        p = self.run(*opts, "pull", ref, check=True)
        out = {"layer": []}
        for line in p.stdout.splitlines():
            kind, digest = line.split(" ")
            if kind == "layer":
                out["layer"].append(digest)
            else:
                out[kind] = digest
        return out

    @property
    def blobs(self):
        return self.root / "supervisor/content/blobs/sha256"

    @property
    def ingest(self):
        return self.root / "supervisor/content/ingest"

    def blob(self, digest):
        return self.blobs / digest.split(":", 1)[1]

    def stored(self):
        return sorted("sha256:" + p.name for p in self.blobs.iterdir()) if self.blobs.exists() else []

    def check_blob(self, digest):
        """The blob is in the store and its content hashes to its name."""
        p = self.blob(digest)
        assert p.is_file(), f"{digest} is not in the store"
        assert "sha256:" + hashlib.sha256(p.read_bytes()).hexdigest() == digest
        return p.read_bytes()


@pytest.fixture
def fetch(fetch_bin, tmp_path):
    return Fetch(fetch_bin, tmp_path / "root")


# ---------- running berth-supervisor and berth-ctr ----------

SANITIZER_MARKERS = ("AddressSanitizer", "LeakSanitizer", "runtime error:")


@pytest.fixture(scope="session")
def supervisor_bin():
    p = build_dir() / "supervisor" / "berth-supervisor"
    if not (p.is_file() and os.access(p, os.X_OK)):
        pytest.fail(f"{p} not found: build first or set $BERTH_BUILD", pytrace=False)
    return str(p)


@pytest.fixture(scope="session")
def ctr_bin():
    p = build_dir() / "supervisor" / "berth-ctr"
    if not (p.is_file() and os.access(p, os.X_OK)):
        pytest.fail(f"{p} not found: build first or set $BERTH_BUILD", pytrace=False)
    return str(p)


class Supervisor:
    """A berth-supervisor of its own: --root and --exec-root in a short
    temporary directory (nng ipc paths must stay under ~100 characters).

    .ctr(*args, check=True, timeout=TIMEOUT) runs berth-ctr against it and
    returns the CompletedProcess (text); check=False expects a failure,
    check=None takes either. .restart() stops it (SIGTERM) and starts it
    again on the same directories; .kill9() kills it hard (start() or
    restart() brings it back)."""

    def __init__(self, binary, ctr, base, extra=()):
        self.bin = binary
        self.ctr_bin = ctr
        self.base = Path(base)
        self.root = self.base / "root"
        self.exec_root = self.base / "run"
        self.address = f"ipc://{self.exec_root}/supervisor.sock"
        self.events_address = f"ipc://{self.exec_root}/supervisor-events.sock"
        self.extra = list(extra)
        self.log_path = self.base / "supervisor.log"
        self.proc = None
        self.pid = None
        self.env = None  # the daemon's environment; None: the test's

    def args(self):
        return [self.bin, "--root", str(self.root), "--exec-root", str(self.exec_root),
                "--log-level", "debug", *self.extra]

    def start(self, timeout=20):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args(), stdout=self.log, stderr=subprocess.STDOUT, env=self.env)
        self.pid = self.proc.pid
        sock = self.exec_root / "supervisor.sock"
        deadline = time.time() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"berth-supervisor exited ({self.proc.returncode}):\n{self.log_text()}")
            if sock.exists() and self.ctr("version", check=None, timeout=5).returncode == 0:
                return self
            if time.time() > deadline:
                raise RuntimeError("berth-supervisor did not come up:\n" + self.log_text())
            time.sleep(0.05)

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def check_sanitizers(self):
        text = self.log_text()
        for marker in SANITIZER_MARKERS:
            if marker in text:
                raise AssertionError(f"berth-supervisor: sanitizer report:\n{text}")

    def stop(self, sig=None, timeout=20):
        """SIGTERM (or sig) and wait; returns the exit status."""
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig or 15)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("berth-supervisor did not stop on SIGTERM:\n" + self.log_text())
        self.log.close()
        return rc

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
            self.log.close()

    def restart(self):
        self.stop()
        return self.start()

    def ctr(self, *args, check=True, timeout=TIMEOUT, input=None):
        cmd = [self.ctr_bin, "--address", self.address, "--events-address", self.events_address, *args]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input)
        for marker in SANITIZER_MARKERS:
            if marker in p.stderr:
                raise AssertionError(f"berth-ctr {' '.join(args)}: sanitizer report:\n{p.stderr}")
        if check is True and p.returncode != 0:
            raise AssertionError(f"berth-ctr {' '.join(args)} failed ({p.returncode}): {p.stderr}")
        if check is False and p.returncode == 0:
            raise AssertionError(f"berth-ctr {' '.join(args)} succeeded: {p.stdout}")
        return p

    def ctr_popen(self, *args, **kw):
        """berth-ctr in the background (e.g. `events`), stdout piped as text."""
        cmd = [self.ctr_bin, "--address", self.address, "--events-address", self.events_address, *args]
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        return subprocess.Popen(cmd, text=True, **kw)

    @property
    def content(self):
        return self.root / "supervisor/content"


@pytest.fixture
def supervisor(supervisor_bin, ctr_bin):
    base = tempfile.mkdtemp(prefix="bsv-", dir="/tmp")
    sv = Supervisor(supervisor_bin, ctr_bin, base)
    sv.start()
    yield sv
    if sv.proc and sv.proc.poll() is None:
        rc = sv.stop()
        assert rc == 0, f"berth-supervisor exited {rc} on SIGTERM:\n{sv.log_text()}"
    sv.check_sanitizers()
    subprocess.run(["umount", "-R", "-q", str(sv.root)], capture_output=True)
    shutil.rmtree(base, ignore_errors=True)


# ---------- containers and tasks (test_tasks*.py) ----------

def _asan(path):
    p = subprocess.run(["ldd", path], capture_output=True, text=True)
    return "libasan" in p.stdout


@pytest.fixture(scope="session")
def task_runtime(tmp_path_factory):
    """ocirun from the build; for an ASan build a wrapper that turns
    LeakSanitizer off for `ocirun exec` only (its exit-time check spins in a
    process that joined another pid namespace), as tests/shim does."""
    path = build_dir() / "ocirun" / "ocirun"
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"{path} not found: build first or set $BERTH_BUILD", pytrace=False)
    if not _asan(str(path)):
        return str(path)
    wrapper = tmp_path_factory.mktemp("ocirun-wrap") / "ocirun"
    wrapper.write_text(
        "#!/bin/sh\n"
        'case " $* " in *" exec "*) ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"; '
        "export ASAN_OPTIONS;; esac\n"
        f'exec {path} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


def _teardown_tasks(sv):
    """Kills what a test left: shims, containers (through every runtime
    root), mounts, cgroups."""
    shims = sv.exec_root / "shims"
    ids = []
    if shims.is_dir():
        for d in shims.iterdir():
            ids.append(d.name)
            try:
                os.kill(int((d / "shim.pid").read_text().strip()), 9)
            except (OSError, ValueError):
                pass
    roots = sv.exec_root / "runtime"
    if roots.is_dir():
        for root in roots.iterdir():
            binary = shutil.which(root.name) or str(build_dir() / "ocirun" / "ocirun")
            for st in root.iterdir() if root.is_dir() else []:
                subprocess.run([binary, "--root", str(root), "delete", "--force", st.name],
                               capture_output=True, timeout=TIMEOUT)
    for _ in range(3):
        subprocess.run(["umount", "-R", "-q", str(sv.exec_root / "bundles")], capture_output=True)
    for base in Path("/sys/fs/cgroup").glob("*/berth"):
        for cg in base.iterdir():
            if cg.is_dir() and cg.name in ids:
                try:
                    cg.rmdir()
                except OSError:
                    pass
    return ids


@pytest.fixture
def task_supervisor(supervisor_bin, ctr_bin, task_runtime):
    """A supervisor whose default runtime is ocirun from the build."""
    base = tempfile.mkdtemp(prefix="bst-", dir="/tmp")
    sv = Supervisor(supervisor_bin, ctr_bin, base, extra=["--runtime", task_runtime])
    sv.start()
    yield sv
    try:
        if sv.proc and sv.proc.poll() is None:
            rc = sv.stop()
            assert rc == 0, f"berth-supervisor exited {rc} on SIGTERM:\n{sv.log_text()}"
        sv.check_sanitizers()
    finally:
        _teardown_tasks(sv)
        subprocess.run(["umount", "-R", "-q", str(sv.root)], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def task_image(registry, images):
    """busybox with a link for every applet, /etc/passwd and /etc/group, as
    test/tasks:1 on the test registry."""
    bb = Path(ocilayout.BUSYBOX)
    applets = subprocess.run([str(bb), "--list"], capture_output=True, text=True, check=True).stdout.split()
    entries = [("bin", None), ("bin/busybox", bb.read_bytes()), ("etc", None), ("tmp", None),
               ("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
                              b"alice:x:1234:2345:alice:/tmp:/bin/sh\n"),
               ("etc/group", b"root:x:0:\nnogroup:x:65534:\nstaff:x:50:alice\nalice:x:2345:\n")]
    entries += [(f"bin/{a}", ("link", "busybox")) for a in applets if a != "busybox"]
    ocilayout.single(images.layout, "tasks", [(ocilayout._tar(entries), "gzip")])
    registry.push(images.layout, "tasks", "test/tasks:1")
    return f"{registry.host}/test/tasks:1"


@pytest.fixture
def busybox(task_supervisor, task_image):
    """test/tasks:1 (task_image), pulled into task_supervisor."""
    ref = task_image
    task_supervisor.ctr("images", "pull", ref, timeout=120)
    return ref


@pytest.fixture
def copy_task_supervisor(supervisor_bin, ctr_bin, task_runtime, monkeypatch):
    """task_supervisor with --snapshotter copy, started with
    BERTH_SNAPSHOTTER=overlay in its environment: the option must win over
    the variable in the daemon and in the berth-fetch workers it runs."""
    monkeypatch.setenv("BERTH_SNAPSHOTTER", "overlay")
    base = tempfile.mkdtemp(prefix="bsc-", dir="/tmp")
    sv = Supervisor(supervisor_bin, ctr_bin, base, extra=["--runtime", task_runtime, "--snapshotter", "copy"])
    sv.start()
    yield sv
    try:
        if sv.proc and sv.proc.poll() is None:
            rc = sv.stop()
            assert rc == 0, f"berth-supervisor exited {rc} on SIGTERM:\n{sv.log_text()}"
        sv.check_sanitizers()
    finally:
        _teardown_tasks(sv)
        subprocess.run(["umount", "-R", "-q", str(sv.root)], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
