/*
 * audit-log-gen.c — fills an audit store with a realistic log of many
 * millions of rows, for the scale benchmark (tests/bench/large-log.sh).
 *
 *   audit-log-gen --db PATH --rows N [--lines L] [--days D] [--batch B] [--seed S]
 *
 * Appends rows until the store holds N rows (an existing store keeps its rows
 * and its chain; a missing one is created).  Every row goes through the real
 * write path, audit_append() in batches of B (default 100,000), so the hash
 * chain, the certificate checks, the indexes and the schema-3 trigger all run
 * as in the station, and the file grows with its tables and indexes
 * interleaved as it does in production.  The rows:
 *
 *   - L lines (default 4), timestamps spread evenly over the last D days
 *     (default 30) up to now, so the operator screen's shift and today have
 *     data;
 *   - ~99.35% "issued", each with a certificate: a real X.509 v3 certificate
 *     made once at start (EC P-256, the extensions of a device certificate,
 *     ~600 bytes of DER) with a per-row random serial and registration ID
 *     patched in, so every DER and thumbprint differs; unique registration
 *     IDs (dev-<line>-<9 digits>), random CSR hashes, a daemon-style detail;
 *   - ~0.5% "refused" and ~0.1% "fault" rows with real reason codes;
 *   - ~0.05% "revoked" rows, each revoking an earlier certificate of the run;
 *   - one "crl" row per line per 100,000 rows.
 *
 * Prints `name: value` lines: rows_before, rows, generated, generate_s,
 * generate_rows_per_s, der_bytes (the template's size), db_bytes.
 *
 * The store is written with the station's own settings (synchronous=FULL,
 * WAL): only the batch size differs from a running station.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "bench_rng.h"
#include "audit-private.h"
#include "lcerr.h"

#define MAX_LINES   16
#define REGID_LEN   15 /* "dev-1-000000001": fixed, so it can be patched into the DER */
#define SERIAL_LEN  16 /* bytes; 32 hex digits */
#define REVOKE_RING 4096

/* A fixed CN and serial that the template carries and every row replaces. */
static const char regid_mark[REGID_LEN + 1] = "dev-X-XXXXXXXXX";
static const unsigned char serial_mark[SERIAL_LEN] = {
    0x5a, 0xa5, 0x5a, 0xa5, 0x5a, 0xa5, 0x5a, 0xa5, 0x5a, 0xa5, 0x5a, 0xa5, 0x5a, 0xa5, 0x5a, 0xa5};

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The certificate every row's DER is made from, and where to patch it. */
struct tmpl {
    unsigned char *der;
    size_t len;
    size_t serial_off; /* SERIAL_LEN bytes of INTEGER content */
    size_t cn_off;     /* REGID_LEN bytes of the subject CN */
};

static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    int ok = ext != NULL && X509_add_ext(x, ext, -1) == 1;

    X509_EXTENSION_free(ext);
    return ok;
}

static size_t find(const unsigned char *hay, size_t n, const void *needle, size_t m)
{
    for (size_t i = 0; i + m <= n; i++)
        if (memcmp(hay + i, needle, m) == 0)
            return i;
    return (size_t)-1;
}

/*
 * A device certificate as a line CA would issue it: EC P-256 key, CN and O,
 * the usual extensions, signed (ECDSA-SHA256) by a throwaway CA key.  The
 * signature does not cover the patched fields; the store keeps DER opaque
 * and only checks its thumbprint.
 */
