"""berth-fetch pull from a real registry: each kind of manifest, platform
selection, reuse of what is stored, and the content commands."""

import json

import ocilayout


def check_image(fetch, out, img):
    assert out["manifest"] == img.manifest
    assert out["config"] == img.config
    assert out["layer"] == img.layers
    for d in [img.manifest, img.config, *img.layers]:
        fetch.check_blob(d)
    assert not any(fetch.ingest.iterdir()), "an ingest was left behind"


def test_oci_manifest(registry, images, fetch):
    out = fetch.pull(f"{registry.host}/test/simple:oci")
    assert "index" not in out
    check_image(fetch, out, images.simple)
    m = json.loads(fetch.check_blob(out["manifest"]))
    assert m["mediaType"] == ocilayout.OCI_MANIFEST
    cfg = json.loads(fetch.check_blob(out["config"]))
    assert cfg["os"] == "linux"


def test_gzip_and_zstd_layers(registry, images, fetch):
    out = fetch.pull(f"{registry.host}/test/multi:latest")
    check_image(fetch, out, images.multi)
    m = json.loads(fetch.check_blob(out["manifest"]))
    assert [l["mediaType"] for l in m["layers"]] == [ocilayout.LAYER_GZIP, ocilayout.LAYER_GZIP,
                                                     ocilayout.LAYER_ZSTD]
    assert len(fetch.stored()) == 5


