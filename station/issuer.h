/*
 * issuer.h — the issuance pipeline: CSR intake -> policy -> signer ->
 * durable audit row -> chain out.
 *
 * Shared by `linecert issue` and the daemon.  The order is the product's
 * core invariant: a certificate is handed out only after the transaction
 * holding its audit row has committed; every refusal and every fault is
 * audited too.  If the audit store cannot be written nothing is released.
 */
#ifndef LINECERT_ISSUER_H
#define LINECERT_ISSUER_H

#include "audit.h"
#include "revoke.h"
#include "config.h"
#include "lifecycle.h"
#include "policy.h"

#include <stddef.h>
#include <stdint.h>

typedef struct issuer issuer_t;

typedef struct issue_req {
    const char *line;           /* line id */
    const unsigned char *input; /* CSR as received (PEM or DER) */
    size_t input_len;
    int reissue;                /* replace the valid certificate of this CN */
    const char *reissue_reason; /* required with reissue; audited */
    const char *expect_regid;   /* daemon: the CN must equal this (from the PLC) */
    const char *context;        /* appended to the audit detail ("PLC seq 7, ...") */
    int allow_redeliver;        /* daemon: re-deliver an unacknowledged certificate */
} issue_req_t;

typedef struct issue_res {
    int outcome;          /* LC_OK issued; LC_ERR_REFUSED; LC_ERR_SIGNER/HSM; LC_ERR_AUDIT */
    lc_refusal_t refusal; /* reason + detail when refused or faulted */
    char regid[POLICY_MAX_REGID + 1]; /* the CN, when the CSR got that far */
    char serial[80];                  /* uppercase hex, when issued */
    char thumbprint[65];              /* SHA-256 of the certificate, uppercase hex */
    int64_t seq;                      /* audit row of the outcome (0 if none) */
    int redelivered;                  /* LC_OK by re-delivering an existing certificate */
    unsigned char *der;               /* issued certificate (malloc'd, free with issue_res_clear) */
    size_t der_len;
    char message[300]; /* for LC_ERR_SIGNER/HSM/AUDIT: what failed */
} issue_res_t;

/*
 * Opens the audit store read-write, starts and configures the signer for
 * the configured lines (only `line` if not NULL).  actor is recorded in every
 * row.  Returns LC_OK; LC_ERR_CONFIG (chain file unreadable); LC_ERR_AUDIT;
 * LC_ERR_SIGNER/LC_ERR_HSM (signer did not start or the token is not usable).
 */
int issuer_open(const lc_config_t *cfg, const char *line, const char *actor, int flags,
                issuer_t **out, char *err, size_t errlen);

enum issuer_flags {
    ISSUER_TOLERATE_HSM = 1, /* daemon: start even if the token is not there yet */
};

/* Stops the signer, closes the store.  NULL is a no-op. */
void issuer_free(issuer_t *is);

/*
 * Runs one request through the pipeline.  Returns res->outcome.  Every
 * outcome except an unknown line is audited (LC_ERR_AUDIT if that failed).
 * Thread-safe: many threads may issue at once; their requests are signed in
 * parallel by the signer's threads and their audit rows group-committed.
 */
int issuer_issue(issuer_t *is, const issue_req_t *req, issue_res_t *res);

/* Frees res->der. */
void issue_res_clear(issue_res_t *res);

/*
 * The PEM chain for an issued certificate of `line`: leaf, line CA, factory
 * CA, and the root when with_root.  *pem is malloc'd.  Returns LC_OK or
 * LC_ERR_NOMEM.
 */
int issuer_chain_pem(issuer_t *is, const char *line, const unsigned char *der, size_t der_len,
                     int with_root, char **pem, size_t *pem_len);

/*
 * Appends one audit row for an event outside the pipeline (a jig fault, a
 * pause, a control action).  Returns LC_OK or LC_ERR_AUDIT.
 */
