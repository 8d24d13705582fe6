#!/bin/sh
# Installs everything berth needs to build and test on Debian 12.
# Idempotent: packages already present are left alone; apt-get update runs
# only when something is missing.
set -eu

BUILD="build-essential meson ninja-build pkg-config
       libjansson-dev libseccomp-dev libcmocka-dev
       libnng-dev libprotobuf-c-dev protobuf-c-compiler
       libcurl4-openssl-dev libzstd-dev zlib1g-dev
       libnl-3-dev libnl-route-3-dev libarchive-dev libssl-dev
       libmicrohttpd-dev libnftables-dev libgnutls28-dev"
TEST="python3 python3-pytest busybox-static runc hyperfine
      iproute2 procps util-linux time
      containerd docker.io podman conmon iptables
      docker-registry skopeo zstd openssl valgrind
      curl python3-docker docker-compose dpkg-dev umoci nftables apache2-utils"

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
# The peers (containerd, dockerd) are test tools: their packages must not
# start system-wide daemons. A temporary policy-rc.d forbids service starts.
policy=/usr/sbin/policy-rc.d
made_policy=""
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    made_policy=1
fi
trap '[ -n "$made_policy" ] && rm -f "$policy"' EXIT
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
