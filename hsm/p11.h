/*
 * p11.h — the one PKCS#11 context of the signer process (libp11).
 *
 * Exactly one PKCS11_CTX per process, loaded once, shared by every key
 * (ARCHITECTURE.md: two contexts on one SoftHSM token corrupted it).  Keys
 * are named by RFC 7512 URIs, parsed with p11-kit.  When the token goes away
 * the old handles stay dead even after it returns, so recovery is
 * p11_reload(): drop every handle, unload and load the module, log in again;
 * the caller then looks its keys up again.
 */
#ifndef LINECERT_P11_H
#define LINECERT_P11_H

#include <openssl/evp.h>
#include <stddef.h>

typedef struct p11 p11_t;

/*
 * Sets SOFTHSM2_CONF (if softhsm_conf is not NULL), loads the module and
 * enumerates slots.  The PIN is read from pin_file at each login and wiped
 * right after.  Returns LC_OK, LC_ERR_HSM or LC_ERR_CONFIG.  Free with p11_free().
 */
int p11_open(const char *module, const char *softhsm_conf, const char *pin_file, p11_t **out,
             char *err, size_t errlen);

/* Unloads the module and frees everything.  p11_free(NULL) is a no-op. */
void p11_free(p11_t *p);

/*
 * Finds the key named by uri (token and object attributes), logging in to
 * its token first if needed.  want_private selects the private key object
 * (for signing) or the public one.  *pkey is a new reference the caller
 * frees with EVP_PKEY_free(), before the next p11_reload().
 * Returns LC_OK, LC_ERR_NOT_FOUND, LC_ERR_HSM or LC_ERR_CONFIG (bad URI).
 */
int p11_find_key(p11_t *p, const char *uri, int want_private, EVP_PKEY **pkey, char *err,
                 size_t errlen);

/*
 * Reloads the module from scratch (after a token loss).  Every EVP_PKEY from
 * p11_find_key() must have been freed.  Returns LC_OK or LC_ERR_HSM.
 */
int p11_reload(p11_t *p, char *err, size_t errlen);

/*
 * Signs the digest of tbs with an HSM key: ECDSA (DER signature) or RSA
 * PKCS#1 v1.5 with DigestInfo.  *sig is malloc'd (caller frees).
 * Returns LC_OK or LC_ERR_HSM.
 */
int p11_sign(EVP_PKEY *key, int md_nid, const unsigned char *tbs, size_t tbs_len,
             unsigned char **sig, size_t *sig_len, char *err, size_t errlen);

/*
 * Asks the loaded module whether any token is present (C_GetSlotList), so
 * that a token that went away is noticed without a signature.  Returns LC_OK
 * or LC_ERR_HSM.
 */
int p11_probe(p11_t *p, char *err, size_t errlen);

/* Like p11_sign() for an already computed digest (md_nid names its hash). */
int p11_sign_digest(EVP_PKEY *key, int md_nid, const unsigned char *digest, size_t dlen,
                    unsigned char **sig, size_t *sig_len, char *err, size_t errlen);

/* Reads a PIN file (first line, trailing newline stripped) into buf. Returns LC_OK or
 * LC_ERR_CONFIG. */
int p11_read_pin(const char *path, char *buf, size_t len, char *err, size_t errlen);

#endif
