"""The docker CLI (Debian's 20.10, API 1.41) against berth-engine, as a user
types it."""

import io
import json
import os
import pty
import select
import socket
import subprocess
import tarfile
import time

import pytest


def test_version_and_info(stack):
    v = json.loads(stack.docker("version", "--format", "{{json .}}").stdout)
    assert v["Server"]["ApiVersion"] == "1.41"
    assert v["Server"]["Os"] == "linux"
    info = json.loads(stack.docker("info", "--format", "{{json .}}").stdout)
    assert info["Images"] >= 1
    assert info["DockerRootDir"] == str(stack.root)
    assert info["NCPU"] == os.cpu_count()


def test_run_rm_output_and_exit_code(stack, name):
    p = stack.docker("run", "--rm", "--name", name, stack.image, "sh", "-c", "echo hi; echo err >&2; exit 3",
                     check=False)
    assert p.returncode == 3, p.stderr
    assert p.stdout == "hi\n"
    assert "err\n" in p.stderr
    # --rm: gone once the CLI returns
    assert stack.docker("ps", "-aq", "--filter", f"name={name}").stdout.strip() == ""


def test_run_env_workdir_user(stack, name):
    p = stack.docker("run", "--rm", "-e", "X=one", "-w", "/tmp", "-u", "1234:2345", stack.image,
                     "sh", "-c", 'echo "$X"; pwd; id -u; id -g; echo "$HOSTNAME"')
    x, cwd, uid, gid, host = p.stdout.split()
    assert (x, cwd, uid, gid) == ("one", "/tmp", "1234", "2345")
    assert len(host) == 12


def test_run_entrypoint_and_hostname(stack, name):
    p = stack.docker("run", "--rm", "--entrypoint", "echo", "-h", "boat", stack.image, "a", "b")
    assert p.stdout == "a b\n"
    p = stack.docker("run", "--rm", "-h", "boat", stack.image, "hostname")
    assert p.stdout == "boat\n"


def test_run_stdin(stack):
    p = stack.docker("run", "--rm", "-i", stack.image, "sh", "-c", "cat; echo done", input="in1\nin2\n")
    assert p.stdout == "in1\nin2\ndone\n"


def test_run_tty(stack):
    pid, fd = pty.fork()
    if pid == 0:
        os.environ.update(stack.env())
        os.execv("/usr/bin/docker", ["docker", "run", "--rm", "-t", stack.image, "sh", "-c",
                                     "tty; stty size; exit 4"])
    out = b""
    deadline = time.time() + 30
    while time.time() < deadline:
        r, _, _ = select.select([fd], [], [], 1)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 4, out
    assert b"/dev/pts/0" in out or b"/dev/console" in out, out


def test_detached_ps_logs_stop_rm(stack, name):
    cid = stack.docker("run", "-d", "--name", name, stack.image, "sh", "-c",
                       "echo started; trap 'echo bye; exit 0' TERM; while true; do sleep 0.1; done").stdout.strip()
    assert len(cid) == 64
    ps = stack.docker("ps", "--filter", f"name={name}", "--format", "{{.ID}} {{.Status}} {{.Command}}").stdout
    assert cid[:12] in ps and "Up " in ps
    deadline = time.time() + 10
    while "started" not in stack.docker("logs", name).stdout and time.time() < deadline:
        time.sleep(0.1)
    t0 = time.time()
    stack.docker("stop", "-t", "5", name)
    assert time.time() - t0 < 5  # the trap answers TERM at once
    st = stack.inspect(name)["State"]
    assert st["Status"] == "exited" and st["ExitCode"] == 0
    assert stack.docker("logs", name).stdout == "started\nbye\n"
    assert f"Exited (0)" in stack.docker("ps", "-a", "--filter", f"name={name}",
                                         "--format", "{{.Status}}").stdout
    stack.docker("rm", name)
    assert stack.docker("inspect", name, check=False).returncode != 0


