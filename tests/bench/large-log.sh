#!/bin/sh
# large-log.sh — the audit store at scale (issue #6): issuance, `audit verify`
# and the operator UI's queries on a store of ROWS rows (default 10,000,000).
#
#   tests/bench/large-log.sh [--build-dir DIR] [--runs K] [--bench-count N] [--keep]
#                            [ROWS] [STORE_DIR]
#
# Makes a demo PKI in STORE_DIR (default: a fresh directory under $TMPDIR or
# /tmp; it must not exist yet), measures `linecert bench` on the empty store,
# fills the store to ROWS rows with audit-log-gen (real chained rows through
# audit_append: 4 lines, 30 days, ~600-byte certificates), measures bench
# again on the full store, `linecert audit verify` cold (page cache dropped,
# which needs root; otherwise said so) and warm, and ui-query-bench on the
# full store.  Prints one `name: value` per line, the figures at the end.
# Deletes STORE_DIR afterwards unless --keep.  A 10M-row store takes ~17 GB
# and about 6 minutes to generate on the reference machine.
#
#   --build-dir DIR  the build with linecert, audit-log-gen and ui-query-bench
#                    (default: build/ of this source tree, a release build)
#   --runs K         bench runs on each store; the median is reported (default 3)
#   --bench-count N  certificates per bench run (default 20000; a run of 5,000
#                    lasts ~0.4 s and varied by 15 % between runs on one store)
#   --keep           keep STORE_DIR
set -eu

here=$(cd "$(dirname "$0")" && pwd)
build="$here/../../build"
runs=3
keep=0
rows=10000000
dir=""
count=20000

usage() {
    echo "usage: $0 [--build-dir DIR] [--runs K] [--bench-count N] [--keep] [ROWS] [STORE_DIR]" >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
    --build-dir) [ $# -ge 2 ] || usage; build=$2; shift 2 ;;
    --build-dir=*) build=${1#*=}; shift ;;
    --runs) [ $# -ge 2 ] || usage; runs=$2; shift 2 ;;
    --runs=*) runs=${1#*=}; shift ;;
    --bench-count) [ $# -ge 2 ] || usage; count=$2; shift 2 ;;
    --bench-count=*) count=${1#*=}; shift ;;
    --keep) keep=1; shift ;;
    -h | --help) sed -n '2,25p' "$0"; exit 0 ;;
    -*) usage ;;
    *)
        if [ -z "${rows_set:-}" ]; then rows=$1; rows_set=1
        elif [ -z "$dir" ]; then dir=$1
        else usage; fi
        shift ;;
    esac
done
case "$rows" in '' | *[!0-9]*) usage ;; esac
case "$runs" in '' | *[!0-9]* | 0) usage ;; esac
case "$count" in '' | *[!0-9]* | 0) usage ;; esac
build=$(cd "$build" && pwd)
for p in linecert linecert-signer audit-log-gen ui-query-bench; do
    if [ ! -x "$build/$p" ]; then
        echo "large-log: $build/$p is missing: build it (cmake --build $build)" >&2
        exit 2
    fi
done
if [ ! -x /usr/bin/time ]; then
    echo "large-log: /usr/bin/time is missing (Debian package: time)" >&2
    exit 2
fi
if [ -z "$dir" ]; then
    dir=$(mktemp -d "${TMPDIR:-/tmp}/large-log-XXXXXX")
    rmdir "$dir"
fi
if [ -e "$dir" ]; then
    echo "large-log: $dir exists; give a directory that does not exist yet" >&2
    exit 2
fi
cleanup() {
    if [ "$keep" = 0 ]; then rm -rf "$dir"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "# $*" >&2; }
conf="$dir/station.ini"
db="$dir/audit.db"

# Median issue_per_s of $runs bench runs (each line's figures go to stderr).
bench() {
    i=0
    : >"$dir/bench.txt"
    while [ $i -lt "$runs" ]; do
        "$build/linecert" bench --config "$conf" --line 1 --count $count --threads 2 >"$dir/bench.out"
        r=$(sed -n 's/^issue_per_s: //p' "$dir/bench.out")
        log "bench run $((i + 1)): issue_per_s $r, $(grep -E '^(p99_ms|rows_per_commit)' "$dir/bench.out" | tr '\n' ' ')"
        echo "$r" >>"$dir/bench.txt"
        i=$((i + 1))
    done
    sort -n "$dir/bench.txt" | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'
}

# Wall seconds of a command, from /usr/bin/time; the command's output to stderr.
wall() {
    /usr/bin/time -f "%e" -o "$dir/time.out" "$@" >&2
    cat "$dir/time.out"
}

# Drops the page cache (root only).  Prints 1 if it did.
drop_caches() {
    if [ -w /proc/sys/vm/drop_caches ]; then
        sync
        echo 3 >/proc/sys/vm/drop_caches && echo 1 && return
    fi
    echo 0
}

log "demo PKI in $dir"
"$build/linecert" pki init --dir "$dir" --lines 4 >&2

log "bench on the empty store ($runs runs of $count)"
empty=$(bench)

log "filling the store to $rows rows"
"$build/audit-log-gen" --db "$db" --rows "$rows" >"$dir/gen.out"
cat "$dir/gen.out" >&2
gen_s=$(sed -n 's/^generate_s: //p' "$dir/gen.out")
gen_rate=$(sed -n 's/^generate_rows_per_s: //p' "$dir/gen.out")

log "bench on the full store ($runs runs of $count)"
full=$(bench)

log "audit verify, cold"
cold_dropped=$(drop_caches)
if [ "$cold_dropped" = 1 ]; then
    verify_cold=$(wall "$build/linecert" audit verify --config "$conf")
else
    log "cannot drop the page cache (not root): no cold figure"
    verify_cold=n/a
fi
log "audit verify, warm"
verify_warm=$(wall "$build/linecert" audit verify --config "$conf")

log "UI refresh queries"
"$build/ui-query-bench" --db "$db" --iterations 200 >"$dir/ui.out"
cat "$dir/ui.out" >&2
ui() { sed -n "s/^$1: //p" "$dir/ui.out"; }

store_bytes=$(($(stat -c %s "$db") + $(stat -c %s "$db-wal" 2>/dev/null || echo 0)))
echo "rows: $(ui rows)"
echo "store_bytes: $store_bytes"
echo "generate_s: $gen_s"
echo "generate_rows_per_s: $gen_rate"
echo "empty_issue_per_s: $empty"
echo "full_issue_per_s: $full"
echo "issue_ratio: $(awk -v a="$full" -v b="$empty" 'BEGIN {printf "%.3f", a / b}')"
echo "verify_cold_s: $verify_cold"
echo "verify_warm_s: $verify_warm"
echo "ui_first_refresh_ms: $(ui first_refresh_ms)"
echo "ui_refresh_p50_ms: $(ui refresh_p50_ms)"
echo "ui_refresh_p99_ms: $(ui refresh_p99_ms)"
echo "ui_refresh_max_ms: $(ui refresh_max_ms)"
echo "ui_refresh_cpu_p50_ms: $(ui refresh_cpu_p50_ms)"
echo "ui_refresh_cpu_p99_ms: $(ui refresh_cpu_p99_ms)"
echo "ui_filtered_p50_ms: $(ui filtered_p50_ms)"
echo "ui_filtered_p99_ms: $(ui filtered_p99_ms)"
if [ "$keep" = 1 ]; then echo "store_dir: $dir"; fi
