/*
 * fuzz_audit.c — the audit store's readers over a damaged or tampered
 * database file: `linecert audit verify` and `audit export`, the CLI's
 * lifecycle queries (CRL, enrollment export) and the operator UI's figures.
 *
 * Each input is a whole SQLite database file.  It is written to a scratch
 * file and opened read-only with audit_open (stats_open for the UI path), as
 * an auditor opens a copy of the store they were handed.  SQLite must not
 * crash on it and our code must not crash, leak or hit undefined behaviour.
 *
 * Seeds are small real stores (make_seeds.c).  Flipping bytes mostly
 * tests SQLite's corruption checks, so a custom mutator also makes the
 * edits a tamperer would make, through SQLite on an in-memory copy: change
 * any column to text, blobs, NULL, numbers or another row's values, delete,
 * duplicate or renumber rows, break the link to the certificates table,
 * alter the schema.  That is what exercises audit_verify()'s own logic.
 *
 * Checks beyond the sanitizers:
 *  - audit_verify returns LC_OK with a full, gap-free count and the head
 *    hash, LC_ERR_TAMPERED with the first bad row and a problem, or
 *    LC_ERR_AUDIT with a message: nothing else;
 *  - every JSONL export line is a JSON object (strict, valid UTF-8), and
 *    every CSV record has the 14 columns of the header;
 *  - the UI's figures stay within their documented bounds.
 */
#include "audit.h"
#include "fuzz_util.h"
#include "lcerr.h"
#include "lifecycle.h"
#include "stats.h"

#include <json-c/json.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

#define EXPORT_COLUMNS 14
#define NOW_MS         1735732800000LL /* 2025-01-01T12:00Z, inside the seeds' day */

static char g_db[256];
static char g_side[3][270]; /* -wal, -shm, -journal: SQLite may leave them */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const char *const sfx[] = {"-wal", "-shm", "-journal"};
    const char *dir = fz_scratch("audit");

    (void)argc;
    (void)argv;
    snprintf(g_db, sizeof g_db, "%s/audit.db", dir);
    for (int i = 0; i < 3; i++)
        snprintf(g_side[i], sizeof g_side[i], "%s%s", g_db, sfx[i]);
    return 0;
}

/* The side files SQLite may leave; the database itself is truncated and rewritten (cheaper). */
static void remove_side_files(void)
{
    for (int i = 0; i < 3; i++)
        fz_unlink(g_side[i]);
}

/* Each line of a JSONL export must be one strict JSON object with every key. */
static void check_jsonl(const char *buf, size_t len)
{
    struct json_tokener *tok = json_tokener_new();
    const char *p = buf, *end = buf + len;

    FZ_CHECK(tok != NULL, "json_tokener_new");
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        json_object *obj;
        FZ_CHECK(nl != NULL, "every JSONL record ends with a newline");
        json_tokener_reset(tok);
        obj = json_tokener_parse_ex(tok, p, (int)(nl - p));
        FZ_CHECK(obj != NULL && json_tokener_get_error(tok) == json_tokener_success &&
                     json_tokener_get_parse_end(tok) == (size_t)(nl - p),
                 "a JSONL record is one valid JSON value");
        FZ_CHECK(json_object_is_type(obj, json_type_object) &&
                     json_object_object_length(obj) == EXPORT_COLUMNS,
                 "a JSONL record is an object with every column");
        json_object_put(obj);
        p = nl + 1;
    }
    json_tokener_free(tok);
}

/* RFC 4180: every record (CRLF-terminated) has EXPORT_COLUMNS fields. */
static void check_csv(const char *buf, size_t len)
{
    size_t i = 0;

    while (i < len) {
        int fields = 1;
        for (;;) {
            FZ_CHECK(i < len, "CSV record ends with CRLF");
            if (buf[i] == '"') { /* quoted: "" is a quote, the field ends at a lone quote */
                for (i++;; i++) {
                    FZ_CHECK(i < len, "CSV quoted field is closed");
                    if (buf[i] == '"' && i + 1 < len && buf[i + 1] == '"')
                        i++;
                    else if (buf[i] == '"')
                        break;
                }
                i++;
            } else {
                while (i < len && buf[i] != ',' && buf[i] != '\r' && buf[i] != '\n' &&
                       buf[i] != '"')
                    i++;
            }
            FZ_CHECK(i < len && (buf[i] == ',' || buf[i] == '\r'),
                     "CSV field is followed by a comma or CRLF");
            if (buf[i] == '\r')
                break;
            fields++;
            i++;
        }
        FZ_CHECK(i + 1 < len && buf[i + 1] == '\n', "CSV record ends with CRLF");
        FZ_CHECK(fields == EXPORT_COLUMNS, "CSV record has every column");
        i += 2;
    }
}

