"""Shared fixtures for the ocirun integration tests.

Runtime under test: $OCIRUN (default <repo>/build/ocirun/ocirun).  A bare
name such as ``runc`` is looked up on $PATH.  Peer runtime for the
comparison tests: $PEER_RUNTIME (default ``runc``).

Every test gets its own state root (``--root``) under tmp_path, unique
container ids (``t-<hex>``), and a unique cgroupsPath ``/berth-test/<id>``.
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OCIRUN = REPO / "build" / "ocirun" / "ocirun"
BUSYBOX = "/bin/busybox"
CGROUP_PARENT = "berth-test"
DEFAULT_TIMEOUT = 30


# --------------------------------------------------------------------------
# runtime resolution


def _resolve(value):
    """Return an absolute path for a runtime given as path or bare name."""
    if os.sep in value:
        return str(Path(value).resolve())
    found = shutil.which(value)
    return found or value


def runtime_path():
    return _resolve(os.environ.get("OCIRUN") or str(DEFAULT_OCIRUN))


def peer_path():
    return _resolve(os.environ.get("PEER_RUNTIME") or "runc")


def runtime_is_reference(path=None):
    """True when the runtime under test is runc or crun (not ocirun)."""
    return os.path.basename(path or runtime_path()) in ("runc", "crun")


MISSING = "runtime binary not found or not executable"


def _check_executable(path, what, env):
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(
            f"{what}: {MISSING}: {path!r}. "
            f"Build it first or point ${env} at a runtime binary "
            f"(e.g. {env}=runc to validate the tests).",
            pytrace=False,
        )
    return path


def pytest_report_header(config):
    rt = runtime_path()
    ok = "ok" if os.access(rt, os.X_OK) else "MISSING"
    return [
        f"runtime under test (OCIRUN): {rt} [{ok}]",
        f"peer runtime (PEER_RUNTIME): {peer_path()}",
    ]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A missing runtime binary is reported as a test FAILURE, not a
    setup error (and never a skip)."""
    outcome = yield
    rep = outcome.get_result()
    if (rep.when == "setup" and rep.failed and call.excinfo is not None
            and MISSING in str(call.excinfo.value)):
        rep.when = "call"


def pytest_collection_modifyitems(config, items):
    if not runtime_is_reference():
        return
    skip = pytest.mark.skip(
        reason=f"ocirun-specific behaviour; runtime is {os.path.basename(runtime_path())}"
    )
    for item in items:
        if "ocirun_only" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def runtime():
    """Absolute path of the runtime under test; FAILS the test if missing."""
    return _check_executable(runtime_path(), "OCIRUN", "OCIRUN")


@pytest.fixture(scope="session")
def peer_runtime():
    return _check_executable(peer_path(), "PEER_RUNTIME", "PEER_RUNTIME")


# --------------------------------------------------------------------------
# rootfs template


