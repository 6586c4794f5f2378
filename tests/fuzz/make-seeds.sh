#!/bin/sh
# make-seeds.sh — regenerates the seed corpora in tests/fuzz/corpus/.
#
#   tests/fuzz/make-seeds.sh [--build-dir DIR]
#
# csr/ and jig/ are made with the openssl CLI (fresh keys: the bytes differ
# from run to run, the set of cases does not); config/ is written here;
# audit/, proto/ and plc/ come from make_seeds (make_seeds.c), built in the
# fuzz build tree (default build-fuzz/ at the repository root), so they are
# exactly what the project's own encoders produce.  Needs: openssl, clang,
# cmake.  Overwrites the corpus directories.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build="$root/build-fuzz"
while [ $# -gt 0 ]; do
    case "$1" in
    --build-dir) build=$2; shift 2 ;;
    *) echo "usage: $0 [--build-dir DIR]" >&2; exit 2 ;;
    esac
done

CC=clang cmake -S "$root" -B "$build" -DLINECERT_FUZZ=ON -DLINECERT_TESTS=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j2 --target make_seeds >/dev/null

corpus="$here/corpus"
work=$(mktemp -d /tmp/linecert-seeds-XXXXXX)
trap 'rm -rf "$work"' EXIT
for t in csr jig config proto plc audit; do
    rm -rf "${corpus:?}/$t"
    mkdir -p "$corpus/$t"
done

# ---- keys -------------------------------------------------------------------------------
key() { # name genpkey-args...
    n=$1; shift
    openssl genpkey "$@" -out "$work/$n.key" 2>/dev/null
}
key p256 -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -pkeyopt ec_param_enc:named_curve
key p384 -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -pkeyopt ec_param_enc:named_curve
key k256 -algorithm EC -pkeyopt ec_paramgen_curve:secp256k1
key p256x -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -pkeyopt ec_param_enc:explicit
key rsa2048 -algorithm RSA -pkeyopt rsa_keygen_bits:2048
key rsa4096 -algorithm RSA -pkeyopt rsa_keygen_bits:4096
key rsa1024 -algorithm RSA -pkeyopt rsa_keygen_bits:1024
key rsae3 -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -pkeyopt rsa_keygen_pubexp:3
key ed25519 -algorithm ED25519

# Printable strings in the subject instead of UTF8String (openssl's default).
cat >"$work/printable.cnf" <<'EOF'
[req]
distinguished_name = dn
string_mask = default
[dn]
EOF

# req NAME KEY SUBJECT [openssl req options...]: DER into $work/NAME.der, PEM into NAME.pem
req() {
    n=$1 k=$2 subj=$3; shift 3
    openssl req -new -key "$work/$k.key" -subj "$subj" "$@" -outform DER -out "$work/$n.der"
    openssl req -inform DER -in "$work/$n.der" -out "$work/$n.pem"
}

# ---- csr: CSR intake and policy ------------------------------------------------------------
c="$corpus/csr"
req ec256 p256 /CN=SN1-000042 -sha256
req ec384 p384 /CN=SN1-000043 -sha384
req ec256-sha512 p256 /CN=dev.1_a:b -sha512
req rsa2048 rsa2048 /CN=SN1-000044 -sha256
req rsa4096 rsa4096 "/O=Example/CN=SN1-000045" -sha384
req san p256 /CN=SN1-000046 -sha256 -addext "subjectAltName=DNS:dev.example.com,IP:10.0.0.1"
req attrs p256 /CN=SN1-000047 -sha256 -addext "keyUsage=digitalSignature" \
    -addext "extendedKeyUsage=clientAuth"
