/*
 * policy.h — what linecert will sign, and the stable reasons it refuses.
 *
 * The CSR policy is ARCHITECTURE invariant 4.  It is enforced twice: by the
 * station before a request crosses to the signer (cheap structural checks,
 * duplicate CN against the audit store), and by the signer, the authority,
 * which parses the CSR again and verifies its proof of possession before it
 * builds a certificate.  Both link this one implementation.
 *
 * Every refusal and every fault the station reports has a reason: a stable
 * machine-readable name (written to the audit log and printed by the CLI), a
 * stable number (the PLC's REASON register) and an English sentence (UI,
 * docs).  Numbers and names are a contract: extend, never renumber.
 */
#ifndef LINECERT_POLICY_H
#define LINECERT_POLICY_H

#include <stddef.h>

#define POLICY_MAX_INPUT 16384 /* bytes; larger input is refused unread */
#define POLICY_MAX_REGID 64

enum lc_reason {
    LC_REASON_NONE = 0,
    /* refusals: the request was bad (PLC RESULT 3) */
    LC_REASON_TOO_LARGE = 1,
    LC_REASON_MALFORMED = 2,
    LC_REASON_BAD_SIGNATURE = 3,
    LC_REASON_WEAK_HASH = 4,
    LC_REASON_SIGNATURE_ALGORITHM = 5,
    LC_REASON_KEY_TYPE = 6,
    LC_REASON_CN_MISSING = 7,
    LC_REASON_CN_MULTIPLE = 8,
    LC_REASON_CN_INVALID = 9,
    LC_REASON_CN_DUPLICATE = 10,
    LC_REASON_CN_MISMATCH = 11,
    LC_REASON_SERIAL_INVALID = 12,
    /* faults: the station could not serve a good request (PLC RESULT 4) */
    LC_REASON_HSM_UNAVAILABLE = 20,
    LC_REASON_SIGNER_UNAVAILABLE = 21,
    LC_REASON_AUDIT_UNAVAILABLE = 22,
    LC_REASON_JIG_TIMEOUT = 23,
    LC_REASON_JIG_FAILED = 24,
    LC_REASON_JIG_OUTPUT = 25,
    LC_REASON_INSTALL_FAILED = 26,
    LC_REASON_PAUSED = 27,
    LC_REASON_INTERNAL = 28,
};

/* Why a request was refused: a reason plus specifics for the audit detail. */
typedef struct lc_refusal {
    int reason;       /* enum lc_reason */
    char detail[256]; /* e.g. "RSA key of 1024 bits; 2048-4096 allowed" */
} lc_refusal_t;

enum lc_key_type {
    LC_KEY_NONE = 0,
    LC_KEY_EC_P256,
    LC_KEY_EC_P384,
    LC_KEY_RSA,
};

/*
 * A parsed CSR: views into the caller's DER buffer, which must outlive it.
 * Filled by policy_csr_parse(); nothing here is allocated.
 */
typedef struct lc_csr {
    const unsigned char *der; /* the whole CertificationRequest */
    size_t der_len;
    const unsigned char *cri; /* CertificationRequestInfo TLV: the signed bytes */
    size_t cri_len;
    const unsigned char *spki; /* SubjectPublicKeyInfo TLV, copied into the cert */
    size_t spki_len;
    const unsigned char *key_bits; /* subjectPublicKey contents (EC point / RSAPublicKey) */
    size_t key_bits_len;
    const unsigned char *sig; /* signature value (BIT STRING contents after the pad octet) */
    size_t sig_len;
    int sig_md_nid; /* NID_sha256, NID_sha384 or NID_sha512 */
    enum lc_key_type key_type;
    int rsa_bits;               /* modulus size for LC_KEY_RSA */
    const unsigned char *rsa_n; /* modulus magnitude (LC_KEY_RSA) */
    size_t rsa_n_len;
    char cn[POLICY_MAX_REGID + 1]; /* the CN, validated as a registration ID */
} lc_csr_t;

/* Per-thread verification state (cached digests and contexts). */
typedef struct policy_ctx policy_ctx_t;

/* Returns a new context, or NULL on allocation failure.  Free with policy_ctx_free(). */
policy_ctx_t *policy_ctx_new(void);
/* policy_ctx_free(NULL) is a no-op. */
void policy_ctx_free(policy_ctx_t *ctx);

/*
 * Turns CSR input as received (PEM "CERTIFICATE REQUEST" / "NEW CERTIFICATE
 * REQUEST" or raw DER) into DER.  Input larger than POLICY_MAX_INPUT is
 * refused as too-large.  On success *der is malloc'd (caller frees) and 0 is
 * returned; on refusal -1 with *why filled.
 */
int policy_decode_input(const unsigned char *in, size_t len, unsigned char **der, size_t *der_len,
                        lc_refusal_t *why);

/*
 * Parses and checks a CSR without verifying its signature: structure,
 * signature algorithm and hash strength, key type, exactly one CN that is a
 * valid registration ID.  Returns 0 with *csr filled, or -1 with *why filled.
 */
int policy_csr_parse(const unsigned char *der, size_t len, lc_csr_t *csr, lc_refusal_t *why);

/*
 * Verifies the CSR's proof of possession (its signature over the
 * CertificationRequestInfo with its own key).  ctx may be NULL (slower).
 * Returns 0 when it verifies, -1 with *why (bad-signature or key-type for a
 * key OpenSSL will not load, e.g. an EC point not on the curve).
 */
int policy_csr_verify(policy_ctx_t *ctx, const lc_csr_t *csr, lc_refusal_t *why);

/*
 * Checks a registration ID (Azure IoT DPS rules): 1–64 characters of
 * A-Za-z0-9 and - . _ :, the last one alphanumeric or '-'.  len is the byte
 * count (embedded NULs are refused).  Returns 1 if valid, 0 if not.
 */
int policy_regid_valid(const char *s, size_t len);

/* Stable name of a reason ("cn-invalid"); "unknown" for a number not in the table. */
const char *policy_reason_name(int reason);
/* Number for a reason name, or -1. */
int policy_reason_from_name(const char *name);
/* One English sentence for operators ("The CSR's common name is not a valid registration ID."). */
const char *policy_reason_text(int reason);
/* 1 if the reason is a refusal (PLC RESULT 3), 0 if a fault (RESULT 4). */
int policy_reason_is_refusal(int reason);

/* Fills *why and returns -1: the shape every refusal takes. */
int policy_refuse(lc_refusal_t *why, int reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Name of a key type for humans ("EC P-256", "RSA-2048"). */
const char *policy_key_type_name(enum lc_key_type t);

#endif