static void check_export(audit_t *a, enum audit_export_format fmt)
{
    char *buf = NULL, err[512];
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    int ret;

    FZ_CHECK(f != NULL, "open_memstream");
    ret = audit_export(a, f, fmt, NULL, 0, err, sizeof err);
    FZ_CHECK(fclose(f) == 0, "fclose");
    FZ_CHECK(ret == LC_OK || ret == LC_ERR_AUDIT, "export: LC_OK or LC_ERR_AUDIT");
    if (ret == LC_OK) {
        if (fmt == AUDIT_EXPORT_JSONL)
            check_jsonl(buf, len);
        else
            check_csv(buf, len);
    }
    free(buf);
}

static void check_verify(audit_t *a)
{
    audit_verify_result_t res;
    char err[512];
    int ret;

    err[0] = '\0';
    ret = audit_verify(a, &res, err, sizeof err);
    if (ret == LC_OK) {
        FZ_CHECK(res.first_bad_seq == 0, "verified: no bad row");
        FZ_CHECK(res.rows == audit_count(a), "verified: every row 1..head counted");
        FZ_CHECK(res.rows == 0
                     ? res.head[0] == '\0'
                     : strlen(res.head) == 64 && strspn(res.head, "0123456789abcdef") == 64,
                 "verified: head is the last row's hash");
    } else if (ret == LC_ERR_TAMPERED) {
        FZ_CHECK(res.first_bad_seq >= 1, "tampered: names the first bad row");
        FZ_CHECK(res.problem[0] != '\0' && err[0] != '\0', "tampered: says what is wrong");
    } else {
        FZ_CHECK(ret == LC_ERR_AUDIT, "verify: LC_OK, LC_ERR_TAMPERED or LC_ERR_AUDIT");
        FZ_CHECK(err[0] != '\0', "verify failure has a message");
    }
}

static int count_cert(void *user, const lifecycle_cert_t *c)
{
    size_t *n = user;

    FZ_CHECK(c->der != NULL || c->der_len == 0, "certificate DER pointer");
    (*n)++;
    return 0;
}

static void check_lifecycle(audit_t *a)
{
    lifecycle_revoked_t *rev = NULL;
    lifecycle_crl_state_t cs;
    size_t n = 0, certs = 0;
    char err[512];
    int ret;

    ret = lifecycle_revoked(a, "1", &rev, &n, err, sizeof err);
    FZ_CHECK(ret == LC_OK || (rev == NULL && n == 0), "revoked list only on success");
    for (size_t i = 0; i < n; i++)
        FZ_CHECK(memchr(rev[i].serial, '\0', sizeof rev[i].serial) != NULL, "serial string");
    free(rev);
    lifecycle_crl_state(a, "1", &cs, err, sizeof err);
    lifecycle_foreach_cert(a, "1", count_cert, &certs, err, sizeof err);
}

static void check_stats(void)
{
    static const char *const lines[] = {"1", "2"};
    stats_params_t p;
    stats_result_t *res = malloc(sizeof *res);
    stats_t *s = NULL;
    char err[512];

    FZ_CHECK(res != NULL, "malloc");
    if (stats_open(g_db, &s, err, sizeof err) == LC_OK) {
        memset(&p, 0, sizeof p);
        p.now_ms = NOW_MS;
        p.shift_start_ms = NOW_MS - 6 * 3600 * 1000LL;
        p.day_start_ms = NOW_MS - 12 * 3600 * 1000LL;
        p.lines = lines;
        p.nlines = 2;
        p.max_events = STATS_MAX_EVENTS;
        if (stats_query(s, &p, res, err, sizeof err) == LC_OK) {
            FZ_CHECK(res->nlines == 2 && res->nevents <= STATS_MAX_EVENTS, "stats bounds");
            for (size_t i = 0; i < res->nevents; i++)
                FZ_CHECK(memchr(res->events[i].detail, '\0', sizeof res->events[i].detail) != NULL,
                         "event detail string");
        }
    } else {
        FZ_CHECK(s == NULL, "no stats handle on failure");
    }
    stats_free(s);
    free(res);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    audit_t *a = NULL;
    char err[512];

    remove_side_files();
    fz_write_file(g_db, data, size, 0644);
    err[0] = '\0';
    if (audit_open(g_db, AUDIT_READONLY, &a, err, sizeof err) == LC_OK) {
        check_verify(a);
        check_export(a, AUDIT_EXPORT_JSONL);
        check_export(a, AUDIT_EXPORT_CSV);
        check_lifecycle(a);
        audit_free(a);
    } else {
        FZ_CHECK(a == NULL && strstr(err, g_db) != NULL, "a refused store is named");
    }
    check_stats();
    remove_side_files();
    return 0;
}

