/*
 * revoke.h — taking a certificate out of trust.
 *
 * A revocation is one audit row (kind "revoked", the serial, the RFC 5280
 * reason name) committed in the same transaction that marks the certificate
 * revoked.  It needs only the audit store, not the HSM: security staff can
 * revoke while the token is away; the CRL follows (`linecert crl`, or the
 * daemon's publication).
 */
#ifndef LINECERT_REVOKE_H
#define LINECERT_REVOKE_H

#include "audit.h"

#include <stddef.h>

typedef struct revoke_result {
    char serial[80];
    char line[64];
    char registration_id[80];
    int already; /* it was revoked before: nothing was written */
    char earlier_reason[32];
    long long earlier_ms; /* when it was revoked before */
    int64_t seq;          /* the new audit row */
} revoke_result_t;

/*
 * Revokes the certificate with serial (uppercase or lowercase hex), or the
 * valid certificate of registration ID regid (case-insensitive), for reason
 * (an RFC 5280 name, see profile_crl_reason()).  actor is recorded on the
 * row.  Revoking a revoked certificate changes nothing and sets
 * res->already.  Returns LC_OK; LC_ERR_USAGE (bad reason); LC_ERR_NOT_FOUND
 * (no such certificate: message says which); LC_ERR_AUDIT.
 */
int revoke_certificate(audit_t *a, const char *serial, const char *regid, const char *reason,
                       const char *actor, revoke_result_t *res, char *err, size_t errlen);

/* Writes the revocation row e (one entry); returns LC_OK or an error with its message. */
typedef int (*revoke_append_fn)(void *ctx, audit_entry_t *e, char *err, size_t errlen);

/*
 * revoke_certificate() that looks the certificate up in a (which may be a
 * read-only handle) and writes the row through append: the daemon's single
 * writer.
 */
int revoke_certificate_via(audit_t *a, revoke_append_fn append, void *ctx, const char *serial,
                           const char *regid, const char *reason, const char *actor,
                           revoke_result_t *res, char *err, size_t errlen);

#endif
