/*
 * profile.h — the fixed certificate profiles linecert signs.
 *
 * The leaf profile (docs/profile.md) takes nothing from the CSR but its
 * SubjectPublicKeyInfo and CN.  Certificates are built as DER directly from
 * the profile: the TBSCertificate is encoded here, hashed, signed by the HSM
 * and wrapped by profile_assemble().  The CA profile is used only by
 * `linecert pki init` to make the demo/test hierarchy.
 */
#ifndef LINECERT_PROFILE_H
#define LINECERT_PROFILE_H

#include "der.h"
#include "policy.h"

#include <openssl/x509.h>
#include <stdint.h>

#define PROFILE_SERIAL_LEN 16

/* What the profile needs to know about the issuing CA. */
typedef struct profile_issuer {
    unsigned char *name_der; /* the CA certificate's subject Name (owned) */
    size_t name_len;
    unsigned char ski[64]; /* the CA's subjectKeyIdentifier */
    size_t ski_len;
    enum lc_key_type key_type; /* selects the signature algorithm */
    int64_t not_after;         /* leaf validity is capped at the CA's */
} profile_issuer_t;

/* One leaf certificate to build. */
typedef struct profile_leaf {
    const lc_csr_t *csr;                      /* public key, key type, CN */
    const char *o;                            /* subject O or NULL */
    const char *ou;                           /* subject OU or NULL */
    unsigned char serial[PROFILE_SERIAL_LEN]; /* positive: top bit clear */
    int64_t not_before;                       /* Unix seconds */
    int64_t not_after;
    int verification; /* DPS verification cert: no EKU */
} profile_leaf_t;

/* One CA certificate to build (pki init). */
typedef struct profile_ca {
    const unsigned char *spki; /* the CA key's SubjectPublicKeyInfo DER */
    size_t spki_len;
    const char *cn;
    const char *o;
    int pathlen; /* -1: no pathLenConstraint */
    unsigned char serial[PROFILE_SERIAL_LEN];
    int64_t not_before;
    int64_t not_after;
} profile_ca_t;

/*
 * Fills *iss from a CA certificate (subject name, SKI, key type, notAfter).
 * Returns LC_OK, or LC_ERR_CONFIG with a message when the certificate has
 * no SKI or an unsupported key.  Release with profile_issuer_clear().
 */
int profile_issuer_from_cert(X509 *ca, profile_issuer_t *iss, char *err, size_t errlen);
void profile_issuer_clear(profile_issuer_t *iss);

/* The digest (NID_sha256/NID_sha384) an issuer's key signs with. */
int profile_md_nid(enum lc_key_type issuer_key);

/*
 * Encodes the leaf TBSCertificate into out (appending).  Returns LC_OK or
 * LC_ERR_NOMEM.
 */
int profile_leaf_tbs(const profile_issuer_t *iss, const profile_leaf_t *leaf, der_buf_t *out);

/*
 * Encodes a CA TBSCertificate.  For a self-signed root pass iss == NULL: the
 * issuer is the subject and the AKI is the certificate's own SKI.
 */
int profile_ca_tbs(const profile_issuer_t *iss, enum lc_key_type signer_key, const profile_ca_t *ca,
                   der_buf_t *out);

/*
 * Wraps a TBSCertificate and its signature (DER ECDSA-Sig-Value or RSA
 * PKCS#1 v1.5 block) into a Certificate.  Returns LC_OK or LC_ERR_NOMEM.
 */
int profile_assemble(enum lc_key_type issuer_key, const unsigned char *tbs, size_t tbs_len,
                     const unsigned char *sig, size_t sig_len, der_buf_t *out);

/* One CRL entry. */
typedef struct profile_crl_entry {
    unsigned char serial[64]; /* big-endian magnitude */
    size_t serial_len;
    int64_t revoked_at; /* Unix seconds */
    int reason;         /* RFC 5280 CRLReason; 0 (unspecified) is not encoded */
} profile_crl_entry_t;

/*
 * Encodes a v2 TBSCertList: issuer, thisUpdate, nextUpdate, the entries
 * (with a reasonCode extension unless unspecified) and the CRL extensions
 * AKI and CRLNumber.  Returns LC_OK or LC_ERR_NOMEM.
 */
int profile_crl_tbs(const profile_issuer_t *iss, uint64_t number, int64_t this_update,
                    int64_t next_update, const profile_crl_entry_t *entries, size_t n,
                    der_buf_t *out);

/* RFC 5280 CRLReason for a name ("keyCompromise" -> 1), or -1. */
int profile_crl_reason(const char *name);

/*
 * Draws a certificate serial of PROFILE_SERIAL_LEN bytes: the time in
 * milliseconds since 1970 in the first 6 (so the store's serial index grows
 * at its end) and 80 bits from the CSPRNG (RAND_priv_bytes, taken 32 serials
 * at a time per thread) in the other 10.  Positive with a non-zero first
 * byte, so the DER INTEGER is always 16 octets.  Returns LC_OK or
 * LC_ERR_CRYPTO.
 */
int profile_draw_serial(unsigned char serial[PROFILE_SERIAL_LEN]);

/* Writes the serial as uppercase hex (2*len+1 bytes). */
void profile_serial_hex(const unsigned char *serial, size_t len, char *out);

#endif
