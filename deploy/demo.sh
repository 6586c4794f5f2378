#!/usr/bin/env bash
# deploy/demo.sh — a demo PKI in SoftHSM2 and a few device certificates.
#
# Builds linecert (deploy/setup.sh), creates a root, a factory CA and three
# line CAs in SoftHSM2 tokens (`linecert pki init`), then acts as the jig for
# six devices on the three lines: makes a device key and CSR with openssl,
# has linecert issue the certificate, prints it and checks its chain with
# `openssl verify`. It shows one refusal (a CSR whose CN is not a valid
# registration ID) and finishes with `linecert audit verify`.
#
# Everything goes into $LINECERT_DEMO_DIR (default: state/demo in the repo).
# Each run starts again from scratch (`pki init --force`, new audit log).
# --headless and --duration N are accepted and ignored for now: they are for
# the station daemon demo, which will run for N seconds without the UI.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: deploy/demo.sh [--headless] [--duration N]

Builds linecert, creates a demo PKI in SoftHSM2 and issues six device
certificates on three lines, with one policy refusal and an audit check.
State goes to $LINECERT_DEMO_DIR (default: <repo>/state/demo).
--headless and --duration N are accepted and ignored (reserved for the daemon demo).
EOF
}

while [ $# -gt 0 ]; do
    case $1 in
    --headless) ;;
    --duration)
        if [ $# -lt 2 ]; then
            echo "demo.sh: --duration needs a number of seconds" >&2
            exit 2
        fi
        shift
        ;;
    --duration=*) ;;
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

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
bash "$repo/deploy/setup.sh"

linecert="$repo/build/linecert"
state=${LINECERT_DEMO_DIR:-$repo/state/demo}
lines=3
devices=6

say() { printf '\n== %s\n' "$*"; }

# Runs a command quietly; on failure shows what it printed and stops the demo.
quiet() {
    local log rc=0
    log=$(mktemp)
    "$@" >"$log" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "demo.sh: failed (exit $rc): $*" >&2
        cat "$log" >&2
        rm -f "$log"
        exit "$rc"
    fi
    rm -f "$log"
}

say "Demo PKI in $state"
mkdir -p "$(dirname "$state")"
# A fresh demo: the audit log and the device files of an earlier run go too
# (pki init --force replaces the tokens, keys and CA certificates, but never
# touches an audit log). Only files this script makes are removed.
rm -f "$state/audit.db" "$state/audit.db-wal" "$state/audit.db-shm"
rm -rf "$state/devices"
"$linecert" pki init --dir "$state" --lines "$lines" --force
conf="$state/station.ini"
mkdir -p "$state/devices"
chmod 700 "$state/devices"

summary=()
for n in $(seq 1 "$devices"); do
    line=$(((n - 1) % lines + 1))
    name="demo-device-$n"
    key="$state/devices/$name.key"
    csr="$state/devices/$name.csr"
    pem="$state/devices/$name.pem"

    say "$name on line $line"
    quiet openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -subj "/CN=$name" -keyout "$key" -out "$csr"
    echo "\$ linecert issue --config station.ini --line $line --csr devices/$name.csr --out devices/$name.pem"
    "$linecert" issue --config "$conf" --line "$line" --csr "$csr" --out "$pem"
    openssl x509 -noout -subject -issuer -serial -in "$pem"
    openssl verify -x509_strict -purpose sslclient -CAfile "$state/root.pem" \
        -untrusted "$state/factory.pem" -untrusted "$state/line-$line.pem" "$pem"
    serial=$(openssl x509 -noout -serial -in "$pem")
    summary+=("$(printf '%-15s line %s  %s  chain OK' "$name" "$line" "${serial#serial=}")")
done

say "A CSR the policy refuses: CN \"bad device!\" is not a registration ID"
bad="$state/devices/bad-device"
quiet openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj "/CN=bad device!" -keyout "$bad.key" -out "$bad.csr"
echo "\$ linecert issue --config station.ini --line 1 --csr devices/bad-device.csr --out devices/bad-device.pem"
rc=0
refusal=$("$linecert" issue --config "$conf" --line 1 --csr "$bad.csr" --out "$bad.pem" 2>&1) || rc=$?
echo "$refusal"
if [ "$rc" -ne 3 ]; then
    echo "demo.sh: expected exit status 3 (refused), got $rc" >&2
    exit 1
fi
echo "exit status $rc: refused, as expected; no certificate was written"

say "Audit log"
echo "\$ linecert audit verify --config station.ini"
"$linecert" audit verify --config "$conf"

say "Summary"
for s in "${summary[@]}"; do
    echo "  $s"
done
echo "  bad-device      line 1  refused (exit 3): ${refusal#linecert: refused: }"
echo
echo "  PKI, PINs and tokens:  $state  (station.ini, root.pem, factory.pem, line-N.pem)"
echo "  device keys and certs: $state/devices"
echo "  audit log:             $state/audit.db"
echo "  try:  $linecert audit export --config $conf --format csv"
echo "demo.sh: OK: $devices certificates issued and verified, 1 refused, audit log verifies"