int issuer_audit_event(issuer_t *is, const char *line, const char *kind, const char *regid,
                       const char *serial, const char *reason, const char *detail);

/* issuer_audit_event() with another actor (a control socket peer, "uid=1001(alice)"). */
int issuer_audit_event_as(issuer_t *is, const char *actor, const char *line, const char *kind,
                          const char *regid, const char *serial, const char *reason,
                          const char *detail);

/*
 * Revokes a certificate through the issuer's writer (see revoke.h): by
 * serial or by registration ID, for an RFC 5280 reason, recorded with actor.
 */
int issuer_revoke(issuer_t *is, const char *serial, const char *regid, const char *reason,
                  const char *actor, revoke_result_t *res, char *err, size_t errlen);

/* Records that the PLC acknowledged the delivery of serial. */
int issuer_mark_acked(issuer_t *is, const char *serial);

/* Certificates ever issued on line (for the ISSUED_COUNT register). */
int64_t issuer_issued_count(issuer_t *is, const char *line);

/*
 * Asks the signer whether the token is usable (which makes it reload the
 * module when it was not), restarting the signer if it died.  Fills
 * *hsm_ok, *signatures, *restarts, *pid.  Returns LC_OK or LC_ERR_SIGNER.
 */
int issuer_probe(issuer_t *is, int *hsm_ok, uint64_t *signatures, unsigned *restarts, int *pid,
                 char *err, size_t errlen);

/*
 * Signs the line's next CRL in the HSM: every revoked certificate of the
 * line, CRL number = the last audited one + 1, nextUpdate = now +
 * next_update_hours; audits it (kind "crl").  *der is malloc'd.  Returns
 * LC_OK, LC_ERR_CONFIG, LC_ERR_SIGNER/LC_ERR_HSM or LC_ERR_AUDIT.
 */
int issuer_crl(issuer_t *is, const char *line, int next_update_hours, unsigned char **der,
               size_t *der_len, uint64_t *number, char *err, size_t errlen);

/*
 * The DPS proof-of-possession certificate for the line CA: CN = code (16-64
 * hex digits), an ephemeral key, 1 day, no EKU; audited (kind
 * "verification-cert") before it is returned.  serial_hex gets 33 bytes.
 * Returns LC_OK, LC_ERR_USAGE (bad code), LC_ERR_SIGNER/HSM or LC_ERR_AUDIT.
 */
int issuer_verification_cert(issuer_t *is, const char *line, const char *code, unsigned char **der,
                             size_t *der_len, char *serial_hex, char *err, size_t errlen);

/*
 * Has the signer sign `count` fixed digests with the line key on its
 * threads, through the issuance's PKCS#11 path (the raw rate `linecert
 * bench` compares with), and audits the run (kind "bench") so the log
 * accounts for those signatures.  Returns LC_OK or LC_ERR_*.
 */
int issuer_bench_sign(issuer_t *is, const char *line, uint32_t count, int64_t *elapsed_ns,
                      char *err, size_t errlen);

/* "ec-p256", "ec-p384", "rsa-2048", ... for the line CA key. */
const char *issuer_line_key_type(issuer_t *is, const char *line);

/* Rows in the audit log (the head's seq). */
int64_t issuer_audit_rows(issuer_t *is);

/* The line's CRL state (lifecycle.h) from the read handle. */
int issuer_crl_state(issuer_t *is, const char *line, lifecycle_crl_state_t *cs, char *err,
                     size_t errlen);

/* Rows committed by this issuer's writer and the transactions they took. */
void issuer_write_stats(issuer_t *is, long long *rows, long long *transactions);

/* Resolves the signer program: config `signer`, $LINECERT_SIGNER, next to this program, libexec. */
const char *issuer_signer_path(const lc_config_t *cfg, char *buf, size_t len);

/* Uppercase hex SHA-256 of data into out (65 bytes). */
void issuer_sha256_hex(const unsigned char *data, size_t len, char out[65]);

#endif