def test_docker_schema2(registry, images, fetch):
    out = fetch.pull(f"{registry.host}/test/docker:v2s2")
    m = json.loads(fetch.check_blob(out["manifest"]))
    assert m["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    # skopeo rewrote manifest and config; the compressed layers are the same
    assert out["layer"] == images.gzip2.layers
    for d in [out["config"], *out["layer"]]:
        fetch.check_blob(d)


def test_oci_index_default_platform(registry, images, fetch):
    out = fetch.pull(f"{registry.host}/test/multiarch:oci")
    assert out["index"] == images.multiarch.manifest
    check_image(fetch, out, images.multiarch.platforms["linux/amd64"])
    fetch.check_blob(out["index"])
    # only the chosen platform's blobs: index, manifest, config, 2 layers
    assert len(fetch.stored()) == 5


def test_oci_index_arm64(registry, images, fetch):
    for plat in ["linux/arm64", "linux/arm64/v8", "linux/aarch64"]:
        out = fetch.pull(f"{registry.host}/test/multiarch:oci", "--platform", plat)
        check_image(fetch, out, images.multiarch.platforms["linux/arm64/v8"])


def test_docker_manifest_list(registry, images, fetch):
    out = fetch.pull(f"{registry.host}/test/multiarch:list", "--platform", "linux/arm64")
    idx = json.loads(fetch.check_blob(out["index"]))
    assert idx["mediaType"] == "application/vnd.docker.distribution.manifest.list.v2+json"
    m = json.loads(fetch.check_blob(out["manifest"]))
    assert m["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert out["layer"] == images.multiarch.platforms["linux/arm64/v8"].layers
    for d in out["layer"] + [out["config"]]:
        fetch.check_blob(d)


def test_no_matching_platform(registry, fetch):
    p = fetch.run("--platform", "linux/s390x", "pull", f"{registry.host}/test/multiarch:oci", check=False)
    assert p.stderr.startswith("supervisor: ")
    assert "no manifest for platform linux/s390x" in p.stderr
    assert "linux/amd64" in p.stderr and "linux/arm64" in p.stderr
    assert fetch.stored() == []


def test_pull_by_digest(registry, images, fetch):
    out = fetch.pull(f"{registry.host}/test/simple@{images.simple.manifest}")
    check_image(fetch, out, images.simple)
    # tag and digest: the digest wins
    out = fetch.pull(f"{registry.host}/test/multiarch:nosuchtag@{images.multiarch.manifest}")
    assert out["index"] == images.multiarch.manifest


def test_wrong_digest_refused(registry, images, fetch):
    # the manifest of another image asked for under this repository's tag
    # is unknown; a digest that exists elsewhere but not here is a 404
    bad = "sha256:" + "0" * 64
    p = fetch.run("pull", f"{registry.host}/test/simple@{bad}", check=False)
    assert "404" in p.stderr and f"/v2/test/simple/manifests/{bad}" in p.stderr


def test_second_pull_downloads_nothing(registry, images, fetch):
    fetch.pull(f"{registry.host}/test/multi:latest")
    before = {d: fetch.blob(d).stat().st_ino for d in fetch.stored()}
    n_requests = registry.log_text().count("GET /v2/test/multi/blobs/")
    fetch.pull(f"{registry.host}/test/multi:latest")
    assert {d: fetch.blob(d).stat().st_ino for d in fetch.stored()} == before
    assert registry.log_text().count("GET /v2/test/multi/blobs/") == n_requests


def test_missing_tag(registry, fetch):
    p = fetch.run("pull", f"{registry.host}/test/simple:nope", check=False)
    assert p.returncode == 1
    line = p.stderr.strip()
    assert line.startswith("supervisor: GET http://")
    assert f"{registry.host}/v2/test/simple/manifests/nope: 404" in line
    assert "MANIFEST_UNKNOWN" in line
    assert fetch.stored() == []


def test_missing_repository(registry, fetch):
    p = fetch.run("pull", f"{registry.host}/nobody/here", check=False)
    # distribution 2.8 answers MANIFEST_UNKNOWN here, newer ones NAME_UNKNOWN
    assert f"{registry.host}/v2/nobody/here/manifests/latest: 404" in p.stderr
    assert "_UNKNOWN" in p.stderr


def test_invalid_reference(fetch):
    p = fetch.run("pull", "Foo/Bar", check=False)
    assert p.returncode == 1
    assert p.stderr.strip() == ('supervisor: invalid reference format "Foo/Bar": '
                                'repository name "Bar" must be lowercase')


def test_connection_refused(fetch):
    from conftest import free_port
    port = free_port()
    p = fetch.run("pull", f"127.0.0.1:{port}/x/y", check=False)
    assert p.returncode == 1
    assert f"GET http://127.0.0.1:{port}/v2/x/y/manifests/latest" in p.stderr
    assert "after retries" in p.stderr


def test_https_unless_local_or_insecure(fetch):
    # 127.0.0.0/8 and localhost are plain http
    p = fetch.run("pull", "127.0.0.2:1/x/y", check=False)
    assert "GET http://127.0.0.2:1/" in p.stderr
    p = fetch.run("pull", "localhost:1/x/y", check=False)
    assert "GET http://localhost:1/" in p.stderr
    # 0.0.0.0 is neither (connecting to it reaches this host, where nothing
    # listens on port 1: no traffic leaves the machine): https, unless it is
    # in the insecure list
    p = fetch.run("pull", "0.0.0.0:1/x/y", check=False)
    assert "GET https://0.0.0.0:1/v2/x/y/manifests/latest" in p.stderr
    p = fetch.run("--insecure-registry", "0.0.0.0:1", "pull", "0.0.0.0:1/x/y", check=False)
    assert "GET http://0.0.0.0:1/v2/x/y/manifests/latest" in p.stderr
    p = fetch.run("--insecure-registry", "0.0.0.0", "pull", "0.0.0.0:1/x/y", check=False)
    assert "GET http://0.0.0.0:1/" in p.stderr


def test_content_commands(registry, images, fetch):
    out = fetch.pull(f"{registry.host}/test/simple:oci")
    p = fetch.run("content", "ls", check=True)
    listed = {line.split()[0]: int(line.split()[1]) for line in p.stdout.splitlines()}
    assert sorted(listed) == fetch.stored()
    for d, size in listed.items():
        assert fetch.blob(d).stat().st_size == size
    p = fetch.run("content", "info", out["config"], check=True)
    assert p.stdout == f"digest {out['config']}\nsize {fetch.blob(out['config']).stat().st_size}\n"
    fetch.run("content", "rm", out["config"], check=True)
    assert out["config"] not in fetch.stored()
    p = fetch.run("content", "info", out["config"], check=False)
    assert p.stderr.strip() == f"supervisor: content {out['config']}: No such file or directory"
    p = fetch.run("content", "rm", "sha256:../../etc/passwd", check=False)
    assert "invalid digest" in p.stderr
    # a removed blob comes back on the next pull
    fetch.pull(f"{registry.host}/test/simple:oci")
    fetch.check_blob(out["config"])


def test_usage(fetch):
    assert fetch.run("pull").returncode == 2
    assert fetch.run("content", "info").returncode == 2
    assert fetch.run("--platform", "linux", "pull", "x").stderr.startswith("supervisor: invalid platform")
