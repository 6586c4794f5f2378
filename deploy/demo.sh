#!/usr/bin/env bash
# deploy/demo.sh — the station running simulated production lines.
#
# Builds linecert (deploy/setup.sh), creates a demo PKI in SoftHSM2 tokens
# (`linecert pki init`: root, factory CA, three line CAs), starts the PLC
# simulator with three lines (one Modbus TCP server, a device every takt),
# and runs the station daemon linecertd against it: for each device the
# PLC raises a request, the station runs the jig simulator to get the
# device's CSR, issues through the HSM, commits the audit row, installs the
# chain in the "device" and answers the PLC.
#
# With a display, the operator UI (linecert-ui) shows the lines; without one
# (or with --headless) a refreshing `linecert status` does. --duration N
# stops after N seconds (default: until Ctrl-C or the window closes; 30 s
# when headless). The demo ends with a summary: issued/refused/faults per
# line and the audit log's verification.
#
# State goes to $LINECERT_DEMO_DIR (default: <repo>/state/demo); each run
# starts from scratch.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: deploy/demo.sh [--headless] [--duration SECONDS] [--takt-ms MS]

Builds linecert, creates a demo PKI in SoftHSM2 and runs linecertd on three
simulated lines (PLC + jig simulators). Shows the operator UI when a display
is available, else `linecert status`. Ends with a per-line summary and
`linecert audit verify`. State: $LINECERT_DEMO_DIR (default <repo>/state/demo).
EOF
}

headless=0
duration=
takt=400
while [ $# -gt 0 ]; do
    case $1 in
    --headless) headless=1 ;;
    --duration)
        [ $# -ge 2 ] || { echo "demo.sh: --duration needs a number of seconds" >&2; exit 2; }
        duration=$2
        shift
        ;;
    --duration=*) duration=${1#--duration=} ;;
    --takt-ms)
        [ $# -ge 2 ] || { echo "demo.sh: --takt-ms needs a number" >&2; exit 2; }
        takt=$2
        shift
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        echo "demo.sh: unknown option: $1" >&2
        usage >&2
        exit 2
        ;;
    esac
    shift
done
case ${duration:-0} in
'' | *[!0-9]*)
    echo "demo.sh: --duration must be whole seconds" >&2
    exit 2
    ;;
esac
if [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then headless=1; fi
if [ "$headless" = 1 ] && [ -z "$duration" ]; then duration=30; fi

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
bash "$repo/deploy/setup.sh"

build="$repo/build"
linecert="$build/linecert"
state=${LINECERT_DEMO_DIR:-$repo/state/demo}
lines=3
conf="$state/station.ini"
pids=()

say() { printf '\n== %s\n' "$*"; }

cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "Demo PKI in $state"
mkdir -p "$(dirname "$state")"
# A fresh demo: the audit log and device state of an earlier run go too
# (pki init --force replaces tokens, keys and CA certificates only).
rm -f "$state/audit.db" "$state/audit.db-wal" "$state/audit.db-shm"
rm -rf "$state/jig" "$state/devices"
"$linecert" pki init --dir "$state" --lines "$lines" --force
mkdir -p "$state/jig"
chmod 700 "$state/jig"

say "PLC simulator: $lines lines, a device every $takt ms per line"
"$build/linecert-plc-sim" --listen 127.0.0.1:0 --lines "$lines" --takt-ms "$takt" \
    --wait-heartbeat --summary-json "$state/plc-sim.json" >"$state/plc-sim.log" 2>&1 &
sim=$!
pids+=("$sim")
for _ in $(seq 100); do
    grep -q '^listening on' "$state/plc-sim.log" && break
    sleep 0.05
done
port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$state/plc-sim.log")
if [ -z "$port" ]; then
    cat "$state/plc-sim.log" >&2
    echo "demo.sh: the PLC simulator did not start" >&2
    exit 1
fi
echo "listening on 127.0.0.1:$port"
for n in $(seq "$lines"); do
    sed -i "s|^chain = line-$n-chain.pem$|&\nplc = modbus-tcp://127.0.0.1:$port\nplc_base = $(((n - 1) * 64))\njig = exec:$build/linecert-jig-sim --dir $state/jig --ca $state/root.pem\njig_timeout_ms = 5000|" "$conf"
done

say "linecertd --config $conf"
"$build/linecertd" --config "$conf" >"$state/linecertd.log" 2>&1 &
daemon=$!
pids=("$daemon" "${pids[@]}")
for _ in $(seq 100); do
    grep -q 'ready:' "$state/linecertd.log" && break
    sleep 0.05
done
if ! grep 'ready:' "$state/linecertd.log"; then
    cat "$state/linecertd.log" >&2
    echo "demo.sh: linecertd did not start" >&2
    exit 1
fi

start=$(date +%s)
if [ "$headless" = 0 ] && [ -x "$build/linecert-ui" ]; then
    say "Operator UI (close the window to end the demo)"
    if [ -n "$duration" ]; then
        timeout "$duration" "$build/linecert-ui" --config "$conf" || true
    else
        "$build/linecert-ui" --config "$conf" || true
    fi
else
    say "Station status${duration:+ for $duration s} (Ctrl-C ends the demo)"
    while :; do
        "$linecert" status --config "$conf" || true
        if [ -n "$duration" ] && [ $(($(date +%s) - start)) -ge "$duration" ]; then break; fi
        sleep 3
        echo
    done
fi

say "Stopping: the PLC simulator prints its summary, linecertd drains and exits"
kill -TERM "$sim" 2>/dev/null || true
wait "$sim" 2>/dev/null || true
kill -TERM "$daemon" 2>/dev/null || true
rc=0
wait "$daemon" || rc=$?
pids=()
echo "linecertd exit status $rc"

say "Summary"
grep -E '^(line [0-9]+|total):' "$state/plc-sim.log" | sed 's/ issued_count_reg [0-9]*//; s/ max_heartbeat_gap_ms [0-9]*//'
echo
echo "\$ linecert audit verify --config $conf"
"$linecert" audit verify --config "$conf"
echo
echo "  station log:  $state/linecertd.log"
echo "  audit log:    $state/audit.db   (try: $linecert audit export --config $conf --format csv)"
if [ "$rc" -ne 0 ]; then
    echo "demo.sh: linecertd exited $rc" >&2
    exit 1
fi
echo "demo.sh: OK"
