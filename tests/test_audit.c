/*
 * test_audit.c — Check suite for the audit store (db/audit.c).
 *
 * Every test works on a fresh store in its own temporary directory.  Tampering
 * is done the way an attacker with file access would: with the sqlite3 CLI or
 * a second SQLite connection, behind the store handle's back.
 */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <sqlite3.h>

#include "audit.h"
#include "lcerr.h"
#include "testutil.h"

#define TS0    1795462200123LL /* 2026-11-23T19:30:00.123Z */
#define ZERO64 "0000000000000000000000000000000000000000000000000000000000000000"

static char *tdir;  /* per-test temporary directory */
static char *tpath; /* tdir/audit.db */
static audit_t *ta; /* the store handle under test, closed by teardown */
static char terr[512];

static void setup(void)
{
    tdir = tu_mkdtemp("audit");
    ck_assert_ptr_nonnull(tdir);
    ck_assert_int_ge(asprintf(&tpath, "%s/audit.db", tdir), 0);
    ta = NULL;
    terr[0] = '\0';
}

static void teardown(void)
{
    audit_free(ta);
    ta = NULL;
    tu_rmtree(tdir);
    free(tdir);
    free(tpath);
}

static void open_rw(void)
{
    audit_free(ta);
    ta = NULL;
    ck_assert_msg(audit_open(tpath, AUDIT_READWRITE, &ta, terr, sizeof terr) == LC_OK, "%s", terr);
    ck_assert_ptr_nonnull(ta);
}

/* A plain event row (no certificate). */
static audit_entry_t ev(const char *kind, const char *line, int64_t ts_ms, const char *detail)
{
    audit_entry_t e;

    memset(&e, 0, sizeof e);
    e.row.ts_ms = ts_ms;
    e.row.actor = "linecertd";
    e.row.line = line;
    e.row.kind = kind;
    e.row.detail = detail;
    return e;
}

static void append_ok(audit_entry_t *e, size_t n)
{
    ck_assert_msg(audit_append(ta, e, n, terr, sizeof terr) == LC_OK, "%s", terr);
}

/* Appends n plain rows in one batch. */
static void append_plain(size_t n)
{
    audit_entry_t e[16];

    ck_assert_uint_le(n, 16);
    for (size_t i = 0; i < n; i++)
        e[i] = ev("fault", "L1", TS0 + (int64_t)i, "jig timeout");
    append_ok(e, n);
}

/* A certificate fixture; fields point into the struct, so never copy one. */
struct tcert {
    char serial[32];
    char regid[65];
    char thumb[65];
    unsigned char der[40];
    audit_cert_t c;
};

static void tcert_init(struct tcert *t, const char *serial, const char *line, const char *regid,
                       const char *supersedes)
{
    unsigned char md[32];
    unsigned int mdlen = 0;

    memset(t, 0, sizeof *t);
    snprintf(t->serial, sizeof t->serial, "%s", serial);
    snprintf(t->regid, sizeof t->regid, "%s", regid);
    /* Not a real certificate: the store keeps DER opaque. */
    snprintf((char *)t->der, sizeof t->der, "0\x82 fake DER for %s", serial);
    ck_assert_int_eq(EVP_Digest(t->der, sizeof t->der, md, &mdlen, EVP_sha256(), NULL), 1);
    for (unsigned int i = 0; i < mdlen; i++)
        snprintf(t->thumb + 2 * i, 3, "%02X", md[i]);
    t->c.serial = t->serial;
    t->c.line = line;
    t->c.registration_id = t->regid;
    t->c.not_before = 1795392000;
    t->c.not_after = 1795392000 + 20 * 365 * 86400LL;
    t->c.thumbprint = t->thumb;
    t->c.der = t->der;
    t->c.der_len = sizeof t->der;
    t->c.supersedes = supersedes;
}

/* The audit row that issues t. */
static audit_entry_t ev_cert(const char *kind, const struct tcert *t)
{
    audit_entry_t e = ev(kind, t->c.line, 0, NULL);

    e.row.registration_id = t->regid;
    e.row.serial = t->serial;
    e.row.thumbprint = t->thumb;
    e.row.csr_sha256 = "C5A1";
    e.cert = &t->c;
    return e;
}

