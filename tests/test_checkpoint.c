/*
 * test_checkpoint.c — signed checkpoints and signature accounting
 * (db/checkpoint.c, docs/audit.md), and the whole loop through the signer,
 * the station and `linecert audit verify`.
 *
 * The unit tests build logs row by row with a software line CA key, so each
 * case says exactly which signature is missing, doubled, pending or forged.
 */
#include "audit.h"
#include "checkpoint.h"
#include "lcerr.h"
#include "testutil.h"

#include <check.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INST  "0123456789abcdef"
#define INST2 "fedcba9876543210"
#define MAXR  64
#define ZERO  "0000000000000000000000000000000000000000000000000000000000000000"

static EVP_PKEY *g_key;
static unsigned char *g_cert;
static int g_cert_len;
static char g_thumb[65];

/* A software "line CA": key, self-signed certificate, its thumbprint. */
static void make_ca(void)
{
    X509 *x = X509_new();
    X509_NAME *n = X509_NAME_new();
    unsigned char md[32];
    unsigned int mdlen;

    g_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ck_assert_ptr_nonnull(g_key);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"test line CA", -1, -1,
                               0);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_set_subject_name(x, n);
    X509_set_issuer_name(x, n);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, g_key);
    ck_assert_int_gt(X509_sign(x, g_key, EVP_sha256()), 0);
    g_cert = NULL;
    g_cert_len = i2d_X509(x, &g_cert);
    ck_assert_int_gt(g_cert_len, 0);
    EVP_Digest(g_cert, (size_t)g_cert_len, md, &mdlen, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        snprintf(g_thumb + 2 * i, 3, "%02X", md[i]);
    X509_NAME_free(n);
    X509_free(x);
}

static void setup(void)
{
    make_ca();
}

static void teardown(void)
{
    EVP_PKEY_free(g_key);
    OPENSSL_free(g_cert);
}

/* A log being built: rows with their hash chain. */
struct log {
    audit_row_t rows[MAXR];
    char detail[MAXR][4096];
    int n;
};

static audit_row_t *add(struct log *l, const char *kind, const char *line, const char *detail)
{
    audit_row_t *r = &l->rows[l->n];

    ck_assert_int_lt(l->n, MAXR);
    memset(r, 0, sizeof *r);
    snprintf(l->detail[l->n], sizeof l->detail[l->n], "%s", detail);
    r->seq = l->n + 1;
    r->ts_ms = 1700000000000 + l->n;
    r->actor = "test";
    r->line = line;
    r->kind = kind;
    r->detail = l->detail[l->n];
    audit_row_hash(r, l->n ? l->rows[l->n - 1].hash : ZERO, r->hash);
    l->n++;
    return r;
}

/* An issued row accounting for signature INST:n of line 1. */
static void issued(struct log *l, const char *inst, unsigned n)
{
    char d[128];

    snprintf(d, sizeof d, "sig=%s:%u; EC P-256", inst, n);
    add(l, "issued", "1", d);
}

/* Signs payload with the test key; appends " signature=HEX" to out. */
static void sign_into(const char *payload, char *out, size_t cap)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned char sig[256];
    size_t sl = sizeof sig, len;

    ck_assert_int_eq(EVP_DigestSignInit(c, NULL, EVP_sha256(), NULL, g_key), 1);
    ck_assert_int_eq(EVP_DigestSign(c, sig, &sl, (const unsigned char *)payload, strlen(payload)),
                     1);
    EVP_MD_CTX_free(c);
    snprintf(out, cap, "%s signature=", payload);
    len = strlen(out);
    for (size_t i = 0; i < sl && len + 3 < cap; i++, len += 2)
        snprintf(out + len, 3, "%02x", sig[i]);
}

/*
 * A checkpoint of line 1 with signature number sig of inst, naming the last
 * row as the head (head_row < 0) or row head_row.
 */
static void checkpoint(struct log *l, const char *inst, unsigned sig, int final,
                       const char *pending, const char *withheld, int head_row)
{
    char payload[2048], row[4096];
    int rows = head_row < 0 ? l->n : head_row;

    snprintf(payload, sizeof payload,
             "linecert-checkpoint-v1 line=1 ca=%s md=SHA256 signer=%s sig=%u signed=%u rows=%d "
             "head=%s final=%d pending=%s withheld=%s",
             g_thumb, inst, sig, sig - 1, rows, rows ? l->rows[rows - 1].hash : ZERO, final,
             pending, withheld);
    sign_into(payload, row, sizeof row);
    add(l, "checkpoint", "1", row);
}

