#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: install what berth needs, build
# it, and run a container end to end. Today that is ocirun (the OCI runtime
# layer) running a busybox container built here from Debian's busybox-static;
# later layers (shim, supervisor, engine) extend this script.
#
#   sudo packaging/quickstart.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "quickstart: run as root (containers need namespaces, cgroups and mounts), e.g. sudo $0" >&2
    exit 1
fi

packaging/install-deps.sh
if [ ! -f build/build.ninja ]; then
    meson setup build >/dev/null
fi
ninja -C build

OCIRUN=$PWD/build/ocirun/ocirun
bundle=$(mktemp -d /tmp/berth-quickstart.XXXXXX)
id="quickstart-$$"
trap '"$OCIRUN" delete --force "$id" >/dev/null 2>&1 || true; rm -rf "$bundle"' EXIT

# A minimal image: busybox and its applets.
mkdir -p "$bundle/rootfs/bin" "$bundle/rootfs/etc"
cp /bin/busybox "$bundle/rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$bundle/rootfs/bin/$applet"
done
echo "root:x:0:0:root:/root:/bin/sh" > "$bundle/rootfs/etc/passwd"
echo "root:x:0:" > "$bundle/rootfs/etc/group"

# The default spec, made non-interactive, with a command that shows what
# the container sees.
(cd "$bundle" && "$OCIRUN" spec)
python3 - "$bundle/config.json" <<'PY'
import json, sys
path = sys.argv[1]
c = json.load(open(path))
c["process"]["terminal"] = False
c["process"]["args"] = ["sh", "-c",
    'echo "hello from a berth container: hostname $(hostname), pid $$, uid $(id -u)"; '
    'echo "network interfaces: $(ls /sys/class/net | tr "\\n" " ")"; '
    'echo "memory limit: $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max) bytes"']
c["linux"]["resources"]["memory"] = {"limit": 64 * 1024 * 1024}
json.dump(c, open(path, "w"), indent=2)
PY

echo "== ocirun run $id (bundle $bundle)"
"$OCIRUN" run --bundle "$bundle" "$id"
echo "== done: the container ran in its own pid, mount, network, ipc and uts namespaces"
echo "   with a 64 MiB memory cgroup, and left nothing behind. Next: tests/run-all.sh (as root) runs every test."
