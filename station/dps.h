/*
 * dps.h — what Azure IoT DPS would decide for a device's X.509 chain.
 *
 * linecert's certificates exist to be accepted by a provisioning service
 * (ARCHITECTURE: "the service must be able to walk from the leaf to a CA
 * verified with proof-of-possession").  This module replays the service's
 * documented X.509 decision offline, against a plain-text description of
 * the service's enrollments, so that a plant can prove before shipping that
 * the chains it issues, and the enrollments it set up, provision the
 * devices they should and no others (docs/dps.md).
 *
 * The decision: the chain must lead, by signatures, from the leaf to a
 * certificate verified by proof of possession (authentication); then the
 * first enrollment found for the leaf (individual), or for the first, second,
 * ... CA up the chain (group), decides: enabled provisions, disabled does not;
 * none found does not.  The leaf's CN is the registration ID.
 */
#ifndef LINECERT_DPS_H
#define LINECERT_DPS_H

#include "policy.h"

#include <stddef.h>
#include <time.h>

#define DPS_MAX_CHAIN 16 /* certificates a device may present; more is an input error */

/* A loaded enrollments file: the service's enrollments and verified CAs. */
typedef struct dps_enrollments dps_enrollments_t;

/*
 * Why the device is (not) provisioned, as a stable machine-readable name
 * (dps_reason_name()) for scripts; numbers are not printed, names are a
 * contract: extend, never rename.
 */
enum dps_reason {
    DPS_REASON_ENROLLED = 0,     /* an enabled enrollment decided */
    DPS_REASON_DISABLED,         /* the deciding enrollment is disabled */
    DPS_REASON_NO_ENROLLMENT,    /* no enrollment for the leaf or any CA of the chain */
    DPS_REASON_CHAIN_UNVERIFIED, /* the chain does not lead to a verified CA */
    DPS_REASON_EXPIRED,          /* a certificate of the chain has expired */
    DPS_REASON_NOT_CA,           /* an issuing certificate lacks basicConstraints CA:TRUE */
    DPS_REASON_REGID_INVALID,    /* the leaf's CN is not a valid registration ID */
    DPS_REASON_NOT_YET_VALID,    /* a certificate of the chain is not valid yet */
};

typedef struct dps_result {
    int provisioned;   /* 1: the service would provision the device */
    int authenticated; /* 1: the chain led to a verified CA with valid CA certificates */
    enum dps_reason reason;
    char entry[512]; /* deciding entry, "group enabled certs/root.pem (line 3)"; "" if none */
    char registration_id[POLICY_MAX_REGID + 1]; /* the leaf's CN if a valid registration ID */
    char why[2048]; /* one line for people: the chain walked and how the decision fell */
} dps_result_t;

/*
 * Reads an enrollments file (docs/dps.md): one entry per line,
 * `individual enabled|disabled PATH`, `group enabled|disabled PATH`,
 * `verified PATH`; `#` comment lines and blank lines; PATH relative to the
 * file's folder.  Every certificate file is read now, so that a bad one is
 * reported with its FILE:LINE before any decision is made.
 * Returns LC_OK with *out (free with dps_enrollments_free()); LC_ERR_IO if
 * the file cannot be read; LC_ERR_CONFIG with "FILE:LINE: ..." in err for an
 * unknown keyword, a bad status, a missing or unreadable certificate, a
 * group or verified certificate that is not a CA, or a certificate named by
 * two enrollments (or verified twice); LC_ERR_NOMEM.
 */
int dps_enrollments_load(const char *path, dps_enrollments_t **out, char *err, size_t errlen);

/* dps_enrollments_free(NULL) is a no-op. */
void dps_enrollments_free(dps_enrollments_t *e);

/*
 * Decides for the chain in chain_path (PEM, leaf first, as the device would
 * present it) at time now.  Returns LC_OK with *res filled whatever the
 * decision (res->provisioned says which); LC_ERR_IO if the file cannot be
 * read; LC_ERR_CONFIG if it holds no certificate, a damaged one, or more
 * than DPS_MAX_CHAIN; LC_ERR_NOMEM.  Nothing is allocated for the caller.
 */
int dps_check_chain(const dps_enrollments_t *e, const char *chain_path, time_t now,
                    dps_result_t *res, char *err, size_t errlen);

/* Stable name of a reason ("no-enrollment"); "unknown" for a value not in the enum. */
const char *dps_reason_name(enum dps_reason r);

/*
 * `linecert dps-check --enrollments FILE --chain CHAIN.pem` (cli_dps.c).
 * argv[0] is "dps-check".  Prints the decision on stdout; returns the exit
 * code: 0 provisioned, 1 not provisioned, 2 usage or input error.
 */
int cmd_dps_check(int argc, char **argv);

#endif
