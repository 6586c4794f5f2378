/*
 * audit.c — the tamper-evident audit store (see audit.h and docs/audit.md).
 *
 * Why it looks the way it does:
 *  - The station commits thousands of rows per second, so the write path
 *    keeps its prepared statements, its SHA-256 method and digest context and
 *    the chain head in the handle: an append costs one transaction, not one
 *    per row, and no per-row allocation or method fetch.
 *  - The chain head is cached at open and trusted over the file: if the last
 *    row is edited (and even re-hashed) behind the station's back, the next
 *    row still links to the hash the station wrote, so audit_verify() finds
 *    the edit.  If rows vanish from the end while the station runs, the
 *    station refuses to append (fails closed) rather than chain over the gap.
 *  - The hash encoding is length-prefixed with a presence flag per string so
 *    that NULL differs from "" and bytes cannot move between fields; the exact
 *    layout is in docs/audit.md for auditors who re-implement verification.
 *  - A read-only handle never writes, never migrates, and refuses files that
 *    are not linecert stores or that were written by a newer schema.
 */
#include "audit-private.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <sqlite3.h>

#include "lcerr.h"

/* PRAGMA application_id of a linecert store ("LCAU"), to refuse foreign DBs. */
#define AUDIT_APPLICATION_ID 0x4c434155
#define AUDIT_BUSY_MS        5000
#define AUDIT_DOMAIN_TAG     "linecert-audit-v1"
#define AUDIT_ZERO_HASH      "0000000000000000000000000000000000000000000000000000000000000000"

/*
 * Schema migrations: step i moves user_version from i to i + 1.  A future
 * schema adds an element; never edit a step that has shipped.
 */
static const char *const migrations[] = {
    /* 0 -> 1: the initial schema. */
    "CREATE TABLE audit ("
    " seq INTEGER PRIMARY KEY,"
    " ts_ms INTEGER NOT NULL,"
    " actor TEXT NOT NULL,"
    " line TEXT NOT NULL,"
    " kind TEXT NOT NULL,"
    " registration_id TEXT,"
    " serial TEXT,"
    " thumbprint TEXT,"
    " csr_sha256 TEXT,"
    " reason TEXT,"
    " detail TEXT,"
    " prev_hash TEXT NOT NULL,"
    " hash TEXT NOT NULL);"
    "CREATE INDEX audit_line_ts ON audit(line, ts_ms);"
    "CREATE INDEX audit_ts ON audit(ts_ms);"
    "CREATE INDEX audit_kind_ts ON audit(kind, ts_ms);"
    "CREATE TABLE certificates ("
    " serial TEXT PRIMARY KEY,"
    " line TEXT NOT NULL,"
    " registration_id TEXT NOT NULL,"
    " regid_fold TEXT NOT NULL,"
    " not_before INTEGER NOT NULL,"
    " not_after INTEGER NOT NULL,"
    " thumbprint TEXT NOT NULL,"
    " der BLOB NOT NULL,"
    " status TEXT NOT NULL DEFAULT 'valid',"
    " audit_seq INTEGER NOT NULL REFERENCES audit(seq),"
    " superseded_by TEXT);"
    "CREATE INDEX certificates_regid ON certificates(regid_fold, status);"
    "CREATE INDEX certificates_line ON certificates(line);"
    "PRAGMA application_id = 1279476053;",
    /* 1 -> 2: re-delivery after a lost PLC ACK needs to know whether the PLC
     * acknowledged a certificate and which key it certifies; a registration ID
     * has at most one valid certificate, enforced by the database itself. */
    "ALTER TABLE certificates ADD COLUMN spki_sha256 TEXT;"
    "ALTER TABLE certificates ADD COLUMN acked INTEGER NOT NULL DEFAULT 0;"
    "CREATE UNIQUE INDEX certificates_valid_regid ON certificates(regid_fold)"
    " WHERE status = 'valid';",
    /* 2 -> 3: the operator UI refreshes every second on a log of millions of
     * rows (db/stats.c).  minute_counts holds rows per (line, UTC minute,
     * kind), kept by a trigger inside each append transaction and backfilled
     * here; it is a display aid outside the hash chain, never evidence.  The
     * partial indexes hold only refusals and faults, so the events pane reads
     * the newest of them directly however rare they are. */
    "CREATE TABLE minute_counts ("
    " line TEXT NOT NULL,"
    " minute INTEGER NOT NULL,"
    " kind TEXT NOT NULL,"
    " n INTEGER NOT NULL,"
    " PRIMARY KEY (line, minute, kind)) WITHOUT ROWID;"
    "INSERT INTO minute_counts (line, minute, kind, n)"
    " SELECT line, ts_ms / 60000, kind, count(*) FROM audit GROUP BY 1, 2, 3;"
    "CREATE TRIGGER audit_minute_counts AFTER INSERT ON audit BEGIN"
    " INSERT INTO minute_counts (line, minute, kind, n)"
    " VALUES (NEW.line, NEW.ts_ms / 60000, NEW.kind, 1)"
    " ON CONFLICT (line, minute, kind) DO UPDATE SET n = n + 1;"
    " END;"
    "CREATE INDEX audit_events_ts ON audit(ts_ms) WHERE kind IN ('refused', 'fault');"
    "CREATE INDEX audit_events_line ON audit(line, ts_ms) WHERE kind IN ('refused', 'fault');",
};
#define MIGRATION_COUNT ((int)(sizeof migrations / sizeof migrations[0]))

_Static_assert(MIGRATION_COUNT == AUDIT_SCHEMA_VERSION, "one migration step per schema version");
_Static_assert(AUDIT_APPLICATION_ID == 1279476053, "application_id in migration 1");

/* Cached statements, prepared on first use (a read-only handle needs few). */
enum stmt_id {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_MAXSEQ,
    ST_HEAD,
    ST_INS_AUDIT,
    ST_INS_CERT,
    ST_SUPERSEDE,
    ST_FIND_REGID,
    ST_GET_CERT,
    ST_SERIAL,
    ST_COUNT,
    ST_ACK,
    ST_REVOKE,
    ST_COUNT_LINE,
    ST__N
};

static const char *const stmt_sql[ST__N] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_MAXSEQ] = "SELECT max(seq) FROM audit",
    [ST_HEAD] = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
    [ST_INS_AUDIT] = "INSERT INTO audit (seq, ts_ms, actor, line, kind, registration_id, serial,"
                     " thumbprint, csr_sha256, reason, detail, prev_hash, hash)"
                     " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    [ST_INS_CERT] = "INSERT INTO certificates (serial, line, registration_id, regid_fold,"
                    " not_before, not_after, thumbprint, der, status, audit_seq, spki_sha256)"
                    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'valid', ?9, ?10)",
    /* A revoked certificate stays revoked when it is re-issued. */
    [ST_SUPERSEDE] = "UPDATE certificates SET superseded_by = ?1,"
                     " status = CASE status WHEN 'valid' THEN 'superseded' ELSE status END"
                     " WHERE serial = ?2",
    /*
     * certificates_valid_regid (schema 2) holds at most one valid row per
     * folded ID, and this reads it directly: an ORDER BY here made SQLite sort
     * that one row in a temporary b-tree at every issuance.
     */
    [ST_FIND_REGID] = "SELECT serial, line, registration_id, status, not_before, not_after,"
                      " audit_seq, acked, spki_sha256 FROM certificates"
                      " WHERE regid_fold = ?1 AND"
                      " status = 'valid'",
    [ST_GET_CERT] = "SELECT serial, line, registration_id, status, not_before, not_after,"
                    " audit_seq, acked, spki_sha256, der FROM certificates WHERE serial = ?1",
    [ST_REVOKE] = "UPDATE certificates SET status = 'revoked' WHERE serial = ?1",
    [ST_ACK] = "UPDATE certificates SET acked = 1 WHERE serial = ?1",
    [ST_COUNT_LINE] = "SELECT count(*) FROM certificates WHERE line = ?1",
    [ST_SERIAL] = "SELECT 1 FROM certificates WHERE serial = ?1",
    /* seq has no gaps (verify checks it), so the head is the count, without a table scan */
    [ST_COUNT] = "SELECT ifnull(max(seq), 0) FROM audit",
};

struct audit {
    sqlite3 *db;
    char *path;                     /* for messages */
    int readonly;                   /* AUDIT_READONLY: never writes */
    EVP_MD *sha256;                 /* fetched once: fetching per row is slow */
    EVP_MD_CTX *mdctx;              /* reused for every row hash */
    sqlite3_stmt *st[ST__N];        /* see stmt_sql; NULL until first use */
    int64_t head_seq;               /* last committed row (0 = empty) */
    char head_hash[AUDIT_HASH_HEX]; /* its hash (64 '0' when empty) */
};

/*
 * The fields of one row as hashed, with explicit lengths so that the verifier
 * can hash column text in place.  A NULL pointer is an SQL NULL.
 */