/* Runs the verifier; returns the seq it rejected (0 = none) with its problem. */
static int64_t check(struct log *l, checkpoint_summary_t *sum, char *problem, size_t plen)
{
    checkpoint_verifier_t *v = NULL;
    char err[256];
    int64_t bad = 0;

    ck_assert_int_eq(checkpoint_verifier_new(&v), LC_OK);
    ck_assert_int_eq(checkpoint_verifier_add_ca(v, g_cert, (size_t)g_cert_len, err, sizeof err),
                     LC_OK);
    problem[0] = '\0';
    for (int i = 0; i < l->n && bad == 0; i++)
        if (checkpoint_verify_row(v, &l->rows[i], problem, plen) != 0)
            bad = l->rows[i].seq;
    checkpoint_verifier_finish(v, sum);
    checkpoint_verifier_free(v);
    return bad;
}

START_TEST(all_accounted_final)
{
    struct log l = {0};
    checkpoint_summary_t s;
    char p[256];

    issued(&l, INST, 1);
    issued(&l, INST, 2);
    checkpoint(&l, INST, 3, 0, "-", "-", -1);
    issued(&l, INST, 4);
    checkpoint(&l, INST, 5, 1, "-", "-", -1);
    ck_assert_int_eq(check(&l, &s, p, sizeof p), 0);
    ck_assert_int_eq(s.checkpoints, 2);
    ck_assert_int_eq(s.accounted, 5);
    ck_assert_int_eq(s.runs, 1);
    ck_assert_int_eq(s.final_runs, 1);
    ck_assert_int_eq(s.unconfirmed, 0);
    ck_assert_int_eq(s.uncovered, 0);
}
END_TEST

/* The signer made #2, the log has no row for it: the next checkpoint proves it. */
START_TEST(missing_signature_fails)
{
    struct log l = {0};
    checkpoint_summary_t s;
    char p[256];

    issued(&l, INST, 1);
    issued(&l, INST, 3);
    checkpoint(&l, INST, 4, 0, "-", "-", -1);
    issued(&l, INST, 5);
    checkpoint(&l, INST, 6, 0, "-", "-", -1);
    ck_assert_int_eq(check(&l, &s, p, sizeof p), 5);
    ck_assert_ptr_nonnull(strstr(p, "signature " INST ":2 of line 1"));
    ck_assert_ptr_nonnull(strstr(p, "has no row"));
}
END_TEST

/* At a final checkpoint nothing may be missing, even since the previous one. */
START_TEST(final_checkpoint_is_strict)
{
    struct log l = {0};
    checkpoint_summary_t s;
    char p[256];

    issued(&l, INST, 1);
    checkpoint(&l, INST, 3, 1, "-", "-", -1);
    ck_assert_int_eq(check(&l, &s, p, sizeof p), 2);
    ck_assert_ptr_nonnull(strstr(p, INST ":2"));
}
END_TEST

/* Pending at a checkpoint, logged later: fine; pending and then dropped: not. */
START_TEST(pending_must_land)
{
    struct log l = {0};
    checkpoint_summary_t s;
    char p[256];

    issued(&l, INST, 1);
    checkpoint(&l, INST, 3, 0, INST ":2", "-", -1);
    checkpoint(&l, INST, 4, 0, INST ":2", "-", -1); /* #2 still in flight */
    issued(&l, INST, 2);
    checkpoint(&l, INST, 5, 1, "-", "-", -1);
    ck_assert_int_eq(check(&l, &s, p, sizeof p), 0);
    ck_assert_int_eq(s.accounted, 5);

    memset(&l, 0, sizeof l);
    issued(&l, INST, 1);
    checkpoint(&l, INST, 3, 0, INST ":2", "-", -1);
    checkpoint(&l, INST, 4, 0, INST ":2", "-", -1);
    checkpoint(&l, INST, 5, 0, "-", "-", -1); /* no longer pending, never logged */
    ck_assert_int_eq(check(&l, &s, p, sizeof p), 4);
    ck_assert_ptr_nonnull(strstr(p, "was pending at an earlier checkpoint"));
}
END_TEST

