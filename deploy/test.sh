#!/usr/bin/env bash
# deploy/test.sh — build with sanitizers and run every test, plus the format check.
#
# 1. deploy/setup.sh --sanitize  (packages if missing, build into build-asan/)
# 2. clang-format --dry-run --Werror over every *.c and *.h of the project
# 3. ctest in build-asan/ (the Check suites, with ASan, UBSan and LeakSanitizer)
#
# Exit status: ctest's status if a test failed; otherwise 1 if a test damaged
# /dev/null or a file is not formatted as .clang-format says; otherwise 0.
# The last line says which.
# (Suites that need a display will run under xvfb-run once the UI lands.)
set -euo pipefail

if [ $# -gt 0 ]; then
    case $1 in
    -h | --help)
        echo "usage: deploy/test.sh   (builds build-asan/, checks formatting, runs ctest)"
        exit 0
        ;;
    *)
        echo "test.sh: unknown option: $1" >&2
        exit 2
        ;;
    esac
fi

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$repo"

bash "$repo/deploy/setup.sh" --sanitize

# Formatting: every *.c/*.h outside build trees and the demo state must be
# exactly as clang-format (with the committed .clang-format) would write it.
fmt=ok
fmt_failed=0
if command -v clang-format >/dev/null 2>&1; then
    mapfile -d '' sources < <(find . \( -path ./.git -o -path './build*' -o -path ./state \) -prune \
        -o -type f \( -name '*.c' -o -name '*.h' \) -print0 | sort -z)
    unformatted=()
    for f in "${sources[@]}"; do
        if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
            unformatted+=("${f#./}")
        fi
    done
    echo "test.sh: clang-format --dry-run --Werror: ${#sources[@]} files, ${#unformatted[@]} not formatted"
    if [ ${#unformatted[@]} -gt 0 ]; then
        fmt="failed (${#unformatted[@]} files)"
        fmt_failed=1
        printf '  needs clang-format: %s\n' "${unformatted[@]}" >&2
        echo "  see the changes with: clang-format --dry-run FILE; fix with: clang-format -i FILE" >&2
    fi
else
    fmt="not checked (clang-format missing)"
    echo "test.sh: warning: clang-format is not installed; formatting not checked" >&2
fi

# A test must not damage the machine it runs on. One way seen here: a program
# that writes its output "atomically" (temporary file + rename) replaces the
# /dev/null device with a regular file when it runs as root with --out /dev/null.
devnull_broken=0
devnull_was_ok=0
if [ -c /dev/null ]; then devnull_was_ok=1; fi

rc=0
ctest --test-dir "$repo/build-asan" --output-on-failure -j2 --timeout 600 || rc=$?

if [ "$devnull_was_ok" -eq 1 ] && [ ! -c /dev/null ]; then
    devnull_broken=1
    echo "test.sh: a test replaced /dev/null with a regular file; restore it as root with:" >&2
    echo "  mknod -m 666 /dev/null.new c 1 3 && mv -f /dev/null.new /dev/null" >&2
fi

if [ "$rc" -ne 0 ]; then
    echo "test.sh: FAILED: ctest exit status $rc (see the output above); formatting $fmt"
    exit "$rc"
fi
if [ "$devnull_broken" -ne 0 ]; then
    echo "test.sh: FAILED: all tests passed, but a test replaced /dev/null; formatting $fmt"
    exit 1
fi
if [ "$fmt_failed" -ne 0 ]; then
    echo "test.sh: FAILED: all tests passed, but formatting $fmt: run clang-format -i on them"
    exit 1
fi
echo "test.sh: PASSED: all tests passed (ASan/UBSan build); formatting $fmt"