req printable p256 /CN=SN1-000048 -sha256 -config "$work/printable.cnf"
req sha1 p256 /CN=SN1-000049 -sha1
req rsa-sha1 rsa2048 /CN=SN1-000050 -sha1
req rsa1024 rsa1024 /CN=SN1-000051 -sha256
req rsae3 rsae3 /CN=SN1-000052 -sha256
req k256 k256 /CN=SN1-000053 -sha256
req explicit p256x /CN=SN1-000054 -sha256
req ed25519 ed25519 /CN=SN1-000055
req no-cn p256 "/O=Example" -sha256
req two-cn p256 "/CN=SN1-000056/CN=SN1-000057" -sha256
req multi-rdn p256 "/CN=SN1-000058+O=Example" -sha256 -multivalue-rdn
req cn-space p256 "/CN=SN1 000059" -sha256
req cn-dot-end p256 "/CN=SN1-000060." -sha256
req cn-64 p256 "/CN=A123456789012345678901234567890123456789012345678901234567890123" -sha256
req cn-utf8 p256 "/CN=SN1-Ä00061" -sha256 -utf8
for n in ec256 ec384 ec256-sha512 rsa2048 rsa4096 san attrs printable sha1 rsa-sha1 rsa1024 rsae3 \
    k256 explicit ed25519 no-cn two-cn multi-rdn cn-space cn-dot-end cn-64 cn-utf8; do
    cp "$work/$n.der" "$c/$n.der"
done
cp "$work/ec256.pem" "$c/ec256.pem"
cp "$work/rsa2048.pem" "$c/rsa2048.pem"
sed 's/CERTIFICATE REQUEST/NEW CERTIFICATE REQUEST/' "$work/ec384.pem" >"$c/ec384-new.pem"
# The last signature byte changed: a structurally perfect CSR without proof of possession.
head -c -1 "$work/ec256.der" >"$c/bad-signature.der"
printf '\001' >>"$c/bad-signature.der"
cmp -s "$c/bad-signature.der" "$work/ec256.der" && printf '\002' | dd of="$c/bad-signature.der" \
    bs=1 seek=$(($(wc -c <"$work/ec256.der") - 1)) conv=notrunc 2>/dev/null

# ---- jig: what a jig program prints for `csr SERIAL` (CN SN1-000042 is the expected device) ----
j="$corpus/jig"
cp "$work/ec256.pem" "$j/pem"
cp "$work/ec256.der" "$j/der"
cp "$work/rsa2048.pem" "$j/rsa-pem-mismatch"
sed 's/$/\r/' "$work/ec256.pem" >"$j/crlf"
sed 's/CERTIFICATE REQUEST/NEW CERTIFICATE REQUEST/' "$work/ec256.pem" >"$j/new-label"
{ printf 'jig-fw 2.1 connected on /dev/ttyUSB0\nreading CSR from secure element...\n'
  cat "$work/ec256.pem"; printf 'done in 412 ms\n'; } >"$j/banner"
{ cat "$work/ec256.pem"; cat "$work/ec384.pem"; } >"$j/two-blocks"
{ printf -- '-----BEGIN CERTIFICATE REQUEST-----\nProc-Type: 4,ENCRYPTED\n'
  printf 'DEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\n'
  sed '1d' "$work/ec256.pem"; } >"$j/encrypted-header"
sed 's/CERTIFICATE REQUEST/CERTIFICATE/' "$work/ec256.pem" >"$j/wrong-label"
sed '1d;$d' "$work/ec256.pem" >"$j/base64-only"
# A banner longer than 256 bytes: the PEM is not looked for that far, the output is taken as DER.
{ i=0; while [ $i -lt 6 ]; do printf 'jig: self-test step %d of 6 passed, continuing...\n' $i
  i=$((i + 1)); done; cat "$work/ec256.pem"; } >"$j/long-banner"
# Over 16 KiB (refused as too-large), under the jig's 64 KiB cap.
{ i=0; while [ $i -lt 400 ]; do printf 'trace %04d: secure element status 0x9000 ok\n' $i
  i=$((i + 1)); done; cat "$work/ec256.pem"; } >"$j/too-large"
printf 'ERROR: no device in jig\n' >"$j/error-text"

# ---- config: station.ini variants (@DIR@ is the fuzz target's scratch directory) -----------
g="$corpus/config"
cat >"$g/minimal.ini" <<'EOF'
[station]
audit_db = audit.db
pkcs11_module = @DIR@/module.so
pin_file = pin

[line.1]
ca_key = pkcs11:token=linecert-lines;object=line-1;type=private
chain = chain.pem
EOF
cat >"$g/full.ini" <<'EOF'
# every key (docs/config.md)
[station]
audit_db = @DIR@/audit.db
pkcs11_module = @DIR@/module.so
pin_file = pin
softhsm2_conf = softhsm2.conf
signer = @DIR@/jig
signer_threads = 4
not_before_skew_s = 600
control_socket = linecertd.sock
shifts = 06:00,14:00,22:00
crl_dir = crl
crl_next_update_hours = 168

