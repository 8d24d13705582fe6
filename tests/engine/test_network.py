"""berth-engine's networking (issue 8) with the real docker CLI: the
default bridge, published ports, none/host/container:, user-defined
networks with name resolution and isolation, cleanup, an engine restart
and bad input. Real kernel networking only: loopback and the engine's own
bridges and namespaces; nothing leaves the host."""

import json
import os
import socket
import subprocess
import time

import pytest

HTTPD = ["sh", "-c", "mkdir -p /www && echo hello-$(hostname) > /www/index.html && exec httpd -f -p 80 -h /www"]


def run(*args, check=False, timeout=30):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, check=check)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(url, tries=50):
    """curl url until it answers (the server in the container may not be up yet)."""
    last = None
    for _ in range(tries):
        last = run("curl", "-sS", "-m", "3", url)
        if last.returncode == 0:
            return last.stdout
        time.sleep(0.1)
    raise AssertionError(f"curl {url}: {last.stderr}")


def links():
    out = run("ip", "-o", "link").stdout
    return sorted(line.split(":")[1].strip().split("@")[0] for line in out.splitlines())


def ruleset():
    p = run("nft", "list", "table", "ip", "berth")
    return p.stdout if p.returncode == 0 else ""


def netns(stack):
    d = stack.run / "netns"
    return sorted(os.listdir(d)) if d.exists() else []


def host_state(stack):
    return {"links": links(), "rules": ruleset(), "netns": netns(stack)}


def wget(stack, url, *opts, t=5, check=True):
    """wget url from a new container, sh staying its pid 1 (the "exit"
    keeps sh from exec'ing timeout): timeout's SIGTERM would not end a
    wget that is pid 1."""
    return stack.docker("run", "--rm", *opts, stack.image, "sh", "-c", f"timeout {t} wget -qO- {url}; exit $?", check=check)


def httpd(stack, name, *opts):
    stack.docker("run", "-d", "--name", name, *opts, stack.image, *HTTPD)
    return stack.inspect(name)


@pytest.fixture
def net(stack):
    """Networks made by a test, removed after it."""
    made = []

    def make(name, *opts):
        stack.docker("network", "create", *opts, name)
        made.append(name)
        return name

    yield make
    for n in made:
        stack.docker("network", "rm", n, check=False)


def test_default_bridge_published_port(stack, name):
    port = free_port()
    c = httpd(stack, name, "-p", f"{port}:80")
    ns = c["NetworkSettings"]
    assert ns["IPAddress"].startswith("172.31."), ns
    assert ns["Gateway"] == "172.31.0.1"
    assert ns["IPPrefixLen"] == 16
    assert ns["MacAddress"].startswith("02:42:")
    assert ns["Ports"] == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": str(port)}]}
    assert ns["SandboxKey"] == str(stack.run / "netns" / c["Id"])
    b = ns["Networks"]["bridge"]
    assert b["IPAddress"] == ns["IPAddress"] and b["NetworkID"] and b["EndpointID"]
    assert fetch(f"http://127.0.0.1:{port}/").startswith("hello-")
    assert stack.docker("port", name).stdout.strip() == f"80/tcp -> 0.0.0.0:{port}"
    ps = stack.docker("ps", "--filter", f"name={name}", "--format", "{{.Ports}}").stdout.strip()
    assert ps == f"0.0.0.0:{port}->80/tcp"
    hosts = stack.docker("exec", name, "cat", "/etc/hosts").stdout
    assert f"{ns['IPAddress']}\t{c['Config']['Hostname']}" in hosts
    # the container reaches the host's published port through its gateway (hairpin)
    out = stack.docker("exec", name, "sh", "-c", f"timeout 5 wget -qO- http://172.31.0.1:{port}/").stdout
    assert out.startswith("hello-")
    stack.docker("rm", "-f", name)


