#!/bin/sh
# soak.sh — the fault suite (tests/fault/README.md), long: the same test
# program as ctest's `fault`, with sizes for an overnight-style run.
#
#   tests/fault/soak.sh [BUILD_DIR]
#
# BUILD_DIR defaults to build-asan/ (deploy/test.sh's sanitizer build), then
# build/.  Sizes can be overridden from the environment:
#
#   LC_FAULT_DAEMON_KILLS  kill -9 of linecertd            (default 1000)
#   LC_FAULT_SIGNER_KILLS  kill -9 of linecert-signer      (default 1000)
#   LC_FAULT_PLC_REQUESTS  abused PLC requests per line    (default 300)
#   LC_FAULT_JIG_ROUNDS    rounds of the jig behaviours    (default 10)
#   LC_FAULT_DISK_CYCLES   disk full/free cycles under load (default 20)
#   LC_FAULT_IO_BOTH       N-th write: EIO and ENOSPC for every N (default 1)
#   LC_FAULT_CHECK_EVERY   full store check (verify, integrity_check, the
#                          invariants) after every Nth kill    (default 10;
#                          ctest: 1).  The jig log is checked after every kill
#                          and everything at the end of each loop: with 1 the
#                          checks of a store of 30,000 rows make each kill
#                          seconds long.
#   LC_FAULT_SEED          reproduce an earlier run's kill points and abuse
#   LC_FAULT_KEEP          keep the test folders (logs, stores) afterwards
#   CK_RUN_CASE            one test case only, e.g. "kill -9 loops"
#
# The full log goes to soak-YYYYmmdd-HHMMSS.log in the current directory; the
# "fault:" lines (one per test, with its figures) and Check's verdict are
# printed.  Exit status: the test program's (0 = every check passed).
set -eu

repo=$(cd "$(dirname "$0")/../.." && pwd -P)
build=${1:-}
if [ -z "$build" ]; then
    if [ -x "$repo/build-asan/test_fault" ]; then
        build=$repo/build-asan
    else
        build=$repo/build
    fi
fi
build=$(cd "$build" && pwd -P)
if [ ! -x "$build/test_fault" ]; then
    echo "soak.sh: $build/test_fault is not built (cmake --build $build --target test_fault)" >&2
    exit 2
fi

export LC_FAULT_DAEMON_KILLS="${LC_FAULT_DAEMON_KILLS:-1000}"
export LC_FAULT_SIGNER_KILLS="${LC_FAULT_SIGNER_KILLS:-1000}"
export LC_FAULT_PLC_REQUESTS="${LC_FAULT_PLC_REQUESTS:-300}"
export LC_FAULT_JIG_ROUNDS="${LC_FAULT_JIG_ROUNDS:-10}"
export LC_FAULT_DISK_CYCLES="${LC_FAULT_DISK_CYCLES:-20}"
export LC_FAULT_IO_BOTH="${LC_FAULT_IO_BOTH:-1}"
export LC_FAULT_CHECK_EVERY="${LC_FAULT_CHECK_EVERY:-10}"
# The environment ctest gives the suite (tests/fault/CMakeLists.txt).
export LINECERT_BUILD_DIR="$build"
export LINECERT_SOURCE_DIR="$repo"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:fast_unwind_on_malloc=0}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$repo/tests/lsan.supp:print_suppressions=0}"

log=$PWD/soak-$(date +%Y%m%d-%H%M%S).log
echo "soak.sh: $build/test_fault: daemon kills $LC_FAULT_DAEMON_KILLS, signer kills" \
    "$LC_FAULT_SIGNER_KILLS, PLC requests $LC_FAULT_PLC_REQUESTS/line, jig rounds" \
    "$LC_FAULT_JIG_ROUNDS, disk cycles $LC_FAULT_DISK_CYCLES; log $log"
start=$(date +%s)
rc=0
"$build/test_fault" >"$log" 2>&1 || rc=$?
grep -E '^(fault:|[0-9]+%:|.*:[EF]:)' "$log" || true
echo "soak.sh: exit $rc after $(($(date +%s) - start)) s"
exit "$rc"
