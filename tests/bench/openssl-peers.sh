#!/usr/bin/env bash
# openssl-peers.sh — linecert against the two usual openssl ways of issuing
# device certificates, on the same SoftHSM2 token and the same line CA key.
#
# One demo PKI (`linecert pki init --lines 1`).  Then, with the line CA key
# reached through the OpenSSL pkcs11 engine (libp11's, package
# libengine-pkcs11-openssl):
#   peer 1  a factory script: one `openssl x509 -req ... -CAkeyform engine`
#           process per certificate, COUNT certificates;
#   peer 2  one `openssl ca -batch -keyform engine -infiles CSR...` process over
#           CA_COUNT CSRs (no per-certificate durability, no audit);
#   linecert `linecert bench --count BENCH_COUNT --threads 2` (issue_per_s):
#           every certificate with a durable, hash-chained audit row.
# The CSRs are made up front (not timed), one device key for all, as `linecert
# bench` does.  Both peers get the extensions of linecert's leaf profile.
#
# Every peer certificate is checked with `openssl verify` (X.509 strict,
# purpose sslclient) up to the demo root, and the script proves that the
# signatures came from the token: the line CA key on the token is sensitive,
# never extractable and was generated there, its public key is the line CA
# certificate's, and the same openssl command with a wrong PIN signs nothing.
#
# Prints one `name: value` per line: the rates (certificates per wall-clock
# second) and the ratios the issue's targets are about, and also CPU time per
# certificate (user + system of every process involved), which other work on
# the machine skews less than the rates — the load average before and after
# is printed so that a disturbed run shows.  Exit 1 (with the reason
# on stderr) if a check fails.  The PIN reaches openssl through `-passin file:` (the engine's
# `pin-source=` is broken in libp11 0.4.12), and pkcs11-tool gets it on its
# command line: this is a throw-away token in a temporary directory.
#
# Usage: tests/bench/openssl-peers.sh [--count N] [--ca-count N] [--bench-count N]
#                                     [--key-type ec-p256|ec-p384|rsa-2048|rsa-3072]
#                                     [--build-dir DIR]
#   defaults: --count 200 --ca-count 2000 --bench-count 20000 --key-type ec-p256,
#   --build-dir $LINECERT_BUILD or build/
# Needs: openssl, libengine-pkcs11-openssl, opensc (pkcs11-tool), softhsm2.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${LINECERT_BUILD:-$here/build}
count=200
ca_count=2000
bench_count=20000 # ~2 s: a fresh store's first 5,000 rows also pay for growing its WAL file
key_type=ec-p256

die() {
    echo "openssl-peers.sh: $*" >&2
    exit 1
}
usage() {
    echo "usage: $0 [--count N] [--ca-count N] [--bench-count N] [--key-type TYPE] [--build-dir DIR]" >&2
    exit 2
}
number() { [[ $2 =~ ^[1-9][0-9]*$ ]] || { echo "openssl-peers.sh: $1 needs a positive whole number, not '$2'" >&2; usage; }; }
while [ $# -gt 0 ]; do
    case $1 in
    --count) number "$1" "${2-}"; count=$2; shift 2 ;;
    --ca-count) number "$1" "${2-}"; ca_count=$2; shift 2 ;;
    --bench-count) number "$1" "${2-}"; bench_count=$2; shift 2 ;;
    --key-type) [ $# -ge 2 ] || usage; key_type=$2; shift 2 ;;
    --build-dir) [ $# -ge 2 ] || usage; build=$(cd "$2" && pwd); shift 2 ;;
    *) usage ;;
    esac
done

engine=$(openssl version -e | sed -n 's/^ENGINESDIR: "\(.*\)"$/\1/p')/pkcs11.so
[ -f "$engine" ] || die "the OpenSSL pkcs11 engine ($engine) is missing: apt-get install libengine-pkcs11-openssl"
command -v pkcs11-tool >/dev/null || die "pkcs11-tool is missing: apt-get install opensc"
[ -x "$build/linecert" ] || die "$build/linecert is missing: build the tree first (or pass --build-dir)"

