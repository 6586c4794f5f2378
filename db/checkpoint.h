/*
 * checkpoint.h — proof that the audit log accounts for every signature
 * (docs/audit.md, "Checkpoints and signature accounting").
 *
 * The signer numbers every signature of a line key (per signer process, the
 * "instance") and each signature-bearing row names its number ("sig=I:N; "
 * first in the detail).  Every checkpoint_every signatures, and at shutdown,
 * the signer signs a checkpoint row with the line CA key: the log's row
 * count and head hash, its own count of signatures, and what the station
 * held uncommitted (pending) or discarded unreleased (withheld).  The
 * verifier runs as an audit_verify_rows() callback, in seq order, and fails
 * the log if a checkpoint's signature or head is wrong, if a signature is
 * accounted twice, or if a signature the signer made before a checkpoint
 * has no row (other than one the checkpoint lists as still pending).
 */
#ifndef LINECERT_CHECKPOINT_H
#define LINECERT_CHECKPOINT_H

#include "audit.h"

#include <stddef.h>
#include <stdint.h>

typedef struct checkpoint_verifier checkpoint_verifier_t;

typedef struct checkpoint_summary {
    int64_t checkpoints;  /* checkpoint rows whose signature verified */
    int64_t accounted;    /* signatures named by rows (incl. checkpoints and withheld) */
    int64_t withheld;     /* signatures discarded unreleased (audit store failures) */
    int64_t runs;         /* signer instances with at least one checkpoint */
    int64_t final_runs;   /* ... whose last checkpoint was a final one (clean stop) */
    int64_t unconfirmed;  /* made before a non-final last checkpoint, no row (a crash) */
    int64_t uncovered;    /* rows after their signer's last checkpoint (a crash) */
    char first_note[256]; /* the first unconfirmed signature, for the report */
} checkpoint_summary_t;

/* Returns LC_OK or LC_ERR_NOMEM. */
int checkpoint_verifier_new(checkpoint_verifier_t **out);

/* A line CA certificate (DER) that checkpoints may be signed with. */
int checkpoint_verifier_add_ca(checkpoint_verifier_t *v, const unsigned char *der, size_t len,
                               char *err, size_t errlen);

/* The audit_row_fn to pass to audit_verify_rows() with v as its context. */
int checkpoint_verify_row(void *v, const audit_row_t *row, char *problem, size_t plen);

/* After a successful audit_verify_rows(): the figures for the report. */
void checkpoint_verifier_finish(checkpoint_verifier_t *v, checkpoint_summary_t *sum);

/* NULL is a no-op. */
void checkpoint_verifier_free(checkpoint_verifier_t *v);

#endif