def test_logs_follow_ends_at_exit(stack, name):
    stack.docker("run", "-d", "--name", name, stack.image, "sh", "-c",
                 "for i in 1 2 3; do echo line$i; sleep 0.2; done")
    p = stack.docker("logs", "-f", name, timeout=30)
    assert p.stdout == "line1\nline2\nline3\n"
    p = stack.docker("logs", "--tail", "1", name)
    assert p.stdout == "line3\n"
    p = stack.docker("logs", "-t", name)
    assert p.stdout.splitlines()[0].endswith(" line1") and p.stdout[:2] == "20"
    stack.docker("rm", name)


def test_exec_and_exit_code(stack, name):
    stack.docker("run", "-d", "--name", name, stack.image, "sleep", "60")
    p = stack.docker("exec", name, "sh", "-c", "echo in-exec; exit 7", check=False)
    assert p.returncode == 7 and p.stdout == "in-exec\n"
    p = stack.docker("exec", "-e", "Y=2", "-w", "/tmp", name, "sh", "-c", 'echo "$Y $(pwd)"')
    assert p.stdout == "2 /tmp\n"
    p = stack.docker("exec", "-i", name, "cat", input="through\n")
    assert p.stdout == "through\n"
    stack.docker("rm", "-f", name)


def test_kill_wait_and_rm_force(stack, name):
    # pid 1 gets only the signals it handles
    stack.docker("run", "-d", "--name", name, stack.image, "sh", "-c",
                 "trap 'exit 10' USR1; while true; do sleep 0.1; done")
    stack.docker("kill", "-s", "USR1", name)
    p = stack.docker("wait", name, timeout=20)
    assert p.stdout.strip() == "10"
    p = stack.docker("kill", name, check=False)
    assert p.returncode != 0 and "is not running" in p.stderr
    stack.docker("start", name)
    p = stack.docker("rm", name, check=False)
    assert p.returncode != 0 and "Stop the container" in p.stderr
    stack.docker("rm", "-f", name)
    assert stack.docker("ps", "-aq", "--filter", f"name={name}").stdout.strip() == ""


def test_pause_unpause(stack, name):
    stack.docker("run", "-d", "--name", name, stack.image, "sleep", "60")
    stack.docker("pause", name)
    assert stack.inspect(name)["State"]["Status"] == "paused"
    p = stack.docker("exec", name, "true", check=False)
    assert p.returncode != 0 and "paused" in p.stderr
    stack.docker("unpause", name)
    assert stack.inspect(name)["State"]["Status"] == "running"
    stack.docker("rm", "-f", name)


def test_read_only_tmpfs_bind(stack, name, tmp_path):
    (tmp_path / "f").write_text("host file\n")
    p = stack.docker("run", "--rm", "--read-only", "--tmpfs", "/scratch", "-v", f"{tmp_path}:/data:ro",
                     stack.image, "sh", "-c",
                     "cat /data/f; touch /x 2>/dev/null || echo ro-root; touch /scratch/y && echo tmpfs-ok; "
                     "touch /data/z 2>/dev/null || echo ro-bind")
    assert p.stdout.split("\n")[:4] == ["host file", "ro-root", "tmpfs-ok", "ro-bind"]
    p = stack.docker("run", "--rm", "-v", f"{tmp_path}:/data", stack.image, "sh", "-c", "echo w > /data/w")
    assert (tmp_path / "w").read_text() == "w\n"


def test_limits_visible_in_cgroup(stack, name):
    p = stack.docker("run", "--rm", "--memory", "64m", "--pids-limit", "50", "--cpu-shares", "512", stack.image,
                     "sh", "-c",
                     "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max "
                     "/sys/fs/cgroup/cpu/cpu.shares 2>/dev/null || cat /sys/fs/cgroup/memory.max "
                     "/sys/fs/cgroup/pids.max /sys/fs/cgroup/cpu.weight")
    vals = p.stdout.split()
    assert vals[0] == str(64 << 20) and vals[1] == "50", p.stdout