[line.1]
name = Enclosure A
ca_key = pkcs11:token=linecert-lines;object=line-1;type=private
chain = chain.pem
validity_days = 3650
subject_o = Example Devices Ltd
subject_ou = Plant 1
plc = modbus-tcp://10.0.0.5:502
plc_unit = 1
plc_base = 0
poll_ms = 20
jig = exec:@DIR@/jig --port /dev/ttyUSB0
jig_timeout_ms = 5000
registration_id = %s
revoke_superseded = yes

[line.B-2]
name: Enclosure B ; a comment
ca_key = pkcs11:token=linecert-lines;id=%01%02
chain = @DIR@/chain.pem
plc = modbus-tcp://[::1]:1502
jig = exec:@DIR@/jig
registration_id = acme-%s-x
EOF
printf '[station]\r\naudit_db = audit.db\r\npkcs11_module = @DIR@/module.so\r\npin_file = pin\r\n[line.1]\r\nca_key = pkcs11:token=t;object=k\r\nchain = chain.pem\r\n' >"$g/crlf.ini"
sed 's/^pin_file = pin$/pin_file = pin-open/' "$g/minimal.ini" >"$g/pin-readable.ini"
sed 's/^chain = chain.pem$/chain = missing.pem/' "$g/minimal.ini" >"$g/missing-chain.ini"
sed 's/^ca_key = .*/ca_key = pkcs11:object=line-1/' "$g/minimal.ini" >"$g/uri-no-token.ini"
{ cat "$g/minimal.ini"; printf 'registration_id = %%s-%%d\n'; } >"$g/bad-template.ini"
{ cat "$g/minimal.ini"; printf 'validity_days = 0x10\npoll_ms = 99999999999999999999\n'; } \
    >"$g/bad-number.ini"
{ cat "$g/minimal.ini"; printf '[line.1]\nchain = chain.pem\n'; } >"$g/given-twice.ini"
{ cat "$g/minimal.ini"; printf '[other]\nkey = value\n'; } >"$g/unknown-section.ini"
{ cat "$g/minimal.ini"; printf 'plc = modbus-tcp://host:0\n'; } >"$g/bad-port.ini"
{ cat "$g/minimal.ini"; printf 'jig = exec:relative/jig\n'; } >"$g/jig-relative.ini"
{ cat "$g/minimal.ini"; printf '  indented continuation\n'; } >"$g/syntax.ini"
{ cat "$g/minimal.ini"; printf '[line.unterminated\n'; } >"$g/unclosed-section.ini"
{ cat "$g/minimal.ini"; printf 'name = %0250d\n' 0; } >"$g/long-line.ini"
{ sed -n '1,5p' "$g/minimal.ini"; i=0; while [ $i -lt 65 ]; do
    printf '[line.%d]\nca_key = pkcs11:token=t;object=k%d\nchain = chain.pem\n' $i $i
    i=$((i + 1)); done; } >"$g/too-many-lines.ini"
printf '[station]\naudit_db = audit.db\n' >"$g/missing-keys.ini"

# ---- proto, plc, audit: the project's own encoders -------------------------------------------
"$build/make_seeds" proto "$corpus/proto"
"$build/make_seeds" plc "$corpus/plc"
"$build/make_seeds" audit "$corpus/audit"

# ---- regression seeds: inputs that once found a bug (tests/fuzz/README.md, findings) ----------
# 1. minute_counts totals near INT64_MAX overflowed the UI's sums (db/stats.c).
cp "$corpus/audit/station" "$corpus/audit/minute-counts-overflow"
sqlite3 "$corpus/audit/minute-counts-overflow" "UPDATE minute_counts SET n = 9223372036854775807"
# 2. a PEM label with terminal escapes reached refusal details unfiltered (hsm/policy.c).
printf -- '-----BEGIN CERT\033[31mX-----\nMIIB\n-----END CERT\033[31mX-----\n' >"$corpus/jig/pem-label-escape"
# 4. an EC key that is the point at infinity passed with a forged proof of possession (hsm/policy.c).
"$build/make_seeds" csr "$corpus/csr"

for t in csr jig config proto plc audit; do
    printf '%-7s %3d seeds %7d bytes\n' "$t" "$(find "$corpus/$t" -type f | wc -l)" \
        "$(cat "$corpus/$t"/* | wc -c)"
done