/* Withheld signatures (discarded after an audit failure) are accounted by the checkpoint. */
START_TEST(withheld_accounted)
{
    struct log l = {0};
    checkpoint_summary_t s;
    char p[256];

    issued(&l, INST, 1);
    checkpoint(&l, INST, 4, 1, "-", INST ":2-3", -1);
    ck_assert_int_eq(check(&l, &s, p, sizeof p), 0);
    ck_assert_int_eq(s.withheld, 2);
    ck_assert_int_eq(s.accounted, 4);
}
END_TEST

START_TEST(bench_block_and_other_kinds)
{
    struct log l = {0};
    checkpoint_summary_t s;
    char p[256];

    add(&l, "bench", "1", "sig=" INST ":1-100; raw signing benchmark: 100 signatures");
    add(&l, "crl", "1", "sig=" INST ":101; next-update-ms=1; entries=0; CRL #1 signed");
    add(&l, "verification-cert", "1", "sig=" INST ":102; DPS proof-of-possession certificate");
    add(&l, "refused", "1", "sig=" INST ":103; a refusal cannot account for a signature");
    checkpoint(&l, INST, 104, 0, "-", "-", -1);
    checkpoint(&l, INST, 105, 0, "-", "-", -1);
    ck_assert_int_eq(check(&l, &s, p, sizeof p), 6);
    ck_assert_ptr_nonnull(strstr(p, INST ":103"));
}
END_TEST

START_TEST(duplicate_fails)
{
    struct log l = {0};
    checkpoint_summary_t s;
    char p[256];

    issued(&l, INST, 1);
    issued(&l, INST, 1);
    ck_assert_int_eq(check(&l, &s, p, sizeof p), 2);
    ck_assert_ptr_nonnull(strstr(p, "accounted for twice"));
    /* The same number of another instance or another line is another signature. */
    memset(&l, 0, sizeof l);
    issued(&l, INST, 1);
    issued(&l, INST2, 1);
    add(&l, "issued", "2", "sig=" INST ":1; EC P-256");
    ck_assert_int_eq(check(&l, &s, p, sizeof p), 0);
}
END_TEST

START_TEST(forged_or_misplaced_checkpoints_fail)
{
    struct log l = {0};
    checkpoint_summary_t s;
    char p[256], *c;

    /* The signed text was changed after signing (a smaller count). */
    issued(&l, INST, 1);
    checkpoint(&l, INST, 2, 1, "-", "-", -1);
    c = strstr(l.detail[1], "sig=2 signed=1");
    ck_assert_ptr_nonnull(c);
    memcpy(c, "sig=1 signed=0", 14);
    audit_row_hash(&l.rows[1], l.rows[0].hash, l.rows[1].hash);
    ck_assert_int_eq(check(&l, &s, p, sizeof p), 2);
    ck_assert_ptr_nonnull(strstr(p, "does not verify"));

    /* The head it names is not in the log (the rows before it were rewritten). */
    memset(&l, 0, sizeof l);
    issued(&l, INST, 1);
    checkpoint(&l, INST, 2, 1, "-", "-", -1);
    snprintf(l.detail[0], sizeof l.detail[0], "sig=%s:1; edited", INST);
    audit_row_hash(&l.rows[0], ZERO, l.rows[0].hash);
    audit_row_hash(&l.rows[1], l.rows[0].hash, l.rows[1].hash);
    ck_assert_int_eq(check(&l, &s, p, sizeof p), 2);
    ck_assert_ptr_nonnull(strstr(p, "which the log does not have"));

    /* A checkpoint that names a row after itself. */
    memset(&l, 0, sizeof l);
    issued(&l, INST, 1);
    checkpoint(&l, INST, 2, 0, "-", "-", 1);
    l.n = 0;
    issued(&l, INST, 1);
    {
        char payload[1024], row[4096];
        snprintf(payload, sizeof payload,
                 "linecert-checkpoint-v1 line=1 ca=%s md=SHA256 signer=%s sig=2 signed=1 rows=5 "
                 "head=%s final=0 pending=- withheld=-",
                 g_thumb, INST, l.rows[0].hash);
        sign_into(payload, row, sizeof row);
        add(&l, "checkpoint", "1", row);
    }
    ck_assert_int_eq(check(&l, &s, p, sizeof p), 2);
    ck_assert_ptr_nonnull(strstr(p, "not before it"));

    /* Numbers going backwards within one run. */
    memset(&l, 0, sizeof l);
    issued(&l, INST, 1);
    checkpoint(&l, INST, 3, 0, INST ":2", "-", -1);
    checkpoint(&l, INST, 3, 0, INST ":2", "-", -1);
    ck_assert_int_eq(check(&l, &s, p, sizeof p), 3);
}
END_TEST

