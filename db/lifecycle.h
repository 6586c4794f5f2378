/*
 * lifecycle.h — certificate lifecycle queries over the audit store:
 * revocation state, CRL numbering and the enrollment export.
 *
 * Revocations are audit rows (kind "revoked", the certificate's serial and
 * the RFC 5280 reason name), written in the same transaction that marks the
 * certificate revoked; CRLs are audit rows too (kind "crl", the CRL number
 * as 16 uppercase hex digits in the serial column).  So the CRL is derived
 * from the tamper-evident log, and its numbering survives restarts.
 */
#ifndef LINECERT_LIFECYCLE_H
#define LINECERT_LIFECYCLE_H

#include "audit.h"

#include <stdint.h>

/* One revoked certificate, as a CRL lists it. */
typedef struct lifecycle_revoked {
    char serial[80];    /* uppercase hex */
    int64_t revoked_ms; /* time of the "revoked" audit row */
    char reason[32];    /* RFC 5280 reason name, e.g. "keyCompromise" */
} lifecycle_revoked_t;

/*
 * Lists the revoked certificates of a line, in revocation order.  *out is
 * malloc'd (caller frees), *n its length.  Returns LC_OK or LC_ERR_AUDIT.
 */
int lifecycle_revoked(audit_t *a, const char *line, lifecycle_revoked_t **out, size_t *n, char *err,
                      size_t errlen);

/*
 * The revocation of serial, if any: LC_OK with *info filled, LC_ERR_NOT_FOUND
 * when it is not revoked, LC_ERR_AUDIT on error.
 */
int lifecycle_revocation(audit_t *a, const char *serial, lifecycle_revoked_t *info, char *err,
                         size_t errlen);

/*
 * The most recent certificate of a registration ID (ASCII case-insensitive),
 * whatever its status: LC_OK with serial filled, LC_ERR_NOT_FOUND, LC_ERR_AUDIT.
 */
int lifecycle_latest_by_regid(audit_t *a, const char *regid, char *serial, size_t len, char *err,
                              size_t errlen);

/* The line's last CRL: number (0 = none yet), its audit seq and time. */
typedef struct lifecycle_crl_state {
    uint64_t number;
    int64_t crl_seq;          /* audit seq of the last "crl" row (0 = none) */
    int64_t crl_ms;           /* its time */
    int64_t next_update_ms;   /* the nextUpdate it announced */
    int64_t last_revoked_seq; /* audit seq of the line's last "revoked" row (0 = none) */
} lifecycle_crl_state_t;

/* Returns LC_OK or LC_ERR_AUDIT. */
int lifecycle_crl_state(audit_t *a, const char *line, lifecycle_crl_state_t *st, char *err,
                        size_t errlen);

/* One certificate for the enrollment export. */
typedef struct lifecycle_cert {
    const char *serial;
    const char *registration_id;
    const char *status; /* valid, superseded, revoked */
    int64_t not_before;
    int64_t not_after;
    const unsigned char *der;
    size_t der_len;
} lifecycle_cert_t;

/*
 * Calls fn for every certificate of line, in issuance order (fn returns 0 to
 * go on).  Returns LC_OK, LC_ERR_AUDIT, or fn's non-zero value.
 */
int lifecycle_foreach_cert(audit_t *a, const char *line,
                           int (*fn)(void *user, const lifecycle_cert_t *c), void *user, char *err,
                           size_t errlen);

#endif