/* ---- the tamperer: SQL edits on an in-memory copy ---------------------------------------- */

static uint64_t g_rng;

static unsigned pick(unsigned n)
{
    g_rng = g_rng * 6364136223846793005ULL + 1442695040888963407ULL; /* PCG's LCG step */
    return (unsigned)((g_rng >> 33) % n);
}

static const char *const AUDIT_COLS[] = {
    "seq",        "ts_ms",  "actor",  "line",      "kind", "registration_id", "serial",
    "thumbprint", "reason", "detail", "prev_hash", "hash", "csr_sha256"};
static const char *const CERT_COLS[] = {
    "serial",       "line", "registration_id", "regid_fold", "not_before", "not_after",
    "thumbprint",   "der",  "status",          "audit_seq",  "acked",      "spki_sha256",
    "superseded_by"};
static const char *const VALUES[] = {
    "NULL",
    "''",
    "'x'",
    "'1'",
    "X'00'",
    "X'ff00fe'",
    "CAST(X'c328e282' AS TEXT)",        /* not UTF-8 */
    "CAST(X'41004200' AS TEXT)",        /* embedded NUL */
    "'a,\"b\"' || char(13, 10) || 'c'", /* CSV specials */
    "char(27) || '[31mred'",            /* terminal escape */
    "char(0x1F600, 0xFFFD, 0x7F)",
    "-1",
    "0",
    "1",
    "9223372036854775807",
    "-9223372036854775808",
    "253402300800000", /* year 10000 in ms */
    "-62167219200001", /* before year 0 */
    "1.5",
    "'0000000000000000000000000000000000000000000000000000000000000000'",
    "upper(hash)",
    "hash",
    "prev_hash",
    "substr(hash, 2)",
    "hash || 'x'",
    "zeroblob(3000)",
    "hex(zeroblob(32))",
    "'revoked'",
    "'valid'",
    "'issued'",
    "'crl'",
    "'refused'",
    "'fault'",
    "'2'",
    "'line.1'",
    "'keyCompromise'",
    "'next-update-ms=9223372036854775807'",
    "'next-update-ms=-1; sig=x'",
    "printf('%.*c', 300, 'A')",
};