struct hash_fields {
    int64_t seq;
    int64_t ts_ms;
    const char *s[10]; /* actor, line, kind, registration_id, serial, thumbprint,
                          csr_sha256, reason, detail, prev_hash */
    size_t n[10];
};

/* Collects the canonical encoding so that short rows cost one digest update. */
struct hash_enc {
    EVP_MD_CTX *ctx;
    int ok;
    size_t len;
    unsigned char buf[1024];
};

static void enc_flush(struct hash_enc *h)
{
    if (h->len > 0 && EVP_DigestUpdate(h->ctx, h->buf, h->len) != 1)
        h->ok = 0;
    h->len = 0;
}

static void enc_bytes(struct hash_enc *h, const void *p, size_t n)
{
    if (n > sizeof h->buf - h->len) {
        enc_flush(h);
        if (n > sizeof h->buf) {
            if (EVP_DigestUpdate(h->ctx, p, n) != 1)
                h->ok = 0;
            return;
        }
    }
    if (n > 0)
        memcpy(h->buf + h->len, p, n);
    h->len += n;
}

static void enc_u64(struct hash_enc *h, uint64_t v, int width)
{
    unsigned char b[8];

    for (int i = 0; i < width; i++)
        b[i] = (unsigned char)(v >> (8 * (width - 1 - i)));
    enc_bytes(h, b, (size_t)width);
}

static void enc_str(struct hash_enc *h, const char *s, size_t n)
{
    unsigned char present = s != NULL;

    enc_bytes(h, &present, 1);
    if (s == NULL)
        return;
    /* SQLite caps a value at 1e9 bytes, so 32 bits always hold the length. */
    enc_u64(h, (uint64_t)(uint32_t)n, 4);
    enc_bytes(h, s, n);
}

/* Hashes f with md on ctx into out (64 hex + NUL).  Returns 1, or 0 on failure. */
static int hash_fields(EVP_MD_CTX *ctx, const EVP_MD *md, const struct hash_fields *f,
                       char out[AUDIT_HASH_HEX])
{
    struct hash_enc h;
    unsigned char dgst[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;

    out[0] = '\0';
    h.ctx = ctx;
    h.ok = EVP_DigestInit_ex(ctx, md, NULL) == 1;
    h.len = 0;
    enc_bytes(&h, AUDIT_DOMAIN_TAG, sizeof AUDIT_DOMAIN_TAG - 1);
    enc_u64(&h, (uint64_t)f->seq, 8);
    enc_u64(&h, (uint64_t)f->ts_ms, 8);
    for (int i = 0; i < 10; i++)
        enc_str(&h, f->s[i], f->n[i]);
    enc_flush(&h);
    if (!h.ok || EVP_DigestFinal_ex(ctx, dgst, &dlen) != 1 || dlen != 32)
        return 0;
    lc_hex(dgst, dlen, 0, out);
    return 1;
}

static void fields_from_row(struct hash_fields *f, const audit_row_t *row, int64_t seq,
                            int64_t ts_ms, const char *prev_hash)
{
    const char *s[10] = {row->actor,  row->line,       row->kind,       row->registration_id,
                         row->serial, row->thumbprint, row->csr_sha256, row->reason,
                         row->detail, prev_hash};

    f->seq = seq;
    f->ts_ms = ts_ms;
    for (int i = 0; i < 10; i++) {
        f->s[i] = s[i];
        f->n[i] = s[i] != NULL ? strlen(s[i]) : 0;
    }
}

void audit_row_hash(const audit_row_t *row, const char *prev_hash, char out[AUDIT_HASH_HEX])
{
    struct hash_fields f;
    EVP_MD *md = NULL;
    EVP_MD_CTX *ctx = NULL;

    /* Not the hot path (the handle keeps its own method and context). */
    out[0] = '\0';
    if (row == NULL)
        return;
    md = EVP_MD_fetch(NULL, "SHA256", NULL);
    ctx = EVP_MD_CTX_new();
    if (md == NULL || ctx == NULL)
        goto out;
    fields_from_row(&f, row, row->seq, row->ts_ms, prev_hash);
    hash_fields(ctx, md, &f, out);
out:
    EVP_MD_CTX_free(ctx);
    EVP_MD_free(md);
}

/* Formats "<what>: <sqlite message>" and returns ret. */
static int db_err(audit_t *a, int ret, char *err, size_t errlen, const char *what)
{
    return lc_seterr(ret, err, errlen, "audit store %s: %s: %s", a->path, what,
                     sqlite3_errmsg(a->db));
}

/* The cached statement id, reset and ready; NULL with a message on failure. */
static sqlite3_stmt *stmt(audit_t *a, enum stmt_id id, char *err, size_t errlen)
{
    if (a->st[id] == NULL) {
        if (sqlite3_prepare_v3(a->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &a->st[id],
                               NULL) != SQLITE_OK) {
            db_err(a, LC_ERR_AUDIT, err, errlen, "prepare");
            return NULL;
        }
    } else {
        sqlite3_reset(a->st[id]);
    }
    return a->st[id];
}

/* Runs a statement that returns no rows; resets it.  Returns the SQLite code. */
static int step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);

    if (rc == SQLITE_ROW)
        rc = SQLITE_DONE;
    if (rc != SQLITE_DONE)
        return rc; /* reset later, after the caller has read sqlite3_errmsg */
    sqlite3_reset(st);
    return rc;
}

/* Copies a column's text into a fixed buffer, truncating; "" for NULL. */
static void col_copy(sqlite3_stmt *st, int col, char *dst, size_t dstlen)
{
    const unsigned char *t = sqlite3_column_text(st, col);

    snprintf(dst, dstlen, "%s", t != NULL ? (const char *)t : "");
}

static void cert_info_from(sqlite3_stmt *st, audit_cert_info_t *info)
{
    col_copy(st, 0, info->serial, sizeof info->serial);
    col_copy(st, 1, info->line, sizeof info->line);
    col_copy(st, 2, info->registration_id, sizeof info->registration_id);
    col_copy(st, 3, info->status, sizeof info->status);
    info->not_before = sqlite3_column_int64(st, 4);
    info->not_after = sqlite3_column_int64(st, 5);
    info->audit_seq = sqlite3_column_int64(st, 6);
    info->acked = sqlite3_column_int(st, 7);
    col_copy(st, 8, info->spki_sha256, sizeof info->spki_sha256);
}

/* Formats "<what>: <sqlite message>" for connection db and returns LC_ERR_AUDIT. */
static int conn_err(audit_t *a, sqlite3 *db, char *err, size_t errlen, const char *what)
{
    return lc_seterr(LC_ERR_AUDIT, err, errlen, "audit store %s: %s: %s", a->path, what,
                     sqlite3_errmsg(db));
}

/* Reads one integer from a single-row query on connection db. */
static int conn_int(audit_t *a, sqlite3 *db, const char *sql, int64_t *v, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int ret = LC_ERR_AUDIT;

    *v = 0;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        ret = conn_err(a, db, err, errlen, sql);
        goto out;
    }
    switch (sqlite3_step(st)) {
    case SQLITE_ROW:
        *v = sqlite3_column_int64(st, 0);
        break;
    case SQLITE_DONE:
        break;
    default:
        ret = conn_err(a, db, err, errlen, sql);
        goto out;
    }
    ret = LC_OK;
out:
    sqlite3_finalize(st);
    return ret;
}

/* Reads one integer from a single-row pragma or query on a fresh statement. */
static int query_int(audit_t *a, const char *sql, int64_t *v, char *err, size_t errlen)
{
    return conn_int(a, a->db, sql, v, err, errlen);
}

