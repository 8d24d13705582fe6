"""POST /auth (docker login) against registries on 127.0.0.1: htpasswd
(Basic) and a token server (Bearer; tests/supervisor's). The engine keeps
nothing: the CLI stores the credentials in its config.json and sends them
back (X-Registry-Auth) on pulls."""

import base64
import importlib.util
import json
import shutil
import subprocess
import warnings

import pytest

import berth_registry
import ocilayout
from conftest import REPO, need

USER, PASSWORD = "alice", "wonderland"


def _layout(reg):
    lay = ocilayout.Layout(str(reg.dir / "layout"))
    ocilayout.single(lay, "busybox", [(ocilayout._tar(berth_registry.busybox_entries(ocilayout.BUSYBOX)), "gzip")])
    return lay


@pytest.fixture(scope="module")
def basic_registry(workdir):
    need(berth_registry.REGISTRY_BIN)
    if not shutil.which("skopeo"):
        pytest.skip("skopeo is not installed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # bcrypt ($2b$) through libcrypt, as tests/supervisor does
    htpasswd = workdir / "auth-htpasswd"
    htpasswd.write_text(f"{USER}:" + crypt.crypt(PASSWORD, crypt.mksalt(crypt.METHOD_BLOWFISH)) + "\n")
    reg = berth_registry.Registry(workdir, "auth-basic",
                                  f"auth:\n  htpasswd:\n    realm: basic-realm\n    path: {htpasswd}\n")
    reg.push(_layout(reg), "busybox", "private/busybox:1", creds=f"{USER}:{PASSWORD}")
    yield reg
    reg.stop()


@pytest.fixture(scope="module")
def token_registry(workdir):
    """tests/supervisor's token server (imported by path: not a copy) and a
    registry that trusts it."""
    need(berth_registry.REGISTRY_BIN)
    if not shutil.which("skopeo") or not shutil.which("openssl"):
        pytest.skip("skopeo or openssl is not installed")
    spec = importlib.util.spec_from_file_location("supervisor_conftest", REPO / "tests/supervisor/conftest.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    ts = mod.TokenServer(workdir)
    reg = berth_registry.Registry(workdir, "auth-token",
                                  f"auth:\n  token:\n    realm: {ts.realm}\n    service: {ts.SERVICE}\n"
                                  f"    issuer: {ts.ISSUER}\n    rootcertbundle: {ts.cert}\n")
    reg.push(_layout(reg), "busybox", "tok/busybox:1", creds=f"{ts.USER}:{ts.PASSWORD}")
    reg.tokens = ts
    yield reg
    reg.stop()
    ts.stop()


def _auths(stack):
    p = stack.config / "config.json"
    return json.loads(p.read_text()).get("auths", {}) if p.exists() else {}


def _curl(stack, *args):
    p = subprocess.run(["curl", "-s", "-o", "/dev/stdout", "-w", "\n%{http_code}", "--unix-socket",
                        str(stack.sock), *args], capture_output=True, text=True, timeout=120)
    body, code = p.stdout.rsplit("\n", 1)
    return int(code), json.loads(body) if body else None


def _post_auth(stack, body):
    return _curl(stack, "-X", "POST", "-H", "Content-Type: application/json", "-d", body, "http://x/v1.41/auth")


def test_login_pull_logout(stack, basic_registry):
    host = basic_registry.host
    ref = f"{host}/private/busybox:1"
    # without credentials the pull is refused
    p = stack.docker("pull", ref, check=False, timeout=120)
    assert p.returncode != 0
    # a wrong password: refused, in dockerd's words, nothing stored
    p = stack.docker("login", "-u", USER, "--password-stdin", host, input="rabbit\n", check=False)
    assert p.returncode != 0
    assert f'Get "http://{host}/v2/": unauthorized' in p.stderr, p.stderr
    assert host not in _auths(stack)
    # the right one: the CLI stores it
    p = stack.docker("login", "-u", USER, "--password-stdin", host, input=PASSWORD + "\n")
    assert "Login Succeeded" in p.stdout
    entry = _auths(stack)[host]
    assert base64.b64decode(entry["auth"]).decode() == f"{USER}:{PASSWORD}"
    # and sends it on pulls
    stack.docker("pull", ref, timeout=120)
    stack.docker("rmi", ref)
    stack.docker("logout", host)
    assert host not in _auths(stack)
    p = stack.docker("pull", ref, check=False, timeout=120)
    assert p.returncode != 0 and ("unauthorized" in p.stderr.lower() or "401" in p.stderr), p.stderr


def test_login_bearer(stack, token_registry):
    ts = token_registry.tokens
    host = token_registry.host
    ref = f"{host}/tok/busybox:1"
    p = stack.docker("login", "-u", ts.USER, "--password-stdin", host, input="nope\n", check=False)
    assert p.returncode != 0 and "unauthorized" in p.stderr and host in p.stderr, p.stderr
    p = stack.docker("login", "-u", ts.USER, "--password-stdin", host, input=ts.PASSWORD + "\n")
    assert "Login Succeeded" in p.stdout
    try:
        stack.docker("pull", ref, timeout=120)
        stack.docker("rmi", ref)
    finally:
        stack.docker("logout", host)


def test_auth_api(stack, basic_registry):
    code, body = _post_auth(stack, json.dumps({"username": USER, "password": PASSWORD,
                                               "serveraddress": basic_registry.host}))
    assert code == 200 and body == {"Status": "Login Succeeded", "IdentityToken": ""}
    code, body = _post_auth(stack, json.dumps({"username": USER, "password": "x",
                                               "serveraddress": f"http://{basic_registry.host}/"}))
    assert code == 401 and body["message"].startswith(f'Get "http://{basic_registry.host}/v2/": unauthorized:')
    code, body = _post_auth(stack, "{not json")
    assert code == 400 and "invalid JSON" in body["message"]
    code, body = _post_auth(stack, '{"username": 5}')
    assert code == 400


def test_auth_unreachable(stack):
    port = berth_registry.free_port()
    code, body = _post_auth(stack, json.dumps({"username": "a", "password": "b",
                                               "serveraddress": f"127.0.0.1:{port}"}))
    assert code == 500 and f"127.0.0.1:{port}" in body["message"], body


def test_auth_docker_hub(stack):
    # Docker Hub (serveraddress "" or its v1 URL) is registry-1.docker.io:
    # not reachable from the tests; an error naming it, never a success
    code, body = _post_auth(stack, json.dumps({"username": "a", "password": "b",
                                               "serveraddress": "https://index.docker.io/v1/"}))
    assert code == 500 and "registry-1.docker.io" in body["message"], body
