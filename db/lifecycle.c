/*
 * lifecycle.c — revocation, CRL numbering and export queries (see lifecycle.h).
 */
#include "lifecycle.h"

#include "audit-private.h"
#include "lcerr.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void copy_col(sqlite3_stmt *st, int i, char *dst, size_t n)
{
    const unsigned char *s = sqlite3_column_text(st, i);
    snprintf(dst, n, "%s", s ? (const char *)s : "");
}

static int prepare(audit_t *a, const char *sql, sqlite3_stmt **st, char *err, size_t errlen)
{
    sqlite3 *db = audit_sqlite(a);

    if (db == NULL || sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK)
        return lc_seterr(LC_ERR_AUDIT, err, errlen, "audit query: %s",
                         db ? sqlite3_errmsg(db) : "no store");
    return LC_OK;
}

int lifecycle_revoked(audit_t *a, const char *line, lifecycle_revoked_t **out, size_t *n, char *err,
                      size_t errlen)
{
    /* The first "revoked" row of each revoked certificate of the line. */
    static const char sql[] = "SELECT c.serial, min(r.ts_ms), r.reason FROM certificates c"
                              " JOIN audit r ON r.kind = 'revoked' AND r.serial = c.serial"
                              " WHERE c.line = ?1 AND c.status = 'revoked'"
                              " GROUP BY c.serial ORDER BY min(r.seq)";
    sqlite3_stmt *st = NULL;
    lifecycle_revoked_t *v = NULL;
    size_t cap = 0, len = 0;
    int rc, ret;

    *out = NULL;
    *n = 0;
    ret = prepare(a, sql, &st, err, errlen);
    if (ret != LC_OK)
        return ret;
    sqlite3_bind_text(st, 1, line, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (len == cap) {
            lifecycle_revoked_t *nv = realloc(v, (cap = cap ? cap * 2 : 64) * sizeof *v);
            if (nv == NULL) {
                ret = lc_seterr(LC_ERR_AUDIT, err, errlen, "out of memory");
                goto out;
            }
            v = nv;
        }
        copy_col(st, 0, v[len].serial, sizeof v[len].serial);
        v[len].revoked_ms = sqlite3_column_int64(st, 1);
        copy_col(st, 2, v[len].reason, sizeof v[len].reason);
        len++;
    }
    if (rc != SQLITE_DONE) {
        ret = lc_seterr(LC_ERR_AUDIT, err, errlen, "list revoked: %s",
                        sqlite3_errmsg(audit_sqlite(a)));
        goto out;
    }
    *out = v;
    *n = len;
    v = NULL;
    ret = LC_OK;
out:
    free(v);
    sqlite3_finalize(st);
    return ret;
}

int lifecycle_revocation(audit_t *a, const char *serial, lifecycle_revoked_t *info, char *err,
                         size_t errlen)
{
    static const char sql[] = "SELECT r.serial, r.ts_ms, r.reason FROM certificates c"
                              " JOIN audit r ON r.kind = 'revoked' AND r.serial = c.serial"
                              " WHERE c.serial = ?1 AND c.status = 'revoked'"
                              " ORDER BY r.seq LIMIT 1";
    sqlite3_stmt *st = NULL;
    int ret = prepare(a, sql, &st, err, errlen), rc;

    memset(info, 0, sizeof *info);
    if (ret != LC_OK)
        return ret;
    sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        copy_col(st, 0, info->serial, sizeof info->serial);
        info->revoked_ms = sqlite3_column_int64(st, 1);
        copy_col(st, 2, info->reason, sizeof info->reason);
        ret = LC_OK;
    } else if (rc == SQLITE_DONE) {
        ret = LC_ERR_NOT_FOUND;
    } else {
        ret = lc_seterr(LC_ERR_AUDIT, err, errlen, "revocation lookup: %s",
                        sqlite3_errmsg(audit_sqlite(a)));
    }
    sqlite3_finalize(st);
    return ret;
}