START_TEST(unknown_ca_fails)
{
    struct log l = {0};
    checkpoint_summary_t s;
    char p[256];

    issued(&l, INST, 1);
    checkpoint(&l, INST, 2, 1, "-", "-", -1);
    /* Another key signs now: its certificate is not among the configured ones. */
    EVP_PKEY_free(g_key);
    OPENSSL_free(g_cert);
    make_ca();
    ck_assert_int_eq(check(&l, &s, p, sizeof p), 2);
    ck_assert_ptr_nonnull(strstr(p, "not in the configuration's chains"));
}
END_TEST

/* A crash: the last checkpoint is not final; what it could not see is reported, not failed. */
START_TEST(crash_is_reported_not_failed)
{
    struct log l = {0};
    checkpoint_summary_t s;
    char p[256];

    issued(&l, INST, 1);
    checkpoint(&l, INST, 2, 0, "-", "-", -1);
    issued(&l, INST, 4); /* #3 was in flight when the station died */
    checkpoint(&l, INST, 5, 0, "-", "-", -1);
    issued(&l, INST, 6);
    /* a new signer run after the restart */
    issued(&l, INST2, 1);
    checkpoint(&l, INST2, 2, 1, "-", "-", -1);
    ck_assert_int_eq(check(&l, &s, p, sizeof p), 0);
    ck_assert_int_eq(s.runs, 2);
    ck_assert_int_eq(s.final_runs, 1);
    ck_assert_int_eq(s.unconfirmed, 1);
    ck_assert_ptr_nonnull(strstr(s.first_note, INST ":3"));
    ck_assert_int_eq(s.uncovered, 1); /* #6, after the last checkpoint */
}
END_TEST

START_TEST(malformed_rows_fail)
{
    static const char *const bad[] = {
        "sig=0123456789ABCDEF:1; uppercase instance",
        "sig=0123456789abcdef:0; number zero",
        "sig=0123456789abcdef:5-2; backwards range",
        "sig=0123456789abcdef:1 no separator",
    };
    checkpoint_summary_t s;
    char p[256];

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct log l = {0};
        add(&l, "issued", "1", bad[i]);
        ck_assert_msg(check(&l, &s, p, sizeof p) == 1, "accepted: %s", bad[i]);
    }
    {
        struct log l = {0};
        add(&l, "checkpoint", "1", "linecert-checkpoint-v1 line=1 signature=00");
        ck_assert_int_eq(check(&l, &s, p, sizeof p), 1);
        ck_assert_ptr_nonnull(strstr(p, "malformed"));
    }
}
END_TEST

static const char *col(sqlite3_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(st, i);
}

/*
 * What someone with write access to the file and no HSM can do: delete the
 * first issued row (and its certificate), renumber the rows after it and
 * recompute every hash, so that the chain verifies again by itself.
 */