static int make_template(struct tmpl *t, char *err, size_t errlen)
{
    EVP_PKEY *key = NULL;
    X509 *x = NULL;
    X509_NAME *subj = NULL, *iss = NULL;
    ASN1_INTEGER *sn = NULL;
    BIGNUM *bn = NULL;
    X509V3_CTX ctx;
    unsigned char *p;
    int len, ret = LC_ERR_CRYPTO;

    memset(t, 0, sizeof *t);
    if ((key = EVP_EC_gen("P-256")) == NULL || (x = X509_new()) == NULL ||
        (subj = X509_NAME_new()) == NULL || (iss = X509_NAME_new()) == NULL ||
        (bn = BN_bin2bn(serial_mark, SERIAL_LEN, NULL)) == NULL ||
        (sn = BN_to_ASN1_INTEGER(bn, NULL)) == NULL)
        goto out;
    if (X509_set_version(x, 2) != 1 || X509_set_serialNumber(x, sn) != 1 ||
        X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_ASC, (const unsigned char *)regid_mark, -1,
                                   -1, 0) != 1 ||
        X509_NAME_add_entry_by_txt(subj, "O", MBSTRING_ASC, (const unsigned char *)"linecert demo",
                                   -1, -1, 0) != 1 ||
        X509_NAME_add_entry_by_txt(iss, "CN", MBSTRING_ASC,
                                   (const unsigned char *)"linecert demo Line 1 CA", -1, -1,
                                   0) != 1 ||
        X509_NAME_add_entry_by_txt(iss, "O", MBSTRING_ASC, (const unsigned char *)"linecert demo",
                                   -1, -1, 0) != 1 ||
        X509_set_subject_name(x, subj) != 1 || X509_set_issuer_name(x, iss) != 1 ||
        X509_gmtime_adj(X509_getm_notBefore(x), 0) == NULL ||
        X509_gmtime_adj(X509_getm_notAfter(x), 3650L * 86400) == NULL ||
        X509_set_pubkey(x, key) != 1)
        goto out;
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    if (!add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE") ||
        !add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature") ||
        !add_ext(x, &ctx, NID_ext_key_usage, "clientAuth") ||
        !add_ext(x, &ctx, NID_subject_key_identifier, "hash") ||
        !add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always") ||
        !add_ext(x, &ctx, NID_crl_distribution_points,
                 "URI:http://pki.example.com/crl/line-1.crl") ||
        !add_ext(x, &ctx, NID_info_access, "caIssuers;URI:http://pki.example.com/ca/line-1.crt"))
        goto out;
    if (X509_sign(x, key, EVP_sha256()) <= 0 || (len = i2d_X509(x, NULL)) <= 0 ||
        (t->der = malloc((size_t)len)) == NULL)
        goto out;
    p = t->der;
    t->len = (size_t)i2d_X509(x, &p);
    t->serial_off = find(t->der, t->len, serial_mark, SERIAL_LEN);
    t->cn_off = find(t->der, t->len, regid_mark, REGID_LEN);
    if (t->serial_off == (size_t)-1 || t->cn_off == (size_t)-1)
        goto out;
    ret = LC_OK;
out:
    if (ret != LC_OK) {
        lc_seterr(ret, err, errlen, "audit-log-gen: cannot make the certificate template");
        free(t->der);
        t->der = NULL;
    }
    BN_free(bn);
    ASN1_INTEGER_free(sn);
    X509_NAME_free(iss);
    X509_NAME_free(subj);
    X509_free(x);
    EVP_PKEY_free(key);
    return ret;
}

/* Everything one row points to (an audit_entry_t holds only pointers). */
struct row_buf {
    char regid[48]; /* REGID_LEN characters (checked) */
    char serial[2 * SERIAL_LEN + 1];
    char thumb[65];
    char csr[65];
    char spki[65];
    char detail[160];
    unsigned char *der; /* tmpl.len bytes */
    audit_cert_t cert;
};

struct gen {
    struct tmpl t;
    EVP_MD *sha256; /* fetched once: an implicit fetch per row is slow */
    EVP_MD_CTX *md;
    uint64_t rng;
    int nlines;
    char line_ids[MAX_LINES][4];
    int64_t device_no[MAX_LINES];                    /* next registration number per line */
    int64_t signature_no;                            /* the signer's counter, for the detail text */
    char revocable[REVOKE_RING][2 * SERIAL_LEN + 1]; /* recent serials not yet revoked */
    size_t nrevocable;
};

