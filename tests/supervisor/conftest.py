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
import tempfile
import threading
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import pytest

import ocilayout

REPO = Path(__file__).resolve().parents[2]
REGISTRY_BIN = "/usr/bin/docker-registry"
TIMEOUT = 60


def build_dir():
    return Path(os.environ.get("BERTH_BUILD") or REPO / "build").resolve()


@pytest.fixture(scope="session")
def fetch_bin():
    p = build_dir() / "supervisor" / "berth-fetch"
    if not (p.is_file() and os.access(p, os.X_OK)):
        pytest.fail(f"{p} not found: build first or set $BERTH_BUILD", pytrace=False)
    return str(p)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def need(tool):
    if not shutil.which(tool):
        pytest.skip(f"{tool} is not installed (packaging/install-deps.sh)")


class Registry:
    def __init__(self, workdir, name, auth_yaml=""):
        self.dir = Path(workdir) / name
        self.storage = self.dir / "storage"
        self.storage.mkdir(parents=True)
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.log = open(self.dir / "registry.log", "wb")
        cfg = self.dir / "config.yml"
        cfg.write_text(
            "version: 0.1\n"
            "log:\n  level: info\n  accesslog:\n    disabled: false\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.storage}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.host}\n"
            + auth_yaml)
        self.proc = subprocess.Popen([REGISTRY_BIN, "serve", str(cfg)], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://{self.host}/v2/", timeout=2)
                break
            except urllib.error.HTTPError:
                break  # 401: up, wants auth
            except OSError:
                if self.proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError("docker-registry did not start:\n" + self.log_text())
                time.sleep(0.05)

    def log_text(self):
        self.log.flush()
        return (self.dir / "registry.log").read_text(errors="replace")

    def push(self, layout, tag, dest, *extra, creds=None):
        args = ["skopeo", "copy", "--quiet", "--dest-tls-verify=false"]
        if creds:
            args += ["--dest-creds", creds]
        args += list(extra) + [f"oci:{layout.path}:{tag}", f"docker://{self.host}/{dest}"]
        p = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT)
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(args)}: {p.stderr}")

    def blob_path(self, digest):
        hexd = digest.split(":", 1)[1]
        return self.storage / "docker/registry/v2/blobs/sha256" / hexd[:2] / hexd / "data"

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


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
