"""Image metadata and content gc with berth-fetch: pull records the image,
images ls|inspect|tag|rm, content gc."""

import datetime
import fcntl
import json
import os

import ocilayout


def images_ls(fetch):
    out = fetch.run("images", "ls", check=True).stdout.splitlines()
    return [line.split(" ") for line in out]


def blob_sizes(fetch, digests):
    return sum(fetch.blob(d).stat().st_size for d in digests)


def gc(fetch):
    out = fetch.run("content", "gc", check=True).stdout.splitlines()
    assert all(line.startswith("removed sha256:") for line in out), out
    return sorted(line.split(" ", 1)[1] for line in out)


def test_pull_records_image(registry, images, fetch):
    ref = f"{registry.host}/test/simple:oci"
    before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    p = fetch.run("pull", ref, check=True)
    img = images.simple
    # the pull's own output is unchanged
    assert p.stdout.splitlines() == [f"manifest {img.manifest}", f"config {img.config}",
                                     *[f"layer {d}" for d in img.layers]]
    meta = json.loads((fetch.root / "supervisor/meta/images.json").read_text())
    rec = meta["images"][ref]
    assert rec["target"] == {"mediaType": ocilayout.OCI_MANIFEST, "digest": img.manifest,
                             "size": fetch.blob(img.manifest).stat().st_size}
    created = datetime.datetime.fromisoformat(rec["created"][:19] + "+00:00")
    assert rec["created"].endswith("Z") and created >= before
    assert rec["labels"] == {}
    assert sorted(os.listdir(fetch.root / "supervisor/meta")) == ["images.json", "images.lock"]
    # a second pull replaces the record, it does not add one
    fetch.pull(ref)
    assert images_ls(fetch) == [[ref, img.manifest, str(blob_sizes(fetch, [img.manifest, img.config, *img.layers]))]]


def test_ls_and_inspect(registry, images, fetch):
    multi = f"{registry.host}/test/multi:latest"
    arch = f"{registry.host}/test/multiarch:oci"
    fetch.pull(multi)
    fetch.pull(arch)
    amd = images.multiarch.platforms["linux/amd64"]
    arch_blobs = [images.multiarch.manifest, amd.manifest, amd.config, *amd.layers]
    m = images.multi
    assert images_ls(fetch) == [
        [multi, m.manifest, str(blob_sizes(fetch, [m.manifest, m.config, *m.layers]))],
        [arch, images.multiarch.manifest, str(blob_sizes(fetch, arch_blobs))],
    ]

    j = json.loads(fetch.run("images", "inspect", arch, check=True).stdout)
    cfg = json.loads(fetch.check_blob(amd.config))
    assert j["name"] == arch
    assert j["target"] == {"mediaType": ocilayout.OCI_INDEX, "digest": images.multiarch.manifest,
                           "size": fetch.blob(images.multiarch.manifest).stat().st_size}
    assert j["manifest"] == amd.manifest
    assert j["config"] == amd.config
    assert j["layers"] == amd.layers
    assert j["diff_ids"] == cfg["rootfs"]["diff_ids"] and len(j["diff_ids"]) == 2
    assert (j["os"], j["architecture"]) == ("linux", "amd64")
    assert j["size"] == blob_sizes(fetch, arch_blobs)
    assert j["created"].endswith("Z")
    assert j["labels"] == {}

    # names are normalised: "test/multi" on this registry is ...:latest
    j = json.loads(fetch.run("images", "inspect", f"{registry.host}/test/multi", check=True).stdout)
    assert j["name"] == multi and j["layers"] == m.layers

    p = fetch.run("images", "inspect", f"{registry.host}/test/none:1", check=False)
    assert p.returncode == 1 and p.stderr.startswith("supervisor: ") and "not found" in p.stderr
    assert fetch.run("images", "inspect", check=False).returncode == 2


def test_tag_then_rm_keeps_other_name(registry, images, fetch):
    ref = f"{registry.host}/test/simple:oci"
    fetch.pull(ref)
    stored = fetch.stored()
    fetch.run("images", "tag", ref, f"{registry.host}/other/name", check=True)
    other = f"{registry.host}/other/name:latest"
    assert [r[0] for r in images_ls(fetch)] == [other, ref]
    p = fetch.run("images", "tag", ref, "Not A Reference", check=False)
    assert p.returncode == 1 and p.stderr.startswith("supervisor: ")

    fetch.run("images", "rm", ref, check=True)
    ls = images_ls(fetch)
    assert [r[0] for r in ls] == [other] and ls[0][1] == images.simple.manifest
    assert fetch.stored() == stored  # content stays until gc
    assert fetch.run("images", "rm", ref, check=False).returncode == 1
    j = json.loads(fetch.run("images", "inspect", other, check=True).stdout)
    assert j["config"] == images.simple.config
    # the remaining name keeps every blob
    assert gc(fetch) == []
    assert fetch.stored() == stored


def test_gc_after_rm_of_last_name(registry, images, fetch):
    simple, multi = images.simple, images.multi
    assert simple.layers[0] == multi.layers[0]  # the busybox layer is shared
    fetch.pull(f"{registry.host}/test/simple:oci")
    fetch.pull(f"{registry.host}/test/multi:latest")
    fetch.run("images", "rm", f"{registry.host}/test/simple:oci", check=True)
    assert gc(fetch) == sorted([simple.manifest, simple.config])
    assert fetch.stored() == sorted([multi.manifest, multi.config, *multi.layers])
    for d in fetch.stored():
        fetch.check_blob(d)

    fetch.run("images", "rm", f"{registry.host}/test/multi:latest", check=True)
    assert gc(fetch) == sorted([multi.manifest, multi.config, *multi.layers])
    assert fetch.stored() == []
    assert images_ls(fetch) == []


def test_gc_keeps_referenced_and_ingesting(registry, images, fetch):
    fetch.pull(f"{registry.host}/test/simple:oci")
    fetch.pull(f"{registry.host}/test/multiarch:oci")
    fetch.pull(f"{registry.host}/test/multiarch:list", "--platform", "linux/arm64")
    fetch.pull(f"{registry.host}/test/multi:latest")
    stored = fetch.stored()
    assert gc(fetch) == []
    assert fetch.stored() == stored

    # multi unreferenced, but a writer is ingesting its last layer
    multi = images.multi
    fetch.run("images", "rm", f"{registry.host}/test/multi:latest", check=True)
    busy = multi.layers[2]
    ingest = fetch.ingest / ("sha256-" + busy.split(":", 1)[1])
    ingest.mkdir()
    with open(ingest / "data", "wb") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        removed = gc(fetch)
    assert busy not in removed and fetch.blob(busy).exists()
    assert removed == sorted([multi.manifest, multi.config, multi.layers[1]])
    assert (ingest / "data").exists()  # ingests are not gc's to remove
    assert gc(fetch) == [busy]
    assert (ingest / "data").exists()