static int exec_sql(audit_t *a, const char *sql, const char *what, char *err, size_t errlen)
{
    if (sqlite3_exec(a->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return db_err(a, LC_ERR_AUDIT, err, errlen, what);
    return LC_OK;
}

/*
 * Decides whether the file is a linecert store this program understands.
 * Sets *version to its user_version.  A brand-new empty database (version 0,
 * no objects) is acceptable only for a read-write open, which creates it.
 */
static int check_identity(audit_t *a, int64_t *version, char *err, size_t errlen)
{
    int64_t appid = 0, objects = 0;
    int ret = LC_ERR_AUDIT;

    *version = 0;
    /* The first read: a file that is not SQLite fails here (SQLITE_NOTADB). */
    if ((ret = query_int(a, "PRAGMA user_version", version, err, errlen)) != LC_OK) {
        if (sqlite3_extended_errcode(a->db) == SQLITE_NOTADB)
            lc_seterr(ret, err, errlen,
                      "audit store %s: not a linecert audit store (file is not a database)",
                      a->path);
        goto out;
    }
    if ((ret = query_int(a, "PRAGMA application_id", &appid, err, errlen)) != LC_OK)
        goto out;
    if ((ret = query_int(a, "SELECT count(*) FROM sqlite_schema", &objects, err, errlen)) != LC_OK)
        goto out;
    ret = LC_ERR_AUDIT;
    if (*version == 0 && appid == 0 && objects == 0) {
        if (a->readonly) {
            lc_seterr(ret, err, errlen, "audit store %s: not a linecert audit store (empty)",
                      a->path);
            goto out;
        }
    } else if (appid != AUDIT_APPLICATION_ID) {
        lc_seterr(ret, err, errlen,
                  "audit store %s: not a linecert audit store (an SQLite database of another "
                  "application, application_id %" PRId64 ")",
                  a->path, appid);
        goto out;
    } else if (*version > AUDIT_SCHEMA_VERSION) {
        lc_seterr(ret, err, errlen,
                  "audit store %s: schema version %" PRId64
                  " is newer than this program supports (%d); upgrade linecert",
                  a->path, *version, AUDIT_SCHEMA_VERSION);
        goto out;
    } else if (*version < AUDIT_SCHEMA_VERSION && a->readonly) {
        lc_seterr(ret, err, errlen,
                  "audit store %s: schema version %" PRId64
                  " is older than %d; it is migrated when the station opens it read-write",
                  a->path, *version, AUDIT_SCHEMA_VERSION);
        goto out;
    }
    ret = LC_OK;
out:
    return ret;
}

/* Applies the missing migration steps in one transaction. */
static int migrate(audit_t *a, char *err, size_t errlen)
{
    char sql[64];
    int64_t version = 0;
    int ret = LC_ERR_AUDIT;

    if ((ret = exec_sql(a, "BEGIN IMMEDIATE", "begin migration", err, errlen)) != LC_OK)
        goto out;
    /* Re-read under the write lock: another process may have migrated. */
    if ((ret = query_int(a, "PRAGMA user_version", &version, err, errlen)) != LC_OK)
        goto out;
    ret = LC_ERR_AUDIT;
    if (version > AUDIT_SCHEMA_VERSION) {
        lc_seterr(ret, err, errlen, "audit store %s: schema version %" PRId64 " is newer than %d",
                  a->path, version, AUDIT_SCHEMA_VERSION);
        goto out;
    }
    for (int64_t v = version; v < AUDIT_SCHEMA_VERSION; v++) {
        if ((ret = exec_sql(a, migrations[v], "migrate schema", err, errlen)) != LC_OK)
            goto out;
        snprintf(sql, sizeof sql, "PRAGMA user_version = %" PRId64, v + 1);
        if ((ret = exec_sql(a, sql, "set schema version", err, errlen)) != LC_OK)
            goto out;
    }
    ret = exec_sql(a, "COMMIT", "commit migration", err, errlen);
out:
    if (ret != LC_OK && !sqlite3_get_autocommit(a->db))
        sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
    return ret;
}

/* Loads the last row's seq and hash into the handle. */
static int load_head(audit_t *a, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    int ret = LC_ERR_AUDIT, rc;

    a->head_seq = 0;
    memcpy(a->head_hash, AUDIT_ZERO_HASH, AUDIT_HASH_HEX);
    if ((st = stmt(a, ST_HEAD, err, errlen)) == NULL)
        goto out;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *h = sqlite3_column_text(st, 1);
        a->head_seq = sqlite3_column_int64(st, 0);
        snprintf(a->head_hash, sizeof a->head_hash, "%s", h != NULL ? (const char *)h : "");
    } else if (rc != SQLITE_DONE) {
        ret = db_err(a, LC_ERR_AUDIT, err, errlen, "read chain head");
        goto out;
    }
    ret = LC_OK;
out:
    if (st != NULL)
        sqlite3_reset(st);
    return ret;
}

int audit_open(const char *path, int flags, audit_t **out, char *err, size_t errlen)
{
    audit_t *a = NULL;
    int64_t version = 0;
    char mode[16] = "";
    sqlite3_stmt *st = NULL;
    int ret = LC_ERR_AUDIT, oflags, persist;

    if (out != NULL)
        *out = NULL;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (path == NULL || out == NULL || (flags != AUDIT_READWRITE && flags != AUDIT_READONLY)) {
        ret = lc_seterr(LC_ERR_AUDIT, err, errlen, "audit_open: no path, no output or bad flags");
        goto out;
    }
    if ((a = calloc(1, sizeof *a)) == NULL || (a->path = strdup(path)) == NULL) {
        ret = lc_seterr(LC_ERR_AUDIT, err, errlen, "audit store %s: out of memory", path);
        goto out;
    }
    a->readonly = flags == AUDIT_READONLY;
    oflags = SQLITE_OPEN_NOMUTEX; /* one thread at a time per handle (audit.h) */
    oflags |= a->readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    if (sqlite3_open_v2(path, &a->db, oflags, NULL) != SQLITE_OK) {
        ret = lc_seterr(LC_ERR_AUDIT, err, errlen, "audit store %s: cannot open%s: %s", path,
                        a->readonly ? " read-only" : "",
                        a->db != NULL ? sqlite3_errmsg(a->db) : "out of memory");
        goto out;
    }
    sqlite3_extended_result_codes(a->db, 1);
    sqlite3_busy_timeout(a->db, AUDIT_BUSY_MS);
    if ((a->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL ||
        (a->mdctx = EVP_MD_CTX_new()) == NULL) {
        ret = lc_seterr(LC_ERR_AUDIT, err, errlen, "audit store %s: SHA-256 unavailable", path);
        goto out;
    }
    /* Identify the file before anything that could write to it. */
    if ((ret = check_identity(a, &version, err, errlen)) != LC_OK)
        goto out;
    if (!a->readonly) {
        if (sqlite3_prepare_v2(a->db, "PRAGMA journal_mode=WAL", -1, &st, NULL) != SQLITE_OK ||
            sqlite3_step(st) != SQLITE_ROW) {
            ret = db_err(a, LC_ERR_AUDIT, err, errlen, "set WAL mode");
            goto out;
        }
        col_copy(st, 0, mode, sizeof mode);
        sqlite3_finalize(st); /* a pending statement would block COMMIT */
        st = NULL;
        if (strcmp(mode, "wal") != 0) {
            ret = lc_seterr(LC_ERR_AUDIT, err, errlen,
                            "audit store %s: cannot use WAL mode (journal_mode is %s)", path, mode);
            goto out;
        }
        /*
         * Keep the -wal and -shm files after the last close: without them a
         * reader that may not create files in the directory (the UI, the
         * auditor's CLI) cannot open a WAL database read-only.
         */
        persist = 1;
        sqlite3_file_control(a->db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
        /* FULL: a commit is on disk when COMMIT returns, before a cert leaves. */
        if ((ret = exec_sql(a, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON", "set pragmas",
                            err, errlen)) != LC_OK)
            goto out;
        /*
         * A WAL that grew in a burst (a migration, a bulk load, a long verify
         * holding old frames) shrinks back to 64 MB when it restarts, and to
         * nothing at the last close (the file stays, PERSIST_WAL).  A large
         * WAL whose pages have left the page cache costs the writer a disk
         * read for each frame it overwrites (frames are not page-aligned).
         */
        if ((ret = exec_sql(a, "PRAGMA journal_size_limit=67108864", "set WAL size limit", err,
                            errlen)) != LC_OK)
            goto out;
        if (version < AUDIT_SCHEMA_VERSION && (ret = migrate(a, err, errlen)) != LC_OK)
            goto out;
    }
    if ((ret = load_head(a, err, errlen)) != LC_OK)
        goto out;
    *out = a;
    a = NULL;
    ret = LC_OK;
out:
    sqlite3_finalize(st);
    audit_free(a);
    return ret;
}

void audit_free(audit_t *a)
{
    if (a == NULL)
        return;
    for (int i = 0; i < ST__N; i++)
        sqlite3_finalize(a->st[i]);
    sqlite3_close(a->db); /* the last close checkpoints; the WAL file stays (PERSIST_WAL) */
    EVP_MD_CTX_free(a->mdctx);
    EVP_MD_free(a->sha256);
    free(a->path);
    free(a);
}

/* ASCII-only lowercase, as DPS compares registration IDs. */
static void ascii_fold(const char *s, char *dst)
{
    for (; *s != '\0'; s++, dst++)
        *dst = (*s >= 'A' && *s <= 'Z') ? (char)(*s - 'A' + 'a') : *s;
    *dst = '\0';
}

static int str_eq(const char *x, const char *y)
{
    return x != NULL && y != NULL && strcmp(x, y) == 0;
}

/* SHA-256 of der as hex on ctx, compared case-insensitively with want. */
static int der_matches_on(EVP_MD_CTX *ctx, const EVP_MD *md, const void *der, size_t len,
                          const char *want, size_t wantlen)
{
    unsigned char dgst[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    char hex[AUDIT_HASH_HEX];

    if (want == NULL || wantlen != 64)
        return 0;
    if (EVP_DigestInit_ex(ctx, md, NULL) != 1 || EVP_DigestUpdate(ctx, der, len) != 1 ||
        EVP_DigestFinal_ex(ctx, dgst, &dlen) != 1 || dlen != 32)
        return 0;
    lc_hex(dgst, dlen, 0, hex);
    return strncasecmp(hex, want, 64) == 0;
}

static int der_matches(audit_t *a, const void *der, size_t len, const char *want, size_t wantlen)
{
    return der_matches_on(a->mdctx, a->sha256, der, len, want, wantlen);
}

/*
 * Rejects a batch that could not later verify or that is incomplete, before
 * anything is written.  The certificate's serial, line, registration ID and
 * thumbprint must be the ones its audit row records: audit_verify() checks
 * exactly that, so a mismatch here would look like tampering later.
 */
static int check_entries(audit_t *a, const audit_entry_t *entries, size_t n, char *err,
                         size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        const audit_row_t *r = &entries[i].row;
        const audit_cert_t *c = entries[i].cert;

        if (r->actor == NULL || r->line == NULL || r->kind == NULL)
            return lc_seterr(LC_ERR_AUDIT, err, errlen,
                             "audit append: entry %zu: actor, line and kind are required", i);
        if (c == NULL)
            continue;
        if (c->serial == NULL || c->line == NULL || c->registration_id == NULL ||
            c->thumbprint == NULL || c->der == NULL || c->der_len == 0)
            return lc_seterr(LC_ERR_AUDIT, err, errlen,
                             "audit append: entry %zu: certificate serial, line, registration "
                             "id, thumbprint and DER are required",
                             i);
        if (!str_eq(r->serial, c->serial) || !str_eq(r->line, c->line) ||
            (r->registration_id != NULL && !str_eq(r->registration_id, c->registration_id)) ||
            (r->thumbprint != NULL && strcasecmp(r->thumbprint, c->thumbprint) != 0))
            return lc_seterr(LC_ERR_AUDIT, err, errlen,
                             "audit append: entry %zu: the audit row's serial, line, "
                             "registration id or thumbprint differ from its certificate's",
                             i);
        if (!der_matches(a, c->der, c->der_len, c->thumbprint, strlen(c->thumbprint)))
            return lc_seterr(LC_ERR_AUDIT, err, errlen,
                             "audit append: entry %zu: certificate %s: thumbprint is not the "
                             "SHA-256 of its DER",
                             i, c->serial);
    }
    return LC_OK;
}

static int bind_opt(sqlite3_stmt *st, int i, const char *s)
{
    return s != NULL ? sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

/* Marks a stored certificate revoked (whatever its status), in the caller's transaction. */
static int revoke_cert(audit_t *a, const char *serial, char *err, size_t errlen)
{
    sqlite3_stmt *st = stmt(a, ST_REVOKE, err, errlen);
    int ret = LC_ERR_AUDIT;

    if (st == NULL)
        return ret;
    sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
    if (step_done(st) != SQLITE_DONE)
        ret = db_err(a, LC_ERR_AUDIT, err, errlen, "revoke certificate");
    else if (sqlite3_changes(a->db) != 1)
        ret = lc_seterr(LC_ERR_NOT_FOUND, err, errlen, "audit append: no certificate %s to revoke",
                        serial);
    else
        ret = LC_OK;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return ret;
}

/* Stores certificate c, issued by audit row seq, and marks the one it supersedes. */
static int store_cert(audit_t *a, const audit_cert_t *c, int64_t seq, char *err, size_t errlen)
{
    char small[128], *fold = small;
    size_t len = strlen(c->registration_id);
    sqlite3_stmt *st = NULL;
    int ret = LC_ERR_AUDIT, rc;

    if (len >= sizeof small && (fold = malloc(len + 1)) == NULL) {
        ret = lc_seterr(LC_ERR_AUDIT, err, errlen, "audit append: out of memory");
        goto out;
    }
    ascii_fold(c->registration_id, fold);
    if (c->supersedes != NULL) {
        if ((st = stmt(a, ST_SUPERSEDE, err, errlen)) == NULL)
            goto out;
        sqlite3_bind_text(st, 1, c->serial, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, c->supersedes, -1, SQLITE_STATIC);
        if (step_done(st) != SQLITE_DONE) {
            ret = db_err(a, LC_ERR_AUDIT, err, errlen, "supersede certificate");
            goto out;
        }
        if (sqlite3_changes(a->db) != 1) {
            ret = lc_seterr(LC_ERR_AUDIT, err, errlen,
                            "audit append: certificate %s supersedes %s, which is not stored",
                            c->serial, c->supersedes);
            goto out;
        }
    }
    if ((st = stmt(a, ST_INS_CERT, err, errlen)) == NULL)
        goto out;
    sqlite3_bind_text(st, 1, c->serial, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, c->line, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, c->registration_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, fold, -1, SQLITE_TRANSIENT); /* fold dies before the next bind */
    sqlite3_bind_int64(st, 5, c->not_before);
    sqlite3_bind_int64(st, 6, c->not_after);
    sqlite3_bind_text(st, 7, c->thumbprint, -1, SQLITE_STATIC);
    sqlite3_bind_blob64(st, 8, c->der, c->der_len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 9, seq);
    if (c->spki_sha256 != NULL)
        sqlite3_bind_text(st, 10, c->spki_sha256, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 10);
    if ((rc = step_done(st)) != SQLITE_DONE) {
        int dup = rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE;
        ret = lc_seterr(dup ? LC_ERR_EXISTS : LC_ERR_AUDIT, err, errlen,
                        "audit store %s: store certificate %s: %s", a->path, c->serial,
                        sqlite3_errmsg(a->db));
        goto out;
    }
    ret = LC_OK;
out:
    if (st != NULL)
        sqlite3_reset(st);
    if (fold != small)
        free(fold);
    return ret;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int audit_append(audit_t *a, audit_entry_t *entries, size_t n, char *err, size_t errlen)
{
    struct hash_fields f;
    sqlite3_stmt *st = NULL;
    int64_t seq, now, dbmax;
    char prev[AUDIT_HASH_HEX];
    int ret = LC_ERR_AUDIT;
    size_t i;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    for (i = 0; entries != NULL && i < n; i++) {
        entries[i].row.seq = 0;
        entries[i].row.prev_hash[0] = '\0';
        entries[i].row.hash[0] = '\0';
    }
    if (a == NULL || (entries == NULL && n > 0)) {
        ret = lc_seterr(LC_ERR_AUDIT, err, errlen, "audit append: no store or no entries");
        goto out;
    }
    if (a->readonly) {
        ret = lc_seterr(LC_ERR_AUDIT, err, errlen, "audit store %s: opened read-only", a->path);
        goto out;
    }
    if (n == 0) {
        ret = LC_OK;
        goto out;
    }
    if ((ret = check_entries(a, entries, n, err, errlen)) != LC_OK)
        goto out;
    ret = LC_ERR_AUDIT;
    if ((st = stmt(a, ST_BEGIN, err, errlen)) == NULL)
        goto out;
    if (step_done(st) != SQLITE_DONE) {
        ret = db_err(a, LC_ERR_AUDIT, err, errlen, "begin transaction");
        goto out;
    }
    /*
     * Under the write lock, compare the file's last seq with ours.  Equal:
     * chain to the cached hash, not the file's, so an edit of the last row
     * stays visible.  Smaller: rows were deleted; refuse to paper over it.
     */
    if ((st = stmt(a, ST_MAXSEQ, err, errlen)) == NULL)
        goto out;
    if (sqlite3_step(st) != SQLITE_ROW) {
        ret = db_err(a, LC_ERR_AUDIT, err, errlen, "read chain head");
        goto out;
    }
    dbmax = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    seq = a->head_seq;
    memcpy(prev, a->head_hash, sizeof prev);
    if (dbmax < seq) {
        ret = lc_seterr(LC_ERR_AUDIT, err, errlen,
                        "audit store %s: the log shrank from %" PRId64 " to %" PRId64
                        " rows while open (rows deleted); refusing to append",
                        a->path, seq, dbmax);
        goto out;
    }
    if (dbmax > seq) {
        /* Another writer appended (audit.h allows only one; be correct anyway). */
        if ((ret = load_head(a, err, errlen)) != LC_OK)
            goto out;
        ret = LC_ERR_AUDIT;
        seq = a->head_seq;
        memcpy(prev, a->head_hash, sizeof prev);
    }
    now = now_ms();
    for (i = 0; i < n; i++) {
        audit_row_t *r = &entries[i].row;
        int64_t ts = r->ts_ms != 0 ? r->ts_ms : now;

        seq++;
        fields_from_row(&f, r, seq, ts, prev);
        if (!hash_fields(a->mdctx, a->sha256, &f, r->hash)) {
            ret = lc_seterr(LC_ERR_AUDIT, err, errlen, "audit append: SHA-256 failed");
            goto out;
        }
        memcpy(r->prev_hash, prev, sizeof prev);
        r->seq = seq;
        if ((st = stmt(a, ST_INS_AUDIT, err, errlen)) == NULL)
            goto out;
        sqlite3_bind_int64(st, 1, seq);
        sqlite3_bind_int64(st, 2, ts);
        sqlite3_bind_text(st, 3, r->actor, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, r->line, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, r->kind, -1, SQLITE_STATIC);
        bind_opt(st, 6, r->registration_id);
        bind_opt(st, 7, r->serial);
        bind_opt(st, 8, r->thumbprint);
        bind_opt(st, 9, r->csr_sha256);
        bind_opt(st, 10, r->reason);
        bind_opt(st, 11, r->detail);
        sqlite3_bind_text(st, 12, r->prev_hash, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 13, r->hash, -1, SQLITE_STATIC);
        if (step_done(st) != SQLITE_DONE) {
            ret = db_err(a, LC_ERR_AUDIT, err, errlen, "insert audit row");
            goto out;
        }
        if (entries[i].cert != NULL &&
            (ret = store_cert(a, entries[i].cert, seq, err, errlen)) != LC_OK)
            goto out;
        if (entries[i].revokes != NULL &&
            (ret = revoke_cert(a, entries[i].revokes, err, errlen)) != LC_OK)
            goto out;
        ret = LC_ERR_AUDIT;
        memcpy(prev, r->hash, sizeof prev);
    }
    if ((st = stmt(a, ST_COMMIT, err, errlen)) == NULL)
        goto out;
    if (step_done(st) != SQLITE_DONE) {
        ret = db_err(a, LC_ERR_AUDIT, err, errlen, "commit");
        goto out;
    }
    st = NULL;
    a->head_seq = seq;
    memcpy(a->head_hash, prev, sizeof prev);
    /* Every entry with ts_ms 0 was hashed with the same `now`. */
    for (i = 0; i < n; i++) {
        if (entries[i].row.ts_ms == 0)
            entries[i].row.ts_ms = now;
    }
    ret = LC_OK;
out:
    if (st != NULL)
        sqlite3_reset(st);
    if (ret != LC_OK && a != NULL && !a->readonly && !sqlite3_get_autocommit(a->db)) {
        sqlite3_stmt *rb = stmt(a, ST_ROLLBACK, NULL, 0);
        if (rb == NULL || step_done(rb) != SQLITE_DONE)
            sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
        if (rb != NULL)
            sqlite3_reset(rb);
    }
    if (ret != LC_OK) {
        for (i = 0; entries != NULL && i < n; i++) {
            entries[i].row.seq = 0;
            entries[i].row.prev_hash[0] = '\0';
            entries[i].row.hash[0] = '\0';
        }
    }
    return ret;
}

int audit_find_valid_regid(audit_t *a, const char *regid, audit_cert_info_t *info, char *err,
                           size_t errlen)
{
    char small[128], *fold = small;
    sqlite3_stmt *st = NULL;
    size_t len;
    int ret = LC_ERR_AUDIT, rc;

    if (info != NULL)
        memset(info, 0, sizeof *info);
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (a == NULL || regid == NULL) {
        ret = lc_seterr(LC_ERR_AUDIT, err, errlen, "audit find: no store or registration id");
        goto out;
    }
    len = strlen(regid);
    if (len >= sizeof small && (fold = malloc(len + 1)) == NULL) {
        ret = lc_seterr(LC_ERR_AUDIT, err, errlen, "audit find: out of memory");
        goto out;
    }
    ascii_fold(regid, fold);
    if ((st = stmt(a, ST_FIND_REGID, err, errlen)) == NULL)
        goto out;
    sqlite3_bind_text(st, 1, fold, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        ret = lc_seterr(LC_ERR_NOT_FOUND, err, errlen,
                        "no valid certificate for registration id %s", regid);
        goto out;
    }
    if (rc != SQLITE_ROW) {
        ret = db_err(a, LC_ERR_AUDIT, err, errlen, "find registration id");
        goto out;
    }
    if (info != NULL)
        cert_info_from(st, info);
    ret = LC_OK;
out:
    if (st != NULL) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st); /* fold may be freed below */
    }
    if (fold != small)
        free(fold);
    return ret;
}

int audit_get_cert(audit_t *a, const char *serial, audit_cert_info_t *info, unsigned char **der,
                   size_t *der_len, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    unsigned char *copy = NULL;
    const void *blob;
    size_t len;
    int ret = LC_ERR_AUDIT, rc;

    if (info != NULL)
        memset(info, 0, sizeof *info);
    if (der != NULL)
        *der = NULL;
    if (der_len != NULL)
        *der_len = 0;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (a == NULL || serial == NULL) {
        ret = lc_seterr(LC_ERR_AUDIT, err, errlen, "audit get cert: no store or serial");
        goto out;
    }
    if ((st = stmt(a, ST_GET_CERT, err, errlen)) == NULL)
        goto out;
    sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        ret = lc_seterr(LC_ERR_NOT_FOUND, err, errlen, "no certificate with serial %s", serial);
        goto out;
    }
    if (rc != SQLITE_ROW) {
        ret = db_err(a, LC_ERR_AUDIT, err, errlen, "read certificate");
        goto out;
    }
    if (der != NULL) {
        blob = sqlite3_column_blob(st, 9);
        len = (size_t)sqlite3_column_bytes(st, 9);
        if ((copy = malloc(len > 0 ? len : 1)) == NULL) {
            ret = lc_seterr(LC_ERR_AUDIT, err, errlen, "audit get cert: out of memory");
            goto out;
        }
        if (len > 0)
            memcpy(copy, blob, len);
        *der = copy;
        copy = NULL;
        if (der_len != NULL)
            *der_len = len;
    }
    if (info != NULL)
        cert_info_from(st, info);
    ret = LC_OK;
out:
    if (st != NULL) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
    free(copy);
    return ret;
}

int audit_serial_free(audit_t *a, const char *serial, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int ret = LC_ERR_AUDIT, rc;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (a == NULL || serial == NULL) {
        ret = lc_seterr(LC_ERR_AUDIT, err, errlen, "audit serial check: no store or serial");
        goto out;
    }
    if ((st = stmt(a, ST_SERIAL, err, errlen)) == NULL)
        goto out;
    sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        ret = lc_seterr(LC_ERR_EXISTS, err, errlen, "serial %s is already used", serial);
        goto out;
    }
    if (rc != SQLITE_DONE) {
        ret = db_err(a, LC_ERR_AUDIT, err, errlen, "check serial");
        goto out;
    }
    ret = LC_OK;
out:
    if (st != NULL) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
    return ret;
}

int64_t audit_count(audit_t *a)
{
    sqlite3_stmt *st;
    int64_t ret = LC_ERR_AUDIT;

    if (a == NULL || (st = stmt(a, ST_COUNT, NULL, 0)) == NULL)
        goto out;
    if (sqlite3_step(st) == SQLITE_ROW)
        ret = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
out:
    return ret;
}

/* Column i as (pointer, length); NULL pointer for SQL NULL. */
static const char *col_str(sqlite3_stmt *st, int i, size_t *n)
{
    const char *s = NULL;

    *n = 0;
    if (sqlite3_column_type(st, i) != SQLITE_NULL) {
        s = (const char *)sqlite3_column_text(st, i);
        *n = (size_t)sqlite3_column_bytes(st, i);
    }
    return s;
}

/*
 * How audit_verify() reads a large store.  The chain scan (the audit table in
 * seq order) and the certificates check (the certificates table joined to
 * the audit rows) are independent, so they run at the same time on two
 * cores: the chain on the caller's thread and connection, the certificates
 * on a second read-only connection and thread, in a read transaction that is
 * checked to see the same snapshot.  A third thread reads the database file
 * ahead of both scans.  Both tables grow together as rows are appended, so
 * their pages are interleaved through the file and a scan of one of them
 * reads scattered 4 KB pages, which the kernel does not read ahead: a cold
 * 10-million-row store took 84-100 s that way against 19 s from the page
 * cache.  Reading the file in order, in large chunks, a bounded distance
 * ahead of the scans turns that into sequential reads at disk speed; the
 * distance is bounded by the memory available so that a small terminal does
 * not evict what it read before the scans get there.
 *
 * The prefetch is plain read(2)s into a scratch buffer, of the chunks that
 * are not already in the page cache (mincore).  Measured on a cold 17 GB
 * store: POSIX_FADV_WILLNEED of the same chunks made verify 86 s, reads 53 s
 * (the kernel fills the cache with small pages for WILLNEED, with large
 * folios for sequential reads: half the system time); skipping cached chunks
 * keeps a warm verify from copying the whole file for nothing.  With both,
 * 10 million rows (16.6 GB, tests/bench/large-log.sh) verified in 34 s cold
 * and 18 s warm.
 */
#define VERIFY_CHUNK        (4LL << 20)  /* one prefetch read */
#define VERIFY_WINDOW_MIN   (64LL << 20) /* prefetch distance, at least ... */
#define VERIFY_WINDOW_MAX   (1LL << 30)  /* ... and at most */
#define VERIFY_SNAPSHOT_TRY 20           /* attempts at two equal snapshots */
#define VERIFY_PROGRESS     4096         /* rows between progress updates */

/* The certificates check, on its own connection and thread or on the caller's. */
struct cert_check {
    audit_t *a;
    sqlite3 *db;       /* a->db, or a second read-only connection */
    EVP_MD_CTX *md;    /* its own: it may run beside the chain scan */
    atomic_llong done; /* certificates checked so far (prefetch pacing) */
    int64_t total;     /* certificates in the snapshot (their max rowid) */
    int64_t bad;       /* lowest failing audit seq, 0 if none */
    char problem[256]; /* what is wrong with it */
    int ret;           /* LC_OK, or LC_ERR_AUDIT with err */
    char err[512];
};

/* Reads the database file ahead of both scans (see above). */
struct prefetch {
    int fd;                         /* the database file, -1 if not open */
    int64_t size;                   /* its size at the start */
    int64_t window;                 /* how far ahead of the slower scan it reads */
    const atomic_llong *chain_done; /* rows of the chain scan done */
    int64_t chain_total;
    const atomic_llong *certs_done;
    int64_t certs_total;
    atomic_int stop;
};

/*
 * Checks the certificates table against the audit rows: every certificate
 * must be named by the row that issued it, with the same serial, line,
 * registration ID and thumbprint, and its DER must hash to that thumbprint.
 * Sets c->bad (0 = none) and c->problem for the lowest audit_seq that fails.
 * The scan is in table order and keeps the lowest failure: an ORDER BY would
 * sort every DER through a temporary b-tree.  The caller holds the read
 * transaction on c->db.
 */
static int verify_certs(struct cert_check *c)
{
    static const char sql[] =
        "SELECT c.serial, c.audit_seq, c.line, c.registration_id, c.thumbprint, c.der,"
        " a.seq, a.serial, a.line, a.registration_id, a.thumbprint"
        " FROM certificates c LEFT JOIN audit a ON a.seq = c.audit_seq";
    sqlite3_stmt *st = NULL;
    int64_t n = 0;
    int ret = LC_ERR_AUDIT, rc;

    c->bad = 0;
    c->problem[0] = '\0';
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK) {
        ret = conn_err(c->a, c->db, c->err, sizeof c->err, "verify certificates");
        goto out;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *serial = (const char *)sqlite3_column_text(st, 0);
        int64_t seq = sqlite3_column_int64(st, 1);
        const char *thumb = (const char *)sqlite3_column_text(st, 4);
        size_t tn = (size_t)sqlite3_column_bytes(st, 4); /* after _text, as SQLite advises */
        const char *rthumb = (const char *)sqlite3_column_text(st, 10);
        const char *what = NULL;

        if (serial == NULL)
            serial = "(null)";
        if (sqlite3_column_type(st, 6) == SQLITE_NULL)
            what = "its audit row is missing (deleted)";
        else if (!str_eq(serial, (const char *)sqlite3_column_text(st, 7)))
            what = "its audit row records a different serial";
        else if (!str_eq((const char *)sqlite3_column_text(st, 2),
                         (const char *)sqlite3_column_text(st, 8)))
            what = "its audit row records a different line";
        else if (sqlite3_column_type(st, 9) != SQLITE_NULL &&
                 !str_eq((const char *)sqlite3_column_text(st, 3),
                         (const char *)sqlite3_column_text(st, 9)))
            what = "its audit row records a different registration id";
        else if (rthumb != NULL && (thumb == NULL || strcasecmp(thumb, rthumb) != 0))
            what = "its audit row records a different thumbprint";
        else if (!der_matches_on(c->md, c->a->sha256, sqlite3_column_blob(st, 5),
                                 (size_t)sqlite3_column_bytes(st, 5), thumb, tn))
            what = "its DER does not match its thumbprint (certificate replaced)";
        if (what != NULL && (c->bad == 0 || (seq > 0 ? seq : 1) < c->bad)) {
            c->bad = seq > 0 ? seq : 1;
            snprintf(c->problem, sizeof c->problem, "row %" PRId64 ": certificate %s: %s", seq,
                     serial, what);
        }
        if (++n % VERIFY_PROGRESS == 0)
            atomic_store_explicit(&c->done, n, memory_order_relaxed);
    }
    if (rc != SQLITE_DONE) {
        ret = conn_err(c->a, c->db, c->err, sizeof c->err, "verify certificates");
        goto out;
    }
    ret = LC_OK;
out:
    atomic_store_explicit(&c->done, c->total, memory_order_relaxed);
    sqlite3_finalize(st);
    return ret;
}

