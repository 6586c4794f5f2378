#!/usr/bin/env bash
# deploy/setup.sh — install what linecert needs (Debian 12) and build it.
#
#   deploy/setup.sh              build into build/      (RelWithDebInfo, no sanitizers)
#   deploy/setup.sh --sanitize   build into build-asan/ (RelWithDebInfo, ASan + UBSan)
#
# Works as root on a fresh, minimal Debian 12 that has nothing but apt. It
# calls apt-get only when a package is missing. Without root it prints the
# apt-get command to run and stops. A second run with nothing changed does
# nothing but a quick `cmake --build`. It works from any directory.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: deploy/setup.sh [--sanitize]

Installs the Debian 12 packages linecert needs (only missing ones, with
apt-get; needs root for that) and builds the project with CMake.

  --sanitize   build into build-asan/ with AddressSanitizer and UBSan
               (the configuration deploy/test.sh runs the tests in)
  -h, --help   show this help
EOF
}

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)

sanitize=OFF
builddir=build
while [ $# -gt 0 ]; do
    case $1 in
    --sanitize)
        sanitize=ON
        builddir=build-asan
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        echo "setup.sh: unknown option: $1" >&2
        usage >&2
        exit 2
        ;;
    esac
    shift
done

# Build and test dependencies: the compiler and libraries; PKCS#11 (SoftHSM2,
# OpenSC's pkcs11-tool); the PLC, service, JSON and GTK4 UI libraries with
# Xvfb for the UI tests; clang with libFuzzer for tests/fuzz (a separate
# build); the OpenSSL pkcs11 engine for tests/bench/openssl-peers.sh; acl
# (setfacl) for deploy/install.sh; time (/usr/bin/time) for tests/bench.
packages=(
    build-essential cmake pkg-config
    libssl-dev openssl
    libp11-dev libp11-kit-dev softhsm2 opensc
    libsqlite3-dev sqlite3
    check libinih-dev
    gnutls-bin ca-certificates clang-format
    libmodbus-dev libsystemd-dev libjson-c-dev
    libgtk-4-dev xvfb xauth procps
    clang libclang-rt-14-dev
    libengine-pkcs11-openssl acl time
)

missing=()
for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    if [ "$status" != "install ok installed" ]; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -gt 0 ]; then
    install_cmd="DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup.sh: missing Debian packages: ${missing[*]}" >&2
        echo "setup.sh: run as root:" >&2
        echo "  apt-get update && $install_cmd" >&2
        exit 1
    fi
    echo "setup.sh: installing ${#missing[@]} missing package(s): ${missing[*]}"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi

# Configure only when the build directory has never been configured, or was
# configured with the other sanitizer setting. CMake re-runs itself when a
# CMakeLists.txt changes, so nothing else needs a fresh configure.
cache="$repo/$builddir/CMakeCache.txt"
if [ ! -f "$cache" ] || ! grep -qx "LINECERT_SANITIZE:BOOL=$sanitize" "$cache"; then
    cmake -S "$repo" -B "$repo/$builddir" \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DLINECERT_SANITIZE="$sanitize"
fi
cmake --build "$repo/$builddir" -j"$(nproc)"

echo "setup.sh: built $builddir/ (RelWithDebInfo, sanitizers $sanitize): $repo/$builddir/linecert"
