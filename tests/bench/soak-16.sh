#!/usr/bin/env bash
# soak-16.sh — linecertd's memory over a long run on many simulated lines.
#
# Runs a fresh demo PKI with LINES lines (default 16), the PLC simulator
# raising ISSUANCES requests in all (spread over the lines, back to back:
# takt 0), the jig simulator (one key and two process runs per device: the
# only jig there is, and what bounds the rate here) and linecertd (release
# build).  Every INTERVAL seconds it samples the daemon's and its signer's
# VmRSS and RssAnon from /proc and the issued count from `linecert status`,
# then prints, one `name: value` per line: the simulator's counts, the run
# time and issuance rate, CPU per issuance, first/peak/last memory of both
# processes, their growth per 100,000 issuances, and about ten samples.
#
# The jig simulator keeps two files per device; devices finished for more
# than two minutes are deleted as the run goes, so that a long soak does not
# fill the disk (a device is re-asked only within its request, < 30 s).
#
# Usage: tests/bench/soak-16.sh [--issuances N] [--lines L] [--interval S]
#                               [--poll-ms P] [--samples FILE] [--build-dir DIR]
#   defaults: --issuances 100000 --lines 16 --interval 5, poll_ms the station
#   default, --build-dir $LINECERT_BUILD or build/; --samples FILE keeps every
#   sample (columns as printed) for plotting.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${LINECERT_BUILD:-$here/build}
issuances=100000
lines=16
interval=5
poll_ms=
samples_out=

usage() {
    echo "usage: $0 [--issuances N] [--lines L] [--interval S] [--poll-ms P] [--samples FILE] [--build-dir DIR]" >&2
    exit 2
}
number() { [[ $2 =~ ^[1-9][0-9]*$ ]] || { echo "soak-16.sh: $1 needs a positive whole number, not '$2'" >&2; usage; }; }
while [ $# -gt 0 ]; do
    case $1 in
    --issuances) number "$1" "${2-}"; issuances=$2; shift 2 ;;
    --lines) number "$1" "${2-}"; lines=$2; shift 2 ;;
    --interval) number "$1" "${2-}"; interval=$2; shift 2 ;;
    --poll-ms) number "$1" "${2-}"; poll_ms=$2; shift 2 ;;
    --samples) [ $# -ge 2 ] || usage; samples_out=$2; shift 2 ;;
    --build-dir) [ $# -ge 2 ] || usage; build=$(cd "$2" && pwd); shift 2 ;;
    *) usage ;;
    esac
done
[ "$lines" -le 64 ] || { echo "soak-16.sh: at most 64 lines (the configuration's limit)" >&2; exit 2; }
for p in linecert linecertd linecert-signer linecert-plc-sim linecert-jig-sim; do
    [ -x "$build/$p" ] || { echo "soak-16.sh: $build/$p is missing: build the tree first (or pass --build-dir)" >&2; exit 1; }
done
. "$here/tests/bench/soak-common.sh"