/* Fills entry e (row k of the log) and its buffers b. */
static int make_row(struct gen *g, int64_t k, int64_t ts, audit_entry_t *e, struct row_buf *b,
                    int64_t crl_every)
{
    static const char *const refusals[][2] = {
        {"cn-mismatch",
         "CN \"dev-3-000412077\" does not match the device serial \"dev-3-000412078\""},
        {"cn-invalid", "CN \"Dev 0002\" contains a space, at offset 3"},
        {"key-type", "RSA key of 1024 bits; the policy allows EC P-256/P-384, RSA 2048-4096"},
        {"bad-signature", "the CSR signature does not verify with its own public key"},
        {"cn-duplicate", "a valid certificate exists for this registration ID"}};
    static const char *const faults[][2] = {
        {"jig-timeout", "the jig program did not answer within 5000 ms"},
        {"hsm-unavailable", "signer: C_Sign failed: CKR_DEVICE_REMOVED"},
        {"jig-failed", "the jig program exited with status 3: no device in the fixture"}};
    int line = (int)(k % g->nlines);
    unsigned roll = (unsigned)(rng_next(&g->rng) % 10000);
    audit_row_t *r = &e->row;
    unsigned char serial[SERIAL_LEN], dgst[32];
    unsigned int dlen = 0;

    memset(e, 0, sizeof *e);
    r->ts_ms = ts;
    r->actor = "linecertd";
    r->line = g->line_ids[line];
    if (crl_every > 0 && k % crl_every < g->nlines) {
        uint64_t number = (uint64_t)(k / crl_every + 1);
        snprintf(b->serial, sizeof b->serial, "%016" PRIX64, number);
        rand_hex(&g->rng, b->thumb, 64);
        snprintf(b->detail, sizeof b->detail,
                 "next-update-ms=%" PRId64 "; entries=%zu; CRL #%" PRIu64 " signed",
                 ts + (int64_t)7 * 86400000, g->nrevocable / 7, number);
        r->kind = "crl";
        r->serial = b->serial;
        r->thumbprint = b->thumb;
        r->detail = b->detail;
        return 0;
    }
    if (roll < 60) {
        const char *const *why = roll < 50 ? refusals[roll % 5] : faults[roll % 3];
        snprintf(b->regid, sizeof b->regid, "dev-%d-%09" PRId64, line + 1,
                 g->device_no[line] + 1); /* the device asks again later */
        rand_hex(&g->rng, b->csr, 64);
        r->kind = roll < 50 ? "refused" : "fault";
        r->registration_id = b->regid;
        r->csr_sha256 = roll < 50 ? b->csr : NULL;
        r->reason = why[0];
        r->detail = why[1];
        return 0;
    }
    if (roll < 65 && g->nrevocable > 0) {
        size_t i = (size_t)(rng_next(&g->rng) % g->nrevocable);
        snprintf(b->serial, sizeof b->serial, "%s", g->revocable[i]);
        memcpy(g->revocable[i], g->revocable[--g->nrevocable], sizeof g->revocable[i]);
        r->kind = "revoked";
        r->serial = b->serial;
        r->reason = "keyCompromise";
        r->detail = "revoked by security staff: device returned for repair";
        r->actor = "alice";
        e->revokes = b->serial;
        return 0;
    }
    /* An issuance: a new device, a new certificate. */
    g->device_no[line]++;
    snprintf(b->regid, sizeof b->regid, "dev-%d-%09" PRId64, line + 1, g->device_no[line]);
    if (strlen(b->regid) != REGID_LEN)
        return -1; /* more than 10^9 devices on a line */
    for (size_t i = 0; i < SERIAL_LEN; i += 8) {
        uint64_t v = rng_next(&g->rng);
        memcpy(serial + i, &v, 8);
    }
    serial[0] = (unsigned char)((serial[0] & 0x7f) | 0x10); /* positive, 16 bytes */
    lc_hex(serial, SERIAL_LEN, 1, b->serial);
    memcpy(b->der, g->t.der, g->t.len);
    memcpy(b->der + g->t.serial_off, serial, SERIAL_LEN);
    memcpy(b->der + g->t.cn_off, b->regid, REGID_LEN);
    if (EVP_DigestInit_ex(g->md, g->sha256, NULL) != 1 ||
        EVP_DigestUpdate(g->md, b->der, g->t.len) != 1 ||
        EVP_DigestFinal_ex(g->md, dgst, &dlen) != 1 || dlen != 32)
        return -1;
    lc_hex(dgst, 32, 1, b->thumb);
    rand_hex(&g->rng, b->csr, 64);
    rand_hex(&g->rng, b->spki, 64);
    g->signature_no++;
    snprintf(b->detail, sizeof b->detail,
             "EC P-256, signer signature #%" PRId64 "; plc-seq %" PRId64
             "; device serial SN%08" PRIX64,
             g->signature_no, g->device_no[line] & 0xffff, (uint64_t)g->device_no[line] * 7919);
    r->kind = "issued";
    r->registration_id = b->regid;
    r->serial = b->serial;
    r->thumbprint = b->thumb;
    r->csr_sha256 = b->csr;
    r->detail = b->detail;
    b->cert.serial = b->serial;
    b->cert.line = r->line;
    b->cert.registration_id = b->regid;
    b->cert.not_before = ts / 1000;
    b->cert.not_after = ts / 1000 + 3650LL * 86400;
    b->cert.thumbprint = b->thumb;
    b->cert.der = b->der;
    b->cert.der_len = g->t.len;
    b->cert.spki_sha256 = b->spki;
    e->cert = &b->cert;
    /* Revocations pick from recent certificates: when full, one random slot gives way. */
    {
        size_t slot = g->nrevocable < REVOKE_RING ? g->nrevocable++
                                                  : (size_t)(rng_next(&g->rng) % REVOKE_RING);
        memcpy(g->revocable[slot], b->serial, sizeof g->revocable[slot]);
    }
    return 0;
}