def test_update(stack, name):
    """docker update: the new limits in the running container's cgroup at
    once and after a restart, HostConfig and an update event; a stopped
    container gets them at its next start; refusals change nothing."""
    since = str(int(time.time()) - 1)
    stack.docker("run", "-d", "--name", name, "--memory", "64m", stack.image, "sleep", "300")
    cg = ("cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max "
          "/sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/cpu/cpu.cfs_quota_us")

    def limits():
        return stack.docker("exec", name, "sh", "-c", cg).stdout.split()

    assert limits()[:2] == [str(64 << 20), "max"]
    stack.docker("update", "--memory", "96m", "--memory-swap", "192m", "--pids-limit", "40", "--cpu-shares", "256",
                 "--cpus", "0.5", "--restart", "on-failure:3", name)
    assert limits() == [str(96 << 20), "40", "256", "50000"]
    hc = stack.inspect(name)["HostConfig"]
    assert (hc["Memory"], hc["MemorySwap"], hc["PidsLimit"], hc["CpuShares"], hc["NanoCpus"]) == \
        (96 << 20, 192 << 20, 40, 256, 500000000)
    assert hc["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    stack.docker("restart", "-t", "1", name)
    assert limits() == [str(96 << 20), "40", "256", "50000"]
    # refused: nothing changes
    p = stack.docker("update", "--memory", "256m", name, check=False)
    assert p.returncode != 0 and "memoryswap" in p.stderr
    p = stack.docker("update", "--memory", "1m", name, check=False)
    assert p.returncode != 0 and "Minimum memory limit" in p.stderr
    p = stack.docker("update", "--blkio-weight", "300", name, check=False)
    assert p.returncode != 0 and "BlkioWeight" in p.stderr
    p = stack.docker("update", "--memory", "128m", "nosuchcontainer", check=False)
    assert p.returncode != 0 and "No such container" in p.stderr
    assert limits()[0] == str(96 << 20)
    # the runtime refuses (no such CPU): the stored spec is put back
    p = stack.docker("update", "--cpuset-cpus", "63", name, check=False)
    assert p.returncode != 0 and "Cannot update container" in p.stderr
    assert stack.inspect(name)["HostConfig"]["CpusetCpus"] == ""
    # a stopped container: kept for its next start
    stack.docker("stop", "-t", "1", name)
    stack.docker("update", "--pids-limit", "30", name)
    stack.docker("start", name)
    assert limits()[1] == "30"
    ev = stack.docker("events", "--since", since, "--until", str(int(time.time()) + 1),
                      "--filter", f"container={name}", "--filter", "event=update", "--format", "{{.Action}}").stdout
    assert ev.split() == ["update", "update"]
    stack.docker("rm", "-f", name)
    # --rm and a restart policy do not go together
    stack.docker("run", "-d", "--rm", "--name", name, stack.image, "sleep", "300")
    p = stack.docker("update", "--restart", "always", name, check=False)
    assert p.returncode != 0 and "AutoRemove" in p.stderr
    stack.docker("rm", "-f", name)


def test_caps_default_and_added(stack):
    # Docker's default bounding set lacks NET_ADMIN; --cap-add gives it
    def capbnd(*extra):
        out = stack.docker("run", "--rm", *extra, stack.image, "sh", "-c", "grep CapBnd /proc/self/status").stdout
        return int(out.split()[1], 16)
    NET_ADMIN = 1 << 12
    assert not capbnd() & NET_ADMIN
    assert capbnd("--cap-add", "NET_ADMIN") & NET_ADMIN
    assert capbnd("--privileged") & NET_ADMIN


def test_unknown_image_and_command(stack, name):
    p = stack.docker("run", "--rm", "127.0.0.1:1/nope:latest", "true", check=False)
    assert p.returncode == 125
    assert "Unable to find image" in p.stderr
    p = stack.docker("run", "--rm", "--name", name, stack.image, "/no/such/binary", check=False)
    assert p.returncode == 127, p.stderr
    assert "ocirun" in p.stderr or "no such file" in p.stderr
    stack.docker("rm", "-f", name, check=False)


def test_images_tag_rmi(stack):
    stack.docker("tag", stack.image, "berth-test/retag:v1")
    out = stack.docker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    assert "berth-test/retag:v1" in out
    insp = json.loads(stack.docker("image", "inspect", "berth-test/retag:v1").stdout)[0]
    assert "berth-test/retag:v1" in insp["RepoTags"] and stack.image in insp["RepoTags"]
    p = stack.docker("rmi", "berth-test/retag:v1")
    assert "Untagged: berth-test/retag:v1" in p.stdout
    p = stack.docker("rmi", "no/such:image", check=False)
    assert p.returncode != 0 and "No such image" in p.stderr


def test_bad_requests_straight_to_socket(stack):
    def curl(*args):
        p = subprocess.run(["curl", "-s", "-o", "/dev/stdout", "-w", "\n%{http_code}", "--unix-socket",
                            str(stack.sock), *args], capture_output=True, text=True, timeout=20)
        body, code = p.stdout.rsplit("\n", 1)
        return int(code), body
    code, body = curl("-X", "POST", "-H", "Content-Type: application/json", "-d", "{not json",
                      "http://x/v1.41/containers/create")
    assert code == 400 and "invalid JSON" in json.loads(body)["message"]
    code, body = curl("http://x/v1.41/containers/nosuch/json")
    assert code == 404 and "No such container" in json.loads(body)["message"]
    code, body = curl("http://x/v1.99/version")
    assert code == 400 and "too new" in json.loads(body)["message"]
    code, body = curl("-I", "http://x/_ping")
    assert code == 200
    code, body = curl("-X", "POST", "-H", "Content-Type: application/json", "-d", '{"Image": 5}',
                      "http://x/v1.41/containers/create")
    assert code == 400
    # clients that connect and go at once, or send half a request and go:
    # the engine keeps serving
    for i in range(50):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(str(stack.sock))
        if i % 2:
            s.sendall(b"POST /v1.41/containers/create HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        s.close()
    code, body = curl("http://x/_ping")
    assert code == 200 and body == "OK"
    stack.docker("version")


def test_docker_py(stack, name):
    docker = pytest.importorskip("docker")
    client = docker.DockerClient(base_url=stack.host, version="auto")
    out = client.containers.run(stack.image, ["sh", "-c", "echo from-py"], remove=True, name=name)
    assert out == b"from-py\n"
    c = client.containers.run(stack.image, ["sleep", "30"], detach=True, name=name + "d")
    assert c.status in ("created", "running")
    c.reload()
    assert c.status == "running"
    c.kill()
    assert c.wait(timeout=20)["StatusCode"] == 137
    c.remove()


def test_live_restore_engine_kill9(stack, name):
    stack.docker("run", "-d", "--name", name, stack.image, "sleep", "60")
    stack.docker("run", "-d", "--name", name + "x", stack.image, "sh", "-c", "sleep 1; exit 5")
    stack.kill9("engine")
    time.sleep(1.5)  # the second one exits while the engine is away
    stack.start_engine()
    assert stack.inspect(name)["State"]["Status"] == "running"
    st = stack.inspect(name + "x")["State"]
    assert st["Status"] == "exited" and st["ExitCode"] == 5
    p = stack.docker("exec", name, "echo", "still")
    assert p.stdout == "still\n"
    stack.docker("stop", "-t", "1", name)
    assert stack.inspect(name)["State"]["Status"] == "exited"
    stack.docker("rm", name, name + "x")


def test_live_restore_supervisor_kill9(stack, name):
    stack.docker("run", "-d", "--name", name, stack.image, "sleep", "60")
    stack.kill9("supervisor")
    stack.start_supervisor()
    # the engine's watch reconnects; the container is still controllable
    assert stack.inspect(name)["State"]["Status"] == "running"
    stack.docker("kill", name)
    assert stack.docker("wait", name, timeout=30).stdout.strip() == "137"
    stack.docker("rm", name)


def test_init(stack, name):
    p = stack.docker("run", "--rm", "--init", stack.image, "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; exit 6",
                     check=False)
    assert p.returncode == 6
    assert p.stdout.startswith("/sbin/docker-init -- sh")
    # the init passes SIGTERM on: sleep (not pid 1 now) dies of it at once
    stack.docker("run", "-d", "--init", "--name", name, stack.image, "sleep", "60")
    t0 = time.time()
    stack.docker("stop", "-t", "10", name)
    assert time.time() - t0 < 5
    assert stack.inspect(name)["State"]["ExitCode"] == 143
    stack.docker("rm", name)


def test_restart_policies(stack, name):
    stack.docker("run", "-d", "--name", name, "--restart", "on-failure:2", stack.image, "sh", "-c", "exit 1")
    deadline = time.time() + 20
    while time.time() < deadline:
        c = stack.inspect(name)
        if c["RestartCount"] == 2 and c["State"]["Status"] == "exited":
            break
        time.sleep(0.2)
    assert c["RestartCount"] == 2 and c["State"]["Status"] == "exited", c["State"]
    stack.docker("rm", name)
    # always: restarted after its own exit, not after docker stop
    stack.docker("run", "-d", "--name", name, "--restart", "always", stack.image, "sh", "-c", "sleep 0.3")
    deadline = time.time() + 20
    while stack.inspect(name)["RestartCount"] < 1 and time.time() < deadline:
        time.sleep(0.2)
    assert stack.inspect(name)["RestartCount"] >= 1
    stack.docker("stop", "-t", "1", name)
    n = stack.inspect(name)["RestartCount"]
    time.sleep(1.5)
    c = stack.inspect(name)
    assert c["State"]["Status"] == "exited" and c["RestartCount"] == n
    stack.docker("rm", name)
    p = stack.docker("run", "--rm", "--restart", "always", stack.image, "true", check=False)
    assert p.returncode != 0 and "Conflicting options" in p.stderr


def test_events_stats_top_rename(stack, name):
    t0 = time.time()
    cid = stack.docker("run", "-d", "--name", name, stack.image, "sleep", "60").stdout.strip()
    top = stack.docker("top", name).stdout
    assert "sleep 60" in top and "PID" in top
    st = json.loads(stack.docker("stats", "--no-stream", "--format", "{{json .}}", name).stdout)
    assert st["Name"] == name and st["MemUsage"]
    stack.docker("rename", name, name + "-r")
    stack.docker("rm", "-f", name + "-r")
    t1 = time.time() + 0.5
    ev = stack.docker("events", "--since", str(int(t0)), "--until", str(t1), "--filter", f"container={cid}",
                      "--format", "{{.Action}}", timeout=30).stdout.split()
    assert ev[:2] == ["create", "start"] and "die" in ev and "destroy" in ev, ev
    assert "rename" in stack.docker("events", "--since", str(int(t0)), "--until", str(t1), "--format",
                                    "{{.Action}}", timeout=30).stdout


def test_current_cli_negotiates_down(stack, name):
    cli = "/usr/local/bin/docker"
    if not os.access(cli, os.X_OK):
        pytest.skip("no current docker CLI at /usr/local/bin/docker")
    v = stack.docker("version", "--format", "{{.Client.APIVersion}} {{.Server.APIVersion}}", cli=cli).stdout
    assert v.split()[1] == "1.41"
    p = stack.docker("run", "--rm", stack.image, "sh", "-c", "echo cur; exit 2", check=False, cli=cli)
    assert p.returncode == 2 and p.stdout == "cur\n"
    stack.docker("run", "-d", "--name", name, stack.image, "sleep", "30", cli=cli)
    assert stack.docker("exec", name, "echo", "x", cli=cli).stdout == "x\n"
    assert name in stack.docker("ps", "--format", "{{.Names}}", cli=cli).stdout
    stack.docker("rm", "-f", name, cli=cli)


def test_save_load(stack, tmp_path):
    tar = tmp_path / "img.tar"
    stack.docker("tag", stack.image, "berth-test/saved:1")
    stack.docker("save", "-o", str(tar), "berth-test/saved:1")
    stack.docker("rmi", "berth-test/saved:1")
    p = stack.docker("load", "-i", str(tar))
    assert "Loaded image: berth-test/saved:1" in p.stdout
    assert stack.docker("run", "--rm", "berth-test/saved:1", "echo", "loaded").stdout == "loaded\n"
    stack.docker("rmi", "berth-test/saved:1")


def test_export_import(stack, name, tmp_path):
    """docker export | docker import (gzip too), with --change and -m: an
    image of one layer that runs; a tarball with a path out of the root, a
    body that is not a tarball, a bad change and no name are refused."""
    stack.docker("run", "--name", name, stack.image, "sh", "-c", "echo imported > /marker")
    tar = tmp_path / "rootfs.tar"
    stack.docker("export", "-o", str(tar), name)
    stack.docker("rm", name)
    p = stack.docker("import", "-c", "CMD [\"cat\", \"/marker\"]", "-c", "ENV A=1 B=two", "-c", "WORKDIR /tmp",
                     "-c", "LABEL x=y", "-c", "EXPOSE 8080", "-m", "from a test", str(tar), "berth-test/imp:1")
    image_id = p.stdout.strip()
    assert image_id.startswith("sha256:") and len(image_id) == 71, p.stdout
    info = json.loads(stack.docker("image", "inspect", "berth-test/imp:1").stdout)[0]
    assert info["Id"] == image_id and len(info["RootFS"]["Layers"]) == 1
    cfg = info["Config"]
    assert cfg["Cmd"] == ["cat", "/marker"] and cfg["WorkingDir"] == "/tmp" and cfg["Labels"] == {"x": "y"}
    assert "A=1" in cfg["Env"] and "B=two" in cfg["Env"] and "8080/tcp" in cfg["ExposedPorts"]
    hist = stack.docker("history", "--no-trunc", "--format", "{{.Comment}}", "berth-test/imp:1").stdout
    assert "from a test" in hist
    assert stack.docker("run", "--rm", "berth-test/imp:1").stdout == "imported\n"
    assert stack.docker("run", "--rm", "berth-test/imp:1", "sh", "-c", "echo $A $B; pwd").stdout == "1 two\n/tmp\n"
    # compressed, from stdin
    gz = tmp_path / "rootfs.tar.gz"
    subprocess.run(["gzip", "-k", str(tar)], check=True)
    with open(gz, "rb") as f:
        p = subprocess.run(["docker", "import", "-", "berth-test/imp:gz"], stdin=f, capture_output=True,
                           text=True, timeout=60, env=stack.env())
    assert p.returncode == 0, p.stderr
    assert stack.docker("run", "--rm", "berth-test/imp:gz", "cat", "/marker").stdout == "imported\n"
    # refusals
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as t:
        data = b"x"
        ti = tarfile.TarInfo("../../escaped")
        ti.size = 1
        t.addfile(ti, io.BytesIO(data))
    p = stack.docker("import", str(evil), "berth-test/imp:evil", check=False)
    assert p.returncode != 0 and "unsafe layer" in p.stderr
    # a name that was there before keeps its image
    stack.docker("tag", "berth-test/imp:1", "berth-test/imp:evil")
    p = stack.docker("import", str(evil), "berth-test/imp:evil", check=False)
    assert p.returncode != 0
    assert stack.docker("run", "--rm", "berth-test/imp:evil").stdout == "imported\n"
    stack.docker("rmi", "berth-test/imp:evil")
    assert not (stack.base / "escaped").exists() and not os.path.exists("/escaped")
    junk = tmp_path / "junk"
    junk.write_bytes(b"not a tarball at all" * 10)
    p = stack.docker("import", str(junk), "berth-test/imp:junk", check=False)
    assert p.returncode != 0
    p = stack.docker("import", "-c", "ONBUILD RUN true", str(tar), "berth-test/imp:bad", check=False)
    assert p.returncode != 0 and "ONBUILD is not a valid change command" in p.stderr
    p = stack.docker("import", str(tar), check=False)
    assert p.returncode != 0 and "needs a name" in p.stderr
    images = stack.docker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    assert "berth-test/imp:evil" not in images and "berth-test/imp:junk" not in images
    stack.docker("rmi", "berth-test/imp:1", "berth-test/imp:gz")


def test_commit(stack, name):
    """docker commit of a running container: its files (added, changed,
    deleted, a hard link) on its image, its config with --change, history
    with -m and -a; it stays running; the init layer's files are not in the
    image; then an exited one whose directory replaced the image's."""
    stack.docker("run", "-d", "--name", name, "-e", "FROM_RUN=1", stack.image, "sh", "-c",
                 "echo new > /added; echo changed > /etc/motd; rm /bin/ls; mkdir -p /d && echo a > /d/a; "
                 "ln /added /linked; sleep 300")
    deadline = time.time() + 10
    while stack.docker("exec", name, "sh", "-c", "test -e /linked", check=False).returncode:
        assert time.time() < deadline
        time.sleep(0.1)
    p = stack.docker("commit", "-c", "CMD [\"cat\", \"/added\"]", "-c", "ENV B=2", "-m", "a message",
                     "-a", "someone", name, "berth-test/committed:1")
    image_id = p.stdout.strip()
    assert image_id.startswith("sha256:") and len(image_id) == 71, p.stdout
    assert stack.inspect(name)["State"]["Running"]
    info = json.loads(stack.docker("image", "inspect", "berth-test/committed:1").stdout)[0]
    parent = json.loads(stack.docker("image", "inspect", stack.image).stdout)[0]
    assert info["Id"] == image_id and info["Author"] == "someone"
    assert len(info["RootFS"]["Layers"]) == len(parent["RootFS"]["Layers"]) + 1
    assert info["Config"]["Cmd"] == ["cat", "/added"]
    assert "FROM_RUN=1" in info["Config"]["Env"] and "B=2" in info["Config"]["Env"]
    assert "a message" in stack.docker("history", "--format", "{{.Comment}}", "berth-test/committed:1").stdout
    assert stack.docker("run", "--rm", "berth-test/committed:1").stdout == "new\n"
    out = stack.docker("run", "--rm", "berth-test/committed:1", "sh", "-c",
                       "cat /etc/motd /d/a; test -e /bin/ls || echo no-ls; "
                       "stat -c %i /added /linked | uniq | wc -l").stdout.split("\n")
    assert out[:4] == ["changed", "a", "no-ls", "1"], out

    def last_layer(image):
        """The names in an image's last layer, from docker save."""
        saved = subprocess.run(["docker", "save", image], capture_output=True, timeout=60, env=stack.env(),
                               check=True).stdout
        with tarfile.open(fileobj=io.BytesIO(saved)) as t:
            last = json.load(t.extractfile("manifest.json"))[0]["Layers"][-1]
            with tarfile.open(fileobj=t.extractfile(last)) as layer:
                return set(layer.getnames())

    # whiteouts as dockerd writes them, no file of the init layer
    names = last_layer("berth-test/committed:1")
    assert {"added", "linked", "etc/motd", "d/a", "bin/.wh.ls"} <= names, names
    assert not names & {"etc/hostname", "etc/hosts", "etc/resolv.conf", "proc", "sys", "dev"}, names
    # a directory of the image replaced: opaque
    stack.docker("run", "--name", f"{name}-2", "berth-test/committed:1", "sh", "-c",
                 "rm -rf /d && mkdir /d && echo b > /d/b")
    stack.docker("commit", f"{name}-2", "berth-test/committed:2")
    assert {"d/.wh..wh..opq", "d/b"} <= last_layer("berth-test/committed:2")
    assert stack.docker("run", "--rm", "berth-test/committed:2", "sh", "-c", "echo /d/*").stdout == "/d/b\n"
    stack.docker("rm", f"{name}-2")
    stack.docker("rmi", "berth-test/committed:2")
    changes = stack.docker("diff", name).stdout
    assert "A /added" in changes
    p = stack.docker("commit", name, check=False)
    assert p.returncode != 0 and "needs a name" in p.stderr
    p = stack.docker("commit", "-c", "ONBUILD RUN x", name, "berth-test/committed:3", check=False)
    assert p.returncode != 0 and "ONBUILD" in p.stderr
    p = stack.docker("commit", "nosuchcontainer", "berth-test/committed:4", check=False)
    assert p.returncode != 0 and "No such container" in p.stderr
    stack.docker("rm", "-f", name)
    stack.docker("rmi", "berth-test/committed:1")


def test_seccomp_default_unconfined_and_profile(stack, tmp_path):
    # Docker's default profile refuses unshare; unconfined lets it through
    p = stack.docker("run", "--rm", stack.image, "sh", "-c", "grep Seccomp: /proc/self/status; unshare -U true",
                     check=False)
    assert "Seccomp:\t2" in p.stdout and p.returncode != 0
    p = stack.docker("run", "--rm", "--security-opt", "seccomp=unconfined", stack.image, "sh", "-c",
                     "grep Seccomp: /proc/self/status; unshare -U true")
    assert "Seccomp:\t0" in p.stdout
    prof = tmp_path / "p.json"
    prof.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW",
                                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}))
    p = stack.docker("run", "--rm", "--security-opt", f"seccomp={prof}", stack.image, "sh", "-c",
                     "mkdir /tmp/x && echo made || echo refused")
    assert p.stdout == "refused\n"
    p = stack.docker("run", "--rm", "--security-opt", "seccomp=/no/such/file", stack.image, "true", check=False)
    assert p.returncode != 0


