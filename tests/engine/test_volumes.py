"""Volumes: the /volumes API and Docker's volume behaviour (named and
anonymous volumes, copy-up from the image, docker rm -v, --rm, prune,
--mount), with the docker CLI 20.10 and docker-py against berth-engine."""

import io
import json
import os
import re
import subprocess
import tarfile
import time
import urllib.parse

import pytest

import berth_registry
import ocilayout

HEX64 = re.compile(r"^[0-9a-f]{64}$")


def curl(stack, *args):
    p = subprocess.run(["curl", "-s", "-o", "/dev/stdout", "-w", "\n%{http_code}", "--unix-socket",
                        str(stack.sock), *args], capture_output=True, text=True, timeout=20)
    body, code = p.stdout.rsplit("\n", 1)
    return int(code), body


def volumes(stack, *filters):
    args = ["volume", "ls", "-q"]
    for f in filters:
        args += ["--filter", f]
    return set(stack.docker(*args).stdout.split())


def vinspect(stack, name):
    return json.loads(stack.docker("volume", "inspect", name).stdout)[0]


def _layer(entries):
    """entries: (name, bytes | None for a dir, uid, gid, mode)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, content, uid, gid, mode in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime, ti.uid, ti.gid, ti.mode = ocilayout.MTIME, uid, gid, mode
            if content is None:
                ti.type = tarfile.DIRTYPE
                t.addfile(ti)
            else:
                ti.size = len(content)
                t.addfile(ti, io.BytesIO(content))
    return buf.getvalue()


@pytest.fixture(scope="module")
def volimage(stack, registry):
    """busybox with VOLUME /data, whose /data holds files of their own owner
    and mode (for copy-up), built and pushed at test time."""
    lay = ocilayout.Layout(str(registry.dir / "vol-layout"))
    base = ocilayout._tar(berth_registry.busybox_entries(ocilayout.BUSYBOX))
    extra = _layer([("data", None, 1234, 2345, 0o750),
                    ("data/hello", b"from the image\n", 1234, 2345, 0o640),
                    ("data/sub", None, 0, 0, 0o700),
                    ("data/sub/deep", b"deep\n", 7, 8, 0o600)])
    descs, diff_ids = [], []
    for tar in (base, extra):
        data, mt = ocilayout.compress(tar, "gzip")
        descs.append({"mediaType": mt, **lay.blob(data)})
        diff_ids.append(ocilayout.sha256(tar))
    config = {"architecture": "amd64", "os": "linux",
              "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"], "Volumes": {"/data": {}}},
              "rootfs": {"type": "layers", "diff_ids": diff_ids}, "created": "2023-11-14T22:13:20Z"}
    cdesc = lay.blob(json.dumps(config, sort_keys=True).encode())
    manifest = {"schemaVersion": 2, "mediaType": ocilayout.OCI_MANIFEST,
                "config": {"mediaType": ocilayout.OCI_CONFIG, **cdesc}, "layers": descs}
    lay.tag("volimg", ocilayout.OCI_MANIFEST, lay.blob(json.dumps(manifest, sort_keys=True).encode()))
    registry.push(lay, "volimg", "volimg:latest")
    ref = f"{registry.host}/volimg:latest"
    stack.docker("pull", ref, timeout=120)
    return ref


def test_create_inspect_ls_rm(stack, name):
    v = name + "-vol"
    assert stack.docker("volume", "create", "--label", "tier=db", "--label", "keep", v).stdout.strip() == v
    doc = vinspect(stack, v)
    assert doc["Name"] == v and doc["Driver"] == "local" and doc["Scope"] == "local"
    assert doc["Mountpoint"] == str(stack.root / "engine" / "volumes" / v / "_data")
    assert os.path.isdir(doc["Mountpoint"])
    assert doc["Labels"] == {"tier": "db", "keep": ""}
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", doc["CreatedAt"])
    # creating it again gives the existing one back, labels unchanged
    assert stack.docker("volume", "create", "--label", "other=1", v).stdout.strip() == v
    assert vinspect(stack, v)["Labels"] == {"tier": "db", "keep": ""}
    assert v in volumes(stack)
    assert v in volumes(stack, "label=tier=db")
    assert v in volumes(stack, "label=keep")
    assert v not in volumes(stack, "label=tier=web")
    assert v in volumes(stack, f"name={name}-v")
    assert v not in volumes(stack, "name=nosuchvolumeatall")
    assert v in volumes(stack, "driver=local")
    assert v in volumes(stack, "dangling=true")
    assert v not in volumes(stack, "dangling=false")
    p = stack.docker("volume", "ls", "--filter", "bogus=1", check=False)
    assert p.returncode != 0 and "Invalid filter 'bogus'" in p.stderr
    assert stack.docker("volume", "rm", v).stdout.strip() == v
    p = stack.docker("volume", "inspect", v, check=False)
    assert p.returncode != 0 and f"No such volume: {v}" in p.stderr
    assert not os.path.exists(doc["Mountpoint"])
    p = stack.docker("volume", "rm", v, check=False)
    assert p.returncode != 0 and f"No such volume: {v}" in p.stderr
    # force: a missing volume is no error, as dockerd
    stack.docker("volume", "rm", "-f", v)
    time.sleep(1.1)  # --until has a resolution of seconds
    ev = stack.docker("events", "--since", "1m", "--until", "0s", "--filter", "type=volume", "--format",
                      "{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.driver}}").stdout
    assert [e for e in ev.splitlines() if f" {v} " in e] == [f"create {v} local", f"destroy {v} local"]


def test_generated_name_and_info(stack):
    v = stack.docker("volume", "create").stdout.strip()
    assert HEX64.match(v), v
    stack.docker("volume", "rm", v)
    info = json.loads(stack.docker("info", "--format", "{{json .Plugins}}").stdout)
    assert info["Volume"] == ["local"]


def test_bad_input(stack):
    p = stack.docker("volume", "create", "bad/name", check=False)
    assert p.returncode != 0 and "includes invalid characters for a local volume name" in p.stderr
    p = stack.docker("volume", "create", "-d", "nosuchdriver", "x1", check=False)
    assert p.returncode != 0 and 'plugin "nosuchdriver" not found' in p.stderr
    p = stack.docker("volume", "create", "-o", "foo=bar", "x2", check=False)
    assert p.returncode != 0 and 'invalid option key: "foo"' in p.stderr
    p = stack.docker("volume", "create", "-o", "type=nfs", "-o", "device=:/srv", "-o", "o=addr=1.2.3.4", "x3",
                     check=False)
    assert p.returncode != 0 and "not supported" in p.stderr
    p = stack.docker("volume", "create", "-o", "type=tmpfs", "x4", check=False)
    assert p.returncode != 0 and 'missing required option: "device"' in p.stderr
    # nothing was half-created
    assert not volumes(stack) & {"x1", "x2", "x3", "x4", "bad"}
    code, body = curl(stack, "-X", "POST", "-H", "Content-Type: application/json", "-d", "{not json",
                      "http://x/v1.41/volumes/create")
    assert code == 400, body
    code, body = curl(stack, "-X", "POST", "-H", "Content-Type: application/json", "-d", '{"Name": 5}',
                      "http://x/v1.41/volumes/create")
    assert code == 400, body
    code, body = curl(stack, "-X", "POST", "-H", "Content-Type: application/json", "-d",
                      '{"Name": "x5", "Labels": {"a": 1}}', "http://x/v1.41/volumes/create")
    assert code == 400, body
    code, body = curl(stack, "http://x/v1.41/volumes/nosuch")
    assert code == 404 and json.loads(body)["message"] == "get nosuch: no such volume"
    code, body = curl(stack, "-X", "DELETE", "http://x/v1.41/volumes/nosuch")
    assert code == 404
    code, body = curl(stack, "-X", "DELETE", "http://x/v1.41/volumes/nosuch?force=1")
    assert code == 204
    # an invalid name in -v: refused, no container
    p = stack.docker("run", "--rm", "-v", "bad@name:/d", stack.image, "true", check=False)
    assert p.returncode != 0 and "includes invalid characters" in p.stderr


def test_data_persists_across_containers(stack, name):
    v = name + "-data"
    stack.docker("run", "--rm", "-v", f"{v}:/d", stack.image, "sh", "-c", "echo kept > /d/f")
    # created implicitly, and recorded
    doc = vinspect(stack, v)
    assert doc["Driver"] == "local"
    assert stack.docker("run", "--rm", "-v", f"{v}:/d:ro", stack.image, "cat", "/d/f").stdout == "kept\n"
    p = stack.docker("run", "--rm", "-v", f"{v}:/d:ro", stack.image, "sh", "-c", "echo x > /d/g", check=False)
    assert p.returncode != 0
    # --mount type=volume, read-only
    p = stack.docker("run", "--rm", "--mount", f"type=volume,src={v},dst=/m,readonly", stack.image,
                     "sh", "-c", "cat /m/f; echo y > /m/h", check=False)
    assert p.stdout == "kept\n" and p.returncode != 0
    stack.docker("volume", "rm", v)


def test_rm_refused_while_in_use(stack, name):
    v = name + "-busy"
    stack.docker("volume", "create", v)
    cid = stack.docker("create", "--name", name, "-v", f"{v}:/d", stack.image, "true").stdout.strip()
    assert v in volumes(stack, "dangling=false")
    assert v not in volumes(stack, "dangling=true")
    p = stack.docker("volume", "rm", v, check=False)
    assert p.returncode != 0
    assert f"remove {v}: volume is in use - [{cid}]" in p.stderr
    p = stack.docker("volume", "rm", "-f", v, check=False)  # force does not override use, as dockerd
    assert p.returncode != 0 and "volume is in use" in p.stderr
    code, body = curl(stack, "-X", "DELETE", f"http://x/v1.41/volumes/{v}")
    assert code == 409, body
    m = stack.inspect(name)["Mounts"]
    assert m == [{"Type": "volume", "Name": v, "Source": str(stack.root / "engine" / "volumes" / v / "_data"),
                  "Destination": "/d", "Driver": "local", "Mode": "z", "RW": True, "Propagation": ""}]
    stack.docker("rm", "-v", name)  # a named volume stays with rm -v
    assert v in volumes(stack)
    stack.docker("volume", "rm", v)
    assert v not in volumes(stack)


def test_anonymous_volume_and_rm_v(stack, name):
    before = volumes(stack)
    stack.docker("run", "-d", "--name", name, "-v", "/anon", "-v", f"{name}-named:/named", stack.image,
                 "sh", "-c", "echo a > /anon/f; echo n > /named/f; sleep 60")
    mounts = {m["Destination"]: m for m in stack.inspect(name)["Mounts"]}
    anon = mounts["/anon"]
    assert anon["Type"] == "volume" and HEX64.match(anon["Name"]) and anon["Driver"] == "local"
    assert anon["RW"] is True and anon["Propagation"] == "" and anon["Mode"] == ""
    assert anon["Source"] == str(stack.root / "engine" / "volumes" / anon["Name"] / "_data")
    assert mounts["/named"]["Name"] == f"{name}-named"
    assert volumes(stack) - before == {anon["Name"], f"{name}-named"}
    # docker ps shows the mounts too
    assert anon["Name"] in stack.docker("ps", "--no-trunc", "--filter", f"name={name}", "--format",
                                                 "{{.Mounts}}").stdout
    time.sleep(0.3)
    assert open(os.path.join(anon["Source"], "f")).read() == "a\n"
    stack.docker("rm", "-fv", name)
    after = volumes(stack)
    assert anon["Name"] not in after
    assert f"{name}-named" in after
    stack.docker("volume", "rm", f"{name}-named")
    # without -v, the anonymous volume stays
    stack.docker("run", "--name", name, "-v", "/anon2", stack.image, "true")
    anon2 = stack.inspect(name)["Mounts"][0]["Name"]
    stack.docker("rm", name)
    assert anon2 in volumes(stack, "dangling=true")
    stack.docker("volume", "rm", anon2)


def test_run_rm_removes_anonymous_volumes(stack, name):
    before = volumes(stack)
    stack.docker("run", "--rm", "-v", "/scratch", "-v", f"{name}-kept:/kept", stack.image, "sh", "-c",
                 "echo x > /scratch/f")
    assert volumes(stack) - before == {f"{name}-kept"}
    stack.docker("volume", "rm", f"{name}-kept")


def test_image_volume_copy_up(stack, volimage, name):
    p = stack.docker("run", "--name", name, volimage, "sh", "-c",
                     "stat -c '%u %g %a %n' /data /data/hello /data/sub /data/sub/deep; cat /data/hello")
    out = p.stdout
    assert out.splitlines() == ["1234 2345 750 /data", "1234 2345 640 /data/hello", "0 0 700 /data/sub",
                                "7 8 600 /data/sub/deep", "from the image"]
    m = stack.inspect(name)["Mounts"]
    assert len(m) == 1 and m[0]["Destination"] == "/data" and HEX64.match(m[0]["Name"])
    st = os.stat(os.path.join(m[0]["Source"], "hello"))
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (1234, 2345, 0o640)
    stack.docker("rm", "-v", name)
    assert m[0]["Name"] not in volumes(stack)

    # an empty named volume gets the image's content too; a non-empty one does not
    v = name + "-cu"
    assert stack.docker("run", "--rm", "-v", f"{v}:/data", volimage, "cat", "/data/hello").stdout == \
        "from the image\n"
    stack.docker("run", "--rm", "-v", f"{v}:/data", volimage, "sh", "-c", "rm -rf /data/*; echo mine > /data/x")
    assert stack.docker("run", "--rm", "-v", f"{v}:/data", volimage, "ls", "/data").stdout == "x\n"
    stack.docker("volume", "rm", v)
    # nocopy
    assert stack.docker("run", "--rm", "-v", f"{v}:/data:nocopy", volimage, "ls", "-A", "/data").stdout == ""
    stack.docker("volume", "rm", v)
    # something else mounted at the image's volume: no anonymous volume
    before = volumes(stack)
    stack.docker("run", "--rm", "--tmpfs", "/data", volimage, "true")
    assert volumes(stack) == before


def test_prune(stack, name):
    lbl = f"prune={name}"
    for s in ("a", "b", "c"):
        stack.docker("volume", "create", "--label", lbl, f"{name}-{s}")
    stack.docker("volume", "create", "--label", lbl, "--label", "keep=1", f"{name}-k")
    stack.docker("create", "--name", name, "-v", f"{name}-c:/c", stack.image, "true")
    stack.docker("run", "--rm", "-v", f"{name}-a:/a", stack.image, "sh", "-c", "head -c 5000 /dev/zero > /a/z")
    p = stack.docker("volume", "prune", "-f", "--filter", f"label={lbl}", "--filter", "label!=keep")
    assert "Deleted Volumes:" in p.stdout
    deleted = set(p.stdout.split("Deleted Volumes:")[1].split("Total reclaimed")[0].split())
    assert deleted == {f"{name}-a", f"{name}-b"}
    assert "5kB" in p.stdout or "5.0kB" in p.stdout or "4.883kB" in p.stdout, p.stdout
    left = volumes(stack, f"label={lbl}")
    assert left == {f"{name}-c", f"{name}-k"}
    stack.docker("rm", name)
    # API 1.41: named volumes are pruned as well when unused
    code, body = curl(stack, "-X", "POST", "http://x/v1.41/volumes/prune?filters=" +
                      urllib.parse.quote(json.dumps({"label": [lbl]})))
    assert code == 200
    rep = json.loads(body)
    assert set(rep["VolumesDeleted"]) == {f"{name}-c", f"{name}-k"}
    assert rep["SpaceReclaimed"] == 0
    code, body = curl(stack, "-X", "POST", "http://x/v1.41/volumes/prune?filters=" +
                      urllib.parse.quote(json.dumps({"until": ["1h"]})))
    assert code == 400 and "Invalid filter 'until'" in json.loads(body)["message"]


def test_mounts_field(stack, name, tmp_path):
    host = tmp_path / "h"
    host.mkdir()
    (host / "f").write_text("host\n")
    p = stack.docker("run", "--name", name, "--mount", f"type=bind,src={host},dst=/b,readonly",
                     "--mount", "type=tmpfs,dst=/t,tmpfs-size=1m", "--mount", "type=volume,dst=/anon",
                     stack.image, "sh", "-c", "cat /b/f; grep ' /t ' /proc/mounts | cut -d' ' -f3")
    assert p.stdout == "host\ntmpfs\n"
    mounts = {m["Destination"]: m for m in stack.inspect(name)["Mounts"]}
    assert mounts["/b"] == {"Type": "bind", "Source": str(host), "Destination": "/b", "Mode": "", "RW": False,
                            "Propagation": "rprivate"}
    assert mounts["/t"]["Type"] == "tmpfs"
    assert mounts["/anon"]["Type"] == "volume" and HEX64.match(mounts["/anon"]["Name"])
    stack.docker("rm", "-v", name)
    assert mounts["/anon"]["Name"] not in volumes(stack)
    p = stack.docker("run", "--rm", "--mount", "type=bind,src=/nonexistent-berth,dst=/b", stack.image, "true",
                     check=False)
    assert p.returncode != 0 and "bind source path does not exist" in p.stderr
    p = stack.docker("run", "--rm", "-v", f"{name}-x:/d", "--mount", f"type=volume,src={name}-y,dst=/d",
                     stack.image, "true", check=False)
    assert p.returncode != 0 and "Duplicate mount point" in p.stderr
    assert not volumes(stack) & {f"{name}-x", f"{name}-y"}


def test_local_driver_tmpfs_and_bind(stack, name, tmp_path):
    t = name + "-tmpfs"
    stack.docker("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=2m,mode=0770", t)
    assert vinspect(stack, t)["Options"] == {"type": "tmpfs", "device": "tmpfs", "o": "size=2m,mode=0770"}
    out = stack.docker("run", "--rm", "-v", f"{t}:/t", stack.image, "sh", "-c",
                       "grep ' /t ' /proc/mounts | cut -d' ' -f3; stat -c %a /t").stdout
    assert out == "tmpfs\n770\n"
    stack.docker("volume", "rm", t)
    host = tmp_path / "bound"
    host.mkdir()
    b = name + "-bind"
    stack.docker("volume", "create", "-o", "type=none", "-o", f"device={host}", "-o", "o=bind", b)
    stack.docker("run", "--rm", "-v", f"{b}:/b", stack.image, "sh", "-c", "echo through > /b/f")
    assert (host / "f").read_text() == "through\n"
    stack.docker("volume", "rm", b)
    # removing the volume leaves the host directory alone
    assert (host / "f").read_text() == "through\n"


def test_survives_engine_kill9(stack, name):
    v = name + "-k9"
    stack.docker("volume", "create", "--label", "k=9", v)
    stack.docker("run", "--name", name, "-v", f"{v}:/d", "-v", "/anon", stack.image, "sh", "-c",
                 "echo persisted > /d/f")
    anon = [m["Name"] for m in stack.inspect(name)["Mounts"] if m["Destination"] == "/anon"][0]
    doc = vinspect(stack, v)
    # a volume directory from before the volume store, and an interrupted create
    (stack.root / "engine" / "volumes" / f"{name}-legacy" / "_data").mkdir(parents=True)
    (stack.root / "engine" / "volumes" / f".new-{name}-half" / "_data").mkdir(parents=True)
    stack.kill9("engine")
    stack.start_engine()
    assert f"{name}-legacy" in volumes(stack)
    assert f"{name}-half" not in volumes(stack)
    assert not (stack.root / "engine" / "volumes" / f".new-{name}-half").exists()
    stack.docker("volume", "rm", f"{name}-legacy")
    assert vinspect(stack, v) == doc
    assert anon in volumes(stack)
    # the references were rebuilt from the containers
    p = stack.docker("volume", "rm", v, check=False)
    assert p.returncode != 0 and "volume is in use" in p.stderr
    assert stack.docker("run", "--rm", "-v", f"{v}:/d", stack.image, "cat", "/d/f").stdout == "persisted\n"
    stack.docker("rm", "-v", name)
    assert anon not in volumes(stack)
    stack.docker("volume", "rm", v)


def test_docker_py(stack, name):
    docker = pytest.importorskip("docker")
    client = docker.DockerClient(base_url=stack.host, version="auto")
    v = client.volumes.create(name=name + "-py", driver="local", labels={"from": "py"})
    assert v.name == name + "-py" and v.attrs["Labels"] == {"from": "py"}
    assert client.volumes.get(name + "-py").attrs["Mountpoint"].endswith(f"/{name}-py/_data")
    assert [x.name for x in client.volumes.list(filters={"label": "from=py"})] == [name + "-py"]
    out = client.containers.run(stack.image, ["sh", "-c", "echo py > /v/f; cat /v/f"], remove=True,
                                volumes={name + "-py": {"bind": "/v", "mode": "rw"}})
    assert out == b"py\n"
    with pytest.raises(docker.errors.NotFound):
        client.volumes.get("nosuch-py-volume")
    c = client.containers.create(stack.image, "true", volumes=[f"{name}-py:/v"])
    with pytest.raises(docker.errors.APIError) as e:
        v.remove()
    assert e.value.status_code == 409
    c.remove()
    v.remove()
    client.volumes.create(name=name + "-py2", labels={"from": "py2"})
    rep = client.volumes.prune(filters={"label": "from=py2"})
    assert rep["VolumesDeleted"] == [name + "-py2"]
    with pytest.raises(docker.errors.APIError) as e:
        client.volumes.create(name="bad name")
    assert e.value.status_code == 400