load_before=$(cut -d' ' -f1 /proc/loadavg) # other work on the machine skews every figure
work=$(mktemp -d /tmp/linecert-peers-XXXXXX)
trap 'rm -rf "$work"' EXIT
pki=$work/pki
"$build/linecert" pki init --dir "$pki" --lines 1 --key-type "$key_type" >/dev/null

# --- the line's key and chain, as the station sees them (station.ini) -------
# ini_get SECTION KEY: the value of KEY in [SECTION] of station.ini.
ini_get() {
    awk -v sec="[$1]" -v key="$2" '
        /^[ \t]*\[/ { insec = ($0 == sec) ; next }
        insec && $0 ~ "^[ \t]*" key "[ \t]*[=:]" { sub(/^[^=:]*[=:][ \t]*/, ""); sub(/[ \t]+$/, ""); print; exit }
    ' "$pki/station.ini"
}
# A relative path in station.ini is relative to the file's directory.
ini_path() {
    local v
    v=$(ini_get "$1" "$2")
    [ -n "$v" ] || die "station.ini has no $2 in [$1]"
    case $v in /*) echo "$v" ;; *) echo "$pki/$v" ;; esac
}
module=$(ini_get station pkcs11_module)
pin_file=$(ini_path station pin_file)
export SOFTHSM2_CONF
SOFTHSM2_CONF=$(ini_path station softhsm2_conf)
uri=$(ini_get line.1 ca_key)
chain=$(ini_path line.1 chain)
export PKCS11_MODULE_PATH=$module # the engine loads this module instead of p11-kit-proxy
token=$(sed -n 's/.*[:;]token=\([^;?]*\).*/\1/p' <<<"$uri")
label=$(sed -n 's/.*[:;]object=\([^;?]*\).*/\1/p' <<<"$uri")
if [ -z "$token" ] || [ -z "$label" ]; then
    die "cannot read token= and object= from the line key URI $uri"
fi
# The chain file is line CA, factory CA, root; the line CA certificate is its first block.
awk '{ print } /-----END CERTIFICATE-----/ { exit }' "$chain" >"$work/lineca.pem"
root=$pki/root.pem

# --- proof that the line key lives on the token and only there -------------
pin=$(head -n 1 "$pin_file")
pkcs11-tool --module "$module" --token-label "$token" --login --pin "$pin" \
    --list-objects --type privkey --label "$label" >"$work/key.txt" 2>&1 ||
    die "pkcs11-tool cannot list the line key $label on token $token: $(tail -n 1 "$work/key.txt")"
if ! grep -q 'never extractable' "$work/key.txt" || ! grep -q 'sensitive' "$work/key.txt" ||
    ! grep -qw 'local' "$work/key.txt"; then
    die "the line key $label on token $token is not sensitive, never-extractable and generated on the token: $(tr '\n' ' ' <"$work/key.txt")"
fi
pkcs11-tool --module "$module" --token-label "$token" --read-object --type pubkey --label "$label" \
    --output-file "$work/tokenpub.der" >/dev/null 2>&1 || die "cannot read the public key $label from token $token"
token_pub=$(openssl pkey -pubin -inform DER -in "$work/tokenpub.der" -outform DER | sha256sum)
cert_pub=$(openssl x509 -in "$work/lineca.pem" -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum)
[ "$token_pub" = "$cert_pub" ] || die "the token's key $label is not the key of the line CA certificate in $chain"
unset pin

# --- device CSRs, made up front ---------------------------------------------
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/device.key" 2>/dev/null
mkdir -p "$work/csr" "$work/x509" "$work/ca/certs"
for i in $(seq "$count"); do
    openssl req -new -key "$work/device.key" -subj "/CN=peer-x509-$i" -out "$work/csr/x$i.csr"
done
for i in $(seq "$ca_count"); do
    openssl req -new -key "$work/device.key" -subj "/CN=peer-ca-$i" -out "$work/csr/c$i.csr"
done

# The leaf extensions of linecert's profile (docs/profile.md), for both peers.
cat >"$work/ca.cnf" <<EOF
[ca]
default_ca = peer_ca
[peer_ca]
dir = $work/ca
database = \$dir/index.txt
new_certs_dir = \$dir/certs
certificate = $work/lineca.pem
rand_serial = yes
default_md = sha256
default_days = 3650
policy = policy_cn
x509_extensions = leaf
unique_subject = no
copy_extensions = none
email_in_dn = no
[policy_cn]
commonName = supplied
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
: >"$work/ca/index.txt"

# A wrong PIN must make the same command fail: the key is not found anywhere
# but on the token (no software fallback).  The engine may crash on the way
# out (libp11 0.4.12 after a failed login); any failure with no output is a pass.
printf 'not-the-pin\n' >"$work/wrong-pin"
if (
    openssl x509 -req -in "$work/csr/x1.csr" -CA "$work/lineca.pem" -CAkeyform engine \
        -engine pkcs11 -CAkey "$uri" -passin "file:$work/wrong-pin" -days 3650 -sha256 \
        -extfile "$work/ca.cnf" -extensions leaf -out "$work/wrong.pem" </dev/null
    exit $? # not exec'd: the subshell's own report of a crash goes to the log
) >"$work/wrong.log" 2>&1 || [ -s "$work/wrong.pem" ]; then
    die "openssl signed with a wrong PIN: the engine did not use the token"
fi
grep -q 'PIN incorrect' "$work/wrong.log" ||
    die "the wrong-PIN control failed for another reason than the PIN: $(tail -n 1 "$work/wrong.log")"

now() { date +%s.%N; }
# children_cpu VAR: sets VAR to the CPU seconds (user + system) of this
# shell's finished children so far.  `times` must run in this shell, not in
# a pipeline or $(...): a subshell has no children of ours.  Other work on
# the two cores skews the rates in linecert's favour (a single-process peer
# loses more wall time than linecert's many threads do: measured, the ratios
# roughly double from load 1.5 to load 5); CPU per certificate is skewed
# less, though not nothing.  Compare rates only from runs on a quiet machine.
u0=0
u1=0
children_cpu() {
    times >"$work/times"
    printf -v "$1" '%s' "$(awk 'function s(v, a) { split(v, a, /[ms]/); return a[1] * 60 + a[2] }
                                NR == 2 { print s($1) + s($2) }' "$work/times")"
}

# --- peer 1: one openssl x509 -req process per certificate ------------------
children_cpu u0
t0=$(now)
for i in $(seq "$count"); do
    openssl x509 -req -in "$work/csr/x$i.csr" -CA "$work/lineca.pem" -CAkeyform engine \
        -engine pkcs11 -CAkey "$uri" -passin "file:$pin_file" -days 3650 -sha256 \
        -extfile "$work/ca.cnf" -extensions leaf -out "$work/x509/$i.pem" </dev/null 2>>"$work/x509.log" ||
        die "openssl x509 -req failed on CSR $i: $(tail -n 1 "$work/x509.log")"
done
t1=$(now)
children_cpu u1
x509_rate=$(awk -v n="$count" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", n / (b - a) }')
x509_cpu=$(awk -v n="$count" -v a="$u0" -v b="$u1" 'BEGIN { printf "%.0f", (b - a) * 1e6 / n }')
engines=$(grep -c '^Engine "pkcs11" set' "$work/x509.log" || true)
[ "$engines" -eq "$count" ] || die "only $engines of $count openssl x509 runs loaded the pkcs11 engine"

# --- peer 2: one openssl ca -batch process over all CSRs --------------------
csrs=()
for i in $(seq "$ca_count"); do csrs+=("$work/csr/c$i.csr"); done
children_cpu u0
t0=$(now)
openssl ca -batch -config "$work/ca.cnf" -engine pkcs11 -keyform engine -keyfile "$uri" \
    -passin "file:$pin_file" -notext -out "$work/ca/all.pem" -infiles "${csrs[@]}" \
    </dev/null >"$work/ca.log" 2>&1 || die "openssl ca -batch failed: $(tail -n 3 "$work/ca.log" | tr '\n' ' ')"
t1=$(now)
children_cpu u1
ca_rate=$(awk -v n="$ca_count" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", n / (b - a) }')
ca_cpu=$(awk -v n="$ca_count" -v a="$u0" -v b="$u1" 'BEGIN { printf "%.0f", (b - a) * 1e6 / n }')
grep -q '^Engine "pkcs11" set' "$work/ca.log" || die "openssl ca did not load the pkcs11 engine"

# --- every peer certificate verifies to the root through the line CA --------
verify() { # verify NAME EXPECTED FILE...
    local name=$1 want=$2 ok
    shift 2
    [ $# -eq "$want" ] || die "$name made $# certificates, expected $want"
    ok=$(openssl verify -x509_strict -purpose sslclient -CAfile "$root" -untrusted "$chain" "$@" 2>&1 |
        grep -c ': OK$' || true)
    [ "$ok" -eq "$want" ] || die "$name: only $ok of $want certificates verify to $root"
}
verify "openssl x509 -req" "$count" "$work"/x509/*.pem
verify "openssl ca -batch" "$ca_count" "$work"/ca/certs/*.pem
ca_certs=("$work"/ca/certs/*.pem)
for f in "$work/x509/1.pem" "${ca_certs[0]}"; do
    openssl x509 -in "$f" -noout -issuer | grep -q 'Line 1 CA' || die "$f was not issued by the line CA"
done

# --- linecert on the same token ---------------------------------------------
"$build/linecert" bench --config "$pki/station.ini" --line 1 --count "$bench_count" --threads 2 \
    >"$work/bench.out" 2>"$work/bench.err" || die "linecert bench failed: $(tail -n 1 "$work/bench.err")"
bench() { sed -n "s/^$1: //p" "$work/bench.out"; }
[ "$(bench failed)" = 0 ] || die "linecert bench: $(bench failed) requests failed"
"$build/linecert" audit verify --config "$pki/station.ini" >"$work/verify.out" 2>&1 ||
    die "audit verify after the bench: $(tail -n 1 "$work/verify.out")"
lc_rate=$(bench issue_per_s)
lc_cpu=$(( $(bench station_cpu_us_per_cert) + $(bench signer_cpu_us_per_cert) ))

echo "load_average_before: $load_before"
echo "key_type: $(bench key_type)"
echo "x509_loop_count: $count"
echo "x509_loop_per_s: $x509_rate"
echo "x509_loop_cpu_us_per_cert: $x509_cpu"
echo "ca_batch_count: $ca_count"
echo "ca_batch_per_s: $ca_rate"
echo "ca_batch_cpu_us_per_cert: $ca_cpu"
echo "linecert_count: $bench_count"
echo "linecert_threads: $(bench threads)"
echo "linecert_raw_sign_per_s: $(bench raw_sign_per_s)"
echo "linecert_issue_per_s: $lc_rate"
echo "linecert_cpu_us_per_cert (station + signer): $lc_cpu"
awk -v l="$lc_rate" -v x="$x509_rate" -v c="$ca_rate" -v lcc="$lc_cpu" -v xc="$x509_cpu" -v cc="$ca_cpu" 'BEGIN {
    printf "linecert_vs_x509_loop: %.1f\n", l / x
    printf "linecert_vs_ca_batch: %.1f\n", l / c
    printf "cpu_per_cert_x509_loop_vs_linecert: %.1f\n", xc / lcc
    printf "cpu_per_cert_ca_batch_vs_linecert: %.1f\n", cc / lcc
    printf "targets_met (>= 100x the x509 loop and >= 5x the ca batch): %s\n", (l >= 100 * x && l >= 5 * c) ? "yes" : "no"
}'
echo "load_average_after: $(cut -d' ' -f1 /proc/loadavg)"
echo "checks: $count + $ca_count peer certificates verify to the root; line key on the token is sensitive, never extractable, generated there; wrong PIN signs nothing; audit log $(head -n 1 "$work/verify.out" | cut -d, -f1)"