/* One edit, as SQL against the copy; errors (constraints, schema) just mean no change. */
static char *make_edit(void)
{
    const char *v = VALUES[pick(sizeof VALUES / sizeof VALUES[0])];
    unsigned k = pick(40), d = 1 + pick(3);

    switch (pick(14)) {
    case 0:
    case 1:
    case 2:
        return sqlite3_mprintf("UPDATE audit SET %s = %s WHERE seq = "
                               "(SELECT seq FROM audit ORDER BY seq LIMIT 1 OFFSET %u)",
                               AUDIT_COLS[pick(sizeof AUDIT_COLS / sizeof AUDIT_COLS[0])], v, k);
    case 3:
    case 4:
        return sqlite3_mprintf("UPDATE certificates SET %s = %s WHERE rowid = "
                               "(SELECT rowid FROM certificates ORDER BY rowid LIMIT 1 OFFSET %u)",
                               CERT_COLS[pick(sizeof CERT_COLS / sizeof CERT_COLS[0])], v, k % 16);
    case 5:
        return sqlite3_mprintf("DELETE FROM audit WHERE seq = "
                               "(SELECT seq FROM audit ORDER BY seq LIMIT 1 OFFSET %u)",
                               k);
    case 6:
        return sqlite3_mprintf("DELETE FROM certificates WHERE rowid = "
                               "(SELECT rowid FROM certificates ORDER BY rowid LIMIT 1 OFFSET %u)",
                               k % 16);
    case 7: /* renumber a tail: a gap, or an overlap the primary key refuses */
        return sqlite3_mprintf("UPDATE audit SET seq = seq + %u WHERE seq >= %u", d * 1000, k);
    case 8: /* swap two rows */
        return sqlite3_mprintf("UPDATE audit SET seq = -seq WHERE seq = %u;"
                               "UPDATE audit SET seq = %u WHERE seq = %u;"
                               "UPDATE audit SET seq = %u WHERE seq = -%u",
                               k, k, k + d, k + d, k);
    case 9: /* a copy of a row appended at the end (the trigger counts it) */
        return sqlite3_mprintf(
            "INSERT INTO audit SELECT (SELECT max(seq) + 1 FROM audit), ts_ms, actor, line, kind,"
            " registration_id, serial, thumbprint, csr_sha256, reason, detail, prev_hash, hash"
            " FROM audit ORDER BY seq LIMIT 1 OFFSET %u",
            k);
    case 10:
        return sqlite3_mprintf("PRAGMA %s = %s", pick(2) ? "user_version" : "application_id",
                               pick(2) ? "1279476053" : (pick(2) ? "2" : "4"));
    case 11: { /* the schema itself */
        static const char *const schema[] = {
            "DROP TABLE certificates",
            "DROP TABLE minute_counts",
            "DROP TRIGGER audit_minute_counts",
            "DROP INDEX audit_events_ts",
            "DELETE FROM minute_counts",
            "UPDATE minute_counts SET n = -5",
            "UPDATE minute_counts SET n = 9223372036854775807",
            "INSERT INTO minute_counts VALUES ('1', -1, 'issued', 5)",
            "ALTER TABLE audit RENAME TO audit_old; CREATE VIEW audit AS SELECT * FROM audit_old",
            "ALTER TABLE audit RENAME TO audit_old; CREATE VIEW audit AS SELECT seq, ts_ms,"
            " actor, line, kind, registration_id, serial, thumbprint, csr_sha256, reason, detail,"
            " prev_hash, hash FROM audit_old UNION ALL SELECT * FROM audit_old",
            "ALTER TABLE certificates RENAME TO c2; CREATE TABLE certificates (serial)",
            "ALTER TABLE audit ADD COLUMN extra TEXT DEFAULT 'x'",
        };
        return sqlite3_mprintf("%s", schema[pick(sizeof schema / sizeof schema[0])]);
    }
    case 12:
        return sqlite3_mprintf("VACUUM");
    default:
        return sqlite3_mprintf("UPDATE audit SET detail = %s, hash = %s WHERE seq = %u", v,
                               VALUES[pick(sizeof VALUES / sizeof VALUES[0])], k);
    }
}

/* Applies one SQL edit to data; returns the new size, or 0 when it did not work out. */
static size_t sql_mutate(uint8_t *data, size_t size, size_t max_size)
{
    sqlite3 *db = NULL;
    unsigned char *copy, *out = NULL;
    sqlite3_int64 n = 0;
    char *sql;
    size_t ret = 0;

    if (size == 0 || sqlite3_open(":memory:", &db) != SQLITE_OK)
        goto done;
    copy = sqlite3_malloc64(size);
    FZ_CHECK(copy != NULL, "sqlite3_malloc64");
    memcpy(copy, data, size);
    if (sqlite3_deserialize(db, "main", copy, (sqlite3_int64)size, (sqlite3_int64)size,
                            SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_RESIZEABLE) !=
        SQLITE_OK)
        goto done;
    sql = make_edit();
    FZ_CHECK(sql != NULL, "sqlite3_mprintf");
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK) {
        out = sqlite3_serialize(db, "main", &n, 0);
        /* Unchanged (the edit matched nothing) or too big: let the byte mutator have it. */
        if (out != NULL && n > 0 && (size_t)n <= max_size &&
            ((size_t)n != size || memcmp(out, data, size) != 0)) {
            memcpy(data, out, (size_t)n);
            ret = (size_t)n;
        }
    }
    sqlite3_free(sql);
done:
    sqlite3_free(out);
    sqlite3_close(db);
    return ret;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    size_t n;

    g_rng = seed;
    if (pick(2) == 0 && (n = sql_mutate(data, size, max_size)) > 0)
        return n;
    return LLVMFuzzerMutate(data, size, max_size);
}