@pytest.fixture(scope="session")
def rootfs_template(tmp_path_factory):
    if not os.path.isfile(BUSYBOX):
        pytest.fail(f"{BUSYBOX} is required (apt install busybox-static)", pytrace=False)
    root = tmp_path_factory.mktemp("rootfs-template") / "rootfs"
    (root / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    applets = subprocess.run(
        [BUSYBOX, "--list"], check=True, capture_output=True, text=True
    ).stdout.split()
    for applet in applets:
        if "/" in applet or applet == "busybox":
            continue
        link = root / "bin" / applet
        if not link.exists():
            link.symlink_to("busybox")
    if not (root / "bin" / "sh").exists():
        (root / "bin" / "sh").symlink_to("busybox")
    for d in ("proc", "sys", "dev", "tmp", "etc", "root", "home/tester"):
        (root / d).mkdir(parents=True, exist_ok=True)
    os.chmod(root / "tmp", 0o1777)
    (root / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\n"
        "tester:x:1000:1000:tester:/home/tester:/bin/sh\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
    )
    (root / "etc" / "group").write_text(
        "root:x:0:\n"
        "tty:x:5:\n"
        "tester:x:1000:\n"
        "nogroup:x:65534:\n"
    )
    (root / "etc" / "berth-rootfs").write_text("berth busybox rootfs\n")
    return root


# --------------------------------------------------------------------------
# runtime helper


def new_id():
    return "t-" + uuid.uuid4().hex[:12]


class Runtime:
    """Runs ``<runtime> --root <state root> <args...>``.

    stdout/stderr go to temporary *files*, not pipes: a container created
    with ``create``/``run -d`` inherits the runtime's stdio, and a pipe would
    keep ``communicate()`` waiting until the container exits.
    """

    def __init__(self, binary, root):
        self.binary = binary
        self.root = Path(root)
        self.ids = []

    @property
    def name(self):
        return os.path.basename(self.binary)

    def new_id(self):
        cid = new_id()
        self.ids.append(cid)
        return cid

    def track(self, cid):
        if cid not in self.ids:
            self.ids.append(cid)
        return cid

    def cmd(self, *args):
        return [self.binary, "--root", str(self.root), *map(str, args)]

    def __call__(self, *args, timeout=DEFAULT_TIMEOUT, stdin=subprocess.DEVNULL,
                 stdout=None, stderr=None, cwd=None, pass_fds=()):
        argv = self.cmd(*args)
        out = stdout if stdout is not None else tempfile.TemporaryFile()
        err = stderr if stderr is not None else tempfile.TemporaryFile()
        try:
            p = subprocess.run(argv, stdin=stdin, stdout=out, stderr=err,
                               cwd=cwd, timeout=timeout, pass_fds=pass_fds)
            texts = []
            for f, given in ((out, stdout), (err, stderr)):
                if given is None:
                    f.seek(0)
                    texts.append(f.read().decode(errors="replace"))
                else:
                    texts.append("")
            return subprocess.CompletedProcess(argv, p.returncode, texts[0], texts[1])
        finally:
            if stdout is None:
                out.close()
            if stderr is None:
                err.close()

    def popen(self, *args, **kw):
        kw.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.Popen(self.cmd(*args), **kw)

    def state(self, cid):
        p = self("state", cid)
        assert p.returncode == 0, f"state {cid} failed: {p.stderr}"
        return json.loads(p.stdout)

    def status(self, cid):
        p = self("state", cid)
        if p.returncode != 0:
            return None
        return json.loads(p.stdout).get("status")

    def wait_status(self, cid, want, timeout=10):
        deadline = time.monotonic() + timeout
        st = None
        while time.monotonic() < deadline:
            st = self.status(cid)
            if st == want:
                return st
            time.sleep(0.05)
        raise AssertionError(f"container {cid}: status {st!r}, expected {want!r}")

    def cleanup(self):
        for cid in self.ids:
            try:
                self("delete", "--force", cid, timeout=15)
            except Exception:
                pass


@pytest.fixture
def rt(runtime, tmp_path, cleanup_registry):
    r = Runtime(runtime, tmp_path / "state")
    yield r
    r.cleanup()


@pytest.fixture
def peer(peer_runtime, tmp_path, cleanup_registry):
    r = Runtime(peer_runtime, tmp_path / "peer-state")
    yield r
    r.cleanup()


# --------------------------------------------------------------------------
# bundles


class Bundle:
    def __init__(self, path, cid, config, marker):
        self.path = Path(path)
        self.id = cid
        self.config = config
        self.marker = marker

    @property
    def rootfs(self):
        return self.path / "rootfs"

    @property
    def cgroups_path(self):
        return self.config.get("linux", {}).get("cgroupsPath")

    def write(self):
        (self.path / "config.json").write_text(json.dumps(self.config, indent=2))
        return self

    def __fspath__(self):
        return str(self.path)

    def __str__(self):
        return str(self.path)


def generate_spec(runtime_bin, directory):
    p = subprocess.run([runtime_bin, "spec"], cwd=directory, capture_output=True,
                       text=True, timeout=DEFAULT_TIMEOUT, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, f"{runtime_bin} spec failed: {p.stderr}"
    return json.loads((Path(directory) / "config.json").read_text())


@pytest.fixture
def bundle(cleanup_registry, rt, rootfs_template, tmp_path):
    """Factory: bundle(args, hostname=..., readonly=False, edit=fn, write=True).

    Builds <tmp>/bundle-<id>/{rootfs,config.json}; config.json comes from
    ``<runtime> spec`` and is adjusted for non-interactive use.  ``edit`` is
    called with the config dict before it is written; with ``write=False``
    the test edits ``b.config`` and calls ``b.write()`` itself.
    """

    def make(args, *, hostname="berth-test", readonly=False, edit=None,
             write=True, cid=None, env=None, cwd=None):
        cid = rt.track(cid) if cid else rt.new_id()
        marker = "berthmark-" + uuid.uuid4().hex[:12]
        path = tmp_path / f"bundle-{cid}"
        path.mkdir()
        subprocess.run(["cp", "-a", str(rootfs_template), str(path / "rootfs")],
                       check=True)
        config = generate_spec(rt.binary, path)
        proc = config["process"]
        proc["terminal"] = False
        proc["args"] = [a.replace("@MARKER@", marker) for a in args]
        if env:
            proc["env"] = proc.get("env", []) + list(env)
        if cwd:
            proc["cwd"] = cwd
        config["root"]["readonly"] = readonly
        config["hostname"] = hostname
        config.setdefault("linux", {})["cgroupsPath"] = f"/{CGROUP_PARENT}/{cid}"
        b = Bundle(path, cid, config, marker)
        cleanup_registry.append(b)
        if edit:
            edit(config)
        if write:
            b.write()
        return b

    return make


def run_container(rt, b, *extra, timeout=DEFAULT_TIMEOUT, **kw):
    """``run -b <bundle> <id>``; returns CompletedProcess."""
    return rt("run", *extra, "-b", b.path, b.id, timeout=timeout, **kw)


# --------------------------------------------------------------------------
# leftovers


def cgroup_mounts():
    """[(mountpoint, fstype)] of all cgroup/cgroup2 mounts in our mount ns."""
    res = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            fstype = post.split()[0]
            if fstype in ("cgroup", "cgroup2"):
                mp = pre.split()[4].replace("\\040", " ")
                res.append((mp, fstype))
    return res


def cgroup_v1_mount(controller):
    """Mount point of a v1 controller, from /proc/self/mountinfo."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            fields = post.split()
            if fields[0] != "cgroup":
                continue
            opts = fields[2].split(",") if len(fields) > 2 else []
            if controller in opts:
                return pre.split()[4]
    return None


def mounts_under(path):
    path = os.path.realpath(str(path))
    res = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].replace("\\040", " ")
            if mp == path or mp.startswith(path + "/"):
                res.append(mp)
    return res


def pids_with_marker(marker):
    res = []
    me = os.getpid()
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == me:
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if marker.encode() in cmd:
            res.append((int(d), cmd.replace(b"\0", b" ").decode(errors="replace")))
    return res


def find_leftovers(state_root, cid, cgroups_path, bundle_path, marker=None):
    problems = []
    sd = Path(state_root) / cid
    if sd.exists():
        problems.append(f"state dir {sd} still exists")
    if cgroups_path:
        rel = cgroups_path.lstrip("/")
        for mp, fstype in cgroup_mounts():
            d = Path(mp) / rel
            if d.exists():
                problems.append(f"cgroup dir {d} ({fstype}) still exists")
    if bundle_path:
        for mp in mounts_under(bundle_path):
            problems.append(f"mount {mp} under bundle still mounted")
    if marker:
        for pid, cmd in pids_with_marker(marker):
            problems.append(f"process {pid} still alive: {cmd}")
    return problems


@pytest.fixture
def leftovers(rt):
    """leftovers(id, cgroups_path, bundle, marker=None) -> list of problems.

    Also accepts a Bundle as the only argument.
    """

    def check(cid, cgroups_path=None, bundle=None, marker=None):
        if isinstance(cid, Bundle):
            b = cid
            return find_leftovers(rt.root, b.id, b.cgroups_path, b.path, b.marker)
        return find_leftovers(rt.root, cid, cgroups_path,
                              bundle.path if isinstance(bundle, Bundle) else bundle,
                              marker)

    return check


@pytest.fixture
def cleanup_registry():
    """Best-effort hygiene after the runtime's own delete --force: kill
    marker processes, lazily unmount anything under the bundle, remove
    the test's cgroup dirs.  Never raises."""
    bundles = []
    yield bundles
    for b in bundles:
        try:
            for pid, _ in pids_with_marker(b.marker):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            for mp in sorted(mounts_under(b.path), key=len, reverse=True):
                subprocess.run(["umount", "-l", mp], capture_output=True)
            if b.cgroups_path:
                rel = b.cgroups_path.lstrip("/")
                dirs = [Path(mp) / rel for mp, _ in cgroup_mounts()]
                dirs = [d for d in dirs if d.is_dir()]
                for d in dirs:
                    try:
                        for pid in (d / "cgroup.procs").read_text().split():
                            try:
                                os.kill(int(pid), signal.SIGKILL)
                            except OSError:
                                pass
                    except OSError:
                        pass
                for d in dirs:
                    for _ in range(40):
                        try:
                            os.rmdir(d)
                            break
                        except FileNotFoundError:
                            break
                        except OSError:
                            time.sleep(0.05)
        except Exception:
            pass


@pytest.fixture(scope="session", autouse=True)
def _remove_cgroup_parent():
    yield
    for mp, _ in cgroup_mounts():
        try:
            os.rmdir(Path(mp) / CGROUP_PARENT)
        except OSError:
            pass


# --------------------------------------------------------------------------
# misc helpers


def wait_for(pred, timeout=10, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def parse_mountinfo(text):
    """[{mountpoint, root, majmin, opts, fstype, source, superopts}]"""
    res = []
    for line in text.splitlines():
        if " - " not in line:
            continue
        pre, _, post = line.partition(" - ")
        f = pre.split()
        p = post.split()
        res.append({
            "majmin": f[2], "root": f[3], "mountpoint": f[4],
            "opts": f[5].split(","), "fstype": p[0],
            "source": p[1] if len(p) > 1 else "",
            "superopts": p[2].split(",") if len(p) > 2 else [],
        })
    return res


CAPS = {
    "CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2,
    "CAP_FOWNER": 3, "CAP_FSETID": 4, "CAP_KILL": 5, "CAP_SETGID": 6,
    "CAP_SETUID": 7, "CAP_SETPCAP": 8, "CAP_LINUX_IMMUTABLE": 9,
    "CAP_NET_BIND_SERVICE": 10, "CAP_NET_BROADCAST": 11, "CAP_NET_ADMIN": 12,
    "CAP_NET_RAW": 13, "CAP_IPC_LOCK": 14, "CAP_IPC_OWNER": 15,
    "CAP_SYS_MODULE": 16, "CAP_SYS_RAWIO": 17, "CAP_SYS_CHROOT": 18,
    "CAP_SYS_PTRACE": 19, "CAP_SYS_PACCT": 20, "CAP_SYS_ADMIN": 21,
    "CAP_SYS_BOOT": 22, "CAP_SYS_NICE": 23, "CAP_SYS_RESOURCE": 24,
    "CAP_SYS_TIME": 25, "CAP_SYS_TTY_CONFIG": 26, "CAP_MKNOD": 27,
    "CAP_LEASE": 28, "CAP_AUDIT_WRITE": 29, "CAP_AUDIT_CONTROL": 30,
    "CAP_SETFCAP": 31, "CAP_MAC_OVERRIDE": 32, "CAP_MAC_ADMIN": 33,
    "CAP_SYSLOG": 34, "CAP_WAKE_ALARM": 35, "CAP_BLOCK_SUSPEND": 36,
    "CAP_AUDIT_READ": 37, "CAP_PERFMON": 38, "CAP_BPF": 39,
    "CAP_CHECKPOINT_RESTORE": 40,
}


def cap_mask(names):
    m = 0
    for n in names or []:
        m |= 1 << CAPS[n]
    return m
