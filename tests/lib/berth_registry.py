"""A real registry for tests: Debian's docker-registry (distribution 2.8)
on 127.0.0.1 with a free port and its own storage, and images pushed to
it with skopeo from OCI layouts (tests/supervisor/ocilayout.py). Shared by
the supervisor's and the engine's test suites (each imports it by path).
Nothing leaves 127.0.0.1."""

import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

REGISTRY_BIN = "/usr/bin/docker-registry"
TIMEOUT = 60


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


def busybox_entries(busybox_path, passwd=None, group=None):
    """Tar entries of a busybox image: the static busybox, a link for each
    applet, /etc/passwd and /etc/group, /tmp."""
    bb = Path(busybox_path)
    applets = subprocess.run([str(bb), "--list"], capture_output=True, text=True, check=True).stdout.split()
    passwd = passwd or (b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
                        b"alice:x:1234:2345:alice:/tmp:/bin/sh\n")
    group = group or b"root:x:0:\nnogroup:x:65534:\nstaff:x:50:alice\nalice:x:2345:\n"
    entries = [("bin", None), ("bin/busybox", bb.read_bytes()), ("etc", None), ("tmp", None),
               ("etc/passwd", passwd), ("etc/group", group)]
    entries += [(f"bin/{a}", ("link", "busybox")) for a in applets if a != "busybox"]
    return entries
