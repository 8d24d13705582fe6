#!/usr/bin/env python3
"""Packs berth's hello-world binary into a `docker save`-format tarball.

    mkimage.py --binary hello --arch amd64 --output hello-world.tar

The tarball is what Docker 25's `docker save` writes and `docker load`
(dockerd's or berth-engine's) and skopeo (`docker-archive:`,
`oci-archive:`) read: an OCI image layout (`oci-layout`, `index.json`,
`blobs/sha256/<hex>`) plus Docker's `manifest.json` naming the same blobs.
One uncompressed layer holding `/hello` (0755, root), a config with
Cmd ["/hello"], os linux and the architecture in Go's naming.

Reproducible: every mtime is $SOURCE_DATE_EPOCH (default 0, the epoch),
owners are 0:0 with no names, entries are sorted, JSON is written with
sorted keys and no whitespace, so the same binary always gives the same
bytes and the same image id. Python's standard library only.
"""

import argparse
import hashlib
import io
import json
import os
import platform
import sys
import tarfile
import time

NAME = "hello-world"
TAG = "latest"

# uname -m / meson's cpu_family -> GOARCH (and variant), as the OCI image
# spec's platform wants it.
GOARCH = {
    "x86_64": ("amd64", None),
    "amd64": ("amd64", None),
    "i386": ("386", None),
    "i686": ("386", None),
    "x86": ("386", None),
    "aarch64": ("arm64", None),
    "arm64": ("arm64", None),
    "armv7l": ("arm", "v7"),
    "arm": ("arm", "v7"),
    "ppc64le": ("ppc64le", None),
    "ppc64": ("ppc64", None),
    "s390x": ("s390x", None),
    "riscv64": ("riscv64", None),
    "mips64el": ("mips64le", None),
    "loongarch64": ("loong64", None),
}

MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar"


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def go_arch(machine):
    m = machine.lower()
    if m == "ppc64" and sys.byteorder == "little":
        m = "ppc64le"
    if m not in GOARCH:
        raise SystemExit(f"mkimage: unknown architecture {machine!r}: give --arch in Go's naming")
    return GOARCH[m]


def add(tar, name, data, mtime, mode=0o644):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


def add_dir(tar, name, mtime):
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info)


def tar_bytes(entries, mtime):
    """entries: {name: (bytes, mode)} or {name/: None} for directories; written sorted."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(entries):
            if entries[name] is None:
                add_dir(tar, name.rstrip("/"), mtime)
            else:
                data, mode = entries[name]
                add(tar, name, data, mtime, mode)
    return buf.getvalue()


def build(binary, arch, variant, mtime):
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(mtime))
    layer = tar_bytes({"hello": (binary, 0o755)}, mtime)
    diff_id = sha256(layer)  # uncompressed: the layer digest is its diff id

    config = {
        "architecture": arch,
        "os": "linux",
        "created": created,
        "config": {
            "Cmd": ["/hello"],
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Labels": {
                "org.opencontainers.image.title": "hello-world",
                "org.opencontainers.image.description": "berth's hello-world: prints the path docker run took through berth",
            },
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": created, "created_by": "COPY hello /hello # packaging/hello/mkimage.py"}],
    }
    if variant:
        config["variant"] = variant
    config_b = canonical(config)

    manifest = {
        "schemaVersion": 2,
        "mediaType": MT_MANIFEST,
        "config": {"mediaType": MT_CONFIG, "digest": sha256(config_b), "size": len(config_b)},
        "layers": [{"mediaType": MT_LAYER, "digest": sha256(layer), "size": len(layer)}],
    }
    manifest_b = canonical(manifest)

    index = {
        "schemaVersion": 2,
        "mediaType": MT_INDEX,
        "manifests": [{
            "mediaType": MT_MANIFEST,
            "digest": sha256(manifest_b),
            "size": len(manifest_b),
            "annotations": {
                "io.containerd.image.name": f"docker.io/library/{NAME}:{TAG}",
                "org.opencontainers.image.ref.name": TAG,
            },
        }],
    }

    def blob(d):
        return "blobs/sha256/" + d.split(":", 1)[1]

    docker_manifest = [{
        "Config": blob(sha256(config_b)),
        "RepoTags": [f"{NAME}:{TAG}"],
        "Layers": [blob(sha256(layer))],
    }]

    entries = {
        "blobs/": None,
        "blobs/sha256/": None,
        blob(sha256(config_b)): (config_b, 0o644),
        blob(sha256(manifest_b)): (manifest_b, 0o644),
        blob(sha256(layer)): (layer, 0o644),
        "index.json": (canonical(index), 0o644),
        "manifest.json": (canonical(docker_manifest), 0o644),
        "oci-layout": (canonical({"imageLayoutVersion": "1.0.0"}), 0o644),
    }
    return tar_bytes(entries, mtime), sha256(config_b)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", required=True, help="the static hello binary")
    ap.add_argument("--output", required=True, help="the tarball to write")
    ap.add_argument("--arch", help="CPU family (uname -m or Go's naming); default: this machine's")
    args = ap.parse_args()

    arch, variant = go_arch(args.arch or platform.machine())
    mtime = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    with open(args.binary, "rb") as f:
        binary = f.read()
    data, image_id = build(binary, arch, variant, mtime)

    tmp = f"{args.output}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, args.output)
    print(f"mkimage: {args.output}: {NAME}:{TAG} {arch}{'/' + variant if variant else ''} {image_id}")


if __name__ == "__main__":
    main()