static void *cert_thread(void *arg)
{
    struct cert_check *c = arg;

    c->ret = verify_certs(c);
    return NULL;
}

/*
 * Starts a read transaction on db and reads from it, so that its snapshot is
 * fixed now (BEGIN alone takes none); *data_version identifies the snapshot
 * among this connection's.
 */
static int begin_snapshot(audit_t *a, sqlite3 *db, int64_t *data_version, char *err, size_t errlen)
{
    int64_t ignored;
    int ret;

    if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        return conn_err(a, db, err, errlen, "begin read");
    if ((ret = conn_int(a, db, "SELECT ifnull(max(seq), 0) FROM audit", &ignored, err, errlen)) !=
            LC_OK ||
        (ret = conn_int(a, db, "PRAGMA data_version", data_version, err, errlen)) != LC_OK)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return ret;
}

/*
 * Opens a second read-only connection for the certificates check, in a read
 * transaction that sees exactly the snapshot of the caller's transaction on
 * a->db.  SQLite cannot hand a snapshot to another connection here (no
 * SQLITE_ENABLE_SNAPSHOT in distribution builds), so: start the twin's, then
 * end and restart a->db's; if a->db's data_version did not move, no commit
 * came between the two starts and both see the same rows.  Returns the
 * connection, or NULL when it cannot be opened or a writer kept committing
 * (the caller then checks the certificates on a->db itself).  a->db is in a
 * read transaction on return unless restarting it failed: then err says why.
 */
