"""Authentication (Basic from config.json, the Bearer token flow) and
integrity: corrupted blobs refused, interrupted downloads resumed."""

import base64
import hashlib
import http.server
import json
import threading

import ocilayout


def auth_config(tmp_path, host, user, password, style="auth"):
    if style == "auth":
        entry = {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
    else:
        entry = {"username": user, "password": password}
    p = tmp_path / "config.json"
    p.write_text(json.dumps({"auths": {host: entry, "other.example.com": {"auth": "eDp5"}}}))
    return str(p)


# ---------- Basic (htpasswd) ----------

def test_basic_auth_success(basic_registry, images, fetch, tmp_path):
    for style in ["auth", "fields"]:
        cfg = auth_config(tmp_path, basic_registry.host, "alice", "wonderland", style)
        out = fetch.pull(f"{basic_registry.host}/private/simple:1", "--auth-config", cfg)
        assert out["manifest"] == images.simple.manifest
        for d in [out["manifest"], out["config"], *out["layer"]]:
            fetch.check_blob(d)


def test_basic_auth_key_with_scheme(basic_registry, images, fetch, tmp_path):
    cfg = auth_config(tmp_path, f"http://{basic_registry.host}/v2/", "alice", "wonderland")
    out = fetch.pull(f"{basic_registry.host}/private/simple:1", "--auth-config", cfg)
    assert out["config"] == images.simple.config


def test_basic_auth_wrong_password(basic_registry, fetch, tmp_path):
    cfg = auth_config(tmp_path, basic_registry.host, "alice", "wrong")
    p = fetch.run("--auth-config", cfg, "pull", f"{basic_registry.host}/private/simple:1", check=False)
    assert p.returncode == 1
    assert f"GET http://{basic_registry.host}/v2/private/simple/manifests/1: 401" in p.stderr
    assert "authentication failed" in p.stderr
    assert fetch.stored() == []


def test_basic_auth_no_credentials(basic_registry, fetch, tmp_path):
    p = fetch.run("pull", f"{basic_registry.host}/private/simple:1", check=False)
    assert p.returncode == 1
    assert ": 401" in p.stderr and "none are configured" in p.stderr
    # a config without an entry for this registry is the same
    cfg = auth_config(tmp_path, "elsewhere:5000", "alice", "wonderland")
    p = fetch.run("--auth-config", cfg, "pull", f"{basic_registry.host}/private/simple:1", check=False)
    assert "none are configured" in p.stderr


def test_bad_auth_config(basic_registry, fetch, tmp_path):
    p = fetch.run("--auth-config", str(tmp_path / "nope.json"), "pull", f"{basic_registry.host}/private/simple:1",
                  check=False)
    assert p.returncode == 1 and "nope.json" in p.stderr
    bad = tmp_path / "bad.json"
    bad.write_text('{"auths": {')
    p = fetch.run("--auth-config", str(bad), "pull", f"{basic_registry.host}/private/simple:1", check=False)
    assert p.returncode == 1 and "bad.json" in p.stderr


# ---------- Bearer ----------

def test_bearer_flow(token_registry, images, fetch, tmp_path):
    ts = token_registry.tokens
    n = len(ts.requests)
    cfg = auth_config(tmp_path, token_registry.host, ts.USER, ts.PASSWORD)
    out = fetch.pull(f"{token_registry.host}/tok/simple:1", "--auth-config", cfg)
    assert out["manifest"] == images.simple.manifest
    for d in [out["manifest"], out["config"], *out["layer"]]:
        fetch.check_blob(d)
    reqs = ts.requests[n:]
    # one token for the whole pull, asked with service and scope
    assert len(reqs) == 1
    assert f"service={ts.SERVICE}" in reqs[0]["path"]
    assert "scope=repository%3Atok%2Fsimple%3Apull" in reqs[0]["path"]
    assert reqs[0]["auth"].startswith("Basic ")


def test_bearer_bad_credentials(token_registry, fetch, tmp_path):
    ts = token_registry.tokens
    cfg = auth_config(tmp_path, token_registry.host, ts.USER, "nope")
    p = fetch.run("--auth-config", cfg, "pull", f"{token_registry.host}/tok/simple:1", check=False)
    assert p.returncode == 1
    assert f"GET {ts.realm}?scope=" in p.stderr
    assert ": 401" in p.stderr and "UNAUTHORIZED: bad credentials" in p.stderr
    assert "credentials were refused" in p.stderr
    assert fetch.stored() == []


def test_bearer_anonymous_refused(token_registry, fetch):
    p = fetch.run("pull", f"{token_registry.host}/tok/simple:1", check=False)
    assert p.returncode == 1
    assert "401" in p.stderr and "no credentials for this registry" in p.stderr


# ---------- integrity ----------

def test_corrupt_blob_refused(registry, fetch, tmp_path):
    lay = ocilayout.Layout(str(tmp_path / "layout"))
    img = ocilayout.single(lay, "c", [(ocilayout.random_tar("corrupt", 65536), "gzip"),
                                      (ocilayout.random_tar("fine"), "gzip")])
    registry.push(lay, "c", "test/corrupt:1")
    victim = registry.blob_path(img.layers[0])
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))

    p = fetch.run("pull", f"{registry.host}/test/corrupt:1", check=False)
    assert p.returncode == 1
    assert p.stderr.startswith("supervisor: digest mismatch: expected " + img.layers[0])
    assert "refused" in p.stderr
    stored = fetch.stored()
    assert img.layers[0] not in stored
    # the manifest is stored only once all its blobs are: not now
    assert img.manifest not in stored
    assert not any(fetch.ingest.iterdir()), "the corrupt bytes were kept"


