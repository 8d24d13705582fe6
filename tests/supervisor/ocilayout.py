"""Builds OCI image layouts for the registry tests, at test time.

Every image is written as an OCI layout directory (``oci-layout``,
``index.json``, ``blobs/sha256/``) that ``skopeo copy oci:DIR:TAG`` reads.
Layers are tars built here: the busybox-static rootfs, then small layers of
random bytes (so every build has its own digests and nothing is shared by
accident between tests), compressed with gzip (Python's zlib) or zstd (the
``zstd`` tool).
"""

import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
from dataclasses import dataclass, field

BUSYBOX = "/bin/busybox"
MTIME = 1700000000

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Image:
    """What was built: digests as the layout has them."""
    manifest: str
    config: str
    layers: list
    size: int = 0
    platforms: dict = field(default_factory=dict)  # "linux/arm64" -> Image (for an index)


class Layout:
    def __init__(self, path):
        self.path = path
        os.makedirs(os.path.join(path, "blobs", "sha256"), exist_ok=True)
        with open(os.path.join(path, "oci-layout"), "w") as f:
            json.dump({"imageLayoutVersion": "1.0.0"}, f)
        self.refs = []

    def blob(self, data):
        d = sha256(data)
        with open(os.path.join(self.path, "blobs", "sha256", d[7:]), "wb") as f:
            f.write(data)
        return {"digest": d, "size": len(data)}

    def tag(self, name, media_type, desc):
        # a name tags one image: a second image under it replaces the first
        # (skopeo would pick the first of two refs with the same name)
        self.refs = [r for r in self.refs if r["annotations"]["org.opencontainers.image.ref.name"] != name]
        self.refs.append({"mediaType": media_type, "digest": desc["digest"], "size": desc["size"],
                          "annotations": {"org.opencontainers.image.ref.name": name}})
        with open(os.path.join(self.path, "index.json"), "w") as f:
            json.dump({"schemaVersion": 2, "manifests": self.refs}, f)


def _tar(entries):
    """entries: (name, bytes or None for a dir, or ('link', target))."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, content in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime = MTIME
            if content is None:
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                t.addfile(ti)
            elif isinstance(content, tuple):
                ti.type, ti.linkname, ti.mode = tarfile.SYMTYPE, content[1], 0o777
                t.addfile(ti)
            else:
                ti.size, ti.mode = len(content), 0o755
                t.addfile(ti, io.BytesIO(content))
    return buf.getvalue()


def busybox_tar():
    with open(BUSYBOX, "rb") as f:
        bb = f.read()
    return _tar([("bin", None), ("bin/busybox", bb), ("bin/sh", ("link", "busybox")),
                 ("bin/ls", ("link", "busybox")), ("etc", None), ("tmp", None)])


def random_tar(name, size=4096):
    return _tar([("data", None), ("data/" + name, os.urandom(size))])


def compress(tar, kind):
    if kind == "gzip":
        return gzip.compress(tar, mtime=0), LAYER_GZIP
    if kind == "zstd":
        p = subprocess.run(["zstd", "-q", "-c", "-3"], input=tar, stdout=subprocess.PIPE, check=True)
        return p.stdout, LAYER_ZSTD
    raise ValueError(kind)


def add_image(layout, layers, arch="amd64", variant=None):
    """layers: [(tar bytes, 'gzip'|'zstd')]. Returns (Image, manifest desc)."""
    descs, diff_ids = [], []
    for tar, kind in layers:
        data, mt = compress(tar, kind)
        d = layout.blob(data)
        descs.append({"mediaType": mt, **d})
        diff_ids.append(sha256(tar))
    config = {"architecture": arch, "os": "linux",
              "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
              "rootfs": {"type": "layers", "diff_ids": diff_ids},
              "created": "2023-11-14T22:13:20Z"}
    if variant:
        config["variant"] = variant
    cdesc = layout.blob(json.dumps(config, sort_keys=True).encode())
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, **cdesc}, "layers": descs}
    mdesc = layout.blob(json.dumps(manifest, sort_keys=True).encode())
    img = Image(manifest=mdesc["digest"], config=cdesc["digest"], layers=[d["digest"] for d in descs],
                size=mdesc["size"])
    return img, mdesc


def single(layout, tag, layers):
    img, mdesc = add_image(layout, layers)
    layout.tag(tag, OCI_MANIFEST, mdesc)
    return img


def multiarch(layout, tag, platforms):
    """platforms: {"linux/amd64": layers, "linux/arm64/v8": layers}. The index's
    digest is Image.manifest; each platform's Image is in .platforms."""
    entries, imgs = [], {}
    for plat, layers in platforms.items():
        os_, arch, *rest = plat.split("/")
        variant = rest[0] if rest else None
        img, mdesc = add_image(layout, layers, arch=arch, variant=variant)
        p = {"os": os_, "architecture": arch}
        if variant:
            p["variant"] = variant
        entries.append({"mediaType": OCI_MANIFEST, **mdesc, "platform": p})
        imgs[plat] = img
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    idesc = layout.blob(json.dumps(index, sort_keys=True).encode())
    layout.tag(tag, OCI_INDEX, idesc)
    return Image(manifest=idesc["digest"], config="", layers=[], platforms=imgs)
