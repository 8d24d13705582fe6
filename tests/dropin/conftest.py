"""Fixtures for the drop-in tests: a private containerd, a private dockerd
and a private podman, each driving the runtime under test.

Runtime under test: $OCIRUN (default <repo>/build-ci/ocirun/ocirun, which
tests/run-all.sh builds; then <repo>/build/ocirun/ocirun).  A bare name such
as ``runc`` is looked up on $PATH, so ``OCIRUN=runc`` validates the tests.
Peer runtime for the comparisons: $PEER_RUNTIME (default ``runc``).

Every daemon is started once per session, lazily (the first test that needs
it), with all of its state under one temporary directory, and torn down at
the end of the session: containers, shims, mounts, cgroups, the bridge,
dockerd's iptables rules and sysctls, and the few host paths the peers
insist on creating (see README.md).
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import helpers  # noqa: E402
from helpers import run, wait_for  # noqa: E402
import mkimage  # noqa: E402

REPO = HERE.parents[1]
IMAGE = "localhost/berth-busybox:latest"
IMAGE_TESTER = "localhost/berth-busybox:tester"
MISSING = "not found or not executable"


# --------------------------------------------------------------------------
# runtime resolution


def _resolve(value):
    if os.sep in value:
        return str(Path(value).resolve())
    return shutil.which(value) or value


def runtime_path():
    env = os.environ.get("OCIRUN")
    if env:
        return _resolve(env)
    for cand in (REPO / "build-ci" / "ocirun" / "ocirun", REPO / "build" / "ocirun" / "ocirun"):
        if cand.exists():
            return str(cand)
    return str(REPO / "build-ci" / "ocirun" / "ocirun")


def peer_path():
    return _resolve(os.environ.get("PEER_RUNTIME") or "runc")


def runtime_is_reference(path=None):
    return os.path.basename(path or runtime_path()) in ("runc", "crun")


def _check_executable(path, env):
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(f"${env}: runtime binary {MISSING}: {path!r}. Build it (ninja -C "
                    f"build-ci) or point ${env} at one ({env}=runc validates the tests).",
                    pytrace=False)
    return path


def _need_tool(name):
    path = shutil.which(name)
    if not path:
        pytest.fail(f"{name} {MISSING}; run packaging/install-deps.sh", pytrace=False)
    return path


def pytest_report_header(config):
    rt = runtime_path()
    ok = "ok" if os.access(rt, os.X_OK) else "MISSING"
    return [f"runtime under test (OCIRUN): {rt} [{ok}]",
            f"peer runtime (PEER_RUNTIME): {peer_path()}"]


def pytest_collection_modifyitems(config, items):
    if not runtime_is_reference():
        return
    skip = pytest.mark.skip(reason="ocirun-specific check; runtime under test is "
                            + os.path.basename(runtime_path()))
    for item in items:
        if "ocirun_only" in item.keywords:
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A missing binary is a test failure, not a setup error nor a skip."""
    outcome = yield
    rep = outcome.get_result()
    if (rep.when == "setup" and rep.failed and call.excinfo is not None
            and MISSING in str(call.excinfo.value)):
        rep.when = "call"


@pytest.fixture(scope="session")
def runtime():
    return _check_executable(runtime_path(), "OCIRUN")


@pytest.fixture(scope="session")
def peer_runtime():
    return _check_executable(peer_path(), "PEER_RUNTIME")


@pytest.fixture(scope="session")
def is_ocirun(runtime):
    return not runtime_is_reference(runtime)