def test_ephemeral_and_loopback_ports(stack, name):
    lport = free_port()
    c = httpd(stack, name, "-p", "80", "-p", f"127.0.0.1:{lport}:80", "-p", "5353/udp")
    ports = c["NetworkSettings"]["Ports"]
    eph = [b for b in ports["80/tcp"] if b["HostIp"] == "0.0.0.0"]
    assert len(eph) == 1 and 49153 <= int(eph[0]["HostPort"]) <= 60999
    assert {"HostIp": "127.0.0.1", "HostPort": str(lport)} in ports["80/tcp"]
    assert ports["5353/udp"][0]["HostPort"]
    out = stack.docker("port", name, "80/tcp").stdout
    assert f"0.0.0.0:{eph[0]['HostPort']}" in out and f"127.0.0.1:{lport}" in out
    assert fetch(f"http://127.0.0.1:{eph[0]['HostPort']}/").startswith("hello-")
    assert fetch(f"http://127.0.0.1:{lport}/").startswith("hello-")
    stack.docker("rm", "-f", name)


def test_udp_port(stack, name):
    # the image's busybox has no UDP server (nc without -u): the rule and
    # the report are checked, the traffic path is the TCP one's
    port = free_port()
    stack.docker("run", "-d", "--name", name, "-p", f"{port}:9000/udp", stack.image, "sleep", "300")
    ports = stack.inspect(name)["NetworkSettings"]["Ports"]
    assert ports == {"9000/udp": [{"HostIp": "0.0.0.0", "HostPort": str(port)}]}
    ip = stack.inspect(name)["NetworkSettings"]["IPAddress"]
    assert f"udp dport {port} dnat to {ip}:9000" in ruleset()
    stack.docker("rm", "-f", name)
    assert f"udp dport {port}" not in ruleset()


def test_none_has_only_lo(stack):
    out = stack.docker("run", "--rm", "--network", "none", stack.image, "ip", "-o", "link").stdout
    names = [line.split(":")[1].strip() for line in out.splitlines()]
    assert names == ["lo"]
    assert "UP" in out or "LOOPBACK,UP" in out


def test_host_network(stack):
    out = stack.docker("run", "--rm", "--network", "host", stack.image, "ip", "-o", "link").stdout
    names = sorted(line.split(":")[1].strip().split("@")[0] for line in out.splitlines())
    assert "eth0" in names and names == links()


def test_container_network(stack, name):
    c = httpd(stack, name)
    ip = c["NetworkSettings"]["IPAddress"]
    out = stack.docker("run", "--rm", "--network", f"container:{name}", stack.image, "ip", "-o", "addr").stdout
    assert ip in out
    # the same namespace: its server on localhost
    out = stack.docker("run", "--rm", "--network", f"container:{name}", stack.image,
                       "wget", "-qO-", "http://127.0.0.1/").stdout
    assert out.startswith("hello-")
    stack.docker("rm", "-f", name)


def test_user_network_names_aliases_ip(stack, net, name):
    n1 = net(f"{name}-n1", "--subnet", "10.251.1.0/24", "--label", "test=net")
    web = f"{name}-web"
    c = httpd(stack, web, "--network", n1, "--network-alias", "www", "--ip", "10.251.1.50")
    s = c["NetworkSettings"]["Networks"][n1]
    assert s["IPAddress"] == "10.251.1.50" and s["Gateway"] == "10.251.1.1" and s["IPPrefixLen"] == 24
    assert "www" in s["Aliases"]
    assert c["NetworkSettings"]["IPAddress"] == ""  # as Docker: the top level is the default bridge's
    for host in (web, "www", c["Id"][:12]):
        out = wget(stack, f"http://{host}/", "--network", n1).stdout
        assert out.startswith("hello-"), host
    info = json.loads(stack.docker("network", "inspect", n1).stdout)[0]
    assert info["Driver"] == "bridge" and info["IPAM"]["Config"] == [{"Subnet": "10.251.1.0/24", "Gateway": "10.251.1.1"}]
    assert info["Labels"] == {"test": "net"}
    assert info["Containers"][c["Id"]]["IPv4Address"] == "10.251.1.50/24"
    assert f"br-{info['Id'][:12]}" in links()
    ls = stack.docker("network", "ls", "--format", "{{.Name}} {{.Driver}}").stdout.split("\n")
    assert "bridge bridge" in ls and "host host" in ls and "none null" in ls and f"{n1} bridge" in ls
    # the same --ip twice
    p = stack.docker("run", "-d", "--network", n1, "--ip", "10.251.1.50", stack.image, "sleep", "30", check=False)
    assert p.returncode != 0 and "Address already in use" in p.stderr
    ids = stack.docker("ps", "-aq", "--filter", "status=created").stdout.split()
    for i in ids:
        stack.docker("rm", "-f", i)
    # in use: refused as Docker does
    p = stack.docker("network", "rm", n1, check=False)
    assert p.returncode != 0 and "has active endpoints" in p.stderr
    stack.docker("rm", "-f", web)


