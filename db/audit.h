/*
 * audit.h — the tamper-evident audit store.
 *
 * One SQLite database in WAL mode with synchronous=FULL.  Every event that
 * security staff must be able to prove (issuance, re-issue, refusal, fault,
 * re-delivery, revocation, ...) is one row of the `audit` table; rows form a
 * hash chain: each row stores the previous row's hash and the SHA-256 of its
 * own canonical encoding (see docs/audit.md), so that an edited, deleted,
 * inserted or reordered row is found by audit_verify().  Issued certificates
 * are kept in the `certificates` table, written in the same transaction as
 * their audit row.
 *
 * A store handle is used by one thread at a time.  Exactly one process (the
 * station) writes; readers (CLI, UI) may open read-only at any time.
 * Appends are batched: audit_append() writes N entries in one transaction and
 * returns only after it has committed durably (group commit).
 */
#ifndef LINECERT_AUDIT_H
#define LINECERT_AUDIT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define AUDIT_HASH_HEX       65 /* 64 lowercase hex digits + NUL */
#define AUDIT_SCHEMA_VERSION 3

typedef struct audit audit_t;

enum audit_open_flags {
    AUDIT_READWRITE = 0, /* open existing or create, migrate to current schema */
    AUDIT_READONLY = 1,  /* SQLITE_OPEN_READONLY; never writes, never migrates */
};

/* One audit row.  Strings may be NULL (stored as SQL NULL) unless noted. */
typedef struct audit_row {
    int64_t seq;                    /* out: sequence number, 1-based, no gaps */
    int64_t ts_ms;                  /* in: UTC ms since epoch; 0 = now */
    const char *actor;              /* in, required: Unix user or "linecertd" */
    const char *line;               /* in, required: line id, "" for station-wide */
    const char *kind;               /* in, required: "issued", "refused", ... */
    const char *registration_id;    /* the CN */
    const char *serial;             /* certificate serial, uppercase hex */
    const char *thumbprint;         /* SHA-256 of the cert DER, uppercase hex */
    const char *csr_sha256;         /* SHA-256 of the CSR as received, uppercase hex */
    const char *reason;             /* stable reason code ("cn-invalid", ...) */
    const char *detail;             /* free text for humans */
    char prev_hash[AUDIT_HASH_HEX]; /* out: previous row's hash (64 '0' for seq 1) */
    char hash[AUDIT_HASH_HEX];      /* out: this row's hash */
} audit_row_t;

/* A certificate to store with its audit row. */
typedef struct audit_cert {
    const char *serial;          /* uppercase hex, primary key */
    const char *line;            /* line id */
    const char *registration_id; /* CN as issued */
    int64_t not_before;          /* Unix seconds */
    int64_t not_after;           /* Unix seconds */
    const char *thumbprint;      /* SHA-256 uppercase hex */
    const unsigned char *der;    /* the certificate */
    size_t der_len;
    const char *supersedes;  /* serial this re-issue replaces, or NULL */
    const char *spki_sha256; /* SHA-256 of the SubjectPublicKeyInfo DER, uppercase hex */
} audit_cert_t;

/* One element of a batch for audit_append(). */
typedef struct audit_entry {
    audit_row_t row;          /* in/out */
    const audit_cert_t *cert; /* NULL when the event issued nothing */
    const char *revokes;      /* serial marked "revoked" in the same transaction, or NULL */
} audit_entry_t;

/* What audit_verify() found. */
typedef struct audit_verify_result {
    int64_t rows;              /* rows checked */
    char head[AUDIT_HASH_HEX]; /* hash of the last good row ("" if none) */
    int64_t first_bad_seq;     /* 0 when everything verified */
    char problem[256];         /* what is wrong with first_bad_seq */
} audit_verify_result_t;

/* A certificate as read back from the store. */
typedef struct audit_cert_info {
    char serial[80];
    char line[64];
    char registration_id[80];
    char status[16]; /* "valid", "superseded", "revoked" */
    int64_t not_before;
    int64_t not_after;
    int64_t audit_seq;    /* the row that issued it */
    int acked;            /* the PLC acknowledged its delivery */
    char spki_sha256[65]; /* SHA-256 of its public key (SPKI DER), uppercase hex */
} audit_cert_info_t;

/*
 * Opens (and, read-write, creates and migrates) the store at path.
 * Read-write opens set journal_mode=WAL, synchronous=FULL, foreign_keys=ON and
 * a busy timeout.  On failure *out is NULL and err holds a message naming the
 * path.  Returns LC_OK or LC_ERR_AUDIT.  Free with audit_free().
 */
int audit_open(const char *path, int flags, audit_t **out, char *err, size_t errlen);

/* Closes the store.  audit_free(NULL) is a no-op. */
void audit_free(audit_t *a);

