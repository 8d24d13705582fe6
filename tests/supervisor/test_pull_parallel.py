"""The pull engine: blobs downloaded in parallel (curl multi), progress per
blob, layers unpacked while later ones still download, integrity and
resume under parallel transfers, inline credentials, and mirrors for
docker.io references (served here by the loopback registry)."""

import hashlib
import http.client
import http.server
import io
import json
import os
import re
import stat
import tarfile
import threading

import pytest

import ocilayout

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (overlay snapshots, chown, trusted xattrs)")


def tar(entries):
    """entries: (name, kind, arg): "dir", "file" (bytes), "link" (symlink target)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, kind, arg in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime = ocilayout.MTIME
            ti.uid, ti.gid = 1000, 1001
            if kind == "dir":
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                t.addfile(ti)
            elif kind == "link":
                ti.type, ti.linkname, ti.mode = tarfile.SYMTYPE, arg, 0o777
                t.addfile(ti)
            else:
                ti.size, ti.mode = len(arg), 0o640
                t.addfile(ti, io.BytesIO(arg))
    return buf.getvalue()


@pytest.fixture(scope="module")
def big(registry, images):
    """test/par:1: busybox, then five layers of 1-2 MB of random data (gzip
    and zstd), one of them with a whiteout and an opaque directory."""
    bb = ocilayout.busybox_tar()
    layers = [(bb, "gzip")]
    for i in range(5):
        entries = [("data", "dir", None), (f"data/l{i}", "file", os.urandom((1 + i % 2) << 20)),
                   ("etc", "dir", None), (f"etc/f{i}", "file", f"layer {i}\n".encode())]
        if i == 3:
            entries += [("etc/.wh.f1", "file", b""), ("data/.wh..wh..opq", "file", b""),
                        ("data/sym", "link", "/etc/f0")]
        layers.append((tar(entries), "zstd" if i == 4 else "gzip"))
    img = ocilayout.single(images.layout, "par", layers)
    registry.push(images.layout, "par", "test/par:1")
    img.ref = f"{registry.host}/test/par:1"
    img.blobs = [img.config, *img.layers]
    return img


PROGRESS = re.compile(r"^([0-9a-f]{12}) (waiting|downloading|verifying|downloaded|extracting|done|exists|failed)"
                      r"( [0-9.]+/[0-9.]+ MB)?$")


def progress(stderr):
    """{digest prefix: [statuses in order, repeats folded]}"""
    seen = {}
    for line in stderr.splitlines():
        m = PROGRESS.match(line)
        if not m:
            continue
        v = seen.setdefault(m.group(1), [])
        if not v or v[-1] != m.group(2):
            v.append(m.group(2))
    return seen


def short(digest):
    return digest.split(":", 1)[1][:12]


def test_parallel_pull_same_content(big, fetch_bin, tmp_path):
    from conftest import Fetch
    results = {}
    for n in ["1", "4"]:
        f = Fetch(fetch_bin, tmp_path / f"root{n}")
        out = f.pull(big.ref, "--parallel", n)
        assert out["manifest"] == big.manifest and out["config"] == big.config
        assert out["layer"] == big.layers
        for d in [big.manifest, *big.blobs]:
            f.check_blob(d)
        assert not any(f.ingest.iterdir())
        results[n] = f.stored()
    assert results["1"] == results["4"]


def test_parallel_bad_option(fetch, big):
    p = fetch.run("--parallel", "0", "pull", big.ref, check=False)
    assert p.returncode == 2 and "--parallel" in p.stderr


def test_progress_states(big, fetch):
    p = fetch.run("--progress", "--parallel", "3", "pull", big.ref, check=True)
    seen = progress(p.stderr)
    for d in big.blobs:
        assert seen[short(d)] == ["waiting", "downloading", "verifying", "downloaded"], (d, p.stderr)
    # a byte count while downloading, the full size at the end
    for d in big.layers[1:]:
        assert re.search(short(d) + r" downloaded ([0-9.]+)/\1 MB", p.stderr)
    # without --progress and without a terminal: quiet
    p = fetch.run("pull", big.ref, check=True)
    assert p.stderr == ""
    # again: everything is there
    p = fetch.run("--progress", "pull", big.ref, check=True)
    seen = progress(p.stderr)
    for d in big.blobs:
        assert seen[short(d)] == ["exists"]


def snapshot_dirs(root):
    meta = json.loads((root / "supervisor/meta/snapshots.json").read_text())
    snaps = meta["snapshots"]
    return {k: root / "supervisor/snapshots" / str(v["id"]) / "fs" for k, v in snaps.items()}


def tree(top):
    """Everything lstat and the content say about a directory tree."""
    out = {}
    for dirpath, dirs, files in os.walk(top):
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            rel = os.path.relpath(p, top)
            whiteout = stat.S_ISCHR(st.st_mode) and st.st_rdev == 0  # made at apply time: its mtime is now
            info = [stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                    None if whiteout else int(st.st_mtime),
                    st.st_rdev, sorted((x, os.getxattr(p, x, follow_symlinks=False))
                                       for x in os.listxattr(p, follow_symlinks=False))]
            if stat.S_ISLNK(st.st_mode):
                info.append(os.readlink(p))
            elif stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    info.append(hashlib.sha256(f.read()).hexdigest())
            out[rel] = info
    return out


def chains_of(stdout):
    return [l.split(" ", 1)[1] for l in stdout.splitlines() if l.startswith("chain ")]


@needs_root
def test_pipelined_unpack_equals_sequential(big, fetch_bin, tmp_path):
    from conftest import Fetch
    a = Fetch(fetch_bin, tmp_path / "a")
    pa = a.run("--progress", "--parallel", "3", "unpack", big.ref, check=True)
    b = Fetch(fetch_bin, tmp_path / "b")
    b.pull(big.ref, "--parallel", "1")
    pb = b.run("images", "unpack", big.ref, check=True)
    assert chains_of(pa.stdout) == chains_of(pb.stdout)
    assert len(chains_of(pa.stdout)) == len(big.layers)
    da, db = snapshot_dirs(a.root), snapshot_dirs(b.root)
    assert set(da) == set(db) == set(chains_of(pa.stdout))
    for k in da:
        assert tree(da[k]) == tree(db[k]), k
    # each layer went through download, then extraction, in that order
    seen = progress(pa.stderr)
    for d in big.layers:
        assert seen[short(d)] == ["waiting", "downloading", "verifying", "downloaded", "extracting", "done"], (
            d, pa.stderr)
    assert seen[short(big.config)] == ["waiting", "downloading", "verifying", "downloaded"]
    # layers are extracted in order
    order = [l.split()[0] for l in pa.stderr.splitlines() if l.endswith(" extracting")]
    assert order == [short(d) for d in big.layers]
    # a second unpack finds every snapshot
    p = a.run("--progress", "unpack", big.ref, check=True)
    assert chains_of(p.stdout) == chains_of(pa.stdout)
    seen = progress(p.stderr)
    for d in big.layers:
        assert seen[short(d)] == ["exists", "extracting", "done"]


@needs_root
def test_pipelined_unpack_overlaps_downloads(big, fetch):
    """With one transfer at a time, layer 0 is extracted before the last
    layer has finished downloading."""
    p = fetch.run("--progress", "--parallel", "1", "unpack", big.ref, check=True)
    lines = p.stderr.splitlines()
    first_extract = lines.index(f"{short(big.layers[0])} extracting")
    last_done = next(i for i, l in enumerate(lines) if l.startswith(f"{short(big.layers[-1])} downloaded"))
    assert first_extract < last_done, p.stderr


def corrupt_image(registry, tmp_path, name):
    lay = ocilayout.Layout(str(tmp_path / "layout"))
    layers = [(ocilayout.random_tar(f"{name}{i}", 300000), "gzip") for i in range(4)]
    img = ocilayout.single(lay, name, layers)
    registry.push(lay, name, f"test/{name}:1")
    victim = registry.blob_path(img.layers[1])
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    return img


@pytest.mark.parametrize("verb", ["pull", pytest.param("unpack", marks=needs_root)])
def test_corrupt_blob_refused_in_parallel(registry, fetch, tmp_path, verb):
    img = corrupt_image(registry, tmp_path, "pcorrupt" + verb)
    p = fetch.run("--parallel", "4", verb, f"{registry.host}/test/pcorrupt{verb}:1", check=False)
    assert p.returncode == 1
    assert p.stderr.startswith("supervisor: digest mismatch: expected " + img.layers[1]), p.stderr
    stored = fetch.stored()
    assert img.layers[1] not in stored and img.manifest not in stored
    assert not any(fetch.ingest.iterdir()), "bytes were left behind"
    # the image is not recorded, no snapshot holds the bad layer
    p = fetch.run("images", "ls", check=True)
    assert "pcorrupt" not in p.stdout
    if verb == "unpack":
        meta = fetch.root / "supervisor/meta/snapshots.json"
        snaps = json.loads(meta.read_text())["snapshots"] if meta.exists() else {}
        assert len(snaps) <= 1  # at most the first layer, which is good
        assert all(v.get("kind") != "active" for v in snaps.values())


class CutProxy:
    """A proxy in front of the registry that breaks off the first GET of
    one blob after `cut` bytes (the Content-Length promised more) and then
    passes everything through, Range included."""

    def __init__(self, upstream, digest, cut):
        self.upstream, self.digest, self.cut = upstream, digest, cut
        self.requests = []
        proxy = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                proxy.requests.append((self.path, self.headers.get("Range")))
                c = http.client.HTTPConnection(proxy.upstream, timeout=30)
                hdrs = {k: v for k, v in self.headers.items() if k.lower() in ("accept", "range", "authorization")}
                c.request("GET", self.path, headers=hdrs)
                r = c.getresponse()
                body = r.read()
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                cut = proxy.digest in self.path and proxy.cut is not None and r.status == 200
                if cut:
                    self.send_header("Connection", "close")
                self.end_headers()
                if cut:
                    self.wfile.write(body[:proxy.cut])
                    self.wfile.flush()
                    proxy.cut = None
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.host = f"127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()


def test_cut_transfer_resumes(big, registry, fetch):
    victim = big.layers[2]
    proxy = CutProxy(registry.host, victim, 300000)
    try:
        p = fetch.run("--debug", "--parallel", "3", "pull", f"{proxy.host}/test/par:1", check=True)
    finally:
        proxy.stop()
    assert "resuming at byte 300000 (206)" in p.stderr, p.stderr
    ranges = [r for path, r in proxy.requests if victim in path]
    assert ranges == [None, "bytes=300000-"]
    for d in [big.manifest, *big.blobs]:
        fetch.check_blob(d)
    assert not any(fetch.ingest.iterdir())


def test_inline_credentials(basic_registry, images, fetch):
    ref = f"{basic_registry.host}/private/simple:1"
    p = fetch.run("--username", "alice", "--password", "wrong", "pull", ref, check=False)
    assert p.returncode == 1
    assert f"GET http://{basic_registry.host}/v2/private/simple/manifests/1: 401" in p.stderr
    assert "authentication failed" in p.stderr
    assert fetch.stored() == []
    out = fetch.pull(ref, "--username", "alice", "--password", "wonderland")
    assert out["manifest"] == images.simple.manifest
    for d in [out["manifest"], out["config"], *out["layer"]]:
        fetch.check_blob(d)


def test_inline_credentials_win_over_config(basic_registry, images, fetch, tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"auths": {basic_registry.host: {"username": "alice", "password": "wrong"}}}))
    out = fetch.pull(f"{basic_registry.host}/private/simple:1", "--auth-config", str(cfg),
                     "--username", "alice", "--password", "wonderland")
    assert out["manifest"] == images.simple.manifest


def test_inline_credentials_bearer(token_registry, images, fetch):
    ts = token_registry.tokens
    ref = f"{token_registry.host}/tok/simple:1"
    n = len(ts.requests)
    out = fetch.pull(ref, "--username", ts.USER, "--password", ts.PASSWORD)
    assert out["manifest"] == images.simple.manifest
    assert len(ts.requests[n:]) == 1  # one token, shared by the parallel blob downloads
    p = fetch.run("--username", ts.USER, "--password", "nope", "pull", ref, check=False)
    assert "credentials were refused" in p.stderr


def dead_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_mirror_for_docker_io(registry, big, fetch):
    """docker.io/test/par:1 comes from the mirror; a dead mirror before it
    is passed over."""
    dead = f"http://127.0.0.1:{dead_port()}"
    p = fetch.run("--mirror", dead, "--mirror", f"http://{registry.host}/", "--progress", "unpack" if os.geteuid() == 0
                  else "pull", "docker.io/test/par:1", check=True)
    if os.geteuid() == 0:
        assert len(chains_of(p.stdout)) == len(big.layers)
    for d in [big.manifest, *big.blobs]:
        fetch.check_blob(d)
    p = fetch.run("images", "ls", check=True)
    assert f"docker.io/test/par:1 {big.manifest}" in p.stdout
    # short names are docker.io too
    out = fetch.pull("test/par:1", "--mirror", f"http://{registry.host}")
    assert out["manifest"] == big.manifest


def test_mirror_not_used_for_other_registries(registry, fetch):
    dead = f"http://127.0.0.1:{dead_port()}"
    out = fetch.pull(f"{registry.host}/test/simple:oci", "--mirror", dead)
    assert out["layer"]


def test_mirror_bad_url(fetch):
    p = fetch.run("--mirror", "ftp://127.0.0.1:1", "pull", "docker.io/library/busybox", check=False)
    assert p.returncode == 1 and "mirror \"ftp://127.0.0.1:1\"" in p.stderr
