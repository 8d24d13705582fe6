"""Fixtures for the packaging tests (packaging/): berth's hello-world image
and the Debian package.

The build comes from $BERTH_BUILD (default <repo>/build), configured with
-Dsanitize=false (the package is made from it, and hello must link
statically). Tools: skopeo and umoci (the image), dpkg-deb, dpkg-shlibdeps
(dpkg-dev) and Debian's docker CLI (the package, end to end)."""

import os
import platform
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKER = "/usr/bin/docker"  # Debian's CLI 20.10 (API 1.41)
MESSAGE = "Hello from berth!"

GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386",
          "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


def build_dir():
    return Path(os.environ.get("BERTH_BUILD") or REPO / "build").resolve()


def go_arch():
    return GOARCH.get(platform.machine(), platform.machine())


def need(tool):
    if not (shutil.which(tool) or os.access(tool, os.X_OK)):
        pytest.skip(f"{tool} is not installed (packaging/install-deps.sh)")


def built(rel):
    p = build_dir() / rel
    if not p.exists():
        pytest.fail(f"{p} not found: build first (ninja -C {build_dir()}) or set $BERTH_BUILD", pytrace=False)
    return p


@pytest.fixture(scope="session")
def hello_bin():
    return built("packaging/hello")


@pytest.fixture(scope="session")
def hello_tar():
    return built("packaging/hello-world.tar")
