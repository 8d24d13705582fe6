#!/usr/bin/env bash
# Builds berth's Debian package from a meson build directory:
#
#   packaging/build-deb.sh [-C BUILDDIR] [OUTPUT.deb]
#
# BUILDDIR defaults to $BERTH_BUILD, else build/; it must be configured
# without sanitizers. OUTPUT defaults to BUILDDIR/berth_<version>_<arch>.deb.
#
# The tree is what `meson install --strip --destdir` stages; the package is
# made with dpkg-deb (owners root:root). Depends is computed by
# dpkg-shlibdeps from the staged binaries (the Debian packages of the shared
# libraries they link, with versions); /etc/berth/engine.json is a conffile;
# postinst creates the system group `berth` (which may use the engine's
# socket) and enables the units. Maintainer scripts honour $DPKG_ROOT, so
# `dpkg --root DIR --force-script-chrootless` installs into a bare directory.
#
# The package is installed under /usr, so a build directory with another
# prefix is reconfigured with -Dprefix=/usr -Dsysconfdir=/etc (no C file
# is recompiled: the prefix only reaches install paths and the units).
# Needs: meson, dpkg-deb, dpkg-shlibdeps (dpkg-dev), readelf (binutils).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

die() { echo "build-deb: $*" >&2; exit 1; }

build=${BERTH_BUILD:-build}
while getopts "C:h" opt; do
    case $opt in
    C) build=$OPTARG ;;
    h) sed -n '2,20s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[ $# -le 1 ] || die "usage: $0 [-C BUILDDIR] [OUTPUT.deb]"
[ -f "$build/build.ninja" ] || die "\"$build\" is not a meson build directory (meson setup $build -Dsanitize=false)"
build=$(cd "$build" && pwd)

for tool in meson dpkg-deb dpkg-shlibdeps readelf; do
    command -v "$tool" >/dev/null || die "$tool is missing (apt-get install dpkg-dev binutils meson)"
done

opt() {
    meson introspect "$build" --buildoptions |
        python3 -c 'import json,sys; print(next(str(o["value"]) for o in json.load(sys.stdin) if o["name"] == sys.argv[1]))' "$1"
}
[ "$(opt sanitize)" = False ] || die "\"$build\" is built with sanitizers; package a build with -Dsanitize=false"
if [ "$(opt prefix)" != /usr ] || [ "$(opt sysconfdir)" != /etc ]; then
    echo "build-deb: reconfiguring \"$build\" with -Dprefix=/usr -Dsysconfdir=/etc (was $(opt prefix), $(opt sysconfdir))"
    meson configure "$build" -Dprefix=/usr -Dsysconfdir=/etc >/dev/null
fi