/*
 * Appends n entries, in order, in ONE transaction, chaining each row to the
 * previous one, and stores each entry's certificate (marking the certificate
 * named by cert->supersedes as "superseded").  Fills each row's seq,
 * prev_hash, hash and (if 0) ts_ms.  Returns only after COMMIT has returned
 * (durable with synchronous=FULL).  On any failure nothing of the batch is
 * kept (ROLLBACK), the in-memory chain head is unchanged, and LC_ERR_AUDIT
 * (or LC_ERR_EXISTS for a duplicate certificate serial) is returned with a
 * message in err.
 */
int audit_append(audit_t *a, audit_entry_t *entries, size_t n, char *err, size_t errlen);

/*
 * Looks for a certificate with status "valid" whose registration ID equals
 * regid compared case-insensitively (ASCII).  Returns LC_OK and fills *info
 * (if not NULL) when found, LC_ERR_NOT_FOUND when none, LC_ERR_AUDIT on error.
 */
int audit_find_valid_regid(audit_t *a, const char *regid, audit_cert_info_t *info, char *err,
                           size_t errlen);

/*
 * Reads the certificate with the given serial (uppercase hex).  *der (if
 * der != NULL) is malloc'd and owned by the caller.  Returns LC_OK,
 * LC_ERR_NOT_FOUND or LC_ERR_AUDIT.
 */
int audit_get_cert(audit_t *a, const char *serial, audit_cert_info_t *info, unsigned char **der,
                   size_t *der_len, char *err, size_t errlen);

/* Returns LC_OK if serial is unused, LC_ERR_EXISTS if a certificate has it. */
int audit_serial_free(audit_t *a, const char *serial, char *err, size_t errlen);

/*
 * Recomputes the whole chain in sequence order.  Returns LC_OK with
 * res->first_bad_seq == 0 when every row verifies, LC_ERR_TAMPERED with
 * first_bad_seq and problem set at the first row that does not (edited
 * fields, a gap in seq, a wrong prev_hash, a certificate row whose audit row
 * is missing), LC_ERR_AUDIT if the store cannot be read.
 */
int audit_verify(audit_t *a, audit_verify_result_t *res, char *err, size_t errlen);

/*
 * Called once per audit row after its hash and link have verified, in seq
 * order, from the thread that called audit_verify_rows().  The row's strings
 * are NUL-terminated or NULL and valid only during the call; seq, ts_ms,
 * prev_hash and hash are filled.  Return 0 to go on; non-zero stops
 * verification: the row becomes first_bad_seq and `problem` (which the
 * callback fills, NUL-terminated, at most plen bytes) becomes the result's
 * problem; audit_verify_rows() then returns LC_ERR_TAMPERED as for any other
 * verification failure.
 */
typedef int (*audit_row_fn)(void *ctx, const audit_row_t *row, char *problem, size_t plen);

/*
 * audit_verify() with a per-row callback (fn may be NULL: then it is
 * audit_verify()).  A row the callback rejects is not counted in res->rows
 * and res->head stays the hash of the row before it, as for a row whose hash
 * does not verify.  The certificate cross-check still runs, and a lower bad
 * seq found there wins, as always.  Same return values as audit_verify().
 */
int audit_verify_rows(audit_t *a, audit_verify_result_t *res, audit_row_fn fn, void *ctx, char *err,
                      size_t errlen);

enum audit_export_format { AUDIT_EXPORT_CSV, AUDIT_EXPORT_JSONL };

/*
 * Writes the audit rows (all columns, seq order) to out, optionally only one
 * line's rows (line != NULL) and rows at or after since_ms (0 = all).  CSV has
 * a header row and RFC 4180 quoting; JSONL is one JSON object per row.
 * Returns LC_OK, LC_ERR_IO or LC_ERR_AUDIT.
 */
int audit_export(audit_t *a, FILE *out, enum audit_export_format fmt, const char *line,
                 int64_t since_ms, char *err, size_t errlen);

/* Number of audit rows (the head's seq, no table scan), or a negative LC_ERR_* code. */
int64_t audit_count(audit_t *a);

/*
 * Marks a certificate as acknowledged by the PLC (its delivery is complete:
 * it will never be re-delivered).  Not part of the hash chain: the "issued"
 * row is the record; this is delivery state.  Returns LC_OK,
 * LC_ERR_NOT_FOUND or LC_ERR_AUDIT.
 */
int audit_mark_acked(audit_t *a, const char *serial, char *err, size_t errlen);

/* Number of certificates ever issued on a line, or a negative LC_ERR_* code. */
int64_t audit_count_line_certs(audit_t *a, const char *line);

/*
 * Computes the hash of a row from its fields and prev_hash (hex output into
 * out, 65 bytes).  Exposed for tests and for the verifier.
 */
void audit_row_hash(const audit_row_t *row, const char *prev_hash, char out[AUDIT_HASH_HEX]);

#endif