def test_isolation_between_networks(stack, net, name):
    a = net(f"{name}-a", "--subnet", "10.251.2.0/24")
    b = net(f"{name}-b", "--subnet", "10.251.3.0/24")
    srv = f"{name}-srv"
    ip = httpd(stack, srv, "--network", a)["NetworkSettings"]["Networks"][a]["IPAddress"]
    ok = wget(stack, f"http://{ip}/", "--network", a)
    assert ok.stdout.startswith("hello-")
    p = wget(stack, f"http://{ip}/", "--network", b, t=2, check=False)
    assert p.returncode != 0
    # and the default bridge cannot reach it either
    p = wget(stack, f"http://{ip}/", t=2, check=False)
    assert p.returncode != 0
    # nor resolve its name
    p = wget(stack, f"http://{srv}/", "--network", b, t=2, check=False)
    assert p.returncode != 0
    stack.docker("rm", "-f", srv)


def test_connect_disconnect(stack, net, name):
    n = net(f"{name}-c", "--subnet", "10.251.4.0/24")
    httpd(stack, name)
    stack.docker("network", "connect", "--alias", "extra", n, name)
    c = stack.inspect(name)
    ip = c["NetworkSettings"]["Networks"][n]["IPAddress"]
    assert ip.startswith("10.251.4.")
    addrs = stack.docker("exec", name, "ip", "-o", "addr").stdout
    assert ip in addrs and "eth1" in addrs
    peer = wget(stack, "http://extra/", "--network", n)
    assert peer.stdout.startswith("hello-")
    stack.docker("network", "disconnect", n, name)
    addrs = stack.docker("exec", name, "ip", "-o", "addr").stdout
    assert ip not in addrs and "eth1" not in addrs
    assert n not in stack.inspect(name)["NetworkSettings"]["Networks"]
    stack.docker("rm", "-f", name)


def test_prune_and_predefined(stack, name):
    stack.docker("network", "create", f"{name}-p")
    out = stack.docker("network", "prune", "-f").stdout
    assert f"{name}-p" in out
    for pre in ("bridge", "host", "none"):
        p = stack.docker("network", "rm", pre, check=False)
        assert p.returncode != 0 and "pre-defined" in p.stderr


def test_bad_input(stack, net, name):
    before = host_state(stack)
    net(f"{name}-ok", "--subnet", "10.251.5.0/24")
    p = stack.docker("network", "create", "--subnet", "10.251.5.128/25", f"{name}-ov", check=False)
    assert p.returncode != 0 and "overlaps" in p.stderr
    p = stack.docker("network", "create", "--subnet", "10.251.300.0/24", f"{name}-bad", check=False)
    assert p.returncode != 0 and "invalid CIDR" in p.stderr
    p = stack.docker("network", "create", "--subnet", "10.251.6.0/24", "--gateway", "10.9.9.9", f"{name}-gw",
                     check=False)
    assert p.returncode != 0 and "gateway" in p.stderr
    p = stack.docker("network", "create", f"{name}-ok", check=False)
    assert p.returncode != 0 and "already exists" in p.stderr
    p = stack.docker("network", "create", "-d", "overlay", f"{name}-ovl", check=False)
    assert p.returncode != 0 and "not supported" in p.stderr
    p = stack.docker("run", "--rm", "--network", "nosuchnet", stack.image, "true", check=False)
    assert p.returncode == 125 and "not found" in p.stderr and "Unable to find image" not in p.stderr
    p = stack.docker("run", "--rm", "--network", "bridge", "--ip", "10.1.2.3", stack.image, "true", check=False)
    assert p.returncode != 0 and "user defined networks" in p.stderr, stack.log("engine")[-1500:]
    p = stack.docker("network", "rm", "nosuchnet", check=False)
    assert p.returncode != 0 and "No such network" in p.stderr
    # a host port a host process holds
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", 0))
        s.listen()
        port = s.getsockname()[1]
        p = stack.docker("run", "-d", "--name", name, "-p", f"{port}:80", stack.image, "sleep", "30", check=False)
        assert p.returncode != 0 and "already allocated" in p.stderr
        assert stack.inspect(name)["State"]["Status"] == "created"
    stack.docker("rm", "-f", name)
    # a host port another container holds
    port = free_port()
    httpd(stack, f"{name}-1", "-p", f"{port}:80")
    mid = host_state(stack)
    p = stack.docker("run", "-d", "--name", f"{name}-2", "-p", f"{port}:80", stack.image, "sleep", "30",
                     check=False)
    assert p.returncode != 0 and "already allocated" in p.stderr
    assert host_state(stack) == mid  # nothing half-configured
    stack.docker("rm", "-f", f"{name}-1", f"{name}-2")
    after = host_state(stack)
    assert after["netns"] == before["netns"] and after["rules"] == before["rules"]
    assert set(after["links"]) - set(before["links"]) <= {f"br-{json.loads(stack.docker('network', 'inspect', f'{name}-ok').stdout)[0]['Id'][:12]}"}


