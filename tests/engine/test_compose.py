"""docker-compose (Debian's 1.29, over docker-py) against berth-engine: a
two-service project on its own network, as a user runs it."""

import json
import shutil
import subprocess
import time

import pytest

COMPOSE = shutil.which("docker-compose")


def _compose(stack, project_dir, *args, check=True, timeout=120):
    p = subprocess.run([COMPOSE, "--no-ansi", "-p", "bt", *args], cwd=project_dir, capture_output=True, text=True,
                       timeout=timeout, env=stack.env())
    if check and p.returncode != 0:
        raise AssertionError(f"docker-compose {' '.join(args)} exited {p.returncode}:\n{p.stdout}\n{p.stderr}\n"
                             f"--- engine log tail:\n{stack.log('engine')[-3000:]}")
    return p


@pytest.fixture
def project(stack, tmp_path):
    if not COMPOSE:
        pytest.skip("docker-compose is not installed")
    (tmp_path / "docker-compose.yml").write_text(f"""
version: "3.7"
services:
  web:
    image: {stack.image}
    command: ["httpd", "-f", "-p", "8080", "-h", "/srv"]
    volumes:
      - site:/srv
    labels:
      tier: front
  client:
    image: {stack.image}
    command: ["sh", "-c", "echo started; echo hello > /srv/index.html; sleep 600"]
    volumes:
      - site:/srv
    depends_on: [web]
    environment:
      GREETING: hi
volumes:
  site: {{}}
""")
    yield tmp_path
    _compose(stack, tmp_path, "down", "-v", "-t", "1", "--remove-orphans", check=False)


def test_compose_up_ps_exec_logs_down(stack, project):
    _compose(stack, project, "up", "-d")
    ps = _compose(stack, project, "ps").stdout
    assert "bt_web_1" in ps and "bt_client_1" in ps and ps.count("Up") == 2, ps
    # the project's network, and the services reach each other by name
    nets = json.loads(stack.docker("network", "inspect", "bt_default").stdout)[0]
    assert len(nets["Containers"]) == 2, nets
    deadline = time.time() + 20
    while True:
        p = _compose(stack, project, "exec", "-T", "client", "wget", "-q", "-O", "-", "http://web:8080/",
                     check=False)
        if p.returncode == 0 or time.time() > deadline:
            break
        time.sleep(0.3)
    assert p.stdout == "hello\n", (p.stdout, p.stderr)
    assert _compose(stack, project, "exec", "-T", "client", "sh", "-c", "echo $GREETING").stdout == "hi\n"
    web = stack.inspect("bt_web_1")
    assert web["Config"]["Labels"]["tier"] == "front"
    assert web["Config"]["Labels"]["com.docker.compose.project"] == "bt"
    assert any(m["Type"] == "volume" and m["Name"] == "bt_site" for m in web["Mounts"]), web["Mounts"]
    assert "started" in _compose(stack, project, "logs", "client").stdout
    # stop, start, and down taking everything away (-t 1: neither command
    # handles SIGTERM as PID 1)
    _compose(stack, project, "stop", "-t", "1", "client")
    assert "Exit" in _compose(stack, project, "ps", "client").stdout
    _compose(stack, project, "start", "client")
    _compose(stack, project, "down", "-v", "-t", "1")
    assert stack.docker("ps", "-aq", "--filter", "label=com.docker.compose.project=bt").stdout == ""
    assert stack.docker("network", "inspect", "bt_default", check=False).returncode != 0
    assert stack.docker("volume", "inspect", "bt_site", check=False).returncode != 0