def test_rmi_conflict_with_container(stack, name):
    stack.docker("tag", stack.image, "berth-test/inuse:1")
    stack.docker("create", "--name", name, "berth-test/inuse:1", "true")
    # another name remains: untagging one is fine
    stack.docker("tag", "berth-test/inuse:1", "berth-test/inuse:2")
    stack.docker("rmi", "berth-test/inuse:2")
    # the image's last names while a container uses it: refused without -f
    stack.docker("rmi", "berth-test/inuse:1")  # stack.image still names it
    stack.docker("tag", stack.image, "berth-test/inuse:3")
    stack.docker("rm", name)
    stack.docker("create", "--name", name, "berth-test/inuse:3", "true")
    img_id = stack.inspect(name)["Image"]
    p = stack.docker("rmi", img_id, check=False)
    assert p.returncode != 0 and ("must be forced" in p.stderr or "is using its referenced image" in p.stderr)
    stack.docker("rm", name)
    stack.docker("rmi", "berth-test/inuse:3")


def test_run_it_under_pty(stack):
    pid, fd = pty.fork()
    if pid == 0:
        os.environ.update(stack.env())
        os.execv("/usr/bin/docker", ["docker", "run", "-it", "--rm", stack.image, "sh"])
    out = b""
    sent = False
    deadline = time.time() + 30
    while time.time() < deadline:
        r, _, _ = select.select([fd], [], [], 0.5)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        if not sent and b"#" in out:
            os.write(fd, b'echo hel""lo\rexit 5\r')
            sent = True
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 5, out
    assert b"hello" in out