static sqlite3 *open_twin(audit_t *a, char *err, size_t errlen)
{
    const char *file = sqlite3_db_filename(a->db, "main");
    sqlite3 *db = NULL;
    int64_t before = 0, after = 0, twin = 0;
    char ignored[256];

    /* The file a->db has open, by its absolute name: the process may have changed directory. */
    if (file == NULL || file[0] == '\0' ||
        sqlite3_open_v2(file, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
        goto fail;
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, AUDIT_BUSY_MS);
    for (int i = 0; i < VERIFY_SNAPSHOT_TRY; i++) {
        if (conn_int(a, a->db, "PRAGMA data_version", &before, ignored, sizeof ignored) != LC_OK ||
            begin_snapshot(a, db, &twin, ignored, sizeof ignored) != LC_OK)
            goto fail;
        sqlite3_exec(a->db, "COMMIT", NULL, NULL, NULL);
        if (begin_snapshot(a, a->db, &after, err, errlen) != LC_OK)
            goto fail;
        if (after == before)
            return db;
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    }
fail:
    sqlite3_close(db); /* rolls back its read transaction, if any */
    return NULL;
}

/* The memory this process could use without pushing others out, in bytes. */
static int64_t mem_available(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    char line[128];
    long long kb = -1;

    while (f != NULL && fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "MemAvailable: %lld kB", &kb) == 1)
            break;
    if (f != NULL)
        fclose(f);
    if (kb < 0) /* no /proc: a fraction of physical memory */
        return (int64_t)sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGESIZE) / 4;
    return (int64_t)kb * 1024;
}