int lifecycle_crl_state(audit_t *a, const char *line, lifecycle_crl_state_t *cs, char *err,
                        size_t errlen)
{
    static const char crl_sql[] = "SELECT seq, ts_ms, serial, detail FROM audit"
                                  " WHERE kind = 'crl' AND line = ?1 ORDER BY seq DESC LIMIT 1";
    static const char rev_sql[] = "SELECT ifnull(max(r.seq), 0) FROM audit r"
                                  " JOIN certificates c ON c.serial = r.serial"
                                  " WHERE r.kind = 'revoked' AND c.line = ?1";
    sqlite3_stmt *st = NULL;
    int ret, rc;

    memset(cs, 0, sizeof *cs);
    ret = prepare(a, crl_sql, &st, err, errlen);
    if (ret != LC_OK)
        return ret;
    sqlite3_bind_text(st, 1, line, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *num = sqlite3_column_text(st, 2);
        const unsigned char *detail = sqlite3_column_text(st, 3);
        cs->crl_seq = sqlite3_column_int64(st, 0);
        cs->crl_ms = sqlite3_column_int64(st, 1);
        cs->number = num ? strtoull((const char *)num, NULL, 16) : 0;
        /* After the row's "sig=...; " token (docs/audit.md), if any. */
        const char *nu = detail ? strstr((const char *)detail, "next-update-ms=") : NULL;
        if (nu != NULL)
            sscanf(nu, "next-update-ms=%" SCNd64, &cs->next_update_ms);
    }
    sqlite3_finalize(st);
    st = NULL;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return lc_seterr(LC_ERR_AUDIT, err, errlen, "CRL state: %s",
                         sqlite3_errmsg(audit_sqlite(a)));
    ret = prepare(a, rev_sql, &st, err, errlen);
    if (ret != LC_OK)
        return ret;
    sqlite3_bind_text(st, 1, line, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        cs->last_revoked_seq = sqlite3_column_int64(st, 0);
    else
        ret =
            lc_seterr(LC_ERR_AUDIT, err, errlen, "CRL state: %s", sqlite3_errmsg(audit_sqlite(a)));
    sqlite3_finalize(st);
    return ret;
}

int lifecycle_foreach_cert(audit_t *a, const char *line,
                           int (*fn)(void *user, const lifecycle_cert_t *c), void *user, char *err,
                           size_t errlen)
{
    static const char sql[] = "SELECT serial, registration_id, status, not_before, not_after, der"
                              " FROM certificates WHERE line = ?1 ORDER BY audit_seq";
    sqlite3_stmt *st = NULL;
    int ret = prepare(a, sql, &st, err, errlen), rc;

    if (ret != LC_OK)
        return ret;
    sqlite3_bind_text(st, 1, line, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        lifecycle_cert_t c;
        c.serial = (const char *)sqlite3_column_text(st, 0);
        c.registration_id = (const char *)sqlite3_column_text(st, 1);
        c.status = (const char *)sqlite3_column_text(st, 2);
        c.not_before = sqlite3_column_int64(st, 3);
        c.not_after = sqlite3_column_int64(st, 4);
        c.der = sqlite3_column_blob(st, 5);
        c.der_len = (size_t)sqlite3_column_bytes(st, 5);
        ret = fn(user, &c);
        if (ret != 0)
            goto out;
    }
    ret = rc == SQLITE_DONE ? LC_OK
                            : lc_seterr(LC_ERR_AUDIT, err, errlen, "list certificates: %s",
                                        sqlite3_errmsg(audit_sqlite(a)));
out:
    sqlite3_finalize(st);
    return ret;
}

int lifecycle_latest_by_regid(audit_t *a, const char *regid, char *serial, size_t len, char *err,
                              size_t errlen)
{
    static const char sql[] = "SELECT serial FROM certificates WHERE regid_fold = lower(?1)"
                              " ORDER BY audit_seq DESC LIMIT 1";
    sqlite3_stmt *st = NULL;
    int ret = prepare(a, sql, &st, err, errlen), rc;

    if (ret != LC_OK)
        return ret;
    sqlite3_bind_text(st, 1, regid, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        copy_col(st, 0, serial, len);
        ret = LC_OK;
    } else {
        ret = rc == SQLITE_DONE ? LC_ERR_NOT_FOUND
                                : lc_seterr(LC_ERR_AUDIT, err, errlen, "lookup: %s",
                                            sqlite3_errmsg(audit_sqlite(a)));
    }
    sqlite3_finalize(st);
    return ret;
}