static void forge_delete_first_issued(const char *dir)
{
    char path[512], prev[AUDIT_HASH_HEX] = ZERO;
    sqlite3 *db;
    sqlite3_stmt *st, *up;

    snprintf(path, sizeof path, "%s/audit.db", dir);
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    ck_assert_int_eq(
        sqlite3_exec(db,
                     "BEGIN;"
                     "CREATE TEMP TABLE victim AS SELECT min(seq) AS seq FROM audit"
                     " WHERE kind = 'issued';"
                     "DELETE FROM certificates WHERE audit_seq = (SELECT seq FROM victim);"
                     "DELETE FROM audit WHERE seq = (SELECT seq FROM victim);"
                     "UPDATE audit SET seq = seq - 1 WHERE seq > (SELECT seq FROM victim);"
                     "UPDATE certificates SET audit_seq = audit_seq - 1"
                     " WHERE audit_seq > (SELECT seq FROM victim);",
                     NULL, NULL, NULL),
        SQLITE_OK);
    ck_assert_int_eq(sqlite3_prepare_v2(db,
                                        "SELECT seq, ts_ms, actor, line, kind, registration_id,"
                                        " serial, thumbprint, csr_sha256, reason, detail"
                                        " FROM audit ORDER BY seq",
                                        -1, &st, NULL),
                     SQLITE_OK);
    ck_assert_int_eq(sqlite3_prepare_v2(db,
                                        "UPDATE audit SET prev_hash = ?1, hash = ?2 WHERE seq = ?3",
                                        -1, &up, NULL),
                     SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
        audit_row_t r = {0};
        r.seq = sqlite3_column_int64(st, 0);
        r.ts_ms = sqlite3_column_int64(st, 1);
        r.actor = col(st, 2);
        r.line = col(st, 3);
        r.kind = col(st, 4);
        r.registration_id = col(st, 5);
        r.serial = col(st, 6);
        r.thumbprint = col(st, 7);
        r.csr_sha256 = col(st, 8);
        r.reason = col(st, 9);
        r.detail = col(st, 10);
        audit_row_hash(&r, prev, r.hash);
        sqlite3_bind_text(up, 1, prev, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(up, 2, r.hash, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(up, 3, r.seq);
        ck_assert_int_eq(sqlite3_step(up), SQLITE_DONE);
        sqlite3_reset(up);
        memcpy(prev, r.hash, sizeof prev);
    }
    sqlite3_finalize(st);
    sqlite3_finalize(up);
    ck_assert_int_eq(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/*
 * The real thing: the signer numbers and signs, the station writes the rows,
 * `linecert audit verify` checks them.  Then an attacker with write access
 * deletes an issued row and re-hashes the chain after it: the checkpoint
 * that vouched for it catches the rewrite.
 */
START_TEST(end_to_end_with_real_signer)
{
    char *dir = tu_mkdtemp("checkpoint"), *lc = tu_build_path("linecert"), *out = NULL;
    int rc;

    rc = tu_runf(NULL, NULL, "%s pki init --dir %s --lines 1 >/dev/null 2>&1", lc, dir);
    ck_assert_int_eq(rc, 0);
    rc = tu_runf(NULL, NULL,
                 "sed -i 's/^\\[station\\]$/[station]\\ncheckpoint_every = 50/' %s/station.ini",
                 dir);
    ck_assert_int_eq(rc, 0);
    /* 8 in flight: checkpoints every 50 signatures, give or take those 8 (docs/audit.md). */
    rc = tu_runf(&out, NULL,
                 "%s bench --config %s/station.ini --line 1 --count 300 --threads 2 --clients 8",
                 lc, dir);
    ck_assert_msg(rc == 0, "bench failed: %s", out);
    free(out);
    rc = tu_runf(&out, NULL, "%s audit verify --config %s/station.ini", lc, dir);
    ck_assert_msg(rc == 0, "verify: %s", out);
    /* 300 issuances + the raw run (~300 signatures) at 50 a checkpoint, plus the final one. */
    ck_assert_msg(strstr(out, "signer runs: 1 with checkpoints, 1 ended with a final") != NULL,
                  "%s", out);
    {
        long long cps = 0, acc = 0;
        const char *c = strstr(out, "checkpoints: ");
        ck_assert_ptr_nonnull(c);
        sscanf(c, "checkpoints: %lld verified; signatures accounted for: %lld", &cps, &acc);
        ck_assert_int_ge(cps, 6);
        ck_assert_int_ge(acc, 600);
    }
    free(out);
    /* Delete the first issued row and re-hash everything after it, as a forger would. */
    forge_delete_first_issued(dir);
    rc = tu_runf(&out, NULL, "%s audit verify --config %s/station.ini", lc, dir);
    ck_assert_msg(rc == 1 && strstr(out, "which the log does not have") != NULL, "%s", out);
    free(out);
    tu_rmtree(dir);
    free(dir);
    free(lc);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("checkpoint");
    TCase *t = tcase_create("accounting");

    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, all_accounted_final);
    tcase_add_test(t, missing_signature_fails);
    tcase_add_test(t, final_checkpoint_is_strict);
    tcase_add_test(t, pending_must_land);
    tcase_add_test(t, withheld_accounted);
    tcase_add_test(t, bench_block_and_other_kinds);
    tcase_add_test(t, duplicate_fails);
    tcase_add_test(t, forged_or_misplaced_checkpoints_fail);
    tcase_add_test(t, unknown_ca_fails);
    tcase_add_test(t, crash_is_reported_not_failed);
    tcase_add_test(t, malformed_rows_fail);
    suite_add_tcase(s, t);
    t = tcase_create("end_to_end");
    tcase_set_timeout(t, 300);
    tcase_add_test(t, end_to_end_with_real_signer);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *r = srunner_create(suite());
    int failed;

    srunner_run_all(r, CK_NORMAL);
    failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
