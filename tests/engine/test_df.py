"""`docker system df` (GET /system/df, API 1.41's shape) with the docker CLI
20.10 against berth-engine: images with the containers that use them,
containers with their sizes, volumes with theirs, no build cache."""

import json
import re

import pytest

from conftest import UnixHTTP

UNITS = {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12}


def api_json(stack, url):
    c = UnixHTTP(str(stack.sock))
    try:
        c.request("GET", "/v1.41" + url)
        r = c.getresponse()
        assert r.status == 200, r.read()
        return json.loads(r.read())
    finally:
        c.close()


def human(s):
    """The CLI's sizes ("1.05MB", "0B") → bytes."""
    m = re.match(r"^([0-9.]+)([kMGT]?B)$", s)
    assert m, s
    return float(m.group(1)) * UNITS[m.group(2)]


@pytest.fixture
def used(stack, name):
    """A stopped container that wrote 1 MiB to its rootfs and 1 MiB to a
    named volume it keeps using."""
    vol = f"{name}-vol"
    stack.docker("volume", "create", vol)
    stack.docker("run", "--name", name, "-v", f"{vol}:/data", stack.image, "sh", "-c",
                 "dd if=/dev/zero of=/big bs=1024 count=1024 && dd if=/dev/zero of=/data/f bs=1024 count=1024")
    yield name, vol
    stack.docker("rm", "-f", name, check=False)
    stack.docker("volume", "rm", "-f", vol, check=False)


def test_api_shape(stack, used):
    name, vol = used
    df = api_json(stack, "/system/df")
    assert set(df) == {"LayersSize", "Images", "Containers", "Volumes", "BuildCache"}
    assert isinstance(df["LayersSize"], int) and df["LayersSize"] > 0
    assert df["BuildCache"] == []

    image_id = stack.inspect(name)["Image"]
    images = {i["Id"]: i for i in df["Images"]}
    im = images[image_id]
    for k, t in (("ParentId", str), ("RepoTags", list), ("RepoDigests", list), ("Created", int), ("Size", int),
                 ("SharedSize", int), ("VirtualSize", int), ("Labels", dict), ("Containers", int)):
        assert isinstance(im[k], t), (k, im)
    assert im["Containers"] >= 1
    assert 0 <= im["SharedSize"] <= im["Size"]
    # the images list is the same, but for the usage figures
    listed = {i["Id"]: i for i in api_json(stack, "/images/json")}
    assert set(listed) == set(images)
    assert listed[image_id]["RepoTags"] == im["RepoTags"] and listed[image_id]["Size"] == im["Size"]
    # each blob once: no more than the images' sizes together, and at least the largest
    assert max(i["Size"] for i in df["Images"]) <= df["LayersSize"] <= sum(i["Size"] for i in df["Images"])
    assert sum(i["Containers"] for i in df["Images"]) == len(df["Containers"])

    ctrs = {c["Names"][0]: c for c in df["Containers"]}
    c = ctrs[f"/{name}"]
    assert c["ImageID"] == image_id and c["State"] == "exited"
    assert isinstance(c["SizeRw"], int) and c["SizeRw"] >= 1 << 20
    assert isinstance(c["SizeRootFs"], int) and c["SizeRootFs"] > c["SizeRw"]
    # the same entry as ps -a -s gives
    ps = [x for x in api_json(stack, "/containers/json?all=1&size=1") if x["Names"] == [f"/{name}"]][0]
    assert {k: v for k, v in ps.items() if k != "Status"} == {k: v for k, v in c.items() if k != "Status"}

    vols = {v["Name"]: v for v in df["Volumes"]}
    v = vols[vol]
    assert v["Driver"] == "local" and v["Mountpoint"].endswith(f"/{vol}/_data")
    assert v["UsageData"] == {"Size": 1 << 20, "RefCount": 1}
    # not in the other endpoints
    assert "UsageData" not in json.loads(stack.docker("volume", "inspect", vol).stdout)[0]


def test_cli_summary(stack, used):
    lines = [json.loads(x) for x in stack.docker("system", "df", "--format", "{{json .}}").stdout.splitlines()]
    rows = {x["Type"]: x for x in lines}
    assert set(rows) == {"Images", "Containers", "Local Volumes", "Build Cache"}
    df = api_json(stack, "/system/df")
    im, ct, vo, bc = rows["Images"], rows["Containers"], rows["Local Volumes"], rows["Build Cache"]
    assert int(im["TotalCount"]) == len(df["Images"]) >= 1
    assert 1 <= int(im["Active"]) <= int(im["TotalCount"])
    assert human(im["Size"]) > 0
    assert int(ct["TotalCount"]) == len(df["Containers"]) >= 1
    assert human(ct["Size"]) >= 1e6
    # a stopped container's layer is reclaimable
    assert human(ct["Reclaimable"].split()[0]) >= 1e6
    assert int(vo["TotalCount"]) == len(df["Volumes"]) >= 1 and int(vo["Active"]) >= 1
    assert human(vo["Size"]) >= 1e6
    assert int(bc["TotalCount"]) == 0 and human(bc["Size"]) == 0


def test_cli_verbose(stack, used):
    name, vol = used
    out = stack.docker("system", "df", "-v").stdout
    assert "Images space usage:" in out and "Containers space usage:" in out
    assert "Local Volumes space usage:" in out and "Build cache usage: 0B" in out
    ctr_line = [x for x in out.splitlines() if x.rstrip().endswith(name)]
    assert len(ctr_line) == 1, out
    assert "1.05MB" in ctr_line[0], ctr_line
    vol_line = [x for x in out.splitlines() if x.startswith(vol + " ")]
    assert len(vol_line) == 1, out
    fields = vol_line[0].split()
    assert fields[1:] == ["1", "1.049MB"], vol_line
    repo = stack.image.rsplit(":", 1)[0]
    img_line = [x for x in out.splitlines() if x.startswith(repo + " ")]
    assert img_line and "N/A" not in img_line[0], out


def test_volume_with_options_left_out(stack, name):
    """As dockerd, df leaves out volumes with options (a tmpfs here): their
    bytes are not the store's."""
    stack.docker("volume", "create", "--opt", "type=tmpfs", "--opt", "device=tmpfs", name)
    try:
        assert name not in {v["Name"] for v in api_json(stack, "/system/df")["Volumes"]}
        assert name not in stack.docker("system", "df", "-v").stdout
        assert name in stack.docker("volume", "ls", "-q").stdout.split()
    finally:
        stack.docker("volume", "rm", "-f", name, check=False)