static void usage(FILE *f)
{
    fputs("usage: audit-log-gen --db PATH --rows N [--lines L] [--days D] [--batch B] "
          "[--seed S]\n",
          f);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},    {"rows", required_argument, NULL, 'r'},
        {"lines", required_argument, NULL, 'l'}, {"days", required_argument, NULL, 'D'},
        {"batch", required_argument, NULL, 'b'}, {"seed", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0}};
    const char *db = NULL;
    int64_t rows = -1, before, end_ms, start_ms, span, crl_every;
    long days = 30, batch = 100000;
    struct gen *g = NULL;
    audit_entry_t *e = NULL;
    struct row_buf *b = NULL;
    audit_t *a = NULL;
    char err[512] = "";
    double t0, dt;
    struct stat sb;
    int c, ret = 1;

    if ((g = calloc(1, sizeof *g)) == NULL) {
        fputs("audit-log-gen: out of memory\n", stderr);
        return 1;
    }
    g->nlines = 4;
    g->rng = 0x9E3779B97F4A7C15ULL;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            db = optarg;
            break;
        case 'r':
            rows = strtoll(optarg, NULL, 10);
            break;
        case 'l':
            g->nlines = atoi(optarg);
            break;
        case 'D':
            days = strtol(optarg, NULL, 10);
            break;
        case 'b':
            batch = strtol(optarg, NULL, 10);
            break;
        case 's':
            g->rng = strtoull(optarg, NULL, 0) | 1;
            break;
        case 'h':
            usage(stdout);
            free(g);
            return 0;
        default:
            usage(stderr);
            free(g);
            return 2;
        }
    }
    if (optind != argc || db == NULL || rows < 0 || g->nlines < 1 || g->nlines > 9 || days < 1 ||
        batch < 1 || batch > 1000000) {
        usage(stderr);
        free(g);
        return 2;
    }
    for (int i = 0; i < g->nlines; i++)
        snprintf(g->line_ids[i], sizeof g->line_ids[i], "%d", i % 10 + 1);
    if (make_template(&g->t, err, sizeof err) != LC_OK)
        goto out;
    if ((g->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL ||
        (g->md = EVP_MD_CTX_new()) == NULL || (e = calloc((size_t)batch, sizeof *e)) == NULL ||
        (b = calloc((size_t)batch, sizeof *b)) == NULL) {
        snprintf(err, sizeof err, "audit-log-gen: out of memory");
        goto out;
    }
    for (long i = 0; i < batch; i++)
        if ((b[i].der = malloc(g->t.len)) == NULL) {
            snprintf(err, sizeof err, "audit-log-gen: out of memory");
            goto out;
        }
    if (audit_open(db, AUDIT_READWRITE, &a, err, sizeof err) != LC_OK)
        goto out;
    /*
     * A big page cache for this connection only: random certificate serials
     * touch every leaf of the serial index, and re-reading those pages from
     * the OS for each batch would make generation several times slower.  The
     * rows, the chain and synchronous=FULL are as in the station.
     */
    if (sqlite3_exec(audit_sqlite(a), "PRAGMA cache_size = -1048576", NULL, NULL, NULL) !=
        SQLITE_OK) {
        snprintf(err, sizeof err, "audit-log-gen: %s: cache_size: %s", db,
                 sqlite3_errmsg(audit_sqlite(a)));
        goto out;
    }
    before = audit_count(a);
    if (before < 0) {
        snprintf(err, sizeof err, "audit-log-gen: %s: cannot count the rows", db);
        goto out;
    }
    /* Registration numbers continue above any earlier run's (they must be unique). */
    for (int i = 0; i < g->nlines; i++)
        g->device_no[i] = before * 2 + 1000000;
    end_ms = wall_ms();
    start_ms = end_ms - (int64_t)days * 86400000LL;
    span = rows > before ? rows - before : 1;
    crl_every = 100000;
    t0 = now_s();
    for (int64_t done = before; done < rows;) {
        size_t n = rows - done < batch ? (size_t)(rows - done) : (size_t)batch;
        for (size_t i = 0; i < n; i++) {
            int64_t k = done - before + (int64_t)i;
            if (make_row(g, k, start_ms + (end_ms - start_ms) * k / span, &e[i], &b[i],
                         crl_every) != 0) {
                snprintf(err, sizeof err,
                         "audit-log-gen: row %" PRId64 ": SHA-256 failed or device numbers "
                         "ran out",
                         done + (int64_t)i + 1);
                goto out;
            }
        }
        if (audit_append(a, e, n, err, sizeof err) != LC_OK)
            goto out;
        done += (int64_t)n;
    }
    dt = now_s() - t0;
    printf("rows_before: %" PRId64 "\n", before);
    printf("rows: %" PRId64 "\n", audit_count(a));
    printf("generated: %" PRId64 "\n", rows > before ? rows - before : 0);
    printf("generate_s: %.1f\n", dt);
    printf("generate_rows_per_s: %.0f\n", rows > before ? (double)(rows - before) / dt : 0.0);
    printf("der_bytes: %zu\n", g->t.len);
    audit_free(a); /* checkpoints the WAL into the database */
    a = NULL;
    if (stat(db, &sb) == 0)
        printf("db_bytes: %lld\n", (long long)sb.st_size);
    ret = 0;
out:
    if (ret != 0)
        fprintf(stderr, "%s\n", err[0] ? err : "audit-log-gen: failed");
    audit_free(a);
    for (long i = 0; b != NULL && i < batch; i++)
        free(b[i].der);
    free(b);
    free(e);
    EVP_MD_CTX_free(g->md);
    EVP_MD_free(g->sha256);
    free(g->t.der);
    free(g);
    return ret;
}