def test_resume_interrupted_download(registry, fetch, tmp_path):
    lay = ocilayout.Layout(str(tmp_path / "layout"))
    img = ocilayout.single(lay, "r", [(ocilayout.random_tar("resume", 1 << 20), "gzip")])
    registry.push(lay, "r", "test/resume:1")
    layer = registry.blob_path(img.layers[0]).read_bytes()

    # an earlier pull broke off after 100000 bytes
    ingest = fetch.ingest / ("sha256-" + img.layers[0][7:])
    ingest.mkdir(parents=True)
    (ingest / "data").write_bytes(layer[:100000])
    p = fetch.run("--debug", "pull", f"{registry.host}/test/resume:1", check=True)
    assert "resuming an interrupted download at byte 100000" in p.stderr
    assert "resuming at byte 100000 (206)" in p.stderr
    assert fetch.check_blob(img.layers[0]) == layer
    assert not ingest.exists()


def test_resume_with_bad_prefix_refused_then_clean(registry, fetch, tmp_path):
    """The resumed bytes really are the old ones: a wrong prefix is found out
    by the digest, thrown away, and the next pull starts clean."""
    lay = ocilayout.Layout(str(tmp_path / "layout"))
    img = ocilayout.single(lay, "b", [(ocilayout.random_tar("badprefix", 200000), "gzip")])
    registry.push(lay, "b", "test/badprefix:1")
    ingest = fetch.ingest / ("sha256-" + img.layers[0][7:])
    ingest.mkdir(parents=True)
    (ingest / "data").write_bytes(b"\0" * 5000)
    p = fetch.run("pull", f"{registry.host}/test/badprefix:1", check=False)
    assert "digest mismatch" in p.stderr
    assert not ingest.exists()
    out = fetch.pull(f"{registry.host}/test/badprefix:1")
    fetch.check_blob(out["layer"][0])


# ---------- a registry that misbehaves (a small fake, for what a real one won't do) ----------

class Fake:
    """Serves scripted answers on 127.0.0.1: path -> list of (status,
    headers, body), one per request (the last one repeats)."""

    def __init__(self):
        self.script = {}
        self.seen = []
        fake = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                fake.seen.append((self.path, dict(self.headers)))
                answers = fake.script.get(self.path.split("?")[0]) or [(404, {}, b"")]
                status, headers, body = answers.pop(0) if len(answers) > 1 else answers[0]
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.host = f"127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