version=$(meson introspect "$build" --projectinfo | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
arch=$(dpkg --print-architecture)
out=${1:-$build/berth_${version}_${arch}.deb}

ninja -C "$build" >/dev/null || die "ninja -C \"$build\" failed"

work=$(mktemp -d "${TMPDIR:-/tmp}/berth-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
# Staged where dpkg-shlibdeps expects a package's files: debian/<package>.
src=$work/src
stage=$src/debian/berth
meson install -C "$build" --no-rebuild --strip --destdir "$stage" >/dev/null ||
    die "meson install --destdir failed"

# What a berth installation cannot do without. A missing one is a meson
# target without `install : true` (or not built), not something to copy in
# by hand here.
need=(usr/bin/berth-engine usr/bin/berth-supervisor usr/bin/berth-shim usr/sbin/ocirun
      usr/bin/berth-ctr usr/bin/berth-fetch usr/share/berth/hello-world.tar etc/berth/engine.json)
missing=()
for f in "${need[@]}"; do
    [ -e "$stage/$f" ] || missing+=("/$f")
done
[ ${#missing[@]} -eq 0 ] ||
    die "not installed by meson: ${missing[*]} (an executable() without install : true?)"
# Units: wherever the unit dir points (/lib or /usr/lib).
units=$(cd "$stage" && find . -path '*/systemd/system/*.service' | sed 's|^\./|/|' | sort)
[ -n "$units" ] || die "no systemd units were installed (-Dsystemdsystemunitdir=no?)"

# Docs and copyright, as Debian wants them.
doc=$stage/usr/share/doc/berth
mkdir -p "$doc"
[ -f "$doc/configuration.md" ] || cp "$repo/docs/configuration.md" "$doc/"
cat > "$doc/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: berth
Comment: built from a berth source tree by packaging/build-deb.sh

Files: *
Copyright: the berth authors
License: Apache-2.0
 On Debian systems, the full text of the Apache License, Version 2.0 is in
 /usr/share/common-licenses/Apache-2.0.
EOF

# Depends: the packages of the shared libraries the dynamic binaries link.
elves=()
while IFS= read -r -d '' f; do
    if readelf -d "$f" 2>/dev/null | grep -q '(NEEDED)'; then
        elves+=("-edebian/berth/${f#"$stage"/}")
    fi
done < <(find "$stage/usr/bin" "$stage/usr/sbin" -type f -print0 2>/dev/null)
mkdir -p "$stage/DEBIAN"  # how dpkg-shlibdeps finds the package's root
printf 'Source: berth\n\nPackage: berth\nArchitecture: any\n' > "$src/debian/control"
shlibs=$(cd "$src" && dpkg-shlibdeps -O "${elves[@]}") ||
    die "dpkg-shlibdeps failed"
depends=${shlibs#shlibs:Depends=}
[ -n "$depends" ] || die "dpkg-shlibdeps found no dependencies"
# groupadd for postinst; mount/umount for the supervisor's overlay mounts.
depends="$depends, passwd, mount"

size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" <<EOF
Package: berth
Version: $version
Architecture: $arch
Maintainer: berth developers <berth@localhost>
Installed-Size: $size
Depends: $depends
Recommends: docker.io
Suggests: runc, skopeo
Section: admin
Priority: optional
Description: container engine with a Docker-compatible API
 berth runs containers through four programs with defined boundaries:
 berth-engine serves the Docker Engine API on /run/berth/engine.sock,
 berth-supervisor keeps images, overlay snapshots and OCI bundles,
 berth-shim holds each container's stdio and exit status (so both daemons
 can restart under running containers), and ocirun, a runc-compatible OCI
 runtime, builds namespaces, cgroups and the root filesystem.
 .
 Includes berth-ctr (a client of the supervisor), berth-fetch (image tool),
 systemd units, and a hello-world image in /usr/share/berth/hello-world.tar:
   docker -H unix:///run/berth/engine.sock load -i /usr/share/berth/hello-world.tar
   docker -H unix:///run/berth/engine.sock run --rm hello-world
EOF

echo /etc/berth/engine.json > "$stage/DEBIAN/conffiles"

cat > "$stage/DEBIAN/postinst" <<'EOF'
#!/bin/sh
# berth postinst: the `berth` group (members may use the engine's socket),
# then the units. With $DPKG_ROOT (dpkg --root --force-script-chrootless)
# only the group is made, in that root's /etc/group.
set -e
if [ "$1" = configure ]; then
    if [ -n "${DPKG_ROOT:-}" ]; then
        if [ -f "$DPKG_ROOT/etc/group" ] && ! grep -q '^berth:' "$DPKG_ROOT/etc/group"; then
            groupadd --prefix "$DPKG_ROOT" --system berth
        fi
        exit 0
    fi
    getent group berth >/dev/null || groupadd --system berth
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload || true
    fi
    if command -v deb-systemd-helper >/dev/null; then
        deb-systemd-helper unmask berth-supervisor.service berth-engine.service >/dev/null || true
        # debhelper's snippet: enabled on first install, a later
        # `systemctl disable` is respected on upgrades.
        for unit in berth-supervisor.service berth-engine.service; do
            if deb-systemd-helper --quiet was-enabled "$unit"; then
                deb-systemd-helper enable "$unit" >/dev/null || true
            else
                deb-systemd-helper update-state "$unit" >/dev/null || true
            fi
        done
    fi
    # Started as Debian starts services: deb-systemd-invoke honours
    # policy-rc.d. A restart of the units keeps containers (KillMode=process).
    if [ -d /run/systemd/system ] && command -v deb-systemd-invoke >/dev/null; then
        deb-systemd-invoke restart berth-supervisor.service berth-engine.service >/dev/null || true
    fi
fi
exit 0
EOF

cat > "$stage/DEBIAN/prerm" <<'EOF'
#!/bin/sh
# Stops the daemons on removal; the shims and their containers are left
# running (KillMode=process), as on any restart.
set -e
if [ -z "${DPKG_ROOT:-}" ] && [ "$1" = remove ] && [ -d /run/systemd/system ] &&
   command -v deb-systemd-invoke >/dev/null; then
    deb-systemd-invoke stop berth-engine.service berth-supervisor.service >/dev/null || true
fi
exit 0
EOF

cat > "$stage/DEBIAN/postrm" <<'EOF'
#!/bin/sh
# Images and containers in /var/lib/berth are kept, also on purge: remove
# them by hand. The `berth` group is kept, as Debian keeps system groups.
set -e
if [ -z "${DPKG_ROOT:-}" ]; then
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload >/dev/null || true
    fi
    if [ "$1" = purge ] && command -v deb-systemd-helper >/dev/null; then
        deb-systemd-helper purge berth-supervisor.service berth-engine.service >/dev/null || true
    fi
fi
exit 0
EOF
chmod 0755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/prerm" "$stage/DEBIAN/postrm"

mkdir -p "$(dirname "$out")"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$out" >/dev/null
echo "build-deb: $out"
