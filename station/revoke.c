/*
 * revoke.c — revocation in the audit store (see revoke.h).
 */
#include "revoke.h"

#include "lcerr.h"
#include "lifecycle.h"
#include "profile.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* The reasons an operator may give for a device certificate (RFC 5280, docs/cli.md). */
static int reason_allowed(const char *r)
{
    static const char *const ok[] = {
        "unspecified", "keyCompromise",        "cACompromise",    "affiliationChanged",
        "superseded",  "cessationOfOperation", "certificateHold", "privilegeWithdrawn"};

    for (size_t i = 0; r != NULL && i < sizeof ok / sizeof ok[0]; i++)
        if (strcmp(r, ok[i]) == 0)
            return 1;
    return 0;
}

static int append_direct(void *ctx, audit_entry_t *e, char *err, size_t errlen)
{
    return audit_append(ctx, e, 1, err, errlen);
}

int revoke_certificate(audit_t *a, const char *serial, const char *regid, const char *reason,
                       const char *actor, revoke_result_t *res, char *err, size_t errlen)
{
    return revoke_certificate_via(a, append_direct, a, serial, regid, reason, actor, res, err,
                                  errlen);
}

int revoke_certificate_via(audit_t *a, revoke_append_fn append, void *ctx, const char *serial,
                           const char *regid, const char *reason, const char *actor,
                           revoke_result_t *res, char *err, size_t errlen)
{
    audit_cert_info_t info;
    lifecycle_revoked_t prior;
    audit_entry_t e;
    char upper[80], detail[200];
    int ret;

    memset(res, 0, sizeof *res);
    if (!reason_allowed(reason))
        return lc_seterr(LC_ERR_USAGE, err, errlen,
                         "unknown revocation reason \"%s\" (unspecified, keyCompromise, "
                         "cACompromise, affiliationChanged, superseded, cessationOfOperation, "
                         "certificateHold, privilegeWithdrawn)",
                         reason);
    if (serial != NULL) {
        size_t n = strlen(serial);
        if (n == 0 || n >= sizeof upper)
            return lc_seterr(LC_ERR_NOT_FOUND, err, errlen, "no certificate with serial %s",
                             serial);
        for (size_t i = 0; i <= n; i++)
            upper[i] = (char)toupper((unsigned char)serial[i]);
        ret = audit_get_cert(a, upper, &info, NULL, NULL, err, errlen);
    } else {
        /* The valid certificate; or, to report a repeated revocation, the latest one. */
        ret = audit_find_valid_regid(a, regid, &info, err, errlen);
        if (ret == LC_ERR_NOT_FOUND &&
            lifecycle_latest_by_regid(a, regid, upper, sizeof upper, err, errlen) == LC_OK &&
            audit_get_cert(a, upper, &info, NULL, NULL, err, errlen) == LC_OK &&
            strcmp(info.status, "revoked") != 0)
            ret = LC_ERR_NOT_FOUND; /* superseded only: nothing valid to revoke */
        else if (ret == LC_ERR_NOT_FOUND && info.serial[0] != '\0')
            ret = LC_OK;
    }
    if (ret == LC_ERR_NOT_FOUND)
        return lc_seterr(ret, err, errlen, "no %scertificate with %s %s", serial ? "" : "valid ",
                         serial ? "serial" : "registration ID", serial ? serial : regid);
    if (ret != LC_OK)
        return ret;
    snprintf(res->serial, sizeof res->serial, "%s", info.serial);
    snprintf(res->line, sizeof res->line, "%s", info.line);
    snprintf(res->registration_id, sizeof res->registration_id, "%s", info.registration_id);
    if (strcmp(info.status, "revoked") == 0) {
        /* idempotent: report the first revocation, write nothing */
        res->already = 1;
        if (lifecycle_revocation(a, info.serial, &prior, err, errlen) == LC_OK) {
            snprintf(res->earlier_reason, sizeof res->earlier_reason, "%s", prior.reason);
            res->earlier_ms = prior.revoked_ms;
        }
        return LC_OK;
    }
    snprintf(detail, sizeof detail, "revoked (%s); status was %s", reason, info.status);
    memset(&e, 0, sizeof e);
    e.row.actor = actor;
    e.row.line = info.line;
    e.row.kind = "revoked";
    e.row.registration_id = info.registration_id;
    e.row.serial = info.serial;
    e.row.reason = reason;
    e.row.detail = detail;
    e.revokes = info.serial;
    ret = append(ctx, &e, err, errlen);
    if (ret != LC_OK)
        return LC_ERR_AUDIT;
    res->seq = e.row.seq;
    return LC_OK;
}
