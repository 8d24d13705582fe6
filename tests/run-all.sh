#!/usr/bin/env bash
# Runs all of berth's tests: builds with -Werror (and ASan/UBSan unless
# SANITIZE=0), then the unit tests (meson test) and the integration tests
# (pytest, as root, against real namespaces and cgroups). Prints one
# closing line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "run-all: the integration tests need root (namespaces, cgroups, mounts)" >&2
    exit 1
fi

BUILD=${BUILD:-build-ci}
SAN=true
[ "${SANITIZE:-1}" = 0 ] && SAN=false

if [ ! -f "$BUILD/build.ninja" ]; then
    meson setup "$BUILD" -Dwerror=true -Dsanitize=$SAN -Dtests=true >/dev/null || exit 1
fi
ninja -C "$BUILD" || exit 1

# ASan: report leaks and errors as failures; UBSan: stop on the first error.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=99}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:exitcode=98}

passed=0
failed=0

echo "== unit tests (meson test)"
meson test -C "$BUILD" --suite unit --print-errorlogs > "$BUILD/unit.log" 2>&1
unit_rc=$?
cat "$BUILD/unit.log" | tail -n 20
u_ok=$(sed -n 's/^Ok: *\([0-9]*\).*/\1/p' "$BUILD/unit.log" | tail -n1)
u_fail=$(sed -n 's/^Fail: *\([0-9]*\).*/\1/p' "$BUILD/unit.log" | tail -n1)
passed=$((passed + ${u_ok:-0}))
failed=$((failed + ${u_fail:-0}))
if [ $unit_rc -ne 0 ] && [ "${u_fail:-0}" -eq 0 ]; then failed=$((failed + 1)); fi

# pytest_suite NAME DIR: runs one pytest directory and adds its counts.
p_skip_total=0
pytest_suite() {
    local name=$1 dir=$2 log="$BUILD/pytest-$1.log"
    echo "== $name tests (pytest)"
    /usr/bin/python3 -m pytest "$dir" -q -p no:cacheprovider -rfE 2>&1 | tee "$log"
    local ok fail skip
    ok=$(tail -n 3 "$log" | grep -Eo '[0-9]+ passed' | grep -Eo '[0-9]+')
    fail=$(tail -n 3 "$log" | grep -Eo '[0-9]+ (failed|errors?)' | awk '{s += $1} END {if (NR) print s}')
    skip=$(tail -n 3 "$log" | grep -Eo '[0-9]+ skipped' | grep -Eo '[0-9]+')
    passed=$((passed + ${ok:-0}))
    failed=$((failed + ${fail:-0}))
    p_skip_total=$((p_skip_total + ${skip:-0}))
    if [ -z "${ok:-}" ] && [ -z "${fail:-}" ]; then failed=$((failed + 1)); fi
}

export OCIRUN="$PWD/$BUILD/ocirun/ocirun"
pytest_suite integration tests/integration

# berth-shim over ocirun and runc (binaries from this build)
export BERTH_BUILD="$PWD/$BUILD"
pytest_suite shim tests/shim

# the supervisor's registry client and content store against a real registry
pytest_suite supervisor tests/supervisor

# berth-engine: the docker CLI and docker-py against the whole stack
pytest_suite engine tests/engine

# the Debian package, installed into a clean root, runs hello-world
# (built from a build without sanitizers: the package ships release binaries)
PKG_BUILD=${BUILD}-pkg
if [ ! -f "$PKG_BUILD/build.ninja" ]; then
    meson setup "$PKG_BUILD" -Dwerror=true -Dsanitize=false -Dtests=false >/dev/null || exit 1
fi
ninja -C "$PKG_BUILD" >/dev/null || exit 1
export BERTH_BUILD="$PWD/$PKG_BUILD"
pytest_suite packaging tests/packaging
export BERTH_BUILD="$PWD/$BUILD"

# ocirun under the real peers: containerd, dockerd, podman
pytest_suite dropin tests/dropin

# the daemons under valgrind: a build without sanitizers, shim linked dynamically
VG_BUILD=${BUILD}-valgrind
if [ ! -f "$VG_BUILD/build.ninja" ]; then
    meson setup "$VG_BUILD" -Dwerror=true -Dsanitize=false -Dstatic_shim=false -Dtests=false >/dev/null || exit 1
fi
ninja -C "$VG_BUILD" shim/berth-shim shim/berth-shimctl ocirun/ocirun supervisor/berth-supervisor \
    supervisor/berth-fetch engine/berth-engine >/dev/null || exit 1
export VALGRIND_BUILD="$PWD/$VG_BUILD"
pytest_suite valgrind tests/valgrind
p_skip=$p_skip_total

echo "${passed} passed, ${failed} failed, ${p_skip:-0} skipped"
[ "$failed" -eq 0 ]