/* Runs SQL on a second connection (an attacker or another reader). */
static void side_exec(const char *sql)
{
    sqlite3 *db = NULL;
    char *msg = NULL;

    ck_assert_int_eq(sqlite3_open(tpath, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK, "%s: %s", sql,
                  msg ? msg : "");
    sqlite3_close(db);
}

static int64_t conn_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t v;

    ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static int64_t side_int(const char *sql)
{
    sqlite3 *db = NULL;
    int64_t v;

    ck_assert_int_eq(sqlite3_open(tpath, &db), SQLITE_OK);
    v = conn_int(db, sql);
    sqlite3_close(db);
    return v;
}

/* First column of the first row as a string (buffer of 256). */
static void side_text(const char *sql, char *out)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;

    ck_assert_int_eq(sqlite3_open(tpath, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    snprintf(out, 256, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* Runs the sqlite3 command-line shell on the store, as an attacker would. */
static void cli(const char *sql)
{
    char *cmd = NULL, *out = NULL, *errs = NULL;
    int rc;

    ck_assert_int_ge(asprintf(&cmd, "sqlite3 '%s' \"%s\"", tpath, sql), 0);
    rc = tu_run(cmd, NULL, 0, &out, &errs);
    ck_assert_msg(rc == 0, "%s: exit %d: %s", cmd, rc, errs ? errs : "");
    free(cmd);
    free(out);
    free(errs);
}

static int verify(audit_verify_result_t *res)
{
    return audit_verify(ta, res, terr, sizeof terr);
}

/* sqlite3_auto_extension hands us every new connection: the store's own. */
static sqlite3 *captured_db;

static int capture_db(sqlite3 *db, const char **errmsg, const struct sqlite3_api_routines *api)
{
    (void)errmsg;
    (void)api;
    captured_db = db;
    return SQLITE_OK;
}

START_TEST(test_open_creates_schema)
{
    char mode[256];

    captured_db = NULL;
    ck_assert_int_eq(sqlite3_auto_extension((void (*)(void))capture_db), SQLITE_OK);
    open_rw();
    sqlite3_cancel_auto_extension((void (*)(void))capture_db);
    ck_assert_ptr_nonnull(captured_db);
    /* Per-connection settings, read on the store's own connection. */
    ck_assert_int_eq(conn_int(captured_db, "PRAGMA synchronous"), 2); /* FULL */
    ck_assert_int_eq(conn_int(captured_db, "PRAGMA foreign_keys"), 1);
    ck_assert_int_eq(conn_int(captured_db, "PRAGMA busy_timeout"), 5000);
    /* Persistent settings, read from the file by another connection. */
    side_text("PRAGMA journal_mode", mode);
    ck_assert_str_eq(mode, "wal");
    ck_assert_int_eq(side_int("PRAGMA user_version"), AUDIT_SCHEMA_VERSION);
    ck_assert_int_eq(side_int("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name"
                              " IN ('audit', 'certificates')"),
                     2);
    ck_assert_int_eq(side_int("SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND"
                              " name NOT LIKE 'sqlite_autoindex%'"),
                     8);
    ck_assert_int_eq(audit_count(ta), 0);
}
END_TEST

START_TEST(test_reopen_continues_chain)
{
    audit_entry_t e[3], next = ev("fault", "L2", 0, "after restart");
    char head[AUDIT_HASH_HEX];

    for (int i = 0; i < 3; i++)
        e[i] = ev("fault", "L1", TS0 + i, "before restart");
    open_rw();
    append_ok(e, 3);
    snprintf(head, sizeof head, "%s", e[2].row.hash);
    audit_free(ta);
    ta = NULL;
    open_rw();
    ck_assert_int_eq(audit_count(ta), 3);
    append_ok(&next, 1);
    ck_assert_int_eq(next.row.seq, 4);
    ck_assert_str_eq(next.row.prev_hash, head);
}
END_TEST

START_TEST(test_append_batch_chains)
{
    audit_entry_t e[5];
    char h[AUDIT_HASH_HEX], stored[256], sql[128];

    for (int i = 0; i < 5; i++)
        e[i] = ev(i % 2 ? "refused" : "fault", "L1", TS0 + i, "x");
    e[1].row.reason = "cn-invalid";
    open_rw();
    append_ok(e, 5);
    ck_assert_str_eq(e[0].row.prev_hash, ZERO64);
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(e[i].row.seq, i + 1);
        ck_assert_uint_eq(strlen(e[i].row.hash), 64);
        if (i > 0)
            ck_assert_str_eq(e[i].row.prev_hash, e[i - 1].row.hash);
        audit_row_hash(&e[i].row, e[i].row.prev_hash, h);
        ck_assert_str_eq(e[i].row.hash, h);
        snprintf(sql, sizeof sql, "SELECT hash FROM audit WHERE seq = %d", i + 1);
        side_text(sql, stored);
        ck_assert_str_eq(stored, h);
    }
    ck_assert_int_eq(audit_count(ta), 5);
}
END_TEST

START_TEST(test_append_fills_timestamp)
{
    audit_entry_t e[2] = {ev("fault", "L1", 0, NULL), ev("fault", "L1", TS0, NULL)};
    struct timespec ts;
    int64_t before, after;

    open_rw();
    clock_gettime(CLOCK_REALTIME, &ts);
    before = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    append_ok(e, 2);
    clock_gettime(CLOCK_REALTIME, &ts);
    after = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    ck_assert_int_ge(e[0].row.ts_ms, before);
    ck_assert_int_le(e[0].row.ts_ms, after);
    ck_assert_int_eq(e[1].row.ts_ms, TS0);
    ck_assert_int_eq(side_int("SELECT ts_ms FROM audit WHERE seq = 1"), e[0].row.ts_ms);
}
END_TEST

START_TEST(test_append_failure_rolls_back)
{
    struct tcert c1, dup;
    audit_entry_t first, batch[3], next;
    audit_verify_result_t res;
    char head[AUDIT_HASH_HEX];

    tcert_init(&c1, "0A01", "L1", "dev-1", NULL);
    tcert_init(&dup, "0A01", "L1", "dev-2", NULL); /* same serial */
    first = ev_cert("issued", &c1);
    open_rw();
    append_ok(&first, 1);
    snprintf(head, sizeof head, "%s", first.row.hash);

    batch[0] = ev("fault", "L1", 0, "a");
    batch[1] = ev("refused", "L1", 0, "b");
    batch[2] = ev_cert("issued", &dup);
    ck_assert_int_eq(audit_append(ta, batch, 3, terr, sizeof terr), LC_ERR_EXISTS);
    ck_assert_ptr_nonnull(strstr(terr, "0A01"));
    ck_assert_ptr_nonnull(strstr(terr, "UNIQUE"));
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(batch[i].row.seq, 0);
        ck_assert_str_eq(batch[i].row.hash, "");
        ck_assert_str_eq(batch[i].row.prev_hash, "");
        ck_assert_int_eq(batch[i].row.ts_ms, 0);
    }
    ck_assert_int_eq(audit_count(ta), 1);
    ck_assert_int_eq(side_int("SELECT count(*) FROM audit"), 1);
    ck_assert_int_eq(side_int("SELECT count(*) FROM certificates"), 1);

    next = ev("fault", "L1", 0, "after the failure");
    append_ok(&next, 1);
    ck_assert_int_eq(next.row.seq, 2);
    ck_assert_str_eq(next.row.prev_hash, head);
    ck_assert_int_eq(verify(&res), LC_OK);
    ck_assert_int_eq(res.rows, 2);
}
END_TEST

START_TEST(test_append_rejects_inconsistent_cert)
{
    struct tcert c;
    audit_entry_t e;

    tcert_init(&c, "0A01", "L1", "dev-1", NULL);
    e = ev_cert("issued", &c);
    e.row.serial = "0A02"; /* the row names another certificate */
    open_rw();
    ck_assert_int_eq(audit_append(ta, &e, 1, terr, sizeof terr), LC_ERR_AUDIT);
    ck_assert_ptr_nonnull(strstr(terr, "differ"));

    e = ev_cert("issued", &c);
    c.thumb[0] = c.thumb[0] == 'A' ? 'B' : 'A'; /* not the DER's digest */
    ck_assert_int_eq(audit_append(ta, &e, 1, terr, sizeof terr), LC_ERR_AUDIT);
    ck_assert_ptr_nonnull(strstr(terr, "thumbprint"));

    e = ev("fault", "L1", 0, NULL);
    e.row.actor = NULL;
    ck_assert_int_eq(audit_append(ta, &e, 1, terr, sizeof terr), LC_ERR_AUDIT);
    ck_assert_int_eq(audit_count(ta), 0);
}
END_TEST

START_TEST(test_verify_clean)
{
    struct tcert c1, c2;
    audit_entry_t e[3];
    audit_verify_result_t res;

    open_rw();
    ck_assert_int_eq(verify(&res), LC_OK);
    ck_assert_int_eq(res.rows, 0);
    ck_assert_str_eq(res.head, "");

    append_plain(4);
    tcert_init(&c1, "0A01", "L1", "dev-1", NULL);
    tcert_init(&c2, "0A02", "L1", "dev-2", NULL);
    e[0] = ev_cert("issued", &c1);
    e[1] = ev("refused", "L1", 0, NULL);
    e[2] = ev_cert("issued", &c2);
    append_ok(e, 3);
    ck_assert_int_eq(verify(&res), LC_OK);
    ck_assert_int_eq(res.rows, 7);
    ck_assert_str_eq(res.head, e[2].row.hash);
    ck_assert_int_eq(res.first_bad_seq, 0);
    ck_assert_str_eq(res.problem, "");
}
END_TEST

START_TEST(test_verify_detects_edit)
{
    audit_verify_result_t res;

    open_rw();
    append_plain(5);
    cli("UPDATE audit SET detail = 'nothing happened' WHERE seq = 3");
    ck_assert_int_eq(verify(&res), LC_ERR_TAMPERED);
    ck_assert_int_eq(res.first_bad_seq, 3);
    ck_assert_int_eq(res.rows, 2);
    ck_assert_str_eq(res.problem, "row 3: hash does not match its contents (edited)");
    ck_assert_ptr_nonnull(strstr(terr, "row 3"));
}
END_TEST

START_TEST(test_verify_detects_null_to_empty_edit)
{
    audit_verify_result_t res;

    open_rw();
    append_plain(3); /* reason is NULL */
    cli("UPDATE audit SET reason = '' WHERE seq = 2");
    ck_assert_int_eq(verify(&res), LC_ERR_TAMPERED);
    ck_assert_int_eq(res.first_bad_seq, 2);
}
END_TEST

START_TEST(test_verify_detects_deleted_row)
{
    audit_verify_result_t res;
    char head[AUDIT_HASH_HEX];
    audit_entry_t e[5];

    for (int i = 0; i < 5; i++)
        e[i] = ev("fault", "L1", TS0 + i, NULL);
    open_rw();
    append_ok(e, 5);
    snprintf(head, sizeof head, "%s", e[1].row.hash);
    cli("DELETE FROM audit WHERE seq = 3");
    ck_assert_int_eq(verify(&res), LC_ERR_TAMPERED);
    ck_assert_int_eq(res.first_bad_seq, 3);
    ck_assert_str_eq(res.problem, "row 3: sequence gap after 2 (row deleted)");
    ck_assert_int_eq(res.rows, 2);
    ck_assert_str_eq(res.head, head);
}
END_TEST

START_TEST(test_verify_detects_deleted_and_renumbered)
{
    audit_verify_result_t res;

    open_rw();
    append_plain(5);
    /* Hide the deletion by closing the gap. */
    cli("DELETE FROM audit WHERE seq = 3; UPDATE audit SET seq = -seq WHERE seq > 3;"
        " UPDATE audit SET seq = -seq - 1 WHERE seq < 0");
    ck_assert_int_eq(verify(&res), LC_ERR_TAMPERED);
    ck_assert_int_eq(res.first_bad_seq, 3);
    ck_assert_ptr_nonnull(strstr(res.problem, "prev_hash does not match row 2"));
}
END_TEST

/* Inserts a row with every column given, on a second connection. */
static void side_insert(const audit_row_t *r)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;

    ck_assert_int_eq(sqlite3_open(tpath, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_prepare_v2(db,
                                        "INSERT INTO audit VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8,"
                                        " ?9, ?10, ?11, ?12, ?13)",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_int64(st, 1, r->seq);
    sqlite3_bind_int64(st, 2, r->ts_ms);
    sqlite3_bind_text(st, 3, r->actor, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, r->line, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, r->kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, r->registration_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, r->serial, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, r->thumbprint, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 9, r->csr_sha256, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 10, r->reason, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 11, r->detail, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 12, r->prev_hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 13, r->hash, -1, SQLITE_STATIC);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

START_TEST(test_verify_detects_forged_insert)
{
    audit_entry_t e[5];
    audit_row_t forged;
    audit_verify_result_t res;

    for (int i = 0; i < 5; i++)
        e[i] = ev("fault", "L1", TS0 + i, NULL);
    open_rw();
    append_ok(e, 5);
    /* Make room at seq 3 and insert a self-consistent forged row there. */
    cli("UPDATE audit SET seq = -seq WHERE seq >= 3; UPDATE audit SET seq = 1 - seq WHERE seq < 0");
    memset(&forged, 0, sizeof forged);
    forged.seq = 3;
    forged.ts_ms = TS0 + 2;
    forged.actor = "linecertd";
    forged.line = "L1";
    forged.kind = "issued";
    forged.registration_id = "rogue-device";
    forged.serial = "DEAD";
    snprintf(forged.prev_hash, sizeof forged.prev_hash, "%s", e[1].row.hash);
    audit_row_hash(&forged, forged.prev_hash, forged.hash);
    side_insert(&forged);

    ck_assert_int_eq(verify(&res), LC_ERR_TAMPERED);
    /* The forged row itself is consistent; the chain breaks at the next one. */
    ck_assert_int_eq(res.first_bad_seq, 4);
    ck_assert_str_eq(res.problem, "row 4: prev_hash does not match row 3 (inserted or reordered)");
    ck_assert_int_eq(res.rows, 3);
}
END_TEST

START_TEST(test_verify_detects_forged_row_breaking_chain)
{
    audit_entry_t e[5];
    audit_row_t forged;
    audit_verify_result_t res;

    for (int i = 0; i < 5; i++)
        e[i] = ev("fault", "L1", TS0 + i, NULL);
    open_rw();
    append_ok(e, 5);
    /* Appended after row 5 but chained to row 4, with a correct own hash. */
    memset(&forged, 0, sizeof forged);
    forged.seq = 6;
    forged.ts_ms = TS0 + 6;
    forged.actor = "linecertd";
    forged.line = "L1";
    forged.kind = "revoked";
    forged.serial = "0A01";
    snprintf(forged.prev_hash, sizeof forged.prev_hash, "%s", e[3].row.hash);
    audit_row_hash(&forged, forged.prev_hash, forged.hash);
    side_insert(&forged);

    ck_assert_int_eq(verify(&res), LC_ERR_TAMPERED);
    ck_assert_int_eq(res.first_bad_seq, 6);
    ck_assert_ptr_nonnull(strstr(res.problem, "prev_hash does not match row 5"));
    ck_assert_int_eq(res.rows, 5);
    ck_assert_str_eq(res.head, e[4].row.hash);
}
END_TEST

START_TEST(test_verify_detects_reorder)
{
    audit_verify_result_t res;

    open_rw();
    append_plain(5);
    /* Swap the contents of rows 2 and 3 (hashes travel with them). */
    cli("UPDATE audit SET seq = -2 WHERE seq = 2; UPDATE audit SET seq = 2 WHERE seq = 3;"
        " UPDATE audit SET seq = 3 WHERE seq = -2");
    ck_assert_int_eq(verify(&res), LC_ERR_TAMPERED);
    ck_assert_int_eq(res.first_bad_seq, 2);
    ck_assert_str_eq(res.problem, "row 2: prev_hash does not match row 1 (inserted or reordered)");
    ck_assert_int_eq(res.rows, 1);
}
END_TEST

START_TEST(test_verify_detects_missing_cert_row)
{
    struct tcert c;
    audit_entry_t e;
    audit_verify_result_t res;

    tcert_init(&c, "0A01", "L1", "dev-1", NULL);
    e = ev_cert("issued", &c);
    open_rw();
    append_plain(2);
    append_ok(&e, 1);
    ck_assert_int_eq(e.row.seq, 3);
    /* Deleting the newest row leaves an intact chain; the certificate remains. */
    side_exec("PRAGMA foreign_keys = OFF; DELETE FROM audit WHERE seq = 3");
    ck_assert_int_eq(verify(&res), LC_ERR_TAMPERED);
    ck_assert_int_eq(res.first_bad_seq, 3);
    ck_assert_int_eq(res.rows, 2);
    ck_assert_str_eq(res.problem, "row 3: certificate 0A01: its audit row is missing (deleted)");
}
END_TEST

START_TEST(test_verify_detects_replaced_cert_der)
{
    struct tcert c;
    audit_entry_t e;
    audit_verify_result_t res;

    tcert_init(&c, "0A01", "L1", "dev-1", NULL);
    e = ev_cert("issued", &c);
    open_rw();
    append_plain(2);
    append_ok(&e, 1);
    cli("UPDATE certificates SET der = X'3082' WHERE serial = '0A01'");
    ck_assert_int_eq(verify(&res), LC_ERR_TAMPERED);
    ck_assert_int_eq(res.first_bad_seq, 3);
    ck_assert_ptr_nonnull(strstr(res.problem, "DER"));
}
END_TEST

/* Refuses every new SQLite connection while installed, and counts them. */
static int refused_conns;

static int refuse_conn(sqlite3 *db, const char **errmsg, const struct sqlite3_api_routines *api)
{
    (void)db;
    (void)api;
    refused_conns++;
    *errmsg = sqlite3_mprintf("refused by the test");
    return SQLITE_ERROR;
}

START_TEST(test_verify_without_second_connection)
{
    struct tcert c;
    audit_entry_t e;
    audit_verify_result_t res;

    tcert_init(&c, "0A01", "L1", "dev-1", NULL);
    e = ev_cert("issued", &c);
    open_rw();
    append_plain(2);
    append_ok(&e, 1);
    /* No second connection: the certificates are checked on the store's own. */
    refused_conns = 0;
    ck_assert_int_eq(sqlite3_auto_extension((void (*)(void))refuse_conn), SQLITE_OK);
    ck_assert_msg(verify(&res) == LC_OK, "%s", terr);
    ck_assert_int_eq(res.rows, 3);
    ck_assert_str_eq(res.head, e.row.hash);
    ck_assert_int_ge(refused_conns, 1); /* the second connection was tried */
    sqlite3_cancel_auto_extension((void (*)(void))refuse_conn);
    cli("UPDATE certificates SET der = X'3082' WHERE serial = '0A01'");
    ck_assert_int_eq(sqlite3_auto_extension((void (*)(void))refuse_conn), SQLITE_OK);
    ck_assert_int_eq(verify(&res), LC_ERR_TAMPERED);
    sqlite3_cancel_auto_extension((void (*)(void))refuse_conn);
    ck_assert_int_eq(res.first_bad_seq, 3);
    ck_assert_ptr_nonnull(strstr(res.problem, "certificate replaced"));
}
END_TEST

START_TEST(test_verify_reads_the_open_file_after_chdir)
{
    struct tcert c;
    audit_entry_t e;
    audit_verify_result_t res;
    char *other = NULL, *cmd = NULL, cwd[4096];
    audit_t *rel = NULL;

    tcert_init(&c, "0A01", "L1", "dev-1", NULL);
    e = ev_cert("issued", &c);
    open_rw();
    append_ok(&e, 1);
    audit_free(ta);
    ta = NULL;
    /* Another store of the same name elsewhere, with its certificate replaced. */
    ck_assert_int_ge(asprintf(&other, "%s/other", tdir), 0);
    ck_assert_int_eq(mkdir(other, 0700), 0);
    ck_assert_int_ge(asprintf(&cmd,
                              "cp %s %s/audit.db && sqlite3 %s/audit.db \"UPDATE"
                              " certificates SET der = X'3082'\"",
                              tpath, other, other),
                     0);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
    ck_assert_int_eq(chdir(tdir), 0);
    ck_assert_msg(audit_open("audit.db", AUDIT_READONLY, &rel, terr, sizeof terr) == LC_OK, "%s",
                  terr);
    /* verify's other connection and its prefetch must read the file this handle has open. */
    ck_assert_int_eq(chdir(other), 0);
    ck_assert_msg(audit_verify(rel, &res, terr, sizeof terr) == LC_OK, "%s", terr);
    ck_assert_int_eq(res.rows, 1);
    ck_assert_int_eq(chdir(cwd), 0);
    audit_free(rel);
    free(cmd);
    free(other);
}
END_TEST

/* A station appending certificates on its own handle until told to stop. */
struct appender {
    const char *path;
    atomic_int stop;
    int batches;
    int ret;
    char err[512];
};

static void *append_loop(void *arg)
{
    struct appender *ap = arg;
    audit_t *a = NULL;

    ap->ret = audit_open(ap->path, AUDIT_READWRITE, &a, ap->err, sizeof ap->err);
    for (int i = 0; ap->ret == LC_OK && !atomic_load(&ap->stop) && i < 2000; i++) {
        struct tcert c[4];
        audit_entry_t e[5];
        char serial[32], regid[32];

        for (int k = 0; k < 4; k++) {
            snprintf(serial, sizeof serial, "%04X%02X", i, k);
            snprintf(regid, sizeof regid, "dev-%d-%d", i, k);
            tcert_init(&c[k], serial, "L2", regid, NULL);
            e[k] = ev_cert("issued", &c[k]);
        }
        e[4] = ev("refused", "L2", 0, "cn-invalid");
        ap->ret = audit_append(a, e, 5, ap->err, sizeof ap->err);
        ap->batches++;
    }
    audit_free(a);
    return NULL;
}

START_TEST(test_verify_while_station_appends)
{
    struct appender ap = {.stop = 0};
    audit_t *ro = NULL;
    audit_verify_result_t res;
    pthread_t tid;
    int64_t last = 0;

    open_rw();
    append_plain(3);
    audit_free(ta);
    ta = NULL;
    ap.path = tpath;
    ck_assert_int_eq(pthread_create(&tid, NULL, append_loop, &ap), 0);
    ck_assert_int_eq(audit_open(tpath, AUDIT_READONLY, &ro, terr, sizeof terr), LC_OK);
    /* Each verify sees one snapshot: whatever was committed, all of it verifies. */
    for (int i = 0; i < 15 || (last <= 3 && i < 5000); i++) {
        ck_assert_msg(audit_verify(ro, &res, terr, sizeof terr) == LC_OK, "verify %d: %s", i, terr);
        ck_assert_int_ge(res.rows, last);
        last = res.rows;
    }
    atomic_store(&ap.stop, 1);
    pthread_join(tid, NULL);
    audit_free(ro);
    ck_assert_msg(ap.ret == LC_OK, "appender: %s", ap.err);
    ck_assert_int_gt(ap.batches, 0);
    ck_assert_int_gt(last, 3); /* verify ran while rows were being added */
}
END_TEST

/* What the row callback saw; stop_at makes it reject that seq. */
struct seen_rows {
    int64_t n;
    int64_t seqs[16];
    char kinds[16][16];
    char hashes[16][AUDIT_HASH_HEX];
    char prevs[16][AUDIT_HASH_HEX];
    int64_t stop_at;
};

static int record_row(void *ctx, const audit_row_t *row, char *problem, size_t plen)
{
    struct seen_rows *s = ctx;

    ck_assert_int_lt(s->n, 16);
    s->seqs[s->n] = row->seq;
    snprintf(s->kinds[s->n], sizeof s->kinds[0], "%s", row->kind);
    memcpy(s->hashes[s->n], row->hash, AUDIT_HASH_HEX);
    memcpy(s->prevs[s->n], row->prev_hash, AUDIT_HASH_HEX);
    s->n++;
    if (row->seq == s->stop_at) {
        snprintf(problem, plen, "row %lld: signature counter went backwards", (long long)row->seq);
        return 1;
    }
    return 0;
}

START_TEST(test_verify_rows_callback_sees_every_row_in_order)
{
    struct tcert c1;
    audit_entry_t e[4];
    audit_verify_result_t res;
    struct seen_rows seen = {0};

    open_rw();
    tcert_init(&c1, "0B01", "L2", "dev-9", NULL);
    e[0] = ev("fault", "L1", TS0, "jig timeout");
    e[1] = ev_cert("issued", &c1);
    e[2] = ev("refused", "L1", TS0 + 2, NULL);
    e[3] = ev("control", "", TS0 + 3, "pause");
    append_ok(e, 4);
    ck_assert_msg(audit_verify_rows(ta, &res, record_row, &seen, terr, sizeof terr) == LC_OK, "%s",
                  terr);
    ck_assert_int_eq(res.rows, 4);
    ck_assert_int_eq(seen.n, 4);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(seen.seqs[i], i + 1);
        ck_assert_str_eq(seen.kinds[i], e[i].row.kind);
        ck_assert_str_eq(seen.hashes[i], e[i].row.hash);
        ck_assert_str_eq(seen.prevs[i], e[i].row.prev_hash);
    }
    /* NULL callback: exactly audit_verify(). */
    ck_assert_int_eq(audit_verify_rows(ta, &res, NULL, NULL, terr, sizeof terr), LC_OK);
    ck_assert_int_eq(res.rows, 4);
    ck_assert_str_eq(res.head, e[3].row.hash);
}
END_TEST

START_TEST(test_verify_rows_callback_stops_at_its_row)
{
    audit_verify_result_t res;
    struct seen_rows seen = {0};
    audit_entry_t e[5];

    for (int i = 0; i < 5; i++)
        e[i] = ev("fault", "L1", TS0 + i, NULL);
    open_rw();
    append_ok(e, 5);
    seen.stop_at = 3;
    ck_assert_int_eq(audit_verify_rows(ta, &res, record_row, &seen, terr, sizeof terr),
                     LC_ERR_TAMPERED);
    ck_assert_int_eq(seen.n, 3); /* nothing after the rejected row */
    ck_assert_int_eq(res.first_bad_seq, 3);
    ck_assert_str_eq(res.problem, "row 3: signature counter went backwards");
    ck_assert_int_eq(res.rows, 2);
    ck_assert_str_eq(res.head, e[1].row.hash);
    ck_assert_ptr_nonnull(strstr(terr, "signature counter went backwards"));
}
END_TEST

START_TEST(test_verify_rows_callback_not_called_past_tampering)
{
    audit_verify_result_t res;
    struct seen_rows seen = {0};

    open_rw();
    append_plain(5);
    cli("UPDATE audit SET detail = 'nothing happened' WHERE seq = 4");
    ck_assert_int_eq(audit_verify_rows(ta, &res, record_row, &seen, terr, sizeof terr),
                     LC_ERR_TAMPERED);
    /* Only rows whose hash and link verified reach the callback. */
    ck_assert_int_eq(seen.n, 3);
    ck_assert_int_eq(res.first_bad_seq, 4);
    ck_assert_str_eq(res.problem, "row 4: hash does not match its contents (edited)");
}
END_TEST

START_TEST(test_edit_of_last_row_exposed_by_next_append)
{
    audit_entry_t e[3], next = ev("fault", "L1", 0, "next");
    audit_row_t edited;
    audit_verify_result_t res;
    char sql[256];

    for (int i = 0; i < 3; i++)
        e[i] = ev("fault", "L1", TS0 + i, "original");
    open_rw();
    append_ok(e, 3);
    /* Edit the newest row and re-hash it: undetectable on its own. */
    edited = e[2].row;
    edited.detail = "rewritten";
    audit_row_hash(&edited, edited.prev_hash, edited.hash);
    snprintf(sql, sizeof sql, "UPDATE audit SET detail = 'rewritten', hash = '%s' WHERE seq = 3",
             edited.hash);
    side_exec(sql);
    ck_assert_int_eq(verify(&res), LC_OK);
    /* The station chains to the hash it wrote, so the edit shows. */
    append_ok(&next, 1);
    ck_assert_str_eq(next.row.prev_hash, e[2].row.hash);
    ck_assert_int_eq(verify(&res), LC_ERR_TAMPERED);
    ck_assert_int_eq(res.first_bad_seq, 4);
}
END_TEST

START_TEST(test_append_refuses_after_truncation)
{
    audit_entry_t next = ev("fault", "L1", 0, NULL);

    open_rw();
    append_plain(3);
    side_exec("DELETE FROM audit WHERE seq = 3");
    ck_assert_int_eq(audit_append(ta, &next, 1, terr, sizeof terr), LC_ERR_AUDIT);
    ck_assert_ptr_nonnull(strstr(terr, "shrank"));
    ck_assert_int_eq(next.row.seq, 0);
    ck_assert_int_eq(audit_count(ta), 2);
}
END_TEST

/* The encoding of docs/audit.md, written out independently of audit.c. */
static size_t put_str(unsigned char *b, const char *s)
{
    size_t n;

    if (s == NULL) {
        b[0] = 0;
        return 1;
    }
    n = strlen(s);
    b[0] = 1;
    b[1] = (unsigned char)(n >> 24);
    b[2] = (unsigned char)(n >> 16);
    b[3] = (unsigned char)(n >> 8);
    b[4] = (unsigned char)n;
    memcpy(b + 5, s, n);
    return 5 + n;
}

static size_t put_i64(unsigned char *b, int64_t v)
{
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)v >> (56 - 8 * i));
    return 8;
}

static void spec_hash(const audit_row_t *r, const char *prev, char out[AUDIT_HASH_HEX])
{
    unsigned char buf[2048], md[32];
    unsigned int mdlen = 0;
    size_t len = 0;
    const char *s[] = {r->actor,      r->line,       r->kind,   r->registration_id, r->serial,
                       r->thumbprint, r->csr_sha256, r->reason, r->detail,          prev};

    memcpy(buf, "linecert-audit-v1", 17);
    len = 17;
    len += put_i64(buf + len, r->seq);
    len += put_i64(buf + len, r->ts_ms);
    for (int i = 0; i < 10; i++)
        len += put_str(buf + len, s[i]);
    ck_assert_int_eq(EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL), 1);
    for (unsigned int i = 0; i < mdlen; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* The worked example of docs/audit.md. */
static audit_row_t sample_row(void)
{
    audit_row_t r;

    memset(&r, 0, sizeof r);
    r.seq = 1;
    r.ts_ms = TS0;
    r.actor = "linecertd";
    r.line = "L1";
    r.kind = "refused";
    r.registration_id = "dev-0001";
    r.csr_sha256 = "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08";
    r.reason = "cn-invalid";
    r.detail = "";
    return r;
}

START_TEST(test_hash_encoding_matches_spec)
{
    audit_row_t r = sample_row();
    char got[AUDIT_HASH_HEX], want[AUDIT_HASH_HEX];

    audit_row_hash(&r, ZERO64, got);
    spec_hash(&r, ZERO64, want);
    ck_assert_str_eq(got, want);
    /* Pinned so that the encoding cannot change silently (docs/audit.md). */
    ck_assert_str_eq(got, "61b7c88363ffdd22d54c316bb905085b63ad068c26d7b6586e849558689206f7");
}
END_TEST

START_TEST(test_hash_null_differs_from_empty)
{
    audit_row_t r = sample_row();
    char h_empty[AUDIT_HASH_HEX], h_null[AUDIT_HASH_HEX], h1[AUDIT_HASH_HEX], h2[AUDIT_HASH_HEX];

    audit_row_hash(&r, ZERO64, h_empty);
    r.detail = NULL;
    audit_row_hash(&r, ZERO64, h_null);
    ck_assert_str_ne(h_empty, h_null);
    /* Moving a byte across a field boundary changes the hash. */
    r.actor = "ab";
    r.line = "c";
    audit_row_hash(&r, ZERO64, h1);
    r.actor = "a";
    r.line = "bc";
    audit_row_hash(&r, ZERO64, h2);
    ck_assert_str_ne(h1, h2);
}
END_TEST

START_TEST(test_find_valid_regid_case_insensitive)
{
    struct tcert c;
    audit_entry_t e;
    audit_cert_info_t info;

    tcert_init(&c, "0A01", "L1", "Device-ABC", NULL);
    e = ev_cert("issued", &c);
    open_rw();
    append_ok(&e, 1);
    ck_assert_int_eq(audit_find_valid_regid(ta, "device-abc", &info, terr, sizeof terr), LC_OK);
    ck_assert_str_eq(info.serial, "0A01");
    ck_assert_str_eq(info.registration_id, "Device-ABC");
    ck_assert_str_eq(info.status, "valid");
    ck_assert_str_eq(info.line, "L1");
    ck_assert_int_eq(info.audit_seq, 1);
    ck_assert_int_eq(audit_find_valid_regid(ta, "DEVICE-ABC", NULL, terr, sizeof terr), LC_OK);
    ck_assert_int_eq(audit_find_valid_regid(ta, "device-abd", &info, terr, sizeof terr),
                     LC_ERR_NOT_FOUND);
    ck_assert_str_eq(info.serial, "");
}
END_TEST

START_TEST(test_supersede_marks_old_cert)
{
    struct tcert old, fresh;
    audit_entry_t e1, e2;
    audit_cert_info_t info;
    audit_verify_result_t res;
    char by[256];

    tcert_init(&old, "0A01", "L1", "Device-ABC", NULL);
    tcert_init(&fresh, "0B02", "L1", "device-abc", "0A01");
    e1 = ev_cert("issued", &old);
    e2 = ev_cert("reissued", &fresh);
    open_rw();
    append_ok(&e1, 1);
    append_ok(&e2, 1);
    ck_assert_int_eq(audit_get_cert(ta, "0A01", &info, NULL, NULL, terr, sizeof terr), LC_OK);
    ck_assert_str_eq(info.status, "superseded");
    side_text("SELECT superseded_by FROM certificates WHERE serial = '0A01'", by);
    ck_assert_str_eq(by, "0B02");
    ck_assert_int_eq(audit_find_valid_regid(ta, "DEVICE-abc", &info, terr, sizeof terr), LC_OK);
    ck_assert_str_eq(info.serial, "0B02");
    ck_assert_int_eq(info.audit_seq, 2);
    ck_assert_int_eq(verify(&res), LC_OK);
}
END_TEST

START_TEST(test_supersede_unknown_serial_fails)
{
    struct tcert c;
    audit_entry_t e;

    tcert_init(&c, "0B02", "L1", "dev-1", "0A01");
    e = ev_cert("reissued", &c);
    open_rw();
    ck_assert_int_eq(audit_append(ta, &e, 1, terr, sizeof terr), LC_ERR_AUDIT);
    ck_assert_ptr_nonnull(strstr(terr, "0A01"));
    ck_assert_int_eq(audit_count(ta), 0);
    ck_assert_int_eq(audit_serial_free(ta, "0B02", terr, sizeof terr), LC_OK);
}
END_TEST

START_TEST(test_get_cert_returns_der)
{
    struct tcert c;
    audit_entry_t e;
    audit_cert_info_t info;
    unsigned char *der = NULL;
    size_t len = 0;

    tcert_init(&c, "0A01", "L7", "dev-7", NULL);
    e = ev_cert("issued", &c);
    open_rw();
    append_plain(1);
    append_ok(&e, 1);
    ck_assert_int_eq(audit_get_cert(ta, "0A01", &info, &der, &len, terr, sizeof terr), LC_OK);
    ck_assert_uint_eq(len, sizeof c.der);
    ck_assert_mem_eq(der, c.der, len);
    ck_assert_str_eq(info.line, "L7");
    ck_assert_str_eq(info.registration_id, "dev-7");
    ck_assert_int_eq(info.not_before, c.c.not_before);
    ck_assert_int_eq(info.not_after, c.c.not_after);
    ck_assert_int_eq(info.audit_seq, 2);
    free(der);
    der = (unsigned char *)"junk";
    ck_assert_int_eq(audit_get_cert(ta, "FFFF", &info, &der, &len, terr, sizeof terr),
                     LC_ERR_NOT_FOUND);
    ck_assert_ptr_null(der);
    ck_assert_uint_eq(len, 0);
}
END_TEST

START_TEST(test_serial_free)
{
    struct tcert c;
    audit_entry_t e;

    tcert_init(&c, "0A01", "L1", "dev-1", NULL);
    e = ev_cert("issued", &c);
    open_rw();
    ck_assert_int_eq(audit_serial_free(ta, "0A01", terr, sizeof terr), LC_OK);
    append_ok(&e, 1);
    ck_assert_int_eq(audit_serial_free(ta, "0A01", terr, sizeof terr), LC_ERR_EXISTS);
    ck_assert_int_eq(audit_serial_free(ta, "0A02", terr, sizeof terr), LC_OK);
}
END_TEST

/* Runs an export into a malloc'd string. */
static char *export_str(enum audit_export_format fmt, const char *line, int64_t since)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    ck_assert_ptr_nonnull(f);
    ck_assert_msg(audit_export(ta, f, fmt, line, since, terr, sizeof terr) == LC_OK, "%s", terr);
    fclose(f);
    return buf;
}

static audit_entry_t export_row(void)
{
    audit_entry_t e = ev("refused", "L1", TS0, "a,b \"c\"\nd");

    e.row.registration_id = "dev-1";
    e.row.csr_sha256 = "AB";
    e.row.reason = "";
    return e;
}

START_TEST(test_export_csv_quoting)
{
    audit_entry_t e = export_row();
    char want[1024];
    char *got;

    open_rw();
    append_ok(&e, 1);
    got = export_str(AUDIT_EXPORT_CSV, NULL, 0);
    snprintf(want, sizeof want,
             "seq,ts,ts_ms,actor,line,kind,registration_id,serial,thumbprint,csr_sha256,reason,"
             "detail,prev_hash,hash\r\n"
             "1,2026-11-23T19:30:00.123Z,1795462200123,linecertd,L1,refused,dev-1,,,AB,,"
             "\"a,b \"\"c\"\"\nd\",%s,%s\r\n",
             ZERO64, e.row.hash);
    ck_assert_str_eq(got, want);
    free(got);
}
END_TEST

START_TEST(test_export_jsonl_escaping)
{
    audit_entry_t e = export_row();
    char want[1024];
    char *got;

    e.row.detail = "q\"b\\s\nt\tc\x01 \xc3\xa9 \xff";
    open_rw();
    append_ok(&e, 1);
    got = export_str(AUDIT_EXPORT_JSONL, NULL, 0);
    snprintf(want, sizeof want,
             "{\"seq\":1,\"ts\":\"2026-11-23T19:30:00.123Z\",\"ts_ms\":1795462200123,"
             "\"actor\":\"linecertd\",\"line\":\"L1\",\"kind\":\"refused\","
             "\"registration_id\":\"dev-1\",\"serial\":null,\"thumbprint\":null,"
             "\"csr_sha256\":\"AB\",\"reason\":\"\","
             "\"detail\":\"q\\\"b\\\\s\\u000at\\u0009c\\u0001 \xc3\xa9 \\ufffd\","
             "\"prev_hash\":\"%s\",\"hash\":\"%s\"}\n",
             ZERO64, e.row.hash);
    ck_assert_str_eq(got, want);
    free(got);
}
END_TEST

/* The seq of every CSV data row, comma-separated ("1,3"). */
static void csv_seqs(const char *csv, char *out, size_t outlen)
{
    const char *p = strstr(csv, "\r\n");

    out[0] = '\0';
    while (p != NULL && p[2] != '\0') {
        p += 2;
        snprintf(out + strlen(out), outlen - strlen(out), "%s%ld", out[0] ? "," : "",
                 strtol(p, NULL, 10));
        p = strstr(p, "\r\n");
    }
}

START_TEST(test_export_filters)
{
    audit_entry_t e[4] = {ev("fault", "L1", TS0, NULL), ev("fault", "L2", TS0 + 1000, NULL),
                          ev("fault", "L1", TS0 + 2000, NULL), ev("fault", "L2", TS0 + 3000, NULL)};
    char seqs[64], *got;

    open_rw();
    append_ok(e, 4);
    got = export_str(AUDIT_EXPORT_CSV, "L1", 0);
    csv_seqs(got, seqs, sizeof seqs);
    ck_assert_str_eq(seqs, "1,3");
    free(got);
    got = export_str(AUDIT_EXPORT_CSV, NULL, TS0 + 2000);
    csv_seqs(got, seqs, sizeof seqs);
    ck_assert_str_eq(seqs, "3,4");
    free(got);
    got = export_str(AUDIT_EXPORT_CSV, "L2", TS0 + 2000);
    csv_seqs(got, seqs, sizeof seqs);
    ck_assert_str_eq(seqs, "4");
    free(got);
    got = export_str(AUDIT_EXPORT_JSONL, "L2", 0);
    ck_assert_ptr_nonnull(strstr(got, "{\"seq\":2,"));
    ck_assert_ptr_nonnull(strstr(got, "}\n{\"seq\":4,"));
    ck_assert_ptr_null(strstr(got, "\"line\":\"L1\""));
    free(got);
    got = export_str(AUDIT_EXPORT_CSV, "L3", 0);
    csv_seqs(got, seqs, sizeof seqs);
    ck_assert_str_eq(seqs, "");
    free(got);
}
END_TEST

START_TEST(test_readonly_cannot_append)
{
    audit_t *ro = NULL;
    audit_entry_t e = ev("fault", "L1", 0, NULL);
    audit_verify_result_t res;

    open_rw();
    append_plain(2);
    audit_free(ta);
    ta = NULL;
    ck_assert_msg(audit_open(tpath, AUDIT_READONLY, &ro, terr, sizeof terr) == LC_OK, "%s", terr);
    ck_assert_int_eq(audit_append(ro, &e, 1, terr, sizeof terr), LC_ERR_AUDIT);
    ck_assert_ptr_nonnull(strstr(terr, "read-only"));
    ck_assert_int_eq(e.row.seq, 0);
    ck_assert_int_eq(audit_count(ro), 2);
    ck_assert_int_eq(audit_verify(ro, &res, terr, sizeof terr), LC_OK);
    ck_assert_int_eq(res.rows, 2);
    audit_free(ro);
    ck_assert_int_eq(side_int("SELECT count(*) FROM audit"), 2);
}
END_TEST

START_TEST(test_readonly_while_writer_holds_db)
{
    audit_t *ro = NULL;
    sqlite3 *w = NULL;
    audit_verify_result_t res;
    audit_entry_t e = ev("fault", "L1", 0, NULL);

    open_rw();
    append_plain(2);
    /* Another connection holds the write lock with an uncommitted row. */
    ck_assert_int_eq(sqlite3_open(tpath, &w), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(w,
                                  "BEGIN IMMEDIATE; INSERT INTO audit VALUES (3, 0, 'x', 'L1',"
                                  " 'fault', NULL, NULL, NULL, NULL, NULL, NULL, 'p', 'h')",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    ck_assert_msg(audit_open(tpath, AUDIT_READONLY, &ro, terr, sizeof terr) == LC_OK, "%s", terr);
    ck_assert_int_eq(audit_count(ro), 2);
    ck_assert_int_eq(audit_verify(ro, &res, terr, sizeof terr), LC_OK);
    ck_assert_int_eq(res.rows, 2);
    ck_assert_int_eq(sqlite3_exec(w, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(w);
    /* The reader sees the station's next commit. */
    append_ok(&e, 1);
    ck_assert_int_eq(audit_count(ro), 3);
    audit_free(ro);
}
END_TEST

START_TEST(test_readonly_missing_file_fails)
{
    audit_t *ro = (audit_t *)&ro;
    struct stat sb;

    ck_assert_int_eq(audit_open(tpath, AUDIT_READONLY, &ro, terr, sizeof terr), LC_ERR_AUDIT);
    ck_assert_ptr_null(ro);
    ck_assert_ptr_nonnull(strstr(terr, tpath));
    ck_assert_int_ne(stat(tpath, &sb), 0); /* nothing created */
}
END_TEST

START_TEST(test_open_non_database_fails)
{
    static const char junk[] = "this is a config file, not an audit store\n";
    audit_t *a = NULL;
    FILE *f = fopen(tpath, "w");
    char *after;

    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < 200; i++)
        fputs(junk, f);
    fclose(f);
    ck_assert_int_eq(audit_open(tpath, AUDIT_READWRITE, &a, terr, sizeof terr), LC_ERR_AUDIT);
    ck_assert_ptr_null(a);
    ck_assert_ptr_nonnull(strstr(terr, tpath));
    ck_assert_ptr_nonnull(strstr(terr, "not a linecert audit store (file is not a database)"));
    ck_assert_int_eq(audit_open(tpath, AUDIT_READONLY, &a, terr, sizeof terr), LC_ERR_AUDIT);
    ck_assert_ptr_nonnull(strstr(terr, "not a database"));
    after = tu_slurp(tpath, NULL);
    ck_assert_ptr_nonnull(after);
    ck_assert_uint_eq(strlen(after), 200 * strlen(junk));
    ck_assert_int_eq(strncmp(after, junk, strlen(junk)), 0);
    free(after);
}
END_TEST

START_TEST(test_open_foreign_database_fails)
{
    audit_t *a = NULL;

    side_exec("CREATE TABLE recipes (name TEXT)");
    ck_assert_int_eq(audit_open(tpath, AUDIT_READWRITE, &a, terr, sizeof terr), LC_ERR_AUDIT);
    ck_assert_ptr_null(a);
    ck_assert_ptr_nonnull(strstr(terr, "not a linecert audit store"));
    ck_assert_int_eq(side_int("SELECT count(*) FROM sqlite_schema"), 1);
    ck_assert_int_eq(side_int("PRAGMA user_version"), 0);
}
END_TEST

START_TEST(test_open_newer_schema_fails)
{
    audit_t *a = NULL;

    open_rw();
    audit_free(ta);
    ta = NULL;
    side_exec("PRAGMA user_version = 4"); /* AUDIT_SCHEMA_VERSION + 1 */
    ck_assert_int_eq(AUDIT_SCHEMA_VERSION, 3);
    ck_assert_int_eq(audit_open(tpath, AUDIT_READONLY, &a, terr, sizeof terr), LC_ERR_AUDIT);
    ck_assert_ptr_null(a);
    ck_assert_ptr_nonnull(strstr(terr, "schema version 4 is newer"));
    ck_assert_int_eq(audit_open(tpath, AUDIT_READWRITE, &a, terr, sizeof terr), LC_ERR_AUDIT);
    ck_assert_ptr_null(a);
    ck_assert_int_eq(side_int("PRAGMA user_version"), 4);
}
END_TEST

START_TEST(test_null_arguments_do_not_crash)
{
    audit_t *a = NULL;
    audit_verify_result_t res;
    audit_entry_t e = ev("fault", "L1", 0, NULL);

    ck_assert_int_eq(audit_open(NULL, AUDIT_READWRITE, &a, NULL, 0), LC_ERR_AUDIT);
    ck_assert_ptr_null(a);
    ck_assert_int_eq(audit_append(NULL, &e, 1, NULL, 0), LC_ERR_AUDIT);
    ck_assert_int_eq(audit_verify(NULL, &res, NULL, 0), LC_ERR_AUDIT);
    ck_assert_int_eq(audit_count(NULL), LC_ERR_AUDIT);
    audit_free(NULL);
    open_rw();
    ck_assert_int_eq(audit_find_valid_regid(ta, "x", NULL, NULL, 0), LC_ERR_NOT_FOUND);
    ck_assert_int_eq(audit_get_cert(ta, "x", NULL, NULL, NULL, NULL, 0), LC_ERR_NOT_FOUND);
    ck_assert_int_eq(audit_export(ta, NULL, AUDIT_EXPORT_CSV, NULL, 0, NULL, 0), LC_ERR_AUDIT);
    ck_assert_int_eq(audit_append(ta, NULL, 0, NULL, 0), LC_OK);
    ck_assert_int_eq(audit_append(ta, NULL, 1, NULL, 0), LC_ERR_AUDIT);
    e.row.kind = NULL;
    ck_assert_int_eq(audit_append(ta, &e, 1, NULL, 0), LC_ERR_AUDIT);
}
END_TEST

static Suite *audit_suite(void)
{
    Suite *s = suite_create("audit");
    TCase *tc = tcase_create("store");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_open_creates_schema);
    tcase_add_test(tc, test_reopen_continues_chain);
    tcase_add_test(tc, test_append_batch_chains);
    tcase_add_test(tc, test_append_fills_timestamp);
    tcase_add_test(tc, test_append_failure_rolls_back);
    tcase_add_test(tc, test_append_rejects_inconsistent_cert);
    tcase_add_test(tc, test_verify_clean);
    tcase_add_test(tc, test_verify_detects_edit);
    tcase_add_test(tc, test_verify_detects_null_to_empty_edit);
    tcase_add_test(tc, test_verify_detects_deleted_row);
    tcase_add_test(tc, test_verify_detects_deleted_and_renumbered);
    tcase_add_test(tc, test_verify_detects_forged_insert);
    tcase_add_test(tc, test_verify_detects_forged_row_breaking_chain);
    tcase_add_test(tc, test_verify_detects_reorder);
    tcase_add_test(tc, test_verify_detects_missing_cert_row);
    tcase_add_test(tc, test_verify_detects_replaced_cert_der);
    tcase_add_test(tc, test_verify_without_second_connection);
    tcase_add_test(tc, test_verify_while_station_appends);
    tcase_add_test(tc, test_verify_reads_the_open_file_after_chdir);
    tcase_add_test(tc, test_verify_rows_callback_sees_every_row_in_order);
    tcase_add_test(tc, test_verify_rows_callback_stops_at_its_row);
    tcase_add_test(tc, test_verify_rows_callback_not_called_past_tampering);
    tcase_add_test(tc, test_edit_of_last_row_exposed_by_next_append);
    tcase_add_test(tc, test_append_refuses_after_truncation);
    tcase_add_test(tc, test_hash_encoding_matches_spec);
    tcase_add_test(tc, test_hash_null_differs_from_empty);
    tcase_add_test(tc, test_find_valid_regid_case_insensitive);
    tcase_add_test(tc, test_supersede_marks_old_cert);
    tcase_add_test(tc, test_supersede_unknown_serial_fails);
    tcase_add_test(tc, test_get_cert_returns_der);
    tcase_add_test(tc, test_serial_free);
    tcase_add_test(tc, test_export_csv_quoting);
    tcase_add_test(tc, test_export_jsonl_escaping);
    tcase_add_test(tc, test_export_filters);
    tcase_add_test(tc, test_readonly_cannot_append);
    tcase_add_test(tc, test_readonly_while_writer_holds_db);
    tcase_add_test(tc, test_readonly_missing_file_fails);
    tcase_add_test(tc, test_open_non_database_fails);
    tcase_add_test(tc, test_open_foreign_database_fails);
    tcase_add_test(tc, test_open_newer_schema_fails);
    tcase_add_test(tc, test_null_arguments_do_not_crash);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(audit_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
