/*
 * make_seeds.c — writes the binary seed corpora of the fuzz targets with the
 * project's own encoders, so that seeds are exactly what the station and
 * the signer put on the wire or on disk.  Deterministic: fixed times,
 * serials and keys.  Run by make-seeds.sh; not part of any product.
 *
 *   make_seeds audit DIR  small real audit stores (audit_open, audit_append,
 *                         audit_mark_acked), each switched to a rollback
 *                         journal so it is one self-contained file
 *   make_seeds proto DIR  station <-> signer frames (proto_put, proto_send)
 *   make_seeds plc DIR    PLC register blocks (plc_encode_serial)
 *   make_seeds csr DIR    CSRs the openssl CLI cannot make (make-seeds.sh
 *                         makes the others): the regression seed of a
 *                         forged proof of possession for the point at infinity
 */
#include "audit.h"
#include "der.h"
#include "lcerr.h"
#include "plc.h"
#include "policy.h"
#include "profile.h"
#include "proto.h"

#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define T0_MS 1735718400000LL /* 2025-01-01T08:00Z */

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "make_seeds: %s: %s\n", what, detail);
    exit(1);
}

static void sha256_hex(const void *p, size_t n, char out[65])
{
    unsigned char md[32];
    unsigned int len = 0;

    if (EVP_Digest(p, n, md, &len, EVP_sha256(), NULL) != 1 || len != 32)
        die("sha256", "failed");
    lc_hex(md, sizeof md, 1, out);
}

/* A device certificate as the leaf profile builds it, with a placeholder signature. */
struct device {
    char regid[32];
    char serial[33];
    char thumb[65];
    char spki_hash[65];
    der_buf_t cert;
    audit_cert_t ac;
};

/* A Name of one CN (UTF8String). */
static void put_cn_name(der_buf_t *b, const char *cn)
{
    static const unsigned char oid_cn[] = {0x55, 0x04, 0x03};

    der_begin(b, DER_SEQUENCE);
    der_begin(b, DER_SET);
    der_begin(b, DER_SEQUENCE);
    der_put_oid(b, oid_cn, sizeof oid_cn);
    der_put_tlv(b, DER_UTF8STRING, cn, strlen(cn));
    der_end(b);
    der_end(b);
    der_end(b);
}

/* A P-256 SubjectPublicKeyInfo holding the encoded point as it is given. */
static void put_p256_spki(der_buf_t *b, const unsigned char *point, size_t len)
{
    static const unsigned char oid_ec[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01};
    static const unsigned char oid_p256[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};

    der_begin(b, DER_SEQUENCE);
    der_begin(b, DER_SEQUENCE);
    der_put_oid(b, oid_ec, sizeof oid_ec);
    der_put_oid(b, oid_p256, sizeof oid_p256);
    der_end(b);
    der_put_bits(b, point, len);
    der_end(b);
}

