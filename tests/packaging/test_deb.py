"""The Debian package (packaging/build-deb.sh): built from $BERTH_BUILD
(configured with -Dsanitize=false; build-deb.sh sets its prefix to /usr),
its metadata and contents checked, then installed with dpkg into a bare
directory (`dpkg --root R --force-script-chrootless`: maintainer scripts run
on the host with $DPKG_ROOT=R), and hello-world run end to end from the
installed binaries: berth-supervisor and berth-engine with roots of their
own, `docker load` of the installed hello-world.tar and `docker run --rm
hello-world` with Debian's docker CLI."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import DOCKER, MESSAGE, REPO, build_dir, need

BUILD_DEB = REPO / "packaging" / "build-deb.sh"

BINARIES = ["usr/bin/berth-engine", "usr/bin/berth-supervisor", "usr/bin/berth-shim", "usr/sbin/ocirun",
            "usr/bin/berth-ctr", "usr/bin/berth-fetch"]
FILES = BINARIES + ["usr/share/berth/hello-world.tar", "etc/berth/engine.json",
                    "usr/share/doc/berth/configuration.md", "usr/share/doc/berth/copyright"]
UNITS = ["berth-supervisor.service", "berth-engine.service"]


def run(*args, timeout=300, **kw):
    p = subprocess.run(list(map(str, args)), capture_output=True, text=True, timeout=timeout, **kw)
    assert p.returncode == 0, f"{' '.join(map(str, args))} exited {p.returncode}:\n{p.stdout}\n{p.stderr}"
    return p


@pytest.fixture(scope="session")
def workdir():
    d = Path(tempfile.mkdtemp(prefix="berth-deb-test-", dir="/tmp"))
    yield d
    subprocess.run(["umount", "-R", "-l", str(d)], capture_output=True)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def deb(workdir):
    for tool in ("dpkg-deb", "dpkg-shlibdeps", "meson", "readelf"):
        need(tool)
    b = build_dir()
    if not (b / "build.ninja").exists():
        pytest.fail(f"{b} is not a build directory: meson setup {b} -Dsanitize=false, or set $BERTH_BUILD",
                    pytrace=False)
    out = workdir / "berth.deb"
    run(BUILD_DEB, "-C", b, out, timeout=1800)
    return out


def control_fields(deb):
    text = run("dpkg-deb", "--field", deb).stdout
    fields, key = {}, None
    for line in text.splitlines():
        if line.startswith(" ") and key:
            fields[key] += "\n" + line
        else:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def depends_packages(fields):
    return {re.split(r"[\s(:]", alt.strip())[0] for dep in fields["Depends"].split(",")
            for alt in dep.split("|")}


def test_info(deb):
    fields = control_fields(deb)
    assert fields["Package"] == "berth"
    assert fields["Architecture"] == run("dpkg", "--print-architecture").stdout.strip()
    # the libraries berth links (ocirun and berth-shim are static)
    for pkg in ("libc6", "libnng1", "libprotobuf-c1", "libjansson4", "libmicrohttpd12", "libssl3",
                "libcurl4", "libarchive13", "libzstd1", "zlib1g", "passwd"):
        assert pkg in depends_packages(fields), fields["Depends"]
    info = run("dpkg-deb", "--info", deb).stdout
    for script in ("postinst", "prerm", "postrm", "conffiles"):
        assert script in info
    x = deb.parent / "control"
    shutil.rmtree(x, ignore_errors=True)
    run("dpkg-deb", "--control", deb, x)
    assert (x / "conffiles").read_text().split() == ["/etc/berth/engine.json"]
    assert "groupadd" in (x / "postinst").read_text()


def test_contents(deb):
    listing = run("dpkg-deb", "--contents", deb).stdout.splitlines()
    entries = {}
    for line in listing:
        cols = line.split()
        path = cols[5][2:] if cols[5].startswith("./") else cols[5]
        entries[path.rstrip("/")] = (cols[0], cols[1])
    for f in FILES:
        assert f in entries, f"{f} not in the package:\n" + "\n".join(listing)
    for b in BINARIES:
        assert entries[b][0] == "-rwxr-xr-x", (b, entries[b])
    for path, (_, owner) in entries.items():
        assert owner == "root/root", (path, owner)
    for unit in UNITS:
        assert any(p.endswith("systemd/system/" + unit) for p in entries), unit
    assert not any(p.startswith("usr/local") for p in entries)


@pytest.fixture(scope="session")
def extracted(deb, workdir):
    x = workdir / "x"
    run("dpkg-deb", "-x", deb, x)
    return x


def closure(packages):
    """packages and, recursively, the installed packages they depend on."""
    seen, todo = set(), list(packages)
    while todo:
        pkg = todo.pop()
        if pkg in seen:
            continue
        seen.add(pkg)
        q = subprocess.run(["dpkg-query", "-W", "-f=${Depends}, ${Pre-Depends}", pkg],
                           capture_output=True, text=True)
        for dep in q.stdout.split(","):
            name = re.split(r"[\s(:|]", dep.strip())[0]
            if name:
                todo.append(name)
    return seen


def test_depends_cover_every_linked_library(deb, extracted):
    """Each library a binary needs directly (readelf) comes from a package in
    Depends, and each one ldd shows from Depends or what they depend on."""
    direct = depends_packages(control_fields(deb))
    deps = closure(direct)
    for b in BINARIES:
        p = subprocess.run(["ldd", str(extracted / b)], capture_output=True, text=True)
        if "not a dynamic executable" in p.stdout + p.stderr:
            continue
        assert "not found" not in p.stdout, p.stdout
        needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.*?)\]",
                            run("readelf", "-d", extracted / b).stdout)
        for lib in re.findall(r"=> (/\S+)", p.stdout):
            real = os.path.realpath(lib)
            owner = None
            for cand in (lib, real, "/usr" + lib, "/usr" + real):
                q = subprocess.run(["dpkg", "-S", cand], capture_output=True, text=True)
                if q.returncode == 0:
                    owner = q.stdout.split(":")[0]
                    break
            assert owner, f"{b}: {lib} belongs to no package"
            if os.path.basename(lib) in needed:
                assert owner in direct, f"{b} needs {lib} from {owner}, which is not in Depends"
            assert owner in deps, f"{b} links {lib} from {owner}, which nothing in Depends brings"


def test_units_point_at_installed_binaries(extracted):
    unit_dir = next(p for p in extracted.rglob("systemd/system") if p.is_dir())
    sup = (unit_dir / "berth-supervisor.service").read_text()
    eng = (unit_dir / "berth-engine.service").read_text()
    assert "ExecStart=/usr/bin/berth-supervisor" in sup
    assert "ExecStart=/usr/bin/berth-engine" in eng
    assert "KillMode=process" in sup and "KillMode=process" in eng
    assert "Delegate=yes" in sup
    assert "Requires=berth-supervisor.service" in eng and "After=berth-supervisor.service" in eng
    if shutil.which("systemd-analyze"):
        # syntax only: the binaries are not at /usr/bin on this host
        p = subprocess.run(["systemd-analyze", "verify", str(unit_dir / "berth-supervisor.service"),
                            str(unit_dir / "berth-engine.service")], capture_output=True, text=True)
        bad = [l for l in p.stderr.splitlines()
               if ("Unknown" in l or "Invalid" in l or "Failed to parse" in l)]
        assert not bad, p.stderr
    config = json.loads((extracted / "etc/berth/engine.json").read_text())
    assert config["data-root"] == "/var/lib/berth" and config["live-restore"] is True


@pytest.fixture(scope="session")
def root(deb, workdir):
    """The package installed by dpkg into a bare directory."""
    r = workdir / "root"
    admin = r / "var/lib/dpkg"
    for d in ("info", "updates", "triggers"):
        (admin / d).mkdir(parents=True)
    (admin / "status").touch()
    (admin / "available").touch()
    (r / "etc").mkdir(exist_ok=True)
    (r / "etc/group").write_text("root:x:0:\n")
    (r / "etc/gshadow").write_text("root:*::\n")
    (r / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    # Depends are not installed in the bare root: the binaries run on the
    # host, with the host's libraries.
    run("dpkg", "--root", r, "--log=/dev/null", "--force-depends", "--force-script-chrootless",
        "--install", deb)
    return r


def test_dpkg_install(root):
    status = run("dpkg", "--root", root, "-s", "berth").stdout
    assert "Status: install ok installed" in status
    assert re.search(r"^berth:x:\d+:", (root / "etc/group").read_text(), re.M), "postinst made no group"
    files = run("dpkg", "--root", root, "-L", "berth").stdout.split()
    for f in FILES:
        assert "/" + f in files


class Daemons:
    def __init__(self, root, base):
        self.bin = root / "usr/bin"
        self.ocirun = root / "usr/sbin/ocirun"
        self.base = base
        self.data = base / "data"
        self.run = base / "run"
        self.sock = self.run / "engine.sock"
        self.config = base / "docker-config"
        self.config.mkdir(parents=True, exist_ok=True)
        self.sup = self.eng = None

    def _spawn(self, args, log):
        return subprocess.Popen(list(map(str, args)), stdout=open(self.base / log, "ab"),
                                stderr=subprocess.STDOUT)

    def log(self, what):
        p = self.base / f"{what}.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def _wait(self, ok, proc, what):
        deadline = time.time() + 20
        while not ok():
            if proc.poll() is not None or time.time() > deadline:
                raise AssertionError(f"{what} did not start:\n{self.log(what)}")
            time.sleep(0.05)

    def start(self):
        self.sup = self._spawn([self.bin / "berth-supervisor", "--root", self.data, "--exec-root", self.run,
                                "--shim", self.bin / "berth-shim", "--runtime", self.ocirun], "supervisor.log")
        self._wait(lambda: (self.run / "supervisor.sock").exists(), self.sup, "supervisor")
        self.eng = self._spawn([self.bin / "berth-engine", "--data-root", self.data, "--exec-root", self.run,
                                "-H", f"unix://{self.sock}"], "engine.log")
        self._wait(self._engine_up, self.eng, "engine")

    def _engine_up(self):
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(str(self.sock))
            return True
        except OSError:
            return False

    def docker(self, *args, timeout=120):
        env = dict(os.environ, DOCKER_HOST=f"unix://{self.sock}", DOCKER_CONFIG=str(self.config))
        p = subprocess.run([DOCKER, *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env)
        assert p.returncode == 0, (f"docker {' '.join(map(str, args))} exited {p.returncode}:\n{p.stdout}\n"
                                   f"{p.stderr}\n--- engine log:\n{self.log('engine')[-3000:]}\n"
                                   f"--- supervisor log:\n{self.log('supervisor')[-3000:]}")
        return p

    @staticmethod
    def _stop(proc):
        if proc and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                return proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                return proc.wait()
        return proc.returncode if proc else None

    def stop(self):
        return self._stop(self.eng), self._stop(self.sup)

    def leftover_shims(self):
        """Shims started for this test's exec root (found by their command line
        or, in the chroot, by their root)."""
        pids = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if not (cmd and cmd[0].endswith(b"berth-shim")):
                continue
            try:
                proc_root = os.readlink(f"/proc/{pid}/root")
            except OSError:
                proc_root = "/"
            if any(str(self.run).encode() in a for a in cmd) or str(self.run).startswith(proc_root + "/"):
                pids.append(int(pid))
        return pids


def test_hello_world_end_to_end(root, workdir):
    need(DOCKER)
    # A short exec root: shims/<64 hex>/attach.sock must fit in sun_path.
    base = Path(tempfile.mkdtemp(prefix="bd-", dir="/tmp"))
    d = Daemons(root, base)
    try:
        d.start()
        load = d.docker("load", "-i", root / "usr/share/berth/hello-world.tar")
        assert "hello-world:latest" in load.stdout
        out = d.docker("run", "--rm", "hello-world")
        assert MESSAGE in out.stdout
        assert "berth-supervisor" in out.stdout
        assert d.docker("ps", "-aq").stdout.strip() == "", "--rm left the container"
        images = d.docker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
        assert "hello-world:latest" in images
    finally:
        codes = d.stop()
        for pid in d.leftover_shims():
            os.kill(pid, signal.SIGKILL)
        subprocess.run(["umount", "-R", "-l", str(d.run)], capture_output=True)
        subprocess.run(["umount", "-R", "-l", str(d.data)], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
    assert codes == (0, 0), f"engine, supervisor exit codes {codes}"


class Chroot:
    """The installed root made runnable as a chroot: bound onto itself (so
    ocirun's pivot_root inside finds a mount point), the host's shared
    libraries and loader (the package's Depends, which a bare root lacks),
    /proc, /sys, /dev. Everything else the daemons use is the package's."""

    def __init__(self, root):
        self.root = root
        self.mounts = []

    def _bind(self, src, rel, rec=False):
        dst = self.root / rel.lstrip("/")
        if Path(src).is_dir():
            dst.mkdir(parents=True, exist_ok=True)
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.touch()
        run("mount", "--rbind" if rec else "--bind", src, dst)
        self.mounts.append(dst)

    def setup(self):
        run("mount", "--bind", self.root, self.root)
        self.mounts.append(self.root)
        run("mount", "--make-private", self.root)
        interp = re.search(r"interpreter: (\S+?)\]",
                           run("readelf", "-l", self.root / "usr/bin/berth-engine").stdout).group(1)
        libdir = os.path.dirname(os.path.realpath(interp))  # /usr/lib/<multiarch>
        for rel in {libdir, libdir.removeprefix("/usr")}:
            self._bind(libdir, rel)
        self._bind(os.path.realpath(interp), interp)
        for d in ("/proc", "/sys", "/dev"):
            self._bind(d, d, rec=True)
        # what base-files gives every Debian system (the engine keeps
        # request bodies in /var/tmp)
        for d in ("run", "var/lib", "tmp", "var/tmp"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        os.chmod(self.root / "tmp", 0o1777)
        os.chmod(self.root / "var/tmp", 0o1777)

    def teardown(self):
        # the daemons' overlay mounts are below root too: one recursive,
        # lazy unmount of the top takes them all
        subprocess.run(["umount", "-R", "-l", str(self.root)], capture_output=True)

    def spawn(self, args, log):
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
        return subprocess.Popen(["chroot", str(self.root), *args], stdout=open(log, "ab"),
                                stderr=subprocess.STDOUT, env=env)


def test_hello_world_in_chroot(root, workdir):
    """The daemons run chrooted in the installed root with nothing but their
    defaults and the package's files (berth-shim, berth-fetch found beside
    the supervisor, ocirun on PATH), as the systemd units start them."""
    need(DOCKER)
    need("chroot")
    ch = Chroot(root)
    d = Daemons(root, workdir / "chroot-logs")
    d.run = root / "run/berth"
    d.sock = d.run / "engine.sock"
    try:
        ch.setup()
        d.sup = ch.spawn(["/usr/bin/berth-supervisor"], d.base / "supervisor.log")
        d._wait(lambda: (d.run / "supervisor.sock").exists(), d.sup, "supervisor")
        d.eng = ch.spawn(["/usr/bin/berth-engine"], d.base / "engine.log")
        d._wait(d._engine_up, d.eng, "engine")
        d.docker("load", "-i", root / "usr/share/berth/hello-world.tar")
        out = d.docker("run", "--rm", "hello-world")
        assert MESSAGE in out.stdout
        assert (root / "var/lib/berth/supervisor").is_dir()
    finally:
        codes = d.stop()
        for pid in d.leftover_shims():
            os.kill(pid, signal.SIGKILL)
        ch.teardown()
    assert codes == (0, 0), f"engine, supervisor exit codes {codes}"
    assert not [m for m in Path("/proc/mounts").read_text().splitlines() if str(root) in m]