per_line=$(( (issuances + lines - 1) / lines ))
work=$(mktemp -d /tmp/linecert-soak-XXXXXX)
sim=
daemon=
cleanup() {
    # Only the processes this script started, by their ids.
    if [ -n "$sim" ]; then kill "$sim" 2>/dev/null || true; fi
    if [ -n "$daemon" ]; then kill "$daemon" 2>/dev/null || true; fi
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

"$build/linecert" pki init --dir "$work/pki" --lines "$lines" >/dev/null
mkdir -p "$work/jig"
"$build/linecert-plc-sim" --listen 127.0.0.1:0 --lines "$lines" --takt-ms 0 --count "$per_line" \
    --wait-heartbeat >"$work/sim.out" 2>"$work/sim.err" &
sim=$!
for _ in $(seq 100); do grep -q '^listening on' "$work/sim.out" && break; sleep 0.05; done
port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$work/sim.out")
[ -n "$port" ] || { echo "soak-16.sh: the PLC simulator did not start: $(cat "$work/sim.err")" >&2; exit 1; }
for n in $(seq "$lines"); do
    extra="plc = modbus-tcp://127.0.0.1:$port\nplc_base = $(( (n - 1) * 64 ))"
    extra="$extra\njig = exec:$build/linecert-jig-sim --dir $work/jig --ca $work/pki/root.pem"
    [ -n "$poll_ms" ] && extra="$extra\npoll_ms = $poll_ms"
    sed -i "s|^chain = line-$n-chain.pem$|&\n$extra|" "$work/pki/station.ini"
done
"$build/linecertd" --config "$work/pki/station.ini" >"$work/daemon.log" 2>&1 &
daemon=$!
signer=
for _ in $(seq 100); do
    signer=$(pgrep -P "$daemon" linecert-signer | head -n 1 || true)
    [ -n "$signer" ] && break
    kill -0 "$daemon" 2>/dev/null || { echo "soak-16.sh: linecertd exited: $(tail -n 1 "$work/daemon.log")" >&2; exit 1; }
    sleep 0.1
done
[ -n "$signer" ] || { echo "soak-16.sh: linecertd started no signer" >&2; exit 1; }

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
issued_now() {
    "$build/linecert" status --config "$work/pki/station.ini" --json 2>/dev/null |
        grep -o '"issued": *[0-9]*' | awk -F: '{ s += $2 } END { print s + 0 }'
}
t0=$(date +%s.%N)
c0=$(( $(cpu_ticks "$daemon") + $(cpu_ticks "$signer") ))
sample() {
    local s
    s=$(pgrep -P "$daemon" linecert-signer | head -n 1 || true) # a restarted signer has a new pid
    [ -n "$s" ] && signer=$s
    echo "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') $(issued_now)" \
        "$(proc_kb "$daemon" VmRSS) $(proc_kb "$daemon" RssAnon)" \
        "$(proc_kb "$signer" VmRSS) $(proc_kb "$signer" RssAnon)" >>"$work/samples"
}
while kill -0 "$sim" 2>/dev/null; do
    kill -0 "$daemon" 2>/dev/null || { echo "soak-16.sh: linecertd died: $(tail -n 3 "$work/daemon.log")" >&2; exit 1; }
    sample
    find "$work/jig" -type f -name "[!.]*" -mmin +2 -delete 2>/dev/null || true # races with the jig: harmless
    # Sleep in steps, so that the end of the run is not missed by a whole interval.
    for _ in $(seq $(( interval * 4 ))); do kill -0 "$sim" 2>/dev/null || break; sleep 0.25; done
done
wait "$sim" || { echo "soak-16.sh: the PLC simulator failed: $(tail -n 2 "$work/sim.err")" >&2; exit 1; }
sim=
sample
t1=$(date +%s.%N)
c1=$(( $(cpu_ticks "$daemon") + $(cpu_ticks "$signer") ))
restarts=$("$build/linecert" status --config "$work/pki/station.ini" --json | grep -o '"restarts": *[0-9]*' |
    sed 's/.*: *//')
kill "$daemon"
wait "$daemon" || true
daemon=

total=$(grep '^total:' "$work/sim.out")
field() { awk -v k="$1" '{ for (i = 2; i < NF; i++) if ($i == k) print $(i + 1) }' <<<"$total"; }
issued=$(field issued)
echo "lines: $lines"
echo "requests: $(field requests)"
echo "issued: $issued"
echo "refused: $(field refused)"
echo "faults: $(field faults)"
echo "timeouts: $(field timeouts)"
echo "signer_restarts: $restarts"
echo "elapsed_s: $(field elapsed_s)"
echo "issued_per_s: $(field issued_per_s)"
awk -v r="$(field issued_per_s)" 'BEGIN { if (r > 0) printf "hours_for_1M_at_this_rate: %.1f\n", 1e6 / r / 3600 }'
awk -v c=$(( c1 - c0 )) -v hz="$(getconf CLK_TCK)" -v n="$issued" -v a="$t0" -v b="$t1" 'BEGIN {
    if (n > 0) printf "station_cpu_ms_per_issuance (daemon + signer): %.2f\n", c * 1000 / hz / n
    printf "station_cpu_share_of_2_cores: %.0f %%\n", c / hz / (b - a) / 2 * 100 }'
soak_summary "$work/samples" daemon signer 1
if [ -n "$samples_out" ]; then
    { echo "t_s issued daemon_rss_kb daemon_anon_kb signer_rss_kb signer_anon_kb"; cat "$work/samples"; } >"$samples_out"
fi
"$build/linecert" audit verify --config "$work/pki/station.ini"