static void make_device(struct device *d, int n, const char *line)
{
    static const unsigned char sig[] = {0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01};
    unsigned char point[65];
    der_buf_t spki = {0}, name = {0}, tbs = {0};
    profile_issuer_t iss;
    profile_leaf_t leaf;
    lc_csr_t csr;

    memset(d, 0, sizeof *d);
    snprintf(d->regid, sizeof d->regid, "SN%s-%06d", line, n);
    point[0] = 0x04;
    for (int i = 1; i < 65; i++)
        point[i] = (unsigned char)(n * 31 + i * 7);
    put_p256_spki(&spki, point, sizeof point);
    put_cn_name(&name, "Line CA");

    memset(&csr, 0, sizeof csr);
    csr.spki = spki.p;
    csr.spki_len = spki.len;
    csr.key_bits = point;
    csr.key_bits_len = sizeof point;
    csr.key_type = LC_KEY_EC_P256;
    snprintf(csr.cn, sizeof csr.cn, "%s", d->regid);
    memset(&iss, 0, sizeof iss);
    iss.name_der = name.p;
    iss.name_len = name.len;
    memset(iss.ski, 0x5c, 20);
    iss.ski_len = 20;
    iss.key_type = LC_KEY_EC_P256;
    memset(&leaf, 0, sizeof leaf);
    leaf.csr = &csr;
    leaf.o = "Example Factory";
    for (int i = 0; i < PROFILE_SERIAL_LEN; i++)
        leaf.serial[i] = (unsigned char)(0x40 + n * 13 + i * 5);
    leaf.serial[0] = (unsigned char)(0x10 + n % 0x60); /* positive, no leading zero */
    leaf.not_before = T0_MS / 1000;
    leaf.not_after = T0_MS / 1000 + 3650LL * 86400;
    if (profile_leaf_tbs(&iss, &leaf, &tbs) != LC_OK ||
        profile_assemble(LC_KEY_EC_P256, tbs.p, tbs.len, sig, sizeof sig, &d->cert) != LC_OK)
        die("certificate", d->regid);
    profile_serial_hex(leaf.serial, PROFILE_SERIAL_LEN, d->serial);
    sha256_hex(d->cert.p, d->cert.len, d->thumb);
    sha256_hex(spki.p, spki.len, d->spki_hash);
    d->ac.serial = d->serial;
    d->ac.line = line;
    d->ac.registration_id = d->regid;
    d->ac.not_before = leaf.not_before;
    d->ac.not_after = leaf.not_after;
    d->ac.thumbprint = d->thumb;
    d->ac.der = d->cert.p;
    d->ac.der_len = d->cert.len;
    d->ac.spki_sha256 = d->spki_hash;
    der_buf_free(&spki);
    der_buf_free(&name);
    der_buf_free(&tbs);
}

struct store {
    audit_t *a;
    const char *path;
    int64_t ts;
};

static void append(struct store *s, const char *line, const char *kind, const char *regid,
                   const char *serial, const char *thumb, const char *reason, const char *detail,
                   const audit_cert_t *cert, const char *revokes)
{
    audit_entry_t e;
    char err[512], csr_hash[65];

    memset(&e, 0, sizeof e);
    e.row.ts_ms = (s->ts += 37000);
    e.row.actor = "linecertd";
    e.row.line = line;
    e.row.kind = kind;
    e.row.registration_id = regid;
    e.row.serial = serial;
    e.row.thumbprint = thumb;
    if (regid != NULL) {
        sha256_hex(regid, strlen(regid), csr_hash); /* stands in for the CSR's hash */
        e.row.csr_sha256 = csr_hash;
    }
    e.row.reason = reason;
    e.row.detail = detail;
    e.cert = cert;
    e.revokes = revokes;
    if (audit_append(s->a, &e, 1, err, sizeof err) != LC_OK)
        die("append", err);
}

static void issue(struct store *s, struct device *d, const char *kind, const char *detail)
{
    append(s, d->ac.line, kind, d->regid, d->serial, d->thumb, NULL, detail, &d->ac, NULL);
}

static void open_store(struct store *s, const char *dir, const char *name)
{
    static char path[4][512];
    static int next;
    char err[512];

    snprintf(path[next], sizeof path[next], "%s/%s", dir, name);
    s->path = path[next++];
    unlink(s->path);
    s->ts = T0_MS;
    if (audit_open(s->path, AUDIT_READWRITE, &s->a, err, sizeof err) != LC_OK)
        die("open", err);
}

/*
 * Closes the store and folds it into one file: rollback journal, compacted.
 * The station's page size is 4096; the seeds use 1024, which keeps them a
 * quarter of the size (every table and index takes at least one page)
 * without changing the code paths that read them.
 */
