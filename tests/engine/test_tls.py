"""berth-engine on TCP, only with TLS and verified client certificates (as
dockerd's --tlsverify), and on sockets from systemd (-H fd://).

Certificates are made at test time with the openssl CLI: a CA, a server
certificate for IP 127.0.0.1, a client certificate, and a client
certificate from another CA. The engine listens on a free port of
127.0.0.1 only."""

import json
import os
import shutil
import socket
import ssl
import subprocess
import time

import pytest

from conftest import DOCKER


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _ca(d, name):
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", f"{name}-key.pem", "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN=berth test {name}",
             cwd=d)


def _leaf(d, ca, name, cn, ext):
    (d / f"{name}.ext").write_text(ext + "\n")
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", f"{name}-key.pem", "-out", f"{name}.csr", "-subj", f"/CN={cn}", cwd=d)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}-key.pem",
             "-CAcreateserial", "-out", f"{name}-cert.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=d)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    if not shutil.which("openssl"):
        pytest.skip("the openssl CLI is not installed (packaging/install-deps.sh)")
    d = tmp_path_factory.mktemp("tls")
    _ca(d, "ca")
    _ca(d, "other-ca")
    _leaf(d, "ca", "server", "127.0.0.1", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth")
    _leaf(d, "ca", "client", "client", "extendedKeyUsage=clientAuth")
    _leaf(d, "other-ca", "stranger", "client", "extendedKeyUsage=clientAuth")
    _leaf(d, "ca", "plain", "plain", "basicConstraints=CA:FALSE")
    return d


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tls_args(c):
    return ["--tlsverify", "--tlscacert", str(c / "ca.pem"), "--tlscert", str(c / "server-cert.pem"),
            "--tlskey", str(c / "server-key.pem")]


class Tls:
    def __init__(self, stack, certs, port):
        self.stack, self.certs, self.port = stack, certs, port
        self.url = f"tcp://127.0.0.1:{port}"

    def client_args(self, cert="client"):
        c = self.certs
        args = ["-H", self.url, "--tlsverify", "--tlscacert", str(c / "ca.pem")]
        if cert:
            args += ["--tlscert", str(c / f"{cert}-cert.pem"), "--tlskey", str(c / f"{cert}-key.pem")]
        return args

    def docker(self, *args, cert="client", **kw):
        return self.stack.docker(*self.client_args(cert), *args, **kw)

    def raw_get(self, path, cert="client"):
        """GET path over TLS with Python's ssl: (status, body); status 0
        when the server ended the connection without an answer (a failed
        handshake: with TLS 1.3 the client learns of it at its first
        read)."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(str(self.certs / "ca.pem"))
        if cert:
            ctx.load_cert_chain(str(self.certs / f"{cert}-cert.pem"), str(self.certs / f"{cert}-key.pem"))
        data = b""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as raw:
            try:
                with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                    s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
                    while chunk := s.recv(65536):
                        data += chunk
            except (ssl.SSLError, ConnectionError):
                pass
        head, _, body = data.partition(b"\r\n\r\n")
        status = int(head.split()[1]) if head.startswith(b"HTTP/") else 0
        return status, body


@pytest.fixture(scope="module")
def tls(stack, certs):
    """The stack's engine, restarted with a unix socket and a TLS port (one
    engine at a time: engines share the host's bridge)."""
    stack.stop(stack.eng)
    port = _free_port()
    stack.start_engine(["-H", f"tcp://127.0.0.1:{port}", *_tls_args(certs)])
    t = Tls(stack, certs, port)
    deadline = time.time() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.time() < deadline and stack.eng.poll() is None, stack.log("engine")[-3000:]
            time.sleep(0.05)
    yield t
    for c in stack.docker("ps", "-aq", check=False).stdout.split():
        stack.docker("rm", "-f", c, check=False)
    assert stack.stop(stack.eng) == 0, stack.log("engine")[-3000:]
    stack.start_engine()


def test_version(tls):
    out = tls.docker("version", "--format", "{{.Server.APIVersion}} {{.Server.Os}}").stdout
    assert out == "1.41 linux\n"
    # the unix socket is served beside it
    assert tls.stack.docker("version", "--format", "{{.Server.APIVersion}}").stdout == "1.41\n"


def test_run_rm_output(tls):
    p = tls.docker("run", "--rm", tls.stack.image, "sh", "-c", "echo hello over tls; exit 3", check=False)
    assert p.stdout == "hello over tls\n" and p.returncode == 3, p.stderr


def test_run_stdin_through_hijack(tls):
    p = tls.docker("run", "--rm", "-i", tls.stack.image, "sh", "-c", "read x; echo got $x",
                   input="through-the-hijack\n", timeout=60)
    assert p.stdout == "got through-the-hijack\n"


def test_run_stdin_to_eof(tls):
    """The client's half-close (the end of stdin) reaches the container."""
    data = "".join(f"line {i}\n" for i in range(2000))
    p = tls.docker("run", "--rm", "-i", tls.stack.image, "sh", "-c", "cat; echo done", input=data, timeout=60)
    assert p.stdout == data + "done\n"


def test_exec(tls, name):
    tls.docker("run", "-d", "--name", name, tls.stack.image, "sleep", "300")
    try:
        assert tls.docker("exec", name, "echo", "exec over tls").stdout == "exec over tls\n"
        p = tls.docker("exec", "-i", name, "sh", "-c", "read x; echo got $x; exit 4", input="in\n", check=False)
        assert p.stdout == "got in\n" and p.returncode == 4, p.stderr
    finally:
        tls.docker("rm", "-f", name)


def test_logs_follow_and_events(tls, name):
    since = str(int(time.time()) - 1)
    tls.docker("run", "-d", "--name", name, tls.stack.image, "sh", "-c",
               "for i in 1 2 3; do echo line $i; sleep 0.3; done")
    try:
        p = tls.docker("logs", "-f", name, timeout=30)
        assert p.stdout == "line 1\nline 2\nline 3\n"
        until = str(int(time.time()) + 1)
        ev = tls.docker("events", "--since", since, "--until", until, "--filter", f"container={name}",
                        "--format", "{{.Action}}", timeout=30).stdout.split()
        assert "start" in ev and "die" in ev, ev
    finally:
        tls.docker("rm", "-f", name)


def test_client_without_certificate_rejected(tls):
    """The handshake fails (dockerd: RequireAndVerifyClientCert)."""
    p = tls.docker("version", "--format", "{{.Server.APIVersion}}", cert=None, check=False)
    assert p.returncode != 0
    assert "tls: certificate required" in p.stderr or "tls: bad certificate" in p.stderr, p.stderr
    assert tls.raw_get("/v1.41/containers/json", cert=None) == (0, b"")
    assert tls.raw_get("/_ping") == (200, b"OK")
    assert "TLS client 127.0.0.1:" in tls.stack.log("engine")


def test_client_certificate_of_another_ca_rejected(tls):
    # the CLI (Go) sends no certificate the server's CA list does not name:
    # "certificate required"; Python's ssl sends it anyway: "bad certificate"
    p = tls.docker("ps", cert="stranger", check=False)
    assert p.returncode != 0 and ("tls: certificate required" in p.stderr or "tls: bad certificate" in p.stderr)
    assert tls.raw_get("/v1.41/containers/json", cert="stranger") == (0, b"")
    # a certificate of the right CA that is not for client authentication
    # (the server's: serverAuth only)
    assert tls.raw_get("/v1.41/info", cert="server") == (0, b"")
    assert tls.raw_get("/_ping") == (200, b"OK")


def test_client_certificate_without_key_usage_accepted(tls):
    """No extended key usage: good for any purpose (as in Go)."""
    assert tls.raw_get("/_ping", cert="plain") == (200, b"OK")


def test_plain_http_to_tls_port_fails(tls):
    with socket.create_connection(("127.0.0.1", tls.port), timeout=10) as s:
        s.sendall(b"GET /_ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        try:
            data = s.recv(4096)
        except ConnectionError:
            data = b""
    assert not data.startswith(b"HTTP/1.1 200"), data
    p = tls.stack.docker("-H", tls.url, "version", check=False)
    assert p.returncode != 0


def test_clean_stop_with_tls_clients_connected(tls, name):
    """SIGTERM with a stream, an idle TLS connection and a half-open
    handshake: the engine ends them, exits 0 (no sanitizer report: the
    session's teardown reads the log)."""
    tls.docker("run", "-d", "--name", name, tls.stack.image, "sh", "-c", "while :; do echo tick; sleep 0.2; done")
    follow = subprocess.Popen([DOCKER, *tls.client_args(), "logs", "-f", name], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=tls.stack.env())
    assert follow.stdout.readline() == b"tick\n"
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(str(tls.certs / "ca.pem"))
    ctx.load_cert_chain(str(tls.certs / "client-cert.pem"), str(tls.certs / "client-key.pem"))
    idle = ctx.wrap_socket(socket.create_connection(("127.0.0.1", tls.port), timeout=10),
                           server_hostname="127.0.0.1")
    half = socket.create_connection(("127.0.0.1", tls.port), timeout=10)
    try:
        time.sleep(0.3)
        t0 = time.time()
        assert tls.stack.stop(tls.stack.eng) == 0, tls.stack.log("engine")[-3000:]
        assert time.time() - t0 < 10
        assert follow.wait(timeout=10) is not None
    finally:
        idle.close()
        half.close()
        follow.kill()
        follow.wait()
        tls.stack.start_engine(["-H", tls.url, *_tls_args(tls.certs)])
        tls.docker("rm", "-f", name, check=False)


def _engine_alone(stack, args, timeout=20):
    return subprocess.run([stack.eng_bin, "--exec-root", str(stack.run), "--data-root", str(stack.root),
                           "--pid-file", str(stack.base / "other.pid"), *args],
                          capture_output=True, text=True, timeout=timeout)


def test_tcp_without_tls_refused(stack, certs):
    port = _free_port()
    url = f"tcp://127.0.0.1:{port}"
    p = _engine_alone(stack, ["-H", f"unix://{stack.base}/never.sock", "-H", url])
    assert p.returncode == 2
    assert f"engine: refusing to listen on {url} without TLS: " in p.stderr, p.stderr
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    # --tls alone (no client verification) is refused too
    p = _engine_alone(stack, ["-H", url, "--tls", "--tlscert", str(certs / "server-cert.pem"),
                              "--tlskey", str(certs / "server-key.pem")])
    assert p.returncode == 2 and f"refusing to listen on {url} without TLS client verification" in p.stderr
    # and --tlsverify=false from the command line overrides the file
    cfg = stack.base / "tls-off.json"
    cfg.write_text(json.dumps({"hosts": [url], "tlsverify": True, "tlscacert": str(certs / "ca.pem"),
                               "tlscert": str(certs / "server-cert.pem"), "tlskey": str(certs / "server-key.pem")}))
    p = _engine_alone(stack, ["--config-file", str(cfg), "--tlsverify=false"])
    assert p.returncode == 2 and f"refusing to listen on {url} without TLS" in p.stderr, p.stderr


def test_tcp_socket_from_systemd_without_tls_refused(stack):
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(4)

    def child():
        os.dup2(ls.fileno(), 3)
        os.environ["LISTEN_FDS"] = "1"
        os.environ["LISTEN_PID"] = str(os.getpid())

    try:
        p = subprocess.run([stack.eng_bin, "--exec-root", str(stack.run), "--data-root", str(stack.root),
                            "-H", "fd://"], capture_output=True, text=True, timeout=20, pass_fds=(3,),
                           preexec_fn=child)
    finally:
        ls.close()
    assert p.returncode == 2 and "engine: refusing to listen on fd://3 without TLS: " in p.stderr, p.stderr


def test_tls_file_errors_name_the_file(stack, certs, tmp_path):
    url = f"tcp://127.0.0.1:{_free_port()}"
    c = certs
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    (tmp_path / "bad.pem").write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    cases = [
        (["--tlscacert", str(tmp_path / "nope.pem"), "--tlscert", str(c / "server-cert.pem"),
          "--tlskey", str(c / "server-key.pem")], f'tlscacert "{tmp_path}/nope.pem": No such file or directory'),
        (["--tlscacert", str(c / "ca.pem"), "--tlscert", str(tmp_path / "junk.pem"),
          "--tlskey", str(c / "server-key.pem")], f'tlscert "{tmp_path}/junk.pem": not a PEM file'),
        (["--tlscacert", str(tmp_path / "bad.pem"), "--tlscert", str(c / "server-cert.pem"),
          "--tlskey", str(c / "server-key.pem")], f'tlscacert "{tmp_path}/bad.pem": no valid PEM certificate'),
        (["--tlscacert", str(c / "ca.pem"), "--tlscert", str(c / "server-cert.pem"),
          "--tlskey", str(c / "server-cert.pem")], f'tlskey "{c}/server-cert.pem": not a usable PEM private key'),
        (["--tlscacert", str(c / "ca.pem"), "--tlscert", str(c / "server-cert.pem"),
          "--tlskey", str(c / "client-key.pem")], "do not match"),
        (["--tlscacert", str(c / "ca.pem"), "--tlscert", str(c / "server-cert.pem")], "missing: tlskey"),
    ]
    for args, msg in cases:
        p = _engine_alone(stack, ["-H", url, "--tlsverify", *args])
        assert p.returncode == 2 and msg in p.stderr, (args, p.stderr)


@pytest.fixture
def alone(stack):
    """One engine at a time (see test_config.py)."""
    stack.stop(stack.eng)
    yield
    if stack.eng.poll() is None:
        assert stack.stop(stack.eng) == 0, stack.log("engine")[-3000:]
    stack.start_engine()


def test_fd_activation(stack, alone):
    """-H fd://: a listening socket passed as fd 3 with LISTEN_FDS=1 and
    LISTEN_PID, as systemd's socket activation does, served beside the
    engine's own unix socket."""
    act = stack.base / "activated.sock"
    if act.exists():
        act.unlink()
    ls = socket.socket(socket.AF_UNIX)
    ls.bind(str(act))
    ls.listen(16)

    def child():
        os.dup2(ls.fileno(), 3)
        os.environ["LISTEN_FDS"] = "1"
        os.environ["LISTEN_PID"] = str(os.getpid())

    try:
        stack.start_engine(["-H", "fd://"], pass_fds=(3,), preexec_fn=child)
        ls.close()  # the engine's copy serves it now
        out = stack.docker("-H", f"unix://{act}", "version", "--format", "{{.Server.APIVersion}}").stdout
        assert out == "1.41\n"
        assert stack.docker("version", "--format", "{{.Server.APIVersion}}").stdout == "1.41\n"
        assert stack.stop(stack.eng) == 0
        # the socket belongs to systemd (here, the test): it is not removed
        assert act.exists()
    finally:
        ls.close()
        act.unlink(missing_ok=True)


def test_unix_host_from_systemd_and_config_keys(stack, alone, certs):
    """The service with its socket unit: the unix:// host is the socket
    systemd passed (no fd:// needed), and hosts/TLS come from the file."""
    act = stack.base / "unit.sock"
    act.unlink(missing_ok=True)
    ls = socket.socket(socket.AF_UNIX)
    ls.bind(str(act))
    ls.listen(16)
    port = _free_port()
    cfg = stack.base / "tls.json"
    cfg.write_text(json.dumps({"hosts": [f"unix://{act}", f"tcp://127.0.0.1:{port}"], "tlsverify": True,
                               "tlscacert": str(certs / "ca.pem"), "tlscert": str(certs / "server-cert.pem"),
                               "tlskey": str(certs / "server-key.pem")}))

    def child():
        os.dup2(ls.fileno(), 3)
        os.environ["LISTEN_FDS"] = "1"
        os.environ["LISTEN_PID"] = str(os.getpid())

    p = subprocess.Popen([stack.eng_bin, "--config-file", str(cfg), "--data-root", str(stack.root),
                          "--exec-root", str(stack.run), "--pid-file", str(stack.base / "other.pid")],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, pass_fds=(3,),
                         preexec_fn=child)
    try:
        ls.close()
        t = Tls(stack, certs, port)
        deadline = time.time() + 20
        while True:
            v = stack.docker("-H", f"unix://{act}", "version", "--format", "{{.Server.APIVersion}}", check=False)
            if v.returncode == 0:
                break
            assert time.time() < deadline and p.poll() is None, v.stderr
            time.sleep(0.1)
        assert v.stdout == "1.41\n"
        assert t.docker("version", "--format", "{{.Server.APIVersion}}").stdout == "1.41\n"
    finally:
        p.terminate()
        rc = p.wait(timeout=30)
        out = p.stdout.read()
        assert rc == 0, out
        for mark in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
            assert mark not in out, out
        assert act.exists()
        act.unlink()