def test_bad_flags(stack):
    p = stack.docker("run", "--rm", "--memory", "1k", stack.image, "true", check=False)
    assert p.returncode == 125 and ("Minimum memory limit" in p.stderr or "minimum" in p.stderr.lower())
    p = stack.docker("run", "--rm", "--cap-add", "NOT_A_CAP", stack.image, "true", check=False)
    assert p.returncode == 125 and "capability" in p.stderr.lower()
    p = stack.docker("run", "--rm", "--security-opt", "nonsense", stack.image, "true", check=False)
    assert p.returncode == 125


def test_attach_with_logs(stack, name):
    docker = pytest.importorskip("docker")
    client = docker.DockerClient(base_url=stack.host, version="auto")
    c = client.containers.run(stack.image, ["sh", "-c", "echo one; echo two >&2"], detach=True, name=name)
    assert c.wait(timeout=20)["StatusCode"] == 0
    # logs=1 without stream: the log so far, in Docker's frames (demuxed by docker-py)
    out = c.attach(stdout=True, stderr=True, logs=True, stream=False)
    assert out.replace(b"\r", b"") in (b"one\ntwo\n", b"two\none\n")
    out = c.attach(stdout=True, stderr=False, logs=True, stream=False)
    assert out == b"one\n"
    c.remove()
