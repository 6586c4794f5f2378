#!/bin/sh
# selftest.sh — checks the simulators themselves (ctest: sim_selftest).
#
#   selftest.sh PLC_SIM JIG_SIM PLC_CLIENT_PROBE
#
# The PLC simulator is driven by plc-client-probe (a station stand-in on the
# wire); the jig simulator by the openssl CLI, which plays a throwaway CA.
set -eu

abs() { case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
PLC_SIM=$(abs "$1")
JIG_SIM=$(abs "$2")
PROBE=$(abs "$3")
T=$(mktemp -d)
SIM_PID=
cleanup() {
    [ -n "$SIM_PID" ] && kill "$SIM_PID" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# ---- jig simulator ---------------------------------------------------------
mkdir "$T/dev"
"$JIG_SIM" --dir "$T/dev" csr SN1-000001 >"$T/a.csr"
"$JIG_SIM" --dir "$T/dev" --key rsa-2048 csr SN1-000001 >"$T/b.csr"
openssl req -in "$T/a.csr" -noout -verify 2>/dev/null || fail "CSR does not verify"
openssl req -in "$T/a.csr" -noout -subject | grep -q 'CN *= *SN1-000001$' || fail "CSR subject"
[ "$(openssl req -in "$T/a.csr" -noout -pubkey)" = "$(openssl req -in "$T/b.csr" -noout -pubkey)" ] ||
    fail "a second csr for the same serial has another key"
[ "$(stat -c %a "$T/dev/SN1-000001.key")" = 600 ] || fail "key file mode"
"$JIG_SIM" --dir "$T/dev" csr ../x 2>/dev/null && fail "serial with / accepted"
"$JIG_SIM" --dir "$T/dev" csr .x 2>/dev/null && fail "serial with leading . accepted"
[ "$("$JIG_SIM" --dir "$T/dev" --garbage csr G | wc -c)" -eq 102400 ] || fail "--garbage size"

# A throwaway root -> line CA -> leaf for the CSR, as the station would make.
cd "$T"
cat >ca.ext <<'EOF'
basicConstraints=critical,CA:TRUE,pathlen:0
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
EOF
cat >leaf.ext <<'EOF'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
EOF
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout root.key \
    -out root.pem -subj /CN=SimRoot -days 2 \
    -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ica.key -out ica.csr \
    -subj /CN=SimLineCA 2>/dev/null
openssl x509 -req -in ica.csr -CA root.pem -CAkey root.key -CAcreateserial -out ica.pem \
    -days 2 -extfile ca.ext 2>/dev/null
openssl x509 -req -in a.csr -CA ica.pem -CAkey ica.key -CAcreateserial -out leaf.pem \
    -days 1 -extfile leaf.ext 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout o.key -out o.csr \
    -subj /CN=SN1-000001 2>/dev/null
openssl x509 -req -in o.csr -CA ica.pem -CAkey ica.key -CAcreateserial -out other.pem \
    -days 1 -extfile leaf.ext 2>/dev/null

cat leaf.pem ica.pem | "$JIG_SIM" --dir dev --ca root.pem install SN1-000001 ||
    fail "install of a good chain"
[ -s dev/SN1-000001.chain.pem ] || fail "chain not stored"
cat other.pem ica.pem | "$JIG_SIM" --dir dev --ca root.pem install SN1-000001 2>/dev/null &&
    fail "install of a certificate for another key"
cat leaf.pem | "$JIG_SIM" --dir dev --ca root.pem install SN1-000001 2>/dev/null &&
    fail "install without the intermediate"
rc=0
cat leaf.pem ica.pem | "$JIG_SIM" --dir dev --fail-install install SN1-000001 2>/dev/null || rc=$?
[ "$rc" -eq 3 ] || fail "--fail-install exit $rc"
cd - >/dev/null

# ---- PLC simulator -----------------------------------------------------------
"$PLC_SIM" --listen 127.0.0.1:0 --lines 2 --base 100 --stride 50 --takt-ms 5 --count 20 \
    --summary-json "$T/sum.json" >"$T/sim.out" 2>"$T/sim.err" &
SIM_PID=$!
PORT=
for _ in $(seq 100); do
    PORT=$(sed -n 's/^listening on .*:\([0-9][0-9]*\)$/\1/p' "$T/sim.out")
    [ -n "$PORT" ] && break
    sleep 0.05
done
[ -n "$PORT" ] || fail "plc sim did not start: $(cat "$T/sim.err")"
"$PROBE" --connect "127.0.0.1:$PORT" --base 100 --count 20 --pattern 2,2,2,3:9 >"$T/p1.out" &
P1=$!
"$PROBE" --connect "127.0.0.1:$PORT" --base 150 --count 20 --reconnect-every 3 \
    --pattern 2,4:23 >"$T/p2.out" &
P2=$!
wait "$P1" || fail "probe 1"
wait "$P2" || fail "probe 2"
wait "$SIM_PID" || fail "plc sim exit status"
SIM_PID=
grep -q '^line 1: requests 20 issued 15 refused 5 faults 0 timeouts 0 issued_count_reg 15 p50_ms ' \
    "$T/sim.out" || fail "line 1 summary: $(cat "$T/sim.out")"
grep -q '^line 2: requests 20 issued 10 refused 0 faults 10 timeouts 0 issued_count_reg 10 p50_ms ' \
    "$T/sim.out" || fail "line 2 summary: $(cat "$T/sim.out")"
grep -q '^total: requests 40 issued 25 refused 5 faults 10 timeouts 0 ' "$T/sim.out" ||
    fail "total summary"
grep -q '"serial":"SN2-000020"' "$T/sum.json" || grep -q '"serial": *"SN2-000020"' "$T/sum.json" ||
    fail "records in the JSON summary"
grep -q 'seq 4 serial SN1-000004 result 3 reason 9' "$T/p1.out" || fail "probe saw the serials"
echo "simulators ok"