def new_id(prefix="c"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# --------------------------------------------------------------------------
# session directory and image


@pytest.fixture(scope="session")
def tag():
    """Short random tag that names this session's namespace, cgroups, bridge."""
    return uuid.uuid4().hex[:6]


@pytest.fixture(scope="session")
def workdir():
    """Short path (unix sockets are limited to 108 bytes)."""
    d = Path(tempfile.mkdtemp(prefix="berth-dropin-", dir="/tmp"))
    yield d
    helpers.unmount_under(d)
    subprocess.run(["rm", "-rf", "--one-file-system", str(d)], capture_output=True)


@pytest.fixture(scope="session")
def image_tar(workdir):
    if not os.path.isfile(mkimage.BUSYBOX):
        pytest.fail(f"{mkimage.BUSYBOX} is required (busybox-static)", pytrace=False)
    out = workdir / "berth-busybox.tar"
    refs = mkimage.build(str(out))
    assert refs == {"latest": IMAGE, "tester": IMAGE_TESTER}
    return out


@pytest.fixture(scope="session")
def layer_rootfs(workdir):
    """The image's rootfs extracted to a directory (for `ctr run --config`)."""
    d = workdir / "rootfs"
    d.mkdir()
    tar = workdir / "layer.tar"
    tar.write_bytes(mkimage.layer_tar())
    subprocess.run(["tar", "-xf", str(tar), "-C", str(d), "--numeric-owner"], check=True)
    tar.unlink()
    return d


# --------------------------------------------------------------------------
# containerd


CONTAINERD_TOML = """\
version = 2
root = "{root}"
state = "{state}"
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = "{sock}"

[ttrpc]
  address = "{sock}.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""
"""

SHIM = "containerd-shim-runc-v2"


class Containerd:
    """A private containerd and ``ctr`` bound to it (own namespace)."""

    def __init__(self, base, ns, runtime, image_tar):
        self.base = base
        self.ns = ns
        self.runtime = runtime
        self.root = base / "root"
        self.state = base / "state"
        self.sock = base / "ctd.sock"
        self.fifo_dir = base / "fifo"
        self.log = base / "containerd.log"
        self.config = base / "containerd.toml"
        for d in (self.root, self.state, self.fifo_dir, base / "runtime-roots"):
            d.mkdir(parents=True, exist_ok=True)
        self.config.write_text(CONTAINERD_TOML.format(root=self.root, state=self.state,
                                                      sock=self.sock))
        self.proc = None
        try:
            self._start(image_tar)
        except BaseException:
            self.shutdown()
            raise

    def _start(self, image_tar):
        self.log_f = open(self.log, "wb")
        self.proc = subprocess.Popen(["containerd", "--config", str(self.config)],
                                     stdin=subprocess.DEVNULL, stdout=self.log_f,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_for(lambda: self.ctr("version", timeout=10).returncode == 0
                     or self.proc.poll() is not None, timeout=30, what="containerd")
        except AssertionError:
            pass
        if self.proc.poll() is not None or self.ctr("version").returncode != 0:
            raise RuntimeError("containerd did not start: " + self.log.read_text()[-3000:])
        p = self.ctr("image", "import", image_tar, timeout=120)
        if p.returncode != 0:
            raise RuntimeError(f"ctr image import failed: {p.stderr}")

    # -- commands

    def argv(self, *args):
        return ["ctr", "--address", str(self.sock), "-n", self.ns, *map(str, args)]

    def ctr(self, *args, timeout=60, input=None):
        return run(self.argv(*args), timeout=timeout, input=input)

    def runtime_root(self, rt=None):
        return self.base / "runtime-roots" / os.path.basename(rt or self.runtime)

    def run_opts(self, rt=None):
        """Options of `ctr run` that select the runtime binary and its root."""
        rt = rt or self.runtime
        return ["--runc-binary", rt, "--runc-root", self.runtime_root(rt),
                "--fifo-dir", self.fifo_dir]

    def run_argv(self, cid, *cmd, opts=(), image=IMAGE, rt=None):
        return self.argv("run", *self.run_opts(rt), *opts, image, cid, *cmd)

    def run(self, cid, *cmd, opts=(), image=IMAGE, rt=None, timeout=60, input=None):
        """`ctr run --rm ...`; returns CompletedProcess."""
        return run(self.run_argv(cid, *cmd, opts=("--rm", *opts), image=image, rt=rt),
                   timeout=timeout, input=input)

    def run_detached(self, cid, *cmd, opts=(), image=IMAGE, rt=None, log=None):
        log = log or (self.base / f"{cid}.log")
        p = run(self.run_argv(cid, *cmd, opts=("-d", "--log-uri", f"file://{log}", *opts),
                              image=image, rt=rt))
        assert p.returncode == 0, f"ctr run -d failed rc={p.returncode}: {p.stderr}"
        wait_for(lambda: self.task_status(cid) == "RUNNING", what=f"task {cid} running")
        return log

    def exec_argv(self, cid, exec_id, *cmd, opts=()):
        return self.argv("task", "exec", "--fifo-dir", self.fifo_dir, "--exec-id", exec_id,
                         *opts, cid, *cmd)

    def tasks(self):
        """{id: (pid, status)} from `ctr task ls`."""
        p = self.ctr("task", "ls")
        res = {}
        for line in p.stdout.splitlines()[1:]:
            f = line.split()
            if len(f) >= 3:
                res[f[0]] = (int(f[1]), f[2])
        return res

    def task_status(self, cid):
        t = self.tasks().get(cid)
        return t[1] if t else None

    def task_pid(self, cid):
        return self.tasks()[cid][0]

    def remove(self, cid):
        """task rm -f + container rm; returns the task's exit warning text."""
        p = self.ctr("task", "rm", "-f", cid)
        self.ctr("container", "rm", cid)
        return p.stderr

    # -- leftovers

    def leftovers(self, cid, rt=None):
        problems = []
        sd = self.runtime_root(rt) / self.ns / cid
        if sd.exists():
            problems.append(f"runtime state dir {sd} still exists")
        bundle = self.state / "io.containerd.runtime.v2.task" / self.ns / cid
        if bundle.exists():
            problems.append(f"shim bundle {bundle} still exists")
        for d in helpers.cgroup_dirs(f"{self.ns}/{cid}"):
            problems.append(f"cgroup {d} still exists")
        for m in helpers.mounts():
            if f"/{self.ns}/{cid}/" in m + "/" or m.endswith(f"/{cid}/rootfs"):
                problems.append(f"mount {m} still mounted")
        for pid, cmd in helpers.processes():
            if cmd and os.path.basename(cmd[0]) == SHIM and "-id" in cmd and \
                    cmd[cmd.index("-id") + 1:cmd.index("-id") + 2] == [cid]:
                problems.append(f"shim {pid} for {cid} still running")
        if cid in self.ctr("container", "ls", "-q").stdout.split():
            problems.append(f"container {cid} still in containerd's metadata")
        return problems

    def wait_clean(self, cid, rt=None, timeout=10):
        """Leftovers of ``cid`` after waiting up to ``timeout`` s for none."""
        return helpers.settle(lambda: self.leftovers(cid, rt), timeout)

    # -- teardown

    def shutdown(self):
        if self.proc is not None and self.proc.poll() is None:
            for cid in self.tasks():
                self.ctr("task", "kill", "-s", "SIGKILL", "--all", cid)
                self.ctr("task", "rm", "-f", cid)
            for cid in self.ctr("container", "ls", "-q").stdout.split():
                self.ctr("container", "rm", cid)
            helpers.stop_pid(self.proc.pid)
        if self.proc is not None:
            self.proc.wait(timeout=30)
            self.log_f.close()
        sock = str(self.sock)
        helpers.kill_matching(lambda c: c and os.path.basename(c[0]) == SHIM and sock in c)
        helpers.unmount_under(self.base)
        helpers.remove_cgroup_tree(self.ns)


@pytest.fixture(scope="session")
def containerd(runtime, workdir, image_tar, tag, host_paths):
    _need_tool("containerd")
    _need_tool("ctr")
    _need_tool(SHIM)
    c = Containerd(workdir / "containerd", f"berth-dropin-{tag}", runtime, image_tar)
    yield c
    c.shutdown()


# --------------------------------------------------------------------------
# host paths the peers create no matter what they are told


HOST_FILES = [
    "/etc/docker/key.json",  # only if daemon.json's deprecated-key-path is ignored
    "/var/lib/containers/cache/blob-info-cache-v1.boltdb",  # podman
]
HOST_DIRS = [
    "/run/containerd", "/run/containerd/s", "/run/containerd/fifo",  # shim sockets
    "/run/docker", "/run/docker/plugins",  # dockerd's plugin discovery
    "/etc/docker",
    "/var/lib/containers", "/var/lib/containers/cache",
]


@pytest.fixture(scope="session")
def host_paths():
    created = helpers.CreatedPaths(HOST_FILES, HOST_DIRS)
    yield created
    created.cleanup()


# --------------------------------------------------------------------------
# dockerd

DOCKER = "/usr/bin/docker"  # Debian's client, not a newer one in /usr/local/bin
SUBNETS = ["172.29.77", "172.30.78", "10.213.77", "192.168.213"]


def _used_prefixes():
    out = run(["ip", "-4", "route", "show", "table", "all"]).stdout + \
        run(["ip", "-4", "addr"]).stdout
    return out


class Dockerd:
    def __init__(self, base, tag, runtime, image_tar):
        self.base = base
        self.runtime = runtime
        self.data = base / "data"
        self.exec_root = base / "exec"
        self.sock = base / "docker.sock"
        self.pidfile = base / "docker.pid"
        self.cli_config = base / "cli"
        self.cgroup_parent = f"berth-dropin-dk-{tag}"
        self.bridge = f"brd-{tag}"
        for d in (self.data, self.exec_root, self.cli_config):
            d.mkdir(parents=True, exist_ok=True)
        used = _used_prefixes()
        prefix = next((s for s in SUBNETS if f"{s}." not in used), None)
        if prefix is None:
            raise RuntimeError("no free test subnet for the bridge")
        self.subnet_prefix = prefix
        self.gateway = f"{prefix}.1"
        if run(["ip", "link", "show", self.bridge]).returncode == 0:
            raise RuntimeError(f"bridge {self.bridge} already exists")
        self.proc = None
        self.bridge_made = False
        self.iptables = helpers.IptablesSnapshot()
        self.sysctls = helpers.SysctlSnapshot(
            "net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables",
            "net.bridge.bridge-nf-call-ip6tables", "net.ipv6.conf.all.forwarding")
        try:
            self._start(image_tar)
        except BaseException:
            self.shutdown()
            raise

    def _start(self, image_tar):
        base, runtime = self.base, self.runtime
        self.bridge_made = True
        for cmd in (["ip", "link", "add", "name", self.bridge, "type", "bridge"],
                    ["ip", "addr", "add", f"{self.gateway}/24", "dev", self.bridge],
                    ["ip", "link", "set", self.bridge, "up"]):
            p = run(cmd)
            if p.returncode != 0:
                raise RuntimeError(f"{cmd}: {p.stderr}")
        (base / "daemon.json").write_text(json.dumps(
            {"deprecated-key-path": str(base / "key.json")}))
        self.log = base / "dockerd.log"
        self.log_f = open(self.log, "wb")
        self.proc = subprocess.Popen(
            ["dockerd", "--config-file", str(base / "daemon.json"),
             "--data-root", str(self.data), "--exec-root", str(self.exec_root),
             "-H", f"unix://{self.sock}", "--pidfile", str(self.pidfile),
             "--add-runtime", f"ocirun={runtime}",
             "--bridge", self.bridge, "--storage-driver", "overlay2",
             "--cgroup-parent", f"/{self.cgroup_parent}",
             "--exec-opt", "native.cgroupdriver=cgroupfs",
             "--userland-proxy=false", "--log-level", "warn"],
            stdin=subprocess.DEVNULL, stdout=self.log_f, stderr=subprocess.STDOUT,
            start_new_session=True)
        try:
            wait_for(lambda: self.docker("version", timeout=10).returncode == 0
                     or self.proc.poll() is not None, timeout=60, what="dockerd")
        except AssertionError:
            pass
        if self.proc.poll() is not None or self.docker("version").returncode != 0:
            raise RuntimeError("dockerd did not start: " + self.log.read_text()[-3000:])
        p = self.docker("load", "-i", image_tar, timeout=120)
        if p.returncode != 0:
            raise RuntimeError(f"docker load failed: {p.stderr}")

    @property
    def env(self):
        env = dict(os.environ)
        env["DOCKER_CONFIG"] = str(self.cli_config)
        env.pop("DOCKER_HOST", None)
        env.pop("DOCKER_CONTEXT", None)
        return env

    def argv(self, *args):
        return [DOCKER, "-H", f"unix://{self.sock}", *map(str, args)]

    def docker(self, *args, timeout=60, input=None):
        return run(self.argv(*args), timeout=timeout, input=input, env=self.env)

    def run_argv(self, *args, runtime="ocirun"):
        return self.argv("run", "--runtime", runtime, *args)

    def run(self, *args, runtime="ocirun", timeout=60, input=None):
        return run(self.run_argv(*args, runtime=runtime), timeout=timeout, input=input,
                   env=self.env)

    def inspect(self, cid):
        p = self.docker("inspect", cid)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)[0]

    def full_id(self, cid):
        return self.inspect(cid)["Id"]

    def start_detached(self, *args, runtime="ocirun"):
        name = new_id("d")
        p = self.run("-d", "--name", name, *args, runtime=runtime)
        assert p.returncode == 0, f"docker run -d failed rc={p.returncode}: {p.stderr}"
        return name, p.stdout.strip()

    def runtime_state_root(self, runtime="ocirun"):
        return self.exec_root / f"runtime-{runtime}" / "moby"

    def leftovers(self, full_id, runtime="ocirun"):
        problems = []
        sd = self.runtime_state_root(runtime) / full_id
        if sd.exists():
            problems.append(f"runtime state dir {sd} still exists")
        for d in helpers.cgroup_dirs(f"{self.cgroup_parent}/{full_id}"):
            problems.append(f"cgroup {d} still exists")
        for m in helpers.mounts():
            if full_id in m:
                problems.append(f"mount {m} still mounted")
        for pid, cmd in helpers.processes():
            if cmd and os.path.basename(cmd[0]) == SHIM and full_id in cmd:
                problems.append(f"shim {pid} for {full_id} still running")
        return problems

    def wait_clean(self, full_id, runtime="ocirun", timeout=10):
        return helpers.settle(lambda: self.leftovers(full_id, runtime), timeout)

    def shutdown(self):
        if self.proc is not None and self.proc.poll() is None:
            ids = self.docker("ps", "-aq").stdout.split()
            if ids:
                self.docker("rm", "-f", *ids, timeout=120)
            helpers.stop_pid(self.proc.pid, timeout=30)
        if self.proc is not None:
            self.proc.wait(timeout=30)
            self.log_f.close()
        base = str(self.base)
        # dockerd's own containerd and shims carry our exec-root in argv
        helpers.kill_matching(lambda c: any(base in a for a in c))
        helpers.unmount_under(self.base)
        if self.bridge_made:
            # veths of containers killed without dockerd's cleanup
            for line in run(["ip", "-o", "link", "show", "master",
                             self.bridge]).stdout.splitlines():
                name = line.split(":")[1].strip().split("@")[0]
                run(["ip", "link", "del", name])
            run(["ip", "link", "del", self.bridge])
        self.iptables.restore()
        self.sysctls.restore()
        helpers.remove_cgroup_tree(self.cgroup_parent)


@pytest.fixture(scope="session")
def dockerd(runtime, workdir, image_tar, tag, host_paths):
    _need_tool("dockerd")
    _need_tool("iptables")
    if not os.access(DOCKER, os.X_OK):
        pytest.fail(f"{DOCKER} {MISSING} (docker.io)", pytrace=False)
    d = Dockerd(workdir / "docker", tag, runtime, image_tar)
    yield d
    d.shutdown()


# --------------------------------------------------------------------------
# podman


class Podman:
    def __init__(self, base, tag, runtime, image_tar):
        self.base = base
        self.runtime = runtime
        self.cgroup_parent = f"berth-dropin-pm-{tag}"
        self.dirs = {k: base / k for k in ("root", "runroot", "tmp", "net", "volumes")}
        self.ids = set()  # full ids of every container the tests made
        for d in self.dirs.values():
            d.mkdir(parents=True, exist_ok=True)
        # As root, podman asks for RLIMIT_NOFILE 1048576 and a large
        # RLIMIT_NPROC; without CAP_SYS_RESOURCE (as in this sandbox) no
        # runtime can raise its hard limits that far.  Ask for modest ones.
        self.conf = base / "containers.conf"
        self.conf.write_text(
            "[containers]\n"
            'default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]\n'
            "[engine]\n"
            'cgroup_manager = "cgroupfs"\n'
            'events_logger = "file"\n')
        p = self.podman("load", "-i", image_tar, timeout=120)
        if p.returncode != 0:
            self.shutdown()
            raise RuntimeError(f"podman load failed: {p.stderr}")

    @property
    def env(self):
        env = dict(os.environ)
        env["CONTAINERS_CONF"] = str(self.conf)
        return env

    def argv(self, *args, runtime=None):
        d = self.dirs
        return ["podman", "--root", str(d["root"]), "--runroot", str(d["runroot"]),
                "--tmpdir", str(d["tmp"]), "--network-config-dir", str(d["net"]),
                "--volumepath", str(d["volumes"]),
                "--cgroup-manager", "cgroupfs", "--events-backend", "file",
                "--storage-driver", "overlay",
                "--runtime", runtime or self.runtime,
                *map(str, args)]

    def runtime_root(self, runtime=None):
        """podman 4.3 passes no --root to the runtime (and drops
        --runtime-flag on `delete`), so the runtime's default root is used:
        /run/<name> (ocirun: /run/ocirun, runc: /run/runc)."""
        return Path("/run") / os.path.basename(runtime or self.runtime)

    def podman(self, *args, timeout=60, input=None, runtime=None):
        return run(self.argv(*args, runtime=runtime), timeout=timeout, input=input,
                   env=self.env)

    def run_opts(self):
        return ["--network", "none", "--cgroup-parent", f"/{self.cgroup_parent}"]

    def leftovers(self, full_id, runtime=None):
        problems = []
        sd = self.runtime_root(runtime) / full_id
        if sd.exists():
            problems.append(f"runtime state dir {sd} still exists")
        for d in helpers.cgroup_dirs(f"{self.cgroup_parent}"):
            for sub in d.iterdir():
                if sub.is_dir() and full_id in sub.name:
                    problems.append(f"cgroup {sub} still exists")
        for m in helpers.mounts():
            if full_id in m:
                problems.append(f"mount {m} still mounted")
        for pid, cmd in helpers.processes():
            if cmd and os.path.basename(cmd[0]) == "conmon" and full_id in cmd:
                problems.append(f"conmon {pid} for {full_id} still running")
        return problems

    def shutdown(self):
        self.podman("rm", "-a", "-f", "-t", "0", timeout=120)
        base = str(self.base)
        helpers.kill_matching(lambda c: c and os.path.basename(c[0]) == "conmon"
                              and any(base in a for a in c))
        helpers.unmount_under(self.base)
        helpers.remove_cgroup_tree(self.cgroup_parent)


@pytest.fixture(scope="session")
def podman(runtime, workdir, image_tar, tag, host_paths):
    _need_tool("podman")
    _need_tool("conmon")
    created = helpers.CreatedPaths(dirs=[Path("/run") / os.path.basename(runtime)])
    p = Podman(workdir / "podman", tag, runtime, image_tar)
    yield p
    p.shutdown()
    created.cleanup()
