#!/usr/bin/env bash
# soak-pipeline.sh — memory of the issuance pipeline over a million issuances.
#
# The daemon soak (soak-16.sh) is bounded by the jig simulator's processes,
# about 100 devices/s here, so a million issuances through linecertd take
# hours.  This runs the same pipeline (CSR policy -> signer -> durable audit
# row -> chain) in one `linecert bench --count COUNT` process on a fresh demo
# PKI, and every INTERVAL seconds samples that process's and its signer's
# VmRSS and RssAnon from /proc and the number of certificates issued so far
# from the audit store (sqlite3, read-only).  Prints bench's own figures,
# then first/peak/last memory over the issuance phase, growth per 100,000
# issuances, and about ten samples.
#
# What the bench process holds besides the pipeline: all COUNT device CSRs,
# made before the signer starts (about 230 bytes each), and an 8-byte latency
# per request that is first written when the request completes — so its
# RssAnon grows by 8 bytes per issuance (~780 kB per 100k) for reasons of the
# benchmark alone.  The signer process holds nothing of the benchmark.
#
# Usage: tests/bench/soak-pipeline.sh [--count N] [--threads T] [--interval S] [--samples FILE]
#                                     [--build-dir DIR]
#   defaults: --count 1000000 --threads 2 --interval 5, --build-dir $LINECERT_BUILD or build/;
#   --samples FILE keeps every sample (columns as printed) for plotting.
# Needs: sqlite3 (the command-line shell).
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${LINECERT_BUILD:-$here/build}
count=1000000
threads=2
interval=5
samples_out=

usage() {
    echo "usage: $0 [--count N] [--threads T] [--interval S] [--samples FILE] [--build-dir DIR]" >&2
    exit 2
}
number() { [[ $2 =~ ^[1-9][0-9]*$ ]] || { echo "soak-pipeline.sh: $1 needs a positive whole number, not '$2'" >&2; usage; }; }
while [ $# -gt 0 ]; do
    case $1 in
    --count) number "$1" "${2-}"; count=$2; shift 2 ;;
    --threads) number "$1" "${2-}"; threads=$2; shift 2 ;;
    --interval) number "$1" "${2-}"; interval=$2; shift 2 ;;
    --samples) [ $# -ge 2 ] || usage; samples_out=$2; shift 2 ;;
    --build-dir) [ $# -ge 2 ] || usage; build=$(cd "$2" && pwd); shift 2 ;;
    *) usage ;;
    esac
done
command -v sqlite3 >/dev/null || { echo "soak-pipeline.sh: sqlite3 is missing: apt-get install sqlite3" >&2; exit 1; }
[ -x "$build/linecert" ] || { echo "soak-pipeline.sh: $build/linecert is missing: build the tree first (or pass --build-dir)" >&2; exit 1; }
. "$here/tests/bench/soak-common.sh"

load_before=$(cut -d' ' -f1 /proc/loadavg) # other work on the machine skews the rates
work=$(mktemp -d /tmp/linecert-soakp-XXXXXX)
bench=
cleanup() {
    if [ -n "$bench" ]; then kill "$bench" 2>/dev/null || true; fi
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
"$build/linecert" pki init --dir "$work/pki" --lines 1 >/dev/null
db=$work/pki/audit.db

"$build/linecert" bench --config "$work/pki/station.ini" --line 1 --count "$count" --threads "$threads" \
    >"$work/bench.out" 2>"$work/bench.err" &
bench=$!
t0=$(date +%s.%N)
seq_seen=0 # audit rows already counted
issued=0
signer=
prep_s=
# issued_now: adds the `issued` rows written since the last call to $issued.
issued_now() {
    local r
    [ -f "$db" ] || return 0
    r=$(sqlite3 -readonly "$db" "SELECT count(*) FILTER (WHERE kind = 'issued'), coalesce(max(seq), $seq_seen)
                                 FROM audit WHERE seq > $seq_seen" 2>/dev/null) || return 0
    issued=$(( issued + ${r%|*} ))
    seq_seen=${r#*|}
}
elapsed() { awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
while kill -0 "$bench" 2>/dev/null; do
    if [ -z "$signer" ]; then
        # The signer starts once the CSRs are made: from then on the pipeline runs.
        signer=$(pgrep -P "$bench" linecert-signer | head -n 1 || true)
        [ -n "$signer" ] && prep_s=$(elapsed) && echo "prep_rss_kb $(proc_kb "$bench" VmRSS)" >"$work/prep"
    fi
    if [ -n "$signer" ]; then
        issued_now
        # Only while issuing: once the last certificate is out, bench sorts the
        # latencies (8 more bytes per request) and stops the signer.
        s_rss=$(proc_kb "$signer" VmRSS)
        if [ "$issued" -lt "$count" ] && [ "$s_rss" -gt 0 ]; then
            echo "$(elapsed) $issued $(proc_kb "$bench" VmRSS) $(proc_kb "$bench" RssAnon)" \
                "$s_rss $(proc_kb "$signer" RssAnon)" >>"$work/samples"
        fi
    fi
    for _ in $(seq $(( interval * 4 ))); do kill -0 "$bench" 2>/dev/null || break; sleep 0.25; done
done
rc=0
wait "$bench" || rc=$?
bench=
[ "$rc" -eq 0 ] || { echo "soak-pipeline.sh: linecert bench failed (exit $rc): $(tail -n 2 "$work/bench.err")" >&2; exit 1; }
issued_now

echo "load_average_before: $load_before"
echo "count: $count"
echo "threads: $threads"
echo "csr_prep_s (before the signer starts): ${prep_s:-?}"
echo "total_s: $(elapsed)"
echo "issued_in_audit_store: $issued"
sed -n 's/^\(raw_sign_per_s\|issue_per_s\|failed\|station_cpu_us_per_cert\|signer_cpu_us_per_cert\|rows_per_commit\|max_rss_kb\|signer_max_rss_kb\): /bench_\1: /p' \
    "$work/bench.out"
[ -f "$work/prep" ] && sed 's/^prep_rss_kb /bench_rss_kb_when_csrs_made: /' "$work/prep"
# Samples of the issuance phase: from the first issued certificate on.
soak_summary "$work/samples" bench signer 1
awk -v n="$count" 'BEGIN { printf "note: bench_* includes the benchmark'"'"'s latency array, 8 bytes per issuance: %.0f kB per 100k, %.0f kB over the run\n", 800000 / 1024, n * 8 / 1024 }'
if [ -n "$samples_out" ]; then
    { echo "t_s issued bench_rss_kb bench_anon_kb signer_rss_kb signer_anon_kb"; cat "$work/samples"; } >"$samples_out"
fi
"$build/linecert" audit verify --config "$work/pki/station.ini"
