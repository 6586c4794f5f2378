#!/bin/sh
# run.sh — builds the libFuzzer targets and runs each for a bounded time.
#
#   tests/fuzz/run.sh [--seconds N] [--long] [--target NAME]... [--build-dir DIR]
#                     [--parallel 1|2] [--keep-corpus DIR] [-- LIBFUZZER-FLAGS...]
#
#   --seconds N      run each target N seconds (libFuzzer -max_total_time; default 10)
#   --long           the documented long run: 300 seconds per target, two at a time
#   --target NAME    only this target (csr, config, jig, proto, plc, audit); repeatable
#   --build-dir DIR  the fuzz build tree (default build-fuzz/ at the repository root);
#                    configured with CC=clang -DLINECERT_FUZZ=ON, separate from every
#                    other build
#   --parallel N     targets run at the same time (1 or 2; default 1, --long 2)
#   --keep-corpus D  copy each target's final working corpus to D/NAME (for the record)
#   -- FLAGS         passed to every libFuzzer run (e.g. -- -seed=1 -dict=...)
#
# The seed corpus (tests/fuzz/corpus/NAME) is copied to a temporary working
# corpus first: nothing is ever written into the repository.  One summary line
# per target: executions, exec/s, libFuzzer's final cov: and ft:, corpus size
# (seeds -> end) and the result.  A crash, leak, sanitizer report, failed
# check, timeout or out-of-memory keeps its input in BUILD/fuzz-artifacts/ and
# makes the script exit 1.  Needs clang, libclang-rt-14-dev and cmake.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build="$root/build-fuzz"
seconds=10
parallel=1
targets=""
keep=""
all="csr config jig proto plc audit"
usage() {
    sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}
while [ $# -gt 0 ]; do
    case "$1" in
    --seconds) seconds=${2:?}; shift 2 ;;
    --long) seconds=300; parallel=2; shift ;;
    --target) targets="$targets ${2:?}"; shift 2 ;;
    --build-dir) build=${2:?}; shift 2 ;;
    --parallel) parallel=${2:?}; shift 2 ;;
    --keep-corpus) keep=${2:?}; shift 2 ;;
    --) shift; break ;;
    *) usage ;;
    esac
done
case "$seconds" in '' | *[!0-9]*) usage ;; esac
case "$parallel" in 1 | 2) ;; *) echo "run.sh: --parallel is 1 or 2 (2 cores)" >&2; exit 2 ;; esac
[ -n "$targets" ] || targets=$all
for t in $targets; do
    case " $all " in *" $t "*) ;; *) echo "run.sh: no target \"$t\" (one of: $all)" >&2; exit 2 ;; esac
done
command -v clang >/dev/null || { echo "run.sh: clang not found (apt-get install clang)" >&2; exit 2; }

start=$(date +%s)
work=$(mktemp -d /tmp/linecert-fuzz-run-XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "fuzz: building in $build"
CC=clang cmake -S "$root" -B "$build" -DLINECERT_FUZZ=ON -DLINECERT_TESTS=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$work/configure.log" 2>&1 ||
    { cat "$work/configure.log" >&2; exit 2; }
cmake --build "$build" -j2 --target fuzzers >"$work/build.log" 2>&1 ||
    { tail -n 40 "$work/build.log" >&2; exit 2; }
built=$(date +%s)
echo "fuzz: built in $((built - start)) s; $seconds s per target, $parallel at a time"

artifacts="$build/fuzz-artifacts"
mkdir -p "$artifacts"

export TMPDIR="$work" # the targets' scratch directories and SQLite's temporary files
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

# run_one NAME [FLAGS...]: fuzzes one target, writes $work/NAME.log and $work/NAME.summary.
run_one() {
    t=$1; shift
    corpus="$work/corpus-$t"
    mkdir -p "$corpus" "$artifacts/$t"
    cp "$here/corpus/$t"/* "$corpus"/
    seeds=$(find "$corpus" -type f | wc -l)
    if [ -f "$here/$t.dict" ]; then
        set -- -dict="$here/$t.dict" "$@"
    fi
    rc=0
    # An input that takes 10 s (a hang) or makes the target use 2 GB is a finding.
    "$build/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$artifacts/$t/" "$@" "$corpus" \
        >"$work/$t.log" 2>&1 || rc=$?
    log="$work/$t.log"
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    last=$(grep -E '^#[0-9]+[[:space:]]' "$log" | tail -n 1)
    cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    files=$(find "$corpus" -type f | wc -l)
    bytes=$(find "$corpus" -type f -exec cat {} + | wc -c)
    result=ok
    if [ "$rc" -ne 0 ]; then
        if grep -q 'ERROR: LeakSanitizer' "$log"; then result=LEAK
        elif grep -q 'ALARM: working on the last Unit' "$log"; then result=TIMEOUT
        elif grep -q 'out-of-memory' "$log"; then result=OOM
        elif grep -q 'runtime error:' "$log"; then result=UBSAN
        elif grep -q 'ERROR: AddressSanitizer' "$log"; then result=ASAN
        elif grep -q 'fuzz check failed' "$log"; then result=CHECK
        else result="FAIL(rc=$rc)"; fi
    fi
    printf 'fuzz_%-7s execs=%-9s exec/s=%-6s cov=%-5s ft=%-5s corpus=%d->%d (%d B) %s\n' \
        "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "$seeds" "$files" "$bytes" \
        "$result" >"$work/$t.summary"
    if [ "$result" != ok ]; then
        cp "$log" "$artifacts/$t/fuzz.log"
        unit=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
        {
            grep -E 'fuzz check failed|runtime error:|ERROR: [A-Za-z]+Sanitizer|SUMMARY:' "$log" |
                head -n 4 | sed 's/^/    /'
            echo "    log: $artifacts/$t/fuzz.log"
            if [ -n "$unit" ]; then
                echo "    input: $unit (reproduce: $build/fuzz_$t $unit)"
            fi
        } >>"$work/$t.summary"
    fi
    if [ -n "$keep" ]; then
        rm -rf "${keep:?}/$t"
        mkdir -p "$keep/$t"
        cp "$corpus"/* "$keep/$t"/
    fi
}

running=0
for t in $targets; do
    run_one "$t" "$@" &
    running=$((running + 1))
    if [ "$running" -ge "$parallel" ]; then
        wait
        running=0
    fi
done
wait

failed=0
for t in $targets; do
    cat "$work/$t.summary"
    grep -q ' ok$' "$work/$t.summary" || failed=1
done
echo "fuzz: $(($(date +%s) - start)) s in all (build $((built - start)) s)"
exit $failed
