/*
 * fuzz_csr.c — CSR intake and policy, as the station and the signer run it.
 *
 * Input: the bytes a device hands over as its CSR (PEM or DER).  The target
 * runs policy_decode_input and policy_csr_parse (the station's checks), then
 * policy_csr_verify with a reused policy_ctx (the signer's proof of
 * possession, the security boundary) and, for a CSR that passes, builds the
 * leaf TBSCertificate the signer would sign (profile_leaf_tbs) and wraps it.
 *
 * Beyond "no crash, leak or undefined behaviour", it checks what the rest of
 * the station relies on:
 *  - a refusal carries a refusal reason with a stable name and a printable
 *    detail (the detail goes to the audit log, the PLC log and the UI);
 *  - an accepted CSR's views lie inside the DER, its CN is a valid
 *    registration ID, its key type is set, an EC key is one point of its
 *    curve (04 x y or 02/03 x, never the point at infinity);
 *  - our parser is never more lenient than OpenSSL: a CSR that parses and
 *    verifies here also decodes with d2i_X509_REQ and verifies with
 *    X509_REQ_verify;
 *  - the certificate built from it decodes with d2i_X509 and holds exactly
 *    the CSR's SubjectPublicKeyInfo bytes and CN — nothing else is copied.
 */
#include "der.h"
#include "fuzz_util.h"
#include "policy.h"
#include "profile.h"

#include <openssl/err.h>
#include <openssl/x509.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static policy_ctx_t *g_pctx;
static profile_issuer_t g_iss; /* a fixed line CA: name, key identifier, EC P-256 */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const unsigned char oid_cn[] = {0x55, 0x04, 0x03};
    static const char ca_cn[] = "Fuzz Line 1 CA";
    der_buf_t name = {0};

    (void)argc;
    (void)argv;
    g_pctx = policy_ctx_new();
    FZ_CHECK(g_pctx != NULL, "policy_ctx_new");
    der_begin(&name, DER_SEQUENCE);
    der_begin(&name, DER_SET);
    der_begin(&name, DER_SEQUENCE);
    der_put_oid(&name, oid_cn, sizeof oid_cn);
    der_put_tlv(&name, DER_UTF8STRING, ca_cn, sizeof ca_cn - 1);
    der_end(&name);
    der_end(&name);
    der_end(&name);
    FZ_CHECK(!name.failed, "issuer name");
    g_iss.name_der = name.p; /* owned by g_iss for the life of the process */
    g_iss.name_len = name.len;
    for (size_t i = 0; i < 20; i++)
        g_iss.ski[i] = (unsigned char)(0xa0 + i);
    g_iss.ski_len = 20;
    g_iss.key_type = LC_KEY_EC_P256;
    g_iss.not_after = 2000000000; /* 2033: leaf validity is capped here */
    return 0;
}

static void check_refusal(const lc_refusal_t *why)
{
    FZ_CHECK(policy_reason_is_refusal(why->reason), "a CSR problem must be a refusal reason");
    FZ_CHECK(strcmp(policy_reason_name(why->reason), "unknown") != 0, "reason has a name");
    FZ_CHECK(memchr(why->detail, '\0', sizeof why->detail) != NULL, "detail NUL-terminated");
    FZ_CHECK(why->detail[0] != '\0', "a refusal says why");
    FZ_CHECK(fz_printable(why->detail), "refusal detail is printable ASCII");
}

static int inside(const unsigned char *p, size_t n, const unsigned char *der, size_t der_len)
{
    return p >= der && n <= der_len && (size_t)(p - der) <= der_len - n;
}

static void check_parsed(const lc_csr_t *csr, const unsigned char *der, size_t der_len)
{
    FZ_CHECK(csr->der == der && csr->der_len == der_len, "csr->der is the input");
    FZ_CHECK(inside(csr->cri, csr->cri_len, der, der_len), "CRI inside the DER");
    FZ_CHECK(inside(csr->spki, csr->spki_len, der, der_len), "SPKI inside the DER");
    FZ_CHECK(inside(csr->key_bits, csr->key_bits_len, der, der_len), "key bits inside the DER");
    FZ_CHECK(inside(csr->sig, csr->sig_len, der, der_len), "signature inside the DER");
    FZ_CHECK(policy_regid_valid(csr->cn, strlen(csr->cn)), "accepted CN is a registration ID");
    FZ_CHECK(csr->key_type != LC_KEY_NONE, "accepted CSR has a key type");
    if (csr->key_type == LC_KEY_RSA) {
        FZ_CHECK(csr->rsa_bits >= 2048 && csr->rsa_bits <= 4096, "RSA size within policy");
        FZ_CHECK(inside(csr->rsa_n, csr->rsa_n_len, der, der_len), "modulus inside the DER");
    } else {
        /*
         * One point of the curve, never the point at infinity: OpenSSL 3.0
         * verifies forged signatures against that one, so agreeing with
         * OpenSSL (below) would not catch it (README, findings).
         */
        size_t flen = csr->key_type == LC_KEY_EC_P256 ? 32 : 48;
        FZ_CHECK((csr->key_bits[0] == 0x04 && csr->key_bits_len == 1 + 2 * flen) ||
                     ((csr->key_bits[0] == 0x02 || csr->key_bits[0] == 0x03) &&
                      csr->key_bits_len == 1 + flen),
                 "accepted EC key is a point of its curve");
    }
}