static void close_store(struct store *s)
{
    static const char sql[] = "PRAGMA journal_mode=DELETE; PRAGMA page_size=1024; VACUUM";
    char side[600];
    sqlite3 *db;

    audit_free(s->a);
    if (sqlite3_open_v2(s->path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
        sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        die(s->path, sqlite3_errmsg(db));
    sqlite3_close(db);
    snprintf(side, sizeof side, "%s-wal", s->path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", s->path);
    unlink(side);
}

static void audit_seeds(const char *dir)
{
    struct device dev[14];
    struct store s;
    char err[512], detail[200];
    sqlite3 *db;

    for (int i = 0; i < 14; i++)
        make_device(&dev[i], i + 1, i < 9 ? "1" : "2");

    open_store(&s, dir, "empty");
    close_store(&s);

    open_store(&s, dir, "small");
    issue(&s, &dev[0], "issued", "EC P-256, signer signature #1; PLC seq 1, device serial SN1");
    append(&s, "1", "refused", "bad id!", NULL, NULL, "cn-invalid",
           "CN \"bad id!\" (7 bytes) is not a registration ID", NULL, NULL);
    append(&s, "1", "fault", NULL, NULL, NULL, "jig-timeout",
           "jig program did not answer csr within 5000 ms (device SN1-000002)", NULL, NULL);
    close_store(&s);

    /* A working day on two lines: every kind of row the station writes. */
    open_store(&s, dir, "station");
    for (int i = 0; i < 6; i++) {
        snprintf(detail, sizeof detail, "EC P-256, signer signature #%d; PLC seq %d", i + 1, i + 1);
        issue(&s, &dev[i], "issued", detail);
        if (audit_mark_acked(s.a, dev[i].serial, err, sizeof err) != LC_OK)
            die("ack", err);
    }
    append(&s, "1", "refused", dev[2].regid, NULL, NULL, "cn-duplicate",
           "registration ID SN1-000003 already holds a certificate", NULL, NULL);
    append(&s, "1", "refused", NULL, NULL, NULL, "malformed",
           "not a DER SEQUENCE (or trailing data)", NULL, NULL);
    append(&s, "1", "refused", "SN1-000099", NULL, NULL, "bad-signature",
           "signature over the request does not verify with its public key", NULL, NULL);
    append(&s, "1", "fault", NULL, NULL, NULL, "hsm-unavailable", "token not present", NULL, NULL);
    for (int i = 9; i < 14; i++)
        issue(&s, &dev[i], "issued", "EC P-256; PLC seq 7");
    append(&s, "2", "refused", "SN2-000077", NULL, NULL, "cn-mismatch",
           "CSR CN \"SN2-000077\" is not the registration ID \"SN2-000078\"", NULL, NULL);
    issue(&s, &dev[6], "issued", "EC P-256; PLC seq 8");
    append(&s, "1", "redelivered", dev[6].regid, dev[6].serial, dev[6].thumb, NULL,
           "unacknowledged certificate delivered again", NULL, NULL);
    /* dev[7] re-issued for dev[1]'s registration ID, revoking the old one. */
    dev[7].ac.registration_id = dev[1].regid;
    dev[7].ac.supersedes = dev[1].serial;
    append(&s, "1", "reissued", dev[1].regid, dev[7].serial, dev[7].thumb, NULL,
           "re-issue replacing the old certificate: key compromise", &dev[7].ac, NULL);
    append(&s, "1", "revoked", dev[1].regid, dev[1].serial, NULL, "superseded",
           "revoked (superseded) by re-issue", NULL, dev[1].serial);
    append(&s, "1", "revoked", dev[3].regid, dev[3].serial, NULL, "keyCompromise",
           "revoked by jdoe: device stolen", NULL, dev[3].serial);
    append(&s, "1", "crl", NULL, "0000000000000001", NULL, NULL,
           "sig=0123456789abcdef:12; next-update-ms=1736323200000", NULL, NULL);
    append(&s, "", "paused", NULL, NULL, NULL, "paused", "line 2 paused by operator", NULL, NULL);
    close_store(&s);

    /* A store with one detail edited behind the station's back. */
    open_store(&s, dir, "tampered");
    issue(&s, &dev[0], "issued", "EC P-256");
    issue(&s, &dev[1], "issued", "EC P-256");
    append(&s, "1", "refused", "SN1-000050", NULL, NULL, "weak-hash", "signed with SHA-1", NULL,
           NULL);
    close_store(&s);
    if (sqlite3_open_v2(s.path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
        sqlite3_exec(db, "UPDATE audit SET detail = 'EC P-384' WHERE seq = 2", NULL, NULL, NULL) !=
            SQLITE_OK)
        die(s.path, sqlite3_errmsg(db));
    sqlite3_close(db);

    for (int i = 0; i < 14; i++)
        der_buf_free(&dev[i].cert);
}

/* ---- signer protocol frames ---------------------------------------------------------------- */

static int open_seed(const char *dir, const char *name)
{
    char path[512];
    int fd;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        die("create", path);
    return fd;
}

static void send_or_die(int fd, proto_msg_t *m)
{
    if (proto_send(fd, m) != LC_OK)
        die("proto_send", "failed");
}

static void proto_seeds(const char *dir)
{
    static const unsigned char serial[16] = {0x3a, 1, 2,  3,  4,  5,  6,  7,
                                             8,    9, 10, 11, 12, 13, 14, 15};
    struct device d;
    proto_msg_t m = {0};
    int fd;

    make_device(&d, 42, "1");

    fd = open_seed(dir, "cert-reply");
    proto_init(&m, PROTO_CERT, 7);
    proto_put(&m, T_CERT, d.cert.p, d.cert.len);
    proto_put_i64(&m, T_SIGNATURES, 1234);
    proto_put_i64(&m, T_SIG_NO, 17);
    proto_put_str(&m, T_INSTANCE, "0123456789abcdef");
    send_or_die(fd, &m);
    close(fd);

    fd = open_seed(dir, "refused-reply");
    proto_init(&m, PROTO_REFUSED, 8);
    proto_put_u32(&m, T_REASON, LC_REASON_CN_INVALID);
    proto_put_str(&m, T_DETAIL, "CN \"bad id!\" (7 bytes) is not a registration ID");
    send_or_die(fd, &m);
    close(fd);

    fd = open_seed(dir, "error-reply");
    proto_init(&m, PROTO_ERROR, 9);
    proto_put_u32(&m, T_ERROR, (uint32_t)LC_ERR_HSM);
    proto_put_str(&m, T_DETAIL, "PKCS#11: token not present");
    send_or_die(fd, &m);
    close(fd);

    fd = open_seed(dir, "status-reply");
    proto_init(&m, PROTO_STATUS_REPLY, 10);
    proto_put_i64(&m, T_SIGNATURES, 99);
    proto_put_u32(&m, T_HSM_OK, 1);
    proto_put_str(&m, T_INSTANCE, "0123456789abcdef");
    send_or_die(fd, &m);
    close(fd);

    fd = open_seed(dir, "issue-request");
    proto_init(&m, PROTO_ISSUE, 11);
    proto_put_str(&m, T_LINE, "1");
    proto_put(&m, T_CSR, d.cert.p, 64); /* a stand-in: the framing is under test */
    proto_put(&m, T_SERIAL, serial, sizeof serial);
    proto_put_i64(&m, T_NOT_BEFORE, 1735718400);
    proto_put_i64(&m, T_NOT_AFTER, 1735718400 + 3650LL * 86400);
    send_or_die(fd, &m);
    close(fd);

    fd = open_seed(dir, "configure-request");
    proto_init(&m, PROTO_CONFIGURE, 1);
    proto_put_u32(&m, T_VERSION, PROTO_VERSION);
    proto_put_str(&m, T_MODULE, "/usr/lib/softhsm/libsofthsm2.so");
    proto_put_str(&m, T_PIN_FILE, "/etc/linecert/pin");
    proto_put_str(&m, T_LINE, "1");
    proto_put_str(&m, T_KEY_URI, "pkcs11:token=linecert;object=line-1");
    proto_put(&m, T_ISSUER_CERT, d.cert.p, d.cert.len);
    proto_put_str(&m, T_SUBJECT_O, "Example Factory");
    proto_put_u32(&m, T_MAX_DAYS, 3650);
    send_or_die(fd, &m);
    close(fd);

    /* Several replies in a row, as the reader thread sees them, the last one cut short. */
    fd = open_seed(dir, "stream");
    proto_init(&m, PROTO_OK, 1);
    send_or_die(fd, &m);
    proto_init(&m, PROTO_CERT, 2);
    proto_put(&m, T_CERT, d.cert.p, 100);
    proto_put(&m, T_CERT, d.cert.p + 100, 50); /* a second certificate field replaces the first */
    send_or_die(fd, &m);
    proto_init(&m, PROTO_REFUSED, 3);
    proto_put_u32(&m, T_REASON, 3);
    proto_put(&m, T_DETAIL, "with\0nul", 8);
    send_or_die(fd, &m);
    proto_init(&m, PROTO_ERROR, 4);
    proto_put_str(&m, T_DETAIL, "no error code");
    if (proto_send(fd, &m) != LC_OK || ftruncate(fd, lseek(fd, 0, SEEK_CUR) - 5) != 0)
        die("stream", "write");
    close(fd);

    proto_free(&m);
    der_buf_free(&d.cert);
}

/* ---- PLC register blocks ----------------------------------------------------------------- */

static void plc_seed(const char *dir, const char *name, uint16_t req, uint16_t ack,
                     const char *serial, const char *tail)
{
    uint16_t regs[PLC_POLL_REGS] = {0};
    unsigned char bytes[2 * PLC_POLL_REGS];
    int fd = open_seed(dir, name);

    regs[PLC_REQ_SEQ] = req;
    regs[PLC_ACK_SEQ] = ack;
    plc_encode_serial(serial, regs + PLC_SERIAL);
    for (int i = 0; i < PLC_POLL_REGS; i++) { /* as on the wire: big-endian */
        bytes[2 * i] = (unsigned char)(regs[i] >> 8);
        bytes[2 * i + 1] = (unsigned char)regs[i];
    }
    if (write(fd, bytes, sizeof bytes) != (ssize_t)sizeof bytes ||
        (tail != NULL && write(fd, tail, strlen(tail)) != (ssize_t)strlen(tail)))
        die("write", name);
    close(fd);
}

static void plc_seeds(const char *dir)
{
    plc_seed(dir, "request", 42, 41, "SN1-000042", NULL);
    plc_seed(dir, "answered", 42, 42, "SN1-000042", NULL);
    plc_seed(dir, "idle", 0, 0, "", NULL);
    plc_seed(dir, "odd-length", 7, 6, "ABC", NULL);
    plc_seed(dir, "full-32", 65535, 65534, "0123456789abcdefghijABCDEFGHIJ:_", NULL);
    plc_seed(dir, "space", 3, 2, "SN 1", NULL);
    plc_seed(dir, "high-bit", 3, 2,
             "SN\xc3\xa9"
             "1",
             NULL);
    plc_seed(dir, "with-tail", 9, 8, "SN2-7", "SN1-000042");
}

/* ---- CSRs ---------------------------------------------------------------------------------- */

/*
 * A P-256 CSR whose key is the point at infinity (the one octet 00) with a
 * "proof of possession" that ECDSA against that point accepts: R = u1·G, so
 * k fixed, r = x(k·G), s = e/k.  The policy refused neither until
 * 2026-11-24 (tests/fuzz/README.md, findings).
 */
static void csr_seeds(const char *dir)
{
    static const unsigned char ecdsa_sha256[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
                                                 0xce, 0x3d, 0x04, 0x03, 0x02};
    static const unsigned char infinity[] = {0x00};
    der_buf_t cri = {0}, sig = {0}, csr = {0};
    EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
    BN_CTX *bc = BN_CTX_new();
    BIGNUM *k = BN_new(), *x = BN_new(), *r = BN_new(), *s = BN_new(), *e = NULL, *kinv = NULL;
    EC_POINT *R = g != NULL ? EC_POINT_new(g) : NULL;
    const BIGNUM *n = g != NULL ? EC_GROUP_get0_order(g) : NULL;
    unsigned char digest[32], rb[33], sb[33];
    int fd;

    der_begin(&cri, DER_SEQUENCE);
    der_put_small_int(&cri, 0);
    put_cn_name(&cri, "SN1-000042");
    put_p256_spki(&cri, infinity, sizeof infinity);
    der_begin(&cri, 0xa0); /* no attributes */
    der_end(&cri);
    der_end(&cri);
    if (cri.failed || EVP_Digest(cri.p, cri.len, digest, NULL, EVP_sha256(), NULL) != 1)
        die("csr seed", "CertificationRequestInfo");
    if (R == NULL || bc == NULL || k == NULL || x == NULL || r == NULL || s == NULL ||
        BN_hex2bn(&k, "5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed") == 0 ||
        (e = BN_bin2bn(digest, sizeof digest, NULL)) == NULL ||
        EC_POINT_mul(g, R, k, NULL, NULL, bc) != 1 ||
        EC_POINT_get_affine_coordinates(g, R, x, NULL, bc) != 1 || BN_nnmod(r, x, n, bc) != 1 ||
        (kinv = BN_mod_inverse(NULL, k, n, bc)) == NULL || BN_mod_mul(s, e, kinv, n, bc) != 1 ||
        BN_bn2binpad(r, rb + 1, 32) != 32 || BN_bn2binpad(s, sb + 1, 32) != 32)
        die("csr seed", "forging the signature");
    if (rb[1] == 0 || sb[1] == 0) /* fixed k: never happens; would need a shorter INTEGER */
        die("csr seed", "r or s has a leading zero octet");
    rb[0] = sb[0] = 0; /* INTEGERs: a leading zero octet, then drop it if it is not needed */
    der_begin(&sig, DER_SEQUENCE);
    der_put_tlv(&sig, DER_INTEGER, rb + !(rb[1] & 0x80), 32 + (rb[1] >> 7));
    der_put_tlv(&sig, DER_INTEGER, sb + !(sb[1] & 0x80), 32 + (sb[1] >> 7));
    der_end(&sig);
    der_begin(&csr, DER_SEQUENCE);
    der_put_raw(&csr, cri.p, cri.len);
    der_begin(&csr, DER_SEQUENCE);
    der_put_raw(&csr, ecdsa_sha256, sizeof ecdsa_sha256);
    der_end(&csr);
    der_put_bits(&csr, sig.p, sig.len);
    der_end(&csr);
    if (sig.failed || csr.failed)
        die("csr seed", "encoding");
    fd = open_seed(dir, "ec256-infinity-forged.der");
    if (write(fd, csr.p, csr.len) != (ssize_t)csr.len || close(fd) != 0)
        die("write", "ec256-infinity-forged.der");
    der_buf_free(&cri);
    der_buf_free(&sig);
    der_buf_free(&csr);
    BN_free(k);
    BN_free(x);
    BN_free(r);
    BN_free(s);
    BN_free(e);
    BN_free(kinv);
    EC_POINT_free(R);
    BN_CTX_free(bc);
    EC_GROUP_free(g);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: make_seeds audit|proto|plc|csr DIR\n");
        return 2;
    }
    if (strcmp(argv[1], "audit") == 0)
        audit_seeds(argv[2]);
    else if (strcmp(argv[1], "proto") == 0)
        proto_seeds(argv[2]);
    else if (strcmp(argv[1], "plc") == 0)
        plc_seeds(argv[2]);
    else if (strcmp(argv[1], "csr") == 0)
        csr_seeds(argv[2]);
    else
        die("unknown corpus", argv[1]);
    return 0;
}