def test_schema1_refused(fetch):
    fake = Fake()
    body = json.dumps({"schemaVersion": 1, "name": "old/img", "tag": "latest", "fsLayers": []}).encode()
    fake.script["/v2/old/img/manifests/latest"] = [
        (200, {"Content-Type": "application/vnd.docker.distribution.manifest.v1+prettyjws"}, body)]
    p = fetch.run("pull", f"{fake.host}/old/img", check=False)
    assert p.returncode == 1
    assert "schema 1" in p.stderr and "not supported" in p.stderr
    accept = fake.seen[0][1]["Accept"]
    for mt in ["application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json",
               "application/vnd.docker.distribution.manifest.v2+json"]:
        assert mt in accept
    assert "distribution.manifest.v1" not in accept
    fake.httpd.shutdown()


def test_retries_on_5xx(registry, images, fetch):
    """503 twice, then the real manifest: retried with backoff, pulled."""
    fake = Fake()
    m = (registry.storage / "docker/registry/v2/blobs/sha256" / images.simple.manifest[7:9]
         / images.simple.manifest[7:] / "data").read_bytes()
    cfg = registry.blob_path(images.simple.config).read_bytes()
    layer = registry.blob_path(images.simple.layers[0]).read_bytes()
    fake.script["/v2/flaky/img/manifests/latest"] = [
        (503, {}, b'{"errors":[{"code":"UNAVAILABLE","message":"later"}]}'),
        (502, {}, b""),
        (200, {"Content-Type": ocilayout.OCI_MANIFEST}, m)]
    fake.script[f"/v2/flaky/img/blobs/{images.simple.config}"] = [(200, {}, cfg)]
    fake.script[f"/v2/flaky/img/blobs/{images.simple.layers[0]}"] = [(200, {}, layer)]
    out = fetch.pull(f"{fake.host}/flaky/img")
    assert out["manifest"] == images.simple.manifest
    fetch.check_blob(out["layer"][0])

    fake.script["/v2/down/img/manifests/latest"] = [(503, {}, b'{"errors":[{"code":"UNAVAILABLE","message":"down"}]}')]
    p = fetch.run("pull", f"{fake.host}/down/img", check=False)
    assert f"GET http://{fake.host}/v2/down/img/manifests/latest: 503" in p.stderr
    assert "UNAVAILABLE: down" in p.stderr
    assert sum(1 for s, _ in fake.seen if s.startswith("/v2/down/")) == 4  # 1 + 3 retries
    fake.httpd.shutdown()


def test_manifest_digest_header_checked(images, fetch):
    fake = Fake()
    body = b'{"schemaVersion":2,"mediaType":"' + ocilayout.OCI_MANIFEST.encode() + b'","config":{},"layers":[]}'
    fake.script["/v2/lie/img/manifests/latest"] = [
        (200, {"Content-Type": ocilayout.OCI_MANIFEST, "Docker-Content-Digest": "sha256:" + "1" * 64}, body)]
    p = fetch.run("pull", f"{fake.host}/lie/img", check=False)
    assert "digest mismatch" in p.stderr and "Docker-Content-Digest" in p.stderr
    fake.httpd.shutdown()


def test_blob_longer_than_its_size(images, fetch):
    fake = Fake()
    cfg = b'{"os":"linux"}'
    cdig = "sha256:" + hashlib.sha256(cfg).hexdigest()
    m = json.dumps({"schemaVersion": 2, "mediaType": ocilayout.OCI_MANIFEST,
                    "config": {"mediaType": ocilayout.OCI_CONFIG, "digest": cdig, "size": len(cfg)},
                    "layers": []}).encode()
    fake.script["/v2/long/img/manifests/latest"] = [(200, {"Content-Type": ocilayout.OCI_MANIFEST}, m)]
    fake.script[f"/v2/long/img/blobs/{cdig}"] = [(200, {}, cfg + b"trailing")]
    p = fetch.run("pull", f"{fake.host}/long/img", check=False)
    assert "more data than its size" in p.stderr
    assert fetch.stored() == []
    assert not any(fetch.ingest.iterdir())
    fake.httpd.shutdown()
