"""`berth-ctr login`: the supervisor's images.CheckAuth (docker login's
check, run in a berth-fetch worker) against real registries: htpasswd
(Basic) and a token server (Bearer), right and wrong credentials, and a
registry that is not there. Needs root (the daemon refuses anything else)."""

import os
from urllib.parse import parse_qs, urlparse

import pytest

from berth_registry import free_port

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="berth-supervisor runs as root only")


def test_login_basic(supervisor, basic_registry):
    p = supervisor.ctr("login", "--user", "alice:wonderland", basic_registry.host)
    assert p.stdout.strip() == "Login Succeeded"


def test_login_basic_wrong_password(supervisor, basic_registry):
    p = supervisor.ctr("login", "--user", "alice:rabbit", basic_registry.host, check=False)
    assert p.returncode == 1
    # dockerd's wording, naming the registry
    assert f'Get "http://{basic_registry.host}/v2/": unauthorized' in p.stderr, p.stderr
    assert "[INVALID_ARGUMENT]" in p.stderr, p.stderr
    assert "rabbit" not in p.stderr + supervisor.log_text()


def test_login_basic_no_credentials(supervisor, basic_registry):
    p = supervisor.ctr("login", basic_registry.host, check=False)
    assert "unauthorized: the registry wants credentials" in p.stderr, p.stderr


def test_login_anonymous_registry(supervisor, registry):
    # a registry that asks for nothing takes any login, as with dockerd
    p = supervisor.ctr("login", "--user", "x:y", registry.host)
    assert "Login Succeeded" in p.stdout


def test_login_bearer(supervisor, token_registry):
    ts = token_registry.tokens
    before = len(ts.requests)
    p = supervisor.ctr("login", "--user", f"{ts.USER}:{ts.PASSWORD}", token_registry.host)
    assert "Login Succeeded" in p.stdout
    asked = ts.requests[before:]
    assert len(asked) == 1, asked
    q = parse_qs(urlparse(asked[0]["path"]).query)
    # as docker login: the service, no scope
    assert q.get("service") == [ts.SERVICE] and "scope" not in q, asked


def test_login_bearer_wrong_password(supervisor, token_registry):
    ts = token_registry.tokens
    p = supervisor.ctr("login", "--user", f"{ts.USER}:nope", token_registry.host, check=False)
    assert f'Get "http://{token_registry.host}/v2/": unauthorized' in p.stderr, p.stderr
    assert "bad credentials" in p.stderr and "[INVALID_ARGUMENT]" in p.stderr, p.stderr


def test_login_unreachable(supervisor):
    host = f"127.0.0.1:{free_port()}"
    p = supervisor.ctr("login", "--user", "a:b", host, check=False)
    assert host in p.stderr and "INVALID_ARGUMENT" not in p.stderr, p.stderr


def test_login_usage(supervisor):
    p = supervisor.ctr("login", check=False)
    assert p.returncode == 2 and "usage: login" in p.stderr