static double fraction(const atomic_llong *done, int64_t total)
{
    long long d = atomic_load_explicit(done, memory_order_relaxed);

    return total > 0 ? (double)d / (double)total : 1.0;
}

/* 1 if every page of [off, off + len) is in the page cache; 0 if not or unknown. */
static int cached(const unsigned char *map, int64_t off, int64_t len, unsigned char *vec,
                  long pagesize)
{
    size_t pages = (size_t)((len + pagesize - 1) / pagesize);

    if (map == NULL || mincore((void *)(uintptr_t)(map + off), (size_t)len, vec) != 0)
        return 0;
    for (size_t i = 0; i < pages; i++)
        if (!(vec[i] & 1))
            return 0;
    return 1;
}

/*
 * Reads the file in VERIFY_CHUNK pieces, in file order, at most p->window
 * bytes past where the slower scan is.  The rows of both tables were written
 * in seq order as the file grew, so a scan that has done a fraction f of its
 * rows reads pages near offset f * size.  Reads that fail only end the
 * prefetch: the scans read what they need themselves.
 */
static void *prefetch_thread(void *arg)
{
    struct prefetch *p = arg;
    struct timespec pause = {0, 1000000}; /* 1 ms: a scan reads a chunk in a few */
    long pagesize = sysconf(_SC_PAGESIZE);
    unsigned char *buf = malloc(VERIFY_CHUNK), *vec = NULL, *map = NULL;

    if (buf == NULL || pagesize <= 0)
        goto out;
    /* Mapped only to ask mincore() what is cached; never touched. */
    map = mmap(NULL, (size_t)p->size, PROT_READ, MAP_SHARED, p->fd, 0);
    if (map == MAP_FAILED || (vec = malloc((size_t)(VERIFY_CHUNK / pagesize) + 1)) == NULL) {
        if (map != MAP_FAILED)
            munmap(map, (size_t)p->size);
        map = NULL;
    }
    for (int64_t off = 0; off < p->size && !atomic_load(&p->stop);) {
        double f = fraction(p->chain_done, p->chain_total);
        double g = fraction(p->certs_done, p->certs_total);
        int64_t at = (int64_t)((f < g ? f : g) * (double)p->size);
        int64_t len = p->size - off < VERIFY_CHUNK ? p->size - off : VERIFY_CHUNK;

        if (off >= at + p->window) {
            nanosleep(&pause, NULL);
            continue;
        }
        if (off < at - VERIFY_CHUNK) { /* the scans went faster than the prefetch */
            off = at - at % VERIFY_CHUNK;
            continue;
        }
        if (!cached(map, off, len, vec, pagesize) && pread(p->fd, buf, (size_t)len, off) <= 0)
            break;
        off += len;
    }
out:
    if (map != NULL)
        munmap(map, (size_t)p->size);
    free(vec);
    free(buf);
    return NULL;
}

