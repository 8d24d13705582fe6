#!/bin/sh
# Installs everything berth needs to build and test on Debian 12.
# Idempotent: packages already present are left alone; apt-get update runs
# only when something is missing.
set -eu

BUILD="build-essential meson ninja-build pkg-config
       libjansson-dev libseccomp-dev libcmocka-dev
       libnng-dev libprotobuf-c-dev protobuf-c-compiler
       libcurl4-openssl-dev libzstd-dev zlib1g-dev
       libnl-3-dev libnl-route-3-dev libarchive-dev libssl-dev"
TEST="python3 python3-pytest busybox-static runc hyperfine
      iproute2 procps util-linux"

missing=""
for p in $BUILD $TEST; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    echo "install-deps: all packages present"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: need root to install:$missing" >&2
    exit 1
fi

echo "install-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