def test_cleanup_leaves_nothing(stack, net, name):
    n = net(f"{name}-cl", "--subnet", "10.251.7.0/24")
    # a container that stays, so that the bridges and the table exist before and after
    stack.docker("run", "-d", "--name", f"{name}-keep", "--network", n, stack.image, "sleep", "300")
    stack.docker("run", "-d", "--name", f"{name}-keep2", stack.image, "sleep", "300")
    before = host_state(stack)
    port = free_port()
    httpd(stack, f"{name}-a", "-p", f"{port}:80")
    httpd(stack, f"{name}-b", "--network", n, "-p", "80")
    stack.docker("run", "-d", "--name", f"{name}-c", "--network", "none", stack.image, "sleep", "300")
    during = host_state(stack)
    assert len(during["links"]) == len(before["links"]) + 2
    assert len(during["netns"]) == len(before["netns"]) + 3
    assert f"dport {port} dnat to" in during["rules"]
    stack.docker("stop", "-t", "1", f"{name}-a", f"{name}-b", f"{name}-c")
    assert host_state(stack) == before  # stop: veth, rules, namespace gone
    c = stack.inspect(f"{name}-a")
    assert c["NetworkSettings"]["IPAddress"] == "" and c["NetworkSettings"]["Ports"] == {}
    stack.docker("start", f"{name}-a")
    assert fetch(f"http://127.0.0.1:{port}/").startswith("hello-")
    stack.docker("rm", "-f", f"{name}-a", f"{name}-b", f"{name}-c")
    assert host_state(stack) == before
    # --rm
    stack.docker("run", "--rm", "-p", "80", stack.image, "true")
    assert host_state(stack) == before
    stack.docker("rm", "-f", f"{name}-keep", f"{name}-keep2")


def test_engine_restart_keeps_ports(stack, net, name):
    n = net(f"{name}-rs", "--subnet", "10.251.8.0/24")
    port = free_port()
    c = httpd(stack, name, "-p", f"{port}:80", "--network", n)
    assert fetch(f"http://127.0.0.1:{port}/").startswith("hello-")
    before = host_state(stack)
    stack.kill9("engine")
    stack.start_engine()
    assert host_state(stack) == before  # nothing duplicated, nothing lost
    assert ruleset().count(f"dport {port} dnat") == 1
    assert fetch(f"http://127.0.0.1:{port}/").startswith("hello-")
    # no address given twice after the restart
    stack.docker("run", "-d", "--name", f"{name}-2", "--network", n, stack.image, "sleep", "300")
    ip2 = stack.inspect(f"{name}-2")["NetworkSettings"]["Networks"][n]["IPAddress"]
    assert ip2 != c["NetworkSettings"]["Networks"][n]["IPAddress"]
    stack.docker("rm", "-f", name, f"{name}-2")
    assert f"dport {port}" not in ruleset()