int audit_verify(audit_t *a, audit_verify_result_t *res, char *err, size_t errlen)
{
    return audit_verify_rows(a, res, NULL, NULL, err, errlen);
}

int audit_verify_rows(audit_t *a, audit_verify_result_t *res, audit_row_fn fn, void *ctx, char *err,
                      size_t errlen)
{
    static const char sql[] = "SELECT seq, ts_ms, actor, line, kind, registration_id, serial,"
                              " thumbprint, csr_sha256, reason, detail, prev_hash, hash"
                              " FROM audit ORDER BY seq";
    struct hash_fields f;
    struct cert_check *cc = NULL;
    struct prefetch ra;
    const char *file;
    atomic_llong chain_done = 0;
    sqlite3_stmt *st = NULL;
    pthread_t cert_tid, ra_tid;
    char prev[AUDIT_HASH_HEX], calc[AUDIT_HASH_HEX];
    int64_t expect = 1, chain_total = 0, dv = 0;
    int ret = LC_ERR_AUDIT, rc, in_txn = 0, cert_started = 0, ra_started = 0;
    struct stat sb;

    memset(&ra, 0, sizeof ra);
    ra.fd = -1;
    atomic_init(&ra.stop, 0);
    if (res != NULL)
        memset(res, 0, sizeof *res);
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (a == NULL || res == NULL) {
        ret = lc_seterr(LC_ERR_AUDIT, err, errlen, "audit verify: no store or result");
        goto out;
    }
    if ((cc = calloc(1, sizeof *cc)) == NULL || (cc->md = EVP_MD_CTX_new()) == NULL) {
        ret =
            lc_seterr(LC_ERR_AUDIT, err, errlen, "audit store %s: verify: out of memory", a->path);
        goto out;
    }
    cc->a = a;
    atomic_init(&cc->done, 0);
    /* One snapshot: the chain and the certificates from the same rows. */
    if ((ret = begin_snapshot(a, a->db, &dv, err, errlen)) != LC_OK)
        goto out;
    in_txn = 1;
    cc->db = open_twin(a, err, errlen);
    if (sqlite3_get_autocommit(a->db)) { /* open_twin could not restart a->db's: err says why */
        in_txn = 0;
        ret = LC_ERR_AUDIT;
        goto out;
    }
    if ((ret = conn_int(a, a->db, "SELECT ifnull(max(seq), 0) FROM audit", &chain_total, err,
                        errlen)) != LC_OK ||
        (ret = conn_int(a, a->db, "SELECT ifnull(max(rowid), 0) FROM certificates", &cc->total, err,
                        errlen)) != LC_OK)
        goto out;
    ret = LC_ERR_AUDIT;
    if (cc->db != NULL) {
        if (pthread_create(&cert_tid, NULL, cert_thread, cc) == 0) {
            cert_started = 1;
        } else {
            sqlite3_close(cc->db); /* no thread: check them here, after the chain */
            cc->db = NULL;
        }
    }
    /* Without the file (no permission to open it again) verify only goes slower. */
    if ((file = sqlite3_db_filename(a->db, "main")) != NULL && file[0] != '\0')
        ra.fd = open(file, O_RDONLY | O_CLOEXEC);
    if (ra.fd >= 0 && fstat(ra.fd, &sb) == 0 && sb.st_size > 0) {
        int64_t w = mem_available() / 8;
        ra.size = (int64_t)sb.st_size;
        ra.window = w < VERIFY_WINDOW_MIN   ? VERIFY_WINDOW_MIN
                    : w > VERIFY_WINDOW_MAX ? VERIFY_WINDOW_MAX
                                            : w;
        ra.chain_done = &chain_done;
        ra.chain_total = chain_total;
        ra.certs_done = &cc->done;
        ra.certs_total = cert_started ? cc->total : 0; /* sequential: the chain paces it */
        ra_started = pthread_create(&ra_tid, NULL, prefetch_thread, &ra) == 0;
    }
    memcpy(prev, AUDIT_ZERO_HASH, sizeof prev);
    if (sqlite3_prepare_v2(a->db, sql, -1, &st, NULL) != SQLITE_OK) {
        ret = db_err(a, LC_ERR_AUDIT, err, errlen, "verify");
        goto out;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t seq = sqlite3_column_int64(st, 0);
        const char *stored;
        size_t sn;

        if (seq != expect) {
            res->first_bad_seq = expect;
            if (seq > expect && seq == expect + 1)
                snprintf(res->problem, sizeof res->problem,
                         "row %" PRId64 ": sequence gap after %" PRId64 " (row deleted)", expect,
                         expect - 1);
            else if (seq > expect)
                snprintf(res->problem, sizeof res->problem,
                         "row %" PRId64 ": sequence gap after %" PRId64 " (rows %" PRId64
                         "..%" PRId64 " deleted)",
                         expect, expect - 1, expect, seq - 1);
            else
                snprintf(res->problem, sizeof res->problem,
                         "row %" PRId64 ": unexpected sequence number %" PRId64
                         " before it (row inserted)",
                         expect, seq);
            break;
        }
        f.seq = seq;
        f.ts_ms = sqlite3_column_int64(st, 1);
        for (int i = 0; i < 10; i++)
            f.s[i] = col_str(st, 2 + i, &f.n[i]);
        /* f.s[9] is the stored prev_hash. */
        if (f.s[9] == NULL || f.n[9] != 64 || memcmp(f.s[9], prev, 64) != 0) {
            res->first_bad_seq = seq;
            if (seq == 1)
                snprintf(res->problem, sizeof res->problem,
                         "row 1: prev_hash is not the all-zero start of the chain "
                         "(inserted or reordered)");
            else
                snprintf(res->problem, sizeof res->problem,
                         "row %" PRId64 ": prev_hash does not match row %" PRId64
                         " (inserted or reordered)",
                         seq, seq - 1);
            break;
        }
        if (!hash_fields(a->mdctx, a->sha256, &f, calc)) {
            ret = lc_seterr(LC_ERR_AUDIT, err, errlen, "audit verify: SHA-256 failed");
            goto out;
        }
        stored = col_str(st, 12, &sn);
        if (stored == NULL || sn != 64 || memcmp(stored, calc, 64) != 0) {
            res->first_bad_seq = seq;
            snprintf(res->problem, sizeof res->problem,
                     "row %" PRId64 ": hash does not match its contents (edited)", seq);
            break;
        }
        if (fn != NULL) {
            audit_row_t row;
            char cbproblem[sizeof res->problem];

            memset(&row, 0, sizeof row);
            row.seq = seq;
            row.ts_ms = f.ts_ms;
            row.actor = f.s[0];
            row.line = f.s[1];
            row.kind = f.s[2];
            row.registration_id = f.s[3];
            row.serial = f.s[4];
            row.thumbprint = f.s[5];
            row.csr_sha256 = f.s[6];
            row.reason = f.s[7];
            row.detail = f.s[8];
            memcpy(row.prev_hash, prev, sizeof row.prev_hash);
            memcpy(row.hash, calc, sizeof row.hash);
            cbproblem[0] = '\0';
            if (fn(ctx, &row, cbproblem, sizeof cbproblem) != 0) {
                res->first_bad_seq = seq;
                cbproblem[sizeof cbproblem - 1] = '\0'; /* whatever the callback wrote */
                if (cbproblem[0] == '\0')
                    snprintf(cbproblem, sizeof cbproblem,
                             "row %" PRId64 ": rejected by the row check", seq);
                memcpy(res->problem, cbproblem, sizeof res->problem);
                break;
            }
        }
        memcpy(prev, calc, sizeof prev);
        res->rows++;
        expect++;
        if (expect % VERIFY_PROGRESS == 0)
            atomic_store_explicit(&chain_done, expect, memory_order_relaxed);
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        ret = db_err(a, LC_ERR_AUDIT, err, errlen, "verify");
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    atomic_store_explicit(&chain_done, chain_total, memory_order_relaxed);
    if (res->rows > 0)
        memcpy(res->head, prev, sizeof res->head);
    if (cert_started) {
        pthread_join(cert_tid, NULL);
        cert_started = 0;
    } else {
        cc->db = a->db; /* no second connection: the same transaction, after the chain */
        cc->ret = verify_certs(cc);
    }
    if ((ret = cc->ret) != LC_OK) {
        lc_seterr(ret, err, errlen, "%s", cc->err);
        goto out;
    }
    if (cc->bad != 0 && (res->first_bad_seq == 0 || cc->bad < res->first_bad_seq)) {
        res->first_bad_seq = cc->bad;
        memcpy(res->problem, cc->problem, sizeof res->problem);
    }
    if (res->first_bad_seq != 0) {
        ret = lc_seterr(LC_ERR_TAMPERED, err, errlen, "audit store %s: %s", a->path, res->problem);
        goto out;
    }
    ret = LC_OK;
out:
    sqlite3_finalize(st);
    if (cert_started) { /* an error on this side: the other result is not needed */
        sqlite3_interrupt(cc->db);
        pthread_join(cert_tid, NULL);
    }
    if (ra_started) {
        atomic_store(&ra.stop, 1);
        pthread_join(ra_tid, NULL);
    }
    if (ra.fd >= 0)
        close(ra.fd);
    if (cc != NULL && cc->db != NULL && cc->db != a->db) {
        sqlite3_exec(cc->db, "COMMIT", NULL, NULL, NULL);
        sqlite3_close(cc->db);
    }
    if (cc != NULL)
        EVP_MD_CTX_free(cc->md);
    free(cc);
    if (in_txn)
        sqlite3_exec(a->db, "COMMIT", NULL, NULL, NULL);
    return ret;
}

/* ts_ms as ISO-8601 UTC with milliseconds; "" if out of range. */
static void iso_ms(int64_t ts_ms, char out[80])
{
    int64_t secs = ts_ms / 1000, ms = ts_ms % 1000;
    time_t t;
    struct tm tm;

    out[0] = '\0';
    if (ms < 0) { /* floor, so that -1 ms is 23:59:59.999 the day before */
        ms += 1000;
        secs--;
    }
    t = (time_t)secs;
    if (gmtime_r(&t, &tm) == NULL || tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999)
        return;
    snprintf(out, 80, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)ms);
}

