#!/usr/bin/python3
"""Build a busybox container image tarball from the host's /bin/busybox.

The tarball is *both* an OCI image layout (``oci-layout``, ``index.json``,
``blobs/sha256/...``) and a ``docker save`` archive (``manifest.json`` whose
``Config`` and ``Layers`` point at the same blobs, ``repositories``), the way
``docker save`` of Docker 25 writes it.  One file therefore loads everywhere:

- ``ctr image import``   (containerd 1.6: OCI index.json / docker manifest.json)
- ``docker load``        (Docker 20.10 reads manifest.json)
- ``podman load``        (docker-archive)

The layer is an uncompressed tar (media type ``...layer.v1.tar``), so the
layer digest is also its diff_id.  The output is deterministic (fixed mtimes
and ownership), so the same busybox gives the same image digests.

Every tag in ``TAGS`` gets its own image config over the same layer:

- ``:latest``  no User, Cmd ["sh"]
- ``:tester``  User "tester" (uid 1000, gid 1000; member of the groups
  ``wheel`` (10) and ``audio`` (29) in /etc/group), WorkingDir /home/tester

Usage:  mkimage.py OUT.tar [REPO]     (REPO default: localhost/berth-busybox)
"""

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile

BUSYBOX = "/bin/busybox"
DEFAULT_REPO = "localhost/berth-busybox"
MTIME = 1700000000  # fixed, for reproducible digests

PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "tester:x:1000:1000:tester:/home/tester:/bin/sh\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
)
GROUP = (
    "root:x:0:\n"
    "tty:x:5:\n"
    "wheel:x:10:tester\n"
    "audio:x:29:tester\n"
    "tester:x:1000:\n"
    "nogroup:x:65534:\n"
)
ENV = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
# tag -> extra image config fields
TAGS = {
    "latest": {"Cmd": ["sh"]},
    "tester": {"Cmd": ["sh"], "User": "tester", "WorkingDir": "/home/tester"},
}


def _info(name, kind, mode, **kw):
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.mode = mode
    ti.mtime = MTIME
    ti.uid = kw.pop("uid", 0)
    ti.gid = kw.pop("gid", 0)
    ti.uname = ti.gname = ""
    for k, v in kw.items():
        setattr(ti, k, v)
    return ti


def layer_tar(busybox=BUSYBOX):
    """The rootfs layer as bytes (uncompressed tar)."""
    applets = subprocess.run([busybox, "--list"], check=True, capture_output=True,
                             text=True).stdout.split()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        def add_dir(name, mode=0o755, **kw):
            tf.addfile(_info(name, tarfile.DIRTYPE, mode, **kw))

        def add_file(name, data, mode=0o644):
            ti = _info(name, tarfile.REGTYPE, mode, size=len(data))
            tf.addfile(ti, io.BytesIO(data))

        for d in ("bin", "dev", "etc", "home", "proc", "root", "sys", "usr",
                  "usr/bin", "var"):
            add_dir(d, 0o700 if d == "root" else 0o755)
        add_dir("tmp", 0o1777)
        add_dir("home/tester", 0o755, uid=1000, gid=1000)
        with open(busybox, "rb") as f:
            add_file("bin/busybox", f.read(), 0o755)
        for a in sorted(set(applets)):
            if "/" in a or a == "busybox":
                continue
            tf.addfile(_info("bin/" + a, tarfile.SYMTYPE, 0o777, linkname="busybox"))
        add_file("etc/passwd", PASSWD.encode())
        add_file("etc/group", GROUP.encode())
        add_file("etc/berth-image", b"berth busybox image\n")
    return buf.getvalue()


def _blob(tf, data):
    digest = hashlib.sha256(data).hexdigest()
    name = f"blobs/sha256/{digest}"
    if name not in tf.getnames():
        ti = _info(name, tarfile.REGTYPE, 0o644, size=len(data))
        tf.addfile(ti, io.BytesIO(data))
    return digest


def _json(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def build(out, repo=DEFAULT_REPO, busybox=BUSYBOX):
    """Write the image tarball to ``out``; returns {tag: image reference}."""
    layer = layer_tar(busybox)
    layer_digest = hashlib.sha256(layer).hexdigest()
    refs = {}
    tmp = f"{out}.tmp-{os.getpid()}"
    with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for d in ("blobs", "blobs/sha256"):
            tf.addfile(_info(d, tarfile.DIRTYPE, 0o755))
        _blob(tf, layer)
        manifests = []
        docker_manifest = []
        repositories = {}
        for tag, extra in TAGS.items():
            ref = f"{repo}:{tag}"
            refs[tag] = ref
            config = {
                "architecture": "amd64",
                "os": "linux",
                "created": "2023-11-14T22:13:20Z",
                "config": {"Env": ENV, **extra},
                "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_digest}"]},
                "history": [{"created": "2023-11-14T22:13:20Z",
                             "created_by": "tests/dropin/mkimage.py"}],
            }
            config_bytes = _json(config)
            config_digest = _blob(tf, config_bytes)
            manifest = {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": f"sha256:{config_digest}",
                           "size": len(config_bytes)},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                            "digest": f"sha256:{layer_digest}",
                            "size": len(layer)}],
            }
            manifest_bytes = _json(manifest)
            manifest_digest = _blob(tf, manifest_bytes)
            manifests.append({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": f"sha256:{manifest_digest}",
                "size": len(manifest_bytes),
                "platform": {"architecture": "amd64", "os": "linux"},
                "annotations": {"io.containerd.image.name": ref,
                                "org.opencontainers.image.ref.name": tag},
            })
            docker_manifest.append({
                "Config": f"blobs/sha256/{config_digest}",
                "RepoTags": [ref],
                "Layers": [f"blobs/sha256/{layer_digest}"],
            })
            repositories.setdefault(repo, {})[tag] = layer_digest

        def add(name, data):
            tf.addfile(_info(name, tarfile.REGTYPE, 0o644, size=len(data)),
                       io.BytesIO(data))

        add("oci-layout", _json({"imageLayoutVersion": "1.0.0"}))
        add("index.json", _json({"schemaVersion": 2,
                                 "mediaType": "application/vnd.oci.image.index.v1+json",
                                 "manifests": manifests}))
        add("manifest.json", _json(docker_manifest))
        add("repositories", _json(repositories))
    os.replace(tmp, out)
    return refs


def main(argv):
    if len(argv) not in (2, 3):
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    refs = build(argv[1], argv[2] if len(argv) == 3 else DEFAULT_REPO)
    for ref in refs.values():
        print(ref)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