/* OpenSSL must accept whatever our stricter parser accepted and verified. */
static void check_openssl_agrees(const lc_csr_t *csr)
{
    const unsigned char *p = csr->der;
    X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)csr->der_len);
    EVP_PKEY *key;

    FZ_CHECK(req != NULL, "d2i_X509_REQ accepts a CSR the policy accepted");
    FZ_CHECK(p == csr->der + csr->der_len, "d2i_X509_REQ consumed the whole CSR");
    key = X509_REQ_get0_pubkey(req);
    FZ_CHECK(key != NULL, "OpenSSL loads the key the policy loaded");
    FZ_CHECK(X509_REQ_verify(req, key) == 1, "X509_REQ_verify agrees with policy_csr_verify");
    X509_REQ_free(req);
    ERR_clear_error();
}

/* Walks a TBSCertificate to its subject SPKI with our own DER reader. */
static void check_tbs(const der_buf_t *tbs, const lc_csr_t *csr)
{
    der_cur_t c = {tbs->p, tbs->len}, in;
    der_tlv_t seq, t;

    FZ_CHECK(der_expect(&c, DER_SEQUENCE, &seq) == 0 && c.len == 0, "TBS is one SEQUENCE");
    in = der_inside(&seq);
    FZ_CHECK(der_expect(&in, DER_CTX(0), &t) == 0, "TBS version");
    FZ_CHECK(der_expect(&in, DER_INTEGER, &t) == 0, "TBS serial");
    FZ_CHECK(der_expect(&in, DER_SEQUENCE, &t) == 0, "TBS signature algorithm");
    FZ_CHECK(der_expect(&in, DER_SEQUENCE, &t) == 0, "TBS issuer");
    FZ_CHECK(t.raw_len == g_iss.name_len && memcmp(t.raw, g_iss.name_der, t.raw_len) == 0,
             "issuer is the line CA's name, byte for byte");
    FZ_CHECK(der_expect(&in, DER_SEQUENCE, &t) == 0, "TBS validity");
    FZ_CHECK(der_expect(&in, DER_SEQUENCE, &t) == 0, "TBS subject");
    FZ_CHECK(der_expect(&in, DER_SEQUENCE, &t) == 0, "TBS SPKI");
    FZ_CHECK(t.raw_len == csr->spki_len && memcmp(t.raw, csr->spki, t.raw_len) == 0,
             "the certificate's SPKI is the CSR's, byte for byte");
}

static void build_certificate(const lc_csr_t *csr, int verification)
{
    /* A syntactically valid ECDSA-Sig-Value: the HSM's signature is not under test. */
    static const unsigned char sig[] = {0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01};
    profile_leaf_t leaf;
    der_buf_t tbs = {0}, cert = {0};
    const unsigned char *p;
    X509 *x;
    char cn[POLICY_MAX_REGID + 2];

    memset(&leaf, 0, sizeof leaf);
    leaf.csr = csr;
    leaf.o = "Fuzz Factory";
    leaf.ou = verification ? NULL : "Line 1";
    for (int i = 0; i < PROFILE_SERIAL_LEN; i++)
        leaf.serial[i] = (unsigned char)(0x11 * (i + 1));
    leaf.serial[0] &= 0x7f;
    leaf.not_before = 1700000000;
    leaf.not_after = 1700000000 + 3650LL * 86400;
    leaf.verification = verification;
    FZ_CHECK(profile_leaf_tbs(&g_iss, &leaf, &tbs) == 0, "profile_leaf_tbs");
    check_tbs(&tbs, csr);
    FZ_CHECK(profile_assemble(g_iss.key_type, tbs.p, tbs.len, sig, sizeof sig, &cert) == 0,
             "profile_assemble");
    p = cert.p;
    x = d2i_X509(NULL, &p, (long)cert.len);
    FZ_CHECK(x != NULL && p == cert.p + cert.len, "OpenSSL decodes the certificate we built");
    FZ_CHECK(X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof cn) ==
                 (int)strlen(csr->cn),
             "certificate CN has the CSR CN's length");
    FZ_CHECK(strcmp(cn, csr->cn) == 0, "certificate CN is the CSR CN");
    X509_free(x);
    der_buf_free(&tbs);
    der_buf_free(&cert);
    ERR_clear_error();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char *der = NULL;
    size_t der_len = 0;
    lc_csr_t csr;
    lc_refusal_t why;

    memset(&why, 0, sizeof why);
    if (policy_decode_input(data, size, &der, &der_len, &why) != 0) {
        FZ_CHECK(der == NULL && der_len == 0, "no output on refusal");
        check_refusal(&why);
        return 0;
    }
    FZ_CHECK(der != NULL, "decoded DER");
    memset(&why, 0, sizeof why);
    if (policy_csr_parse(der, der_len, &csr, &why) != 0) {
        check_refusal(&why);
        goto out;
    }
    check_parsed(&csr, der, der_len);
    memset(&why, 0, sizeof why);
    if (policy_csr_verify(g_pctx, &csr, &why) != 0) {
        check_refusal(&why);
        FZ_CHECK(why.reason == LC_REASON_BAD_SIGNATURE || why.reason == LC_REASON_KEY_TYPE,
                 "verification refuses only for the signature or the key");
        goto out;
    }
    check_openssl_agrees(&csr);
    build_certificate(&csr, 0);
    build_certificate(&csr, 1);
out:
    free(der);
    return 0;
}
