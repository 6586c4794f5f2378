#!/usr/bin/env bash
# daemon-latency.sh — trigger-to-ACK latency of linecertd on simulated lines.
#
# Runs a fresh demo PKI, the PLC simulator with LINES lines at TAKT ms and
# COUNT requests per line, the jig simulator and linecertd (release build),
# then prints, one `name: value` per line:
#   sim_p50_ms / sim_p99_ms        trigger -> ACK as the PLC sees it (includes the jig)
#   station_p50_ms / station_p99_ms the station's own time (request seen -> ACK written,
#                                   minus the jig program's run time), from linecert status
#   jig_p50_ms                      the jig simulator's own time (two process runs)
#   daemon_rss_kb, signer_rss_kb    resident memory at the end of the run
#   cpu_ms_per_line_per_s           daemon + signer CPU time per line per second of run
# Usage: tests/bench/daemon-latency.sh [LINES] [TAKT_MS] [COUNT]   (defaults 4 100 300)
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${LINECERT_BUILD:-$here/build}
lines=${1:-4}
takt=${2:-100}
count=${3:-300}
work=$(mktemp -d /tmp/linecert-bench-XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

"$build/linecert" pki init --dir "$work/pki" --lines "$lines" >/dev/null
mkdir -p "$work/jig"
port_file="$work/port"
"$build/linecert-plc-sim" --listen 127.0.0.1:0 --lines "$lines" --takt-ms "$takt" \
    --count "$count" --wait-heartbeat --summary-json "$work/sim.json" >"$work/sim.out" 2>&1 &
sim=$!
for _ in $(seq 100); do grep -q '^listening on' "$work/sim.out" && break; sleep 0.05; done
port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$work/sim.out")
for n in $(seq "$lines"); do
    sed -i "s|^chain = line-$n-chain.pem$|&\nplc = modbus-tcp://127.0.0.1:$port\nplc_base = $(( (n - 1) * 64 ))\njig = exec:$build/linecert-jig-sim --dir $work/jig --ca $work/pki/root.pem|" \
        "$work/pki/station.ini"
done
"$build/linecertd" --config "$work/pki/station.ini" >"$work/daemon.log" 2>&1 &
daemon=$!
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
sleep 1
signer=$(pgrep -P "$daemon" linecert-signer | head -1)
t0=$(date +%s.%N); c0=$(( $(cpu_ticks "$daemon") + $(cpu_ticks "$signer") ))
wait "$sim"
t1=$(date +%s.%N); c1=$(( $(cpu_ticks "$daemon") + $(cpu_ticks "$signer") ))
status=$("$build/linecert" status --config "$work/pki/station.ini" --json)
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
echo "lines: $lines"
echo "takt_ms: $takt"
echo "requests: $(( lines * count ))"
grep '^total:' "$work/sim.out" | awk '{for (i = 2; i < NF; i += 2) if ($i=="issued"||$i=="refused"||$i=="faults"||$i=="timeouts") print $i ": " $(i+1)}'
grep '^total:' "$work/sim.out" | awk '{for (i = 2; i < NF; i += 2) if ($i=="p50_ms"||$i=="p99_ms"||$i=="max_ms") print "sim_" $i ": " $(i+1)}'
field() { echo "$status" | grep -o "\"$1\": *[0-9.]*" | sed 's/.*: *//' | awk '{printf " %.2f", $1}'; }
echo "station_p50_ms_per_line:$(field station_p50)"
echo "station_p99_ms_per_line:$(field station_p99)"
echo "jig_p50_ms_per_line:$(field jig_p50)"
echo "daemon_rss_kb: $(rss "$daemon")"
echo "signer_rss_kb: $(rss "$signer")"
hz=$(getconf CLK_TCK)
awk -v c=$(( c1 - c0 )) -v hz="$hz" -v t0="$t0" -v t1="$t1" -v n="$lines" \
    'BEGIN { printf "cpu_ms_per_line_per_s: %.2f\n", c * 1000 / hz / (t1 - t0) / n }'
"$build/linecert" audit verify --config "$work/pki/station.ini"