static void csv_field(FILE *out, const char *s, size_t n)
{
    if (s == NULL)
        return;
    if (strcspn(s, ",\"\r\n") >= n) {
        fwrite(s, 1, n, out);
        return;
    }
    putc('"', out);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"')
            putc('"', out);
        putc(s[i], out);
    }
    putc('"', out);
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t len;
    uint32_t cp;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        len = 2;
        cp = s[0] & 0x1f;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        len = 3;
        cp = s[0] & 0x0f;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        len = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* A JSON string; bytes that are not UTF-8 become U+FFFD so the line parses. */
static void json_str(FILE *out, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;

    if (str == NULL) {
        fputs("null", out);
        return;
    }
    putc('"', out);
    for (size_t i = 0; i < n;) {
        size_t len;
        if (s[i] == '"' || s[i] == '\\') {
            putc('\\', out);
            putc(s[i], out);
            i++;
        } else if (s[i] < 0x20) {
            fprintf(out, "\\u%04x", s[i]);
            i++;
        } else if ((len = utf8_len(s + i, n - i)) == 0) {
            fputs("\\ufffd", out);
            i++;
        } else {
            fwrite(s + i, 1, len, out);
            i += len;
        }
    }
    putc('"', out);
}

static const char *const export_keys[] = {
    "seq",    "ts",         "ts_ms",      "actor",  "line",   "kind",      "registration_id",
    "serial", "thumbprint", "csr_sha256", "reason", "detail", "prev_hash", "hash"};

int audit_export(audit_t *a, FILE *out, enum audit_export_format fmt, const char *line,
                 int64_t since_ms, char *err, size_t errlen)
{
    char sql[512], ts[80]; /* ts: room for any int in the format */
    sqlite3_stmt *st = NULL;
    int ret = LC_ERR_AUDIT, rc;
    const size_t nkeys = sizeof export_keys / sizeof export_keys[0];

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (a == NULL || out == NULL || (fmt != AUDIT_EXPORT_CSV && fmt != AUDIT_EXPORT_JSONL)) {
        ret = lc_seterr(LC_ERR_AUDIT, err, errlen, "audit export: no store, output or format");
        goto out;
    }
    snprintf(sql, sizeof sql,
             "SELECT seq, ts_ms, actor, line, kind, registration_id, serial, thumbprint,"
             " csr_sha256, reason, detail, prev_hash, hash FROM audit WHERE 1 %s %s"
             " ORDER BY seq",
             line != NULL ? "AND line = ?1" : "", since_ms != 0 ? "AND ts_ms >= ?2" : "");
    if (sqlite3_prepare_v2(a->db, sql, -1, &st, NULL) != SQLITE_OK) {
        ret = db_err(a, LC_ERR_AUDIT, err, errlen, "export");
        goto out;
    }
    if (line != NULL)
        sqlite3_bind_text(st, 1, line, -1, SQLITE_STATIC);
    if (since_ms != 0)
        sqlite3_bind_int64(st, 2, since_ms);
    if (fmt == AUDIT_EXPORT_CSV) {
        for (size_t k = 0; k < nkeys; k++)
            fprintf(out, "%s%s", k ? "," : "", export_keys[k]);
        fputs("\r\n", out);
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t seq = sqlite3_column_int64(st, 0), ts_ms = sqlite3_column_int64(st, 1);

        iso_ms(ts_ms, ts);
        if (fmt == AUDIT_EXPORT_CSV) {
            fprintf(out, "%" PRId64 ",%s,%" PRId64, seq, ts, ts_ms);
            for (int c = 2; c < 13; c++) {
                size_t n;
                const char *s = col_str(st, c, &n);
                putc(',', out);
                csv_field(out, s, n);
            }
            fputs("\r\n", out);
        } else {
            fprintf(out, "{\"seq\":%" PRId64 ",\"ts\":", seq);
            json_str(out, ts[0] ? ts : NULL, strlen(ts));
            fprintf(out, ",\"ts_ms\":%" PRId64, ts_ms);
            for (int c = 2; c < 13; c++) {
                size_t n;
                const char *s = col_str(st, c, &n);
                fprintf(out, ",\"%s\":", export_keys[c + 1]);
                json_str(out, s, n);
            }
            fputs("}\n", out);
        }
        if (ferror(out))
            break; /* e.g. a closed pipe: stop reading the log */
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        ret = db_err(a, LC_ERR_AUDIT, err, errlen, "export");
        goto out;
    }
    if (fflush(out) != 0 || ferror(out)) {
        ret = lc_seterr(LC_ERR_IO, err, errlen, "audit export: write failed: %s", strerror(errno));
        goto out;
    }
    ret = LC_OK;
out:
    sqlite3_finalize(st);
    return ret;
}

int audit_mark_acked(audit_t *a, const char *serial, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    int ret = LC_ERR_AUDIT, rc;

    if (a == NULL || serial == NULL || a->readonly)
        return lc_seterr(LC_ERR_AUDIT, err, errlen, "audit mark acked: no writable store");
    if ((st = stmt(a, ST_ACK, err, errlen)) == NULL)
        return ret;
    /*
     * Delivery state is not evidence: losing this update in a crash only
     * means an audited re-delivery later.  So it skips its own fsync; the
     * WAL frames become durable with the next synchronous=FULL commit.
     */
    sqlite3_exec(a->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
    sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
    rc = step_done(st);
    sqlite3_exec(a->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
    if (rc != SQLITE_DONE)
        ret = db_err(a, LC_ERR_AUDIT, err, errlen, "mark certificate acknowledged");
    else if (sqlite3_changes(a->db) != 1)
        ret = lc_seterr(LC_ERR_NOT_FOUND, err, errlen, "no certificate with serial %s", serial);
    else
        ret = LC_OK;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return ret;
}

int64_t audit_count_line_certs(audit_t *a, const char *line)
{
    sqlite3_stmt *st;
    int64_t ret = LC_ERR_AUDIT;

    if (a == NULL || line == NULL || (st = stmt(a, ST_COUNT_LINE, NULL, 0)) == NULL)
        return ret;
    sqlite3_bind_text(st, 1, line, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        ret = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return ret;
}

sqlite3 *audit_sqlite(audit_t *a)
{
    return a != NULL ? a->db : NULL;
}
