/*
 * test_policy.c — the CSR policy (hsm/policy.c): input decoding, the strict
 * PKCS#10 parser, proof of possession, registration IDs and the reason table.
 *
 * CSRs are made in-process with OpenSSL.  The cases OpenSSL will not produce
 * (a signature algorithm that does not match the key, a non-minimal length,
 * version 1, a 4097-bit modulus...) are built by hand from DER pieces and
 * signed with EVP_DigestSign, or are byte mutations of a good CSR.  Every
 * refusal is checked by its exact reason code: the code is what the audit log,
 * the CLI and the PLC's REASON register show.
 */
#include "der.h"
#include "policy.h"
#include "testutil.h"

#include <check.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Keys generated once in main(), before Check forks a child per test. */
static EVP_PKEY *k_p256, *k_p384, *k_rsa2048;
static policy_ctx_t *pctx;    /* per test (checked fixture) */
static char last_detail[256]; /* detail of the last refusal, for failure messages */

typedef struct blob {
    unsigned char *p;
    size_t len;
} blob_t;

/* A DER piece given to csr_build(); p == NULL selects the default. */
typedef struct piece {
    const unsigned char *p;
    size_t len;
} piece_t;

typedef struct parts {
    piece_t version; /* default INTEGER 0 */
    piece_t name;    /* required */
    piece_t spki;    /* required */
    piece_t attrs;   /* default [0] {} */
    piece_t sigalg;  /* required */
} parts_t;

static const unsigned char VERSION_0[] = {0x02, 0x01, 0x00};
static const unsigned char NO_ATTRS[] = {0xa0, 0x00};
static const unsigned char ALG_ECDSA_SHA256[] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86,
                                                 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};
static const unsigned char ALG_ECDSA_SHA256_NULL[] = {0x30, 0x0c, 0x06, 0x08, 0x2a, 0x86, 0x48,
                                                      0xce, 0x3d, 0x04, 0x03, 0x02, 0x05, 0x00};
static const unsigned char ALG_RSA_SHA256[] = {0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                               0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00};
static const unsigned char ALG_RSA_SHA256_NOPARAM[] = {0x30, 0x0b, 0x06, 0x09, 0x2a, 0x86, 0x48,
                                                       0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b};
/* sha256WithRSAEncryption with an OID where NULL belongs */
static const unsigned char ALG_RSA_SHA256_BADPARAM[] = {0x30, 0x10, 0x06, 0x09, 0x2a, 0x86,
                                                        0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01,
                                                        0x0b, 0x06, 0x03, 0x55, 0x04, 0x03};
static const unsigned char ALG_ECDSA_SHA384[] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86,
                                                 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03};
/* id-dsa-with-sha256 (2.16.840.1.101.3.4.3.2): recognised by nobody here */
static const unsigned char ALG_DSA_SHA256[] = {0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48,
                                               0x01, 0x65, 0x03, 0x04, 0x03, 0x02};

#define ck_assert_reason(got, want)                                                                \
    do {                                                                                           \
        int got_ = (got), want_ = (want);                                                          \
        ck_assert_msg(got_ == want_, "reason %d %s (\"%s\"), expected %d %s", got_,                \
                      policy_reason_name(got_), last_detail, want_, policy_reason_name(want_));    \
    } while (0)

static void blob_free(blob_t *b)
{
    free(b->p);
    b->p = NULL;
    b->len = 0;
}

static blob_t blob_dup(const void *p, size_t len)
{
    blob_t b = {malloc(len > 0 ? len : 1), len};
    ck_assert_ptr_nonnull(b.p);
    if (len > 0)
        memcpy(b.p, p, len);
    return b;
}

static piece_t piece(const blob_t *b)
{
    piece_t pc = {b->p, b->len};
    return pc;
}

#define PIECE(arr) ((piece_t){(arr), sizeof(arr)})

/* ---- keys ---- */

static EVP_PKEY *key_ec(const char *curve)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
    ck_assert_msg(k != NULL, "cannot generate an EC %s key", curve);
    return k;
}

static EVP_PKEY *key_rsa(unsigned bits)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
    ck_assert_msg(k != NULL, "cannot generate an RSA-%u key", bits);
    return k;
}

static EVP_PKEY *key_rsa_exp(unsigned bits, unsigned long e)
{
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    BIGNUM *bn = BN_new();
    EVP_PKEY *k = NULL;

    ck_assert(pc != NULL && bn != NULL && BN_set_word(bn, e) == 1);
    ck_assert_int_eq(EVP_PKEY_keygen_init(pc), 1);
    ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_keygen_bits(pc, (int)bits), 1);
    ck_assert_int_eq(EVP_PKEY_CTX_set1_rsa_keygen_pubexp(pc, bn), 1);
    ck_assert_int_eq(EVP_PKEY_generate(pc, &k), 1);
    BN_free(bn);
    EVP_PKEY_CTX_free(pc);
    return k;
}

/* ---- DER of OpenSSL objects ---- */

static blob_t spki_der(EVP_PKEY *k)
{
    blob_t b = {NULL, 0};
    int n = i2d_PUBKEY(k, &b.p);
    ck_assert_int_gt(n, 0);
    b.len = (size_t)n;
    return b;
}

static blob_t name_der(const X509_NAME *name)
{
    blob_t b = {NULL, 0};
    int n = i2d_X509_NAME(name, &b.p);
    ck_assert_int_gt(n, 0);
    b.len = (size_t)n;
    return b;
}

static blob_t req_der(const X509_REQ *req)
{
    blob_t b = {NULL, 0};
    int n = i2d_X509_REQ(req, &b.p);
    ck_assert_int_gt(n, 0);
    b.len = (size_t)n;
    return b;
}

/* Appends an attribute with an explicit ASN.1 string type (no OpenSSL length rules). */
static void name_add_typed(X509_NAME *n, const char *field, int type, const void *val, int len,
                           int set)
{
    ck_assert_int_eq(X509_NAME_add_entry_by_txt(n, field, type, val, len, -1, set), 1);
}

static void name_add(X509_NAME *n, const char *field, const char *val)
{
    name_add_typed(n, field, MBSTRING_ASC, val, -1, 0);
}

/* A CSR over `name` signed by key with md (NULL for EdDSA); exts may be NULL. */
static blob_t csr_make(EVP_PKEY *key, const EVP_MD *md, const X509_NAME *name,
                       STACK_OF(X509_EXTENSION) * exts)
{
    X509_REQ *req = X509_REQ_new();
    blob_t b;

    ck_assert_ptr_nonnull(req);
    ck_assert_int_eq(X509_REQ_set_version(req, 0), 1);
    ck_assert_int_eq(X509_REQ_set_subject_name(req, name), 1);
    ck_assert_int_eq(X509_REQ_set_pubkey(req, key), 1);
    if (exts != NULL)
        ck_assert_int_eq(X509_REQ_add_extensions(req, exts), 1);
    ck_assert_int_gt(X509_REQ_sign(req, key, md), 0);
    b = req_der(req);
    X509_REQ_free(req);
    return b;
}

/* The usual CSR: O=Contoso Plant 7, CN=cn. */
static blob_t csr_cn(EVP_PKEY *key, const EVP_MD *md, const char *cn)
{
    X509_NAME *n = X509_NAME_new();
    blob_t b;

    ck_assert_ptr_nonnull(n);
    name_add(n, "O", "Contoso Plant 7");
    name_add(n, "CN", cn);
    b = csr_make(key, md, n, NULL);
    X509_NAME_free(n);
    return b;
}

/* A CSR whose subject is only the given name (ownership of n stays with the caller). */
static blob_t csr_name(EVP_PKEY *key, const X509_NAME *n)
{
    return csr_make(key, EVP_sha256(), n, NULL);
}

static blob_t sign_bytes(EVP_PKEY *key, const EVP_MD *md, const unsigned char *p, size_t len)
{
    EVP_MD_CTX *mc = EVP_MD_CTX_new();
    blob_t b = {NULL, 0};
    size_t n = 0;

    ck_assert_ptr_nonnull(mc);
    ck_assert_int_eq(EVP_DigestSignInit(mc, NULL, md, NULL, key), 1);
    ck_assert_int_eq(EVP_DigestSign(mc, NULL, &n, p, len), 1);
    b.p = malloc(n);
    ck_assert_ptr_nonnull(b.p);
    ck_assert_int_eq(EVP_DigestSign(mc, b.p, &n, p, len), 1);
    b.len = n;
    EVP_MD_CTX_free(mc);
    return b;
}

/*
 * Builds a CertificationRequest from raw pieces; the CRI is signed with
 * signer/md whatever the pieces say, so mismatches can be made on purpose.
 */
static blob_t csr_build(const parts_t *pp, EVP_PKEY *signer, const EVP_MD *md)
{
    der_buf_t cri = {0}, out = {0};
    piece_t v = pp->version.p ? pp->version : PIECE(VERSION_0);
    piece_t a = pp->attrs.p ? pp->attrs : PIECE(NO_ATTRS);
    blob_t sig, b;

    der_begin(&cri, DER_SEQUENCE);
    der_put_raw(&cri, v.p, v.len);
    der_put_raw(&cri, pp->name.p, pp->name.len);
    der_put_raw(&cri, pp->spki.p, pp->spki.len);
    der_put_raw(&cri, a.p, a.len);
    der_end(&cri);
    ck_assert_int_eq(cri.failed, 0);
    sig = sign_bytes(signer, md, cri.p, cri.len);
    der_begin(&out, DER_SEQUENCE);
    der_put_raw(&out, cri.p, cri.len);
    der_put_raw(&out, pp->sigalg.p, pp->sigalg.len);
    der_put_bits(&out, sig.p, sig.len);
    der_end(&out);
    ck_assert_int_eq(out.failed, 0);
    b.p = out.p; /* take the buffer over */
    b.len = out.len;
    der_buf_free(&cri);
    blob_free(&sig);
    return b;
}

/* Name "O=Contoso Plant 7, CN=cn" as DER. */
static blob_t std_name(const char *cn)
{
    X509_NAME *n = X509_NAME_new();
    blob_t b;

    name_add(n, "O", "Contoso Plant 7");
    name_add(n, "CN", cn);
    b = name_der(n);
    X509_NAME_free(n);
    return b;
}

/* A hand-built CSR for key with the standard name and the given sigalg. */
static blob_t csr_build_std(EVP_PKEY *key, const EVP_MD *md, piece_t sigalg)
{
    blob_t name = std_name("dev-0001"), spki = spki_der(key), b;
    parts_t pp = {.name = piece(&name), .spki = piece(&spki), .sigalg = sigalg};

    b = csr_build(&pp, key, md);
    blob_free(&name);
    blob_free(&spki);
    return b;
}

/* An RSA SubjectPublicKeyInfo from a modulus given as raw INTEGER contents and an exponent. */
static blob_t rsa_spki_raw(const unsigned char *n_contents, size_t n_len, const unsigned char *e,
                           size_t e_len)
{
    static const unsigned char alg[] = {0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                        0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00};
    der_buf_t key = {0}, out = {0};
    blob_t b;

    der_begin(&key, DER_SEQUENCE);
    der_put_tlv(&key, DER_INTEGER, n_contents, n_len);
    der_put_tlv(&key, DER_INTEGER, e, e_len);
    der_end(&key);
    der_begin(&out, DER_SEQUENCE);
    der_put_raw(&out, alg, sizeof alg);
    der_put_bits(&out, key.p, key.len);
    der_end(&out);
    ck_assert(!key.failed && !out.failed);
    b.p = out.p;
    b.len = out.len;
    der_buf_free(&key);
    return b;
}

/* A random odd modulus of exactly `bits` bits, as minimal INTEGER contents, e = 65537. */
static blob_t rsa_spki_synthetic(int bits)
{
    static const unsigned char e65537[] = {0x01, 0x00, 0x01};
    size_t nbytes = ((size_t)bits + 7) / 8;
    unsigned char *n = malloc(nbytes + 1);
    int top = (bits - 1) % 8; /* bit index of the top bit in n[1] */
    blob_t b;

    ck_assert_ptr_nonnull(n);
    n[0] = 0;
    ck_assert_int_eq(RAND_bytes(n + 1, (int)nbytes), 1);
    n[1] &= (unsigned char)((1u << (top + 1)) - 1);
    n[1] |= (unsigned char)(1u << top);
    n[nbytes] |= 1;
    /* a leading 0x00 only when the top bit of the first octet is set */
    if (n[1] & 0x80)
        b = rsa_spki_raw(n, nbytes + 1, e65537, sizeof e65537);
    else
        b = rsa_spki_raw(n + 1, nbytes, e65537, sizeof e65537);
    free(n);
    return b;
}

/* ---- running the policy ---- */

/* policy_csr_parse; returns 0 or the refusal reason. csr may be NULL. */
static int parse_reason(const blob_t *b, lc_csr_t *csr)
{
    lc_csr_t local;
    lc_refusal_t why;
    int rc;

    memset(&why, 0, sizeof why);
    rc = policy_csr_parse(b->p, b->len, csr != NULL ? csr : &local, &why);
    snprintf(last_detail, sizeof last_detail, "%s", why.detail);
    if (rc == 0)
        return 0;
    ck_assert_int_eq(rc, -1);
    ck_assert_msg(why.detail[0] != '\0', "refusal %d has no detail", why.reason);
    return why.reason;
}

static int verify_reason(policy_ctx_t *ctx, const lc_csr_t *csr)
{
    lc_refusal_t why;
    int rc;

    memset(&why, 0, sizeof why);
    rc = policy_csr_verify(ctx, csr, &why);
    snprintf(last_detail, sizeof last_detail, "%s", why.detail);
    if (rc == 0)
        return 0;
    ck_assert_int_eq(rc, -1);
    return why.reason;
}

/* Parse, then verify: 0 or the first refusal. */
static int check_reason(const blob_t *b)
{
    lc_csr_t csr;
    int r = parse_reason(b, &csr);
    return r != 0 ? r : verify_reason(pctx, &csr);
}

static int decode_reason(const void *in, size_t len, blob_t *out)
{
    static unsigned char sentinel;
    lc_refusal_t why;
    unsigned char *der = &sentinel; /* must be reset by the call */
    size_t der_len = 99;
    int rc;

    memset(&why, 0, sizeof why);
    rc = policy_decode_input(in, len, &der, &der_len, &why);
    snprintf(last_detail, sizeof last_detail, "%s", why.detail);
    if (rc == 0) {
        ck_assert_ptr_nonnull(der);
        if (out != NULL) {
            out->p = der;
            out->len = der_len;
        } else {
            free(der);
        }
        return 0;
    }
    ck_assert_int_eq(rc, -1);
    ck_assert_ptr_null(der);
    ck_assert_uint_eq(der_len, 0);
    return why.reason;
}

/* Offset of needle in b (which must contain it once at least). */
static size_t find(const blob_t *b, const void *needle, size_t nlen)
{
    const unsigned char *hit = memmem(b->p, b->len, needle, nlen);
    ck_assert_ptr_nonnull(hit);
    return (size_t)(hit - b->p);
}

static void setup(void)
{
    pctx = policy_ctx_new();
    ck_assert_ptr_nonnull(pctx);
    last_detail[0] = '\0';
}

static void teardown(void)
{
    policy_ctx_free(pctx);
    pctx = NULL;
}

/* ================= valid CSRs ================= */

START_TEST(test_valid_ec_p256)
{
    blob_t b = csr_cn(k_p256, EVP_sha256(), "dev-0001"), spki = spki_der(k_p256);
    lc_csr_t csr;

    ck_assert_reason(parse_reason(&b, &csr), 0);
    ck_assert_reason(verify_reason(pctx, &csr), 0);
    ck_assert_str_eq(csr.cn, "dev-0001");
    ck_assert_int_eq(csr.key_type, LC_KEY_EC_P256);
    ck_assert_int_eq(csr.sig_md_nid, NID_sha256);
    ck_assert_int_eq(csr.rsa_bits, 0);
    ck_assert_uint_eq(csr.key_bits_len, 65);
    ck_assert_uint_eq(csr.key_bits[0], 0x04);
    ck_assert_ptr_eq(csr.der, b.p);
    ck_assert_uint_eq(csr.der_len, b.len);
    ck_assert_uint_eq(csr.spki_len, spki.len);
    ck_assert_mem_eq(csr.spki, spki.p, spki.len);
    blob_free(&spki);
    blob_free(&b);
}
END_TEST

START_TEST(test_valid_ec_p384)
{
    blob_t b = csr_cn(k_p384, EVP_sha384(), "dev-0002");
    lc_csr_t csr;

    ck_assert_reason(parse_reason(&b, &csr), 0);
    ck_assert_reason(verify_reason(pctx, &csr), 0);
    ck_assert_str_eq(csr.cn, "dev-0002");
    ck_assert_int_eq(csr.key_type, LC_KEY_EC_P384);
    ck_assert_int_eq(csr.sig_md_nid, NID_sha384);
    ck_assert_uint_eq(csr.key_bits_len, 97);
    blob_free(&b);
}
END_TEST

static void check_valid_rsa(EVP_PKEY *k, int bits)
{
    blob_t b = csr_cn(k, EVP_sha256(), "rsa-device_01");
    lc_csr_t csr;

    ck_assert_reason(parse_reason(&b, &csr), 0);
    ck_assert_reason(verify_reason(pctx, &csr), 0);
    ck_assert_str_eq(csr.cn, "rsa-device_01");
    ck_assert_int_eq(csr.key_type, LC_KEY_RSA);
    ck_assert_int_eq(csr.rsa_bits, bits);
    ck_assert_uint_eq(csr.rsa_n_len, (size_t)bits / 8);
    ck_assert_int_eq(csr.sig_md_nid, NID_sha256);
    blob_free(&b);
}

START_TEST(test_valid_rsa_2048)
{
    check_valid_rsa(k_rsa2048, 2048);
}
END_TEST

START_TEST(test_valid_rsa_3072)
{
    EVP_PKEY *k = key_rsa(3072);
    check_valid_rsa(k, 3072);
    EVP_PKEY_free(k);
}
END_TEST

START_TEST(test_valid_rsa_4096)
{
    EVP_PKEY *k = key_rsa(4096);
    check_valid_rsa(k, 4096);
    EVP_PKEY_free(k);
}
END_TEST

START_TEST(test_valid_sha512_and_sha384_on_p256)
{
    blob_t b512 = csr_cn(k_p256, EVP_sha512(), "dev-512"),
           b384 = csr_cn(k_p256, EVP_sha384(), "dev-384");
    lc_csr_t csr;

    ck_assert_reason(parse_reason(&b512, &csr), 0);
    ck_assert_int_eq(csr.sig_md_nid, NID_sha512);
    ck_assert_reason(verify_reason(pctx, &csr), 0);
    ck_assert_reason(parse_reason(&b384, &csr), 0);
    ck_assert_int_eq(csr.sig_md_nid, NID_sha384);
    ck_assert_reason(verify_reason(pctx, &csr), 0);
    blob_free(&b512);
    blob_free(&b384);
}
END_TEST

START_TEST(test_valid_rsa_sha512)
{
    blob_t b = csr_cn(k_rsa2048, EVP_sha512(), "dev-512");
    lc_csr_t csr;

    ck_assert_reason(parse_reason(&b, &csr), 0);
    ck_assert_int_eq(csr.sig_md_nid, NID_sha512);
    ck_assert_reason(verify_reason(pctx, &csr), 0);
    blob_free(&b);
}
END_TEST

START_TEST(test_verify_without_ctx)
{
    blob_t b = csr_cn(k_p256, EVP_sha256(), "dev-0001");
    lc_csr_t csr;

    ck_assert_reason(parse_reason(&b, &csr), 0);
    ck_assert_reason(verify_reason(NULL, &csr), 0);
    blob_free(&b);
}
END_TEST

START_TEST(test_verify_ctx_reused_across_key_types)
{
    blob_t b[4] = {csr_cn(k_p256, EVP_sha256(), "a1"), csr_cn(k_rsa2048, EVP_sha256(), "a2"),
                   csr_cn(k_p384, EVP_sha384(), "a3"), csr_cn(k_p256, EVP_sha256(), "a4")};
    lc_csr_t csr;

    for (int i = 0; i < 4; i++) {
        ck_assert_reason(parse_reason(&b[i], &csr), 0);
        ck_assert_reason(verify_reason(pctx, &csr), 0);
        blob_free(&b[i]);
    }
}
END_TEST

START_TEST(test_valid_cn_printable_and_ia5)
{
    X509_NAME *np = X509_NAME_new(), *ni = X509_NAME_new();
    blob_t bp, bi;
    lc_csr_t csr;

    name_add_typed(np, "CN", V_ASN1_PRINTABLESTRING, "Dev-77", -1, 0);
    name_add_typed(ni, "CN", V_ASN1_IA5STRING, "dev_77:a.b", -1, 0);
    bp = csr_name(k_p256, np);
    bi = csr_name(k_p256, ni);
    ck_assert_reason(parse_reason(&bp, &csr), 0);
    ck_assert_str_eq(csr.cn, "Dev-77");
    ck_assert_reason(parse_reason(&bi, &csr), 0);
    ck_assert_str_eq(csr.cn, "dev_77:a.b");
    blob_free(&bp);
    blob_free(&bi);
    X509_NAME_free(np);
    X509_NAME_free(ni);
}
END_TEST

START_TEST(test_valid_cn_64_chars)
{
    char cn[65];
    blob_t b;
    lc_csr_t csr;

    memset(cn, 'x', 64);
    cn[63] = '9';
    cn[64] = '\0';
    b = csr_cn(k_p256, EVP_sha256(), cn);
    ck_assert_reason(check_reason(&b), 0);
    ck_assert_reason(parse_reason(&b, &csr), 0);
    ck_assert_str_eq(csr.cn, cn);
    blob_free(&b);
}
END_TEST

START_TEST(test_valid_cn_in_multivalued_rdn)
{
    X509_NAME *n = X509_NAME_new();
    blob_t b;
    lc_csr_t csr;

    name_add(n, "O", "Contoso");
    name_add_typed(n, "CN", MBSTRING_ASC, "dev-mv", -1, -1); /* joins the O's RDN */
    ck_assert_int_eq(X509_NAME_entry_count(n), 2);
    b = csr_name(k_p256, n);
    ck_assert_reason(check_reason(&b), 0);
    ck_assert_reason(parse_reason(&b, &csr), 0);
    ck_assert_str_eq(csr.cn, "dev-mv");
    blob_free(&b);
    X509_NAME_free(n);
}
END_TEST

START_TEST(test_valid_handbuilt_rsa_sigalg_without_null)
{
    /* RFC 4055 lets the NULL parameters be absent */
    blob_t b = csr_build_std(k_rsa2048, EVP_sha256(), PIECE(ALG_RSA_SHA256_NOPARAM));
    ck_assert_reason(check_reason(&b), 0);
    blob_free(&b);
}
END_TEST

START_TEST(test_requested_extensions_are_ignored)
{
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    X509_NAME *n = X509_NAME_new();
    X509_EXTENSION *e1, *e2, *e3;
    blob_t b;
    lc_csr_t csr;

    e1 = X509V3_EXT_nconf_nid(NULL, NULL, NID_basic_constraints, "critical,CA:TRUE");
    e2 = X509V3_EXT_nconf_nid(NULL, NULL, NID_subject_alt_name, "DNS:evil.example,IP:10.0.0.1");
    e3 = X509V3_EXT_nconf_nid(NULL, NULL, NID_key_usage, "critical,keyCertSign,cRLSign");
    ck_assert(e1 != NULL && e2 != NULL && e3 != NULL);
    sk_X509_EXTENSION_push(exts, e1);
    sk_X509_EXTENSION_push(exts, e2);
    sk_X509_EXTENSION_push(exts, e3);
    name_add(n, "CN", "dev-ext");
    b = csr_make(k_p256, EVP_sha256(), n, exts);
    ck_assert_reason(parse_reason(&b, &csr), 0);
    ck_assert_reason(verify_reason(pctx, &csr), 0);
    ck_assert_str_eq(csr.cn, "dev-ext");
    ck_assert_int_eq(csr.key_type, LC_KEY_EC_P256);
    blob_free(&b);
    X509_NAME_free(n);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
}
END_TEST

START_TEST(test_challenge_password_attribute_is_ignored)
{
    X509_REQ *req = X509_REQ_new();
    blob_t b;
    lc_csr_t csr;

    name_add(X509_REQ_get_subject_name(req), "CN", "dev-pw");
    ck_assert_int_eq(X509_REQ_set_pubkey(req, k_p256), 1);
    ck_assert_int_eq(X509_REQ_add1_attr_by_NID(req, NID_pkcs9_challengePassword, MBSTRING_ASC,
                                               (const unsigned char *)"secret", -1),
                     1);
    ck_assert_int_gt(X509_REQ_sign(req, k_p256, EVP_sha256()), 0);
    b = req_der(req);
    ck_assert_reason(parse_reason(&b, &csr), 0);
    ck_assert_reason(verify_reason(pctx, &csr), 0);
    ck_assert_str_eq(csr.cn, "dev-pw");
    blob_free(&b);
    X509_REQ_free(req);
}
END_TEST

/* ================= input decoding ================= */

START_TEST(test_too_large_input)
{
    unsigned char *in = malloc(POLICY_MAX_INPUT + 1);

    ck_assert_ptr_nonnull(in);
    memset(in, 0x30, POLICY_MAX_INPUT + 1);
    ck_assert_reason(decode_reason(in, POLICY_MAX_INPUT + 1, NULL), LC_REASON_TOO_LARGE);
    free(in);
}
END_TEST

START_TEST(test_max_size_garbage_is_malformed_not_too_large)
{
    unsigned char *in = malloc(POLICY_MAX_INPUT);
    blob_t der = {NULL, 0};

    ck_assert_ptr_nonnull(in);
    for (size_t i = 0; i < POLICY_MAX_INPUT; i++)
        in[i] = (unsigned char)(0xa5 ^ (i * 7));
    ck_assert_reason(decode_reason(in, POLICY_MAX_INPUT, &der), 0);
    ck_assert_uint_eq(der.len, POLICY_MAX_INPUT);
    ck_assert_reason(parse_reason(&der, NULL), LC_REASON_MALFORMED);
    blob_free(&der);
    free(in);
}
END_TEST

START_TEST(test_parse_refuses_oversize_der)
{
    blob_t big = {calloc(1, POLICY_MAX_INPUT + 1), POLICY_MAX_INPUT + 1};

    ck_assert_ptr_nonnull(big.p);
    ck_assert_reason(parse_reason(&big, NULL), LC_REASON_TOO_LARGE);
    blob_free(&big);
}
END_TEST

START_TEST(test_empty_input_is_malformed)
{
    static const unsigned char nothing[1] = {0};
    ck_assert_reason(decode_reason(nothing, 0, NULL), LC_REASON_MALFORMED);
}
END_TEST

START_TEST(test_der_input_passes_unchanged)
{
    blob_t b = csr_cn(k_p256, EVP_sha256(), "dev-der"), out = {NULL, 0};

    ck_assert_reason(decode_reason(b.p, b.len, &out), 0);
    ck_assert_uint_eq(out.len, b.len);
    ck_assert_mem_eq(out.p, b.p, b.len);
    ck_assert_ptr_ne(out.p, b.p);
    blob_free(&out);
    blob_free(&b);
}
END_TEST

/* PEM-encodes der under `label` with optional headers; returns a NUL-terminated blob. */
static blob_t pem_of(const char *label, const char *header, const blob_t *der, const char *prefix)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *mem = NULL;
    long n;
    blob_t b;

    ck_assert_ptr_nonnull(bio);
    if (prefix != NULL)
        ck_assert_int_gt(BIO_puts(bio, prefix), 0);
    ck_assert_int_gt(PEM_write_bio(bio, label, header ? header : "", der->p, (long)der->len), 0);
    n = BIO_get_mem_data(bio, &mem);
    ck_assert_int_gt(n, 0);
    b = blob_dup(mem, (size_t)n);
    BIO_free(bio);
    return b;
}

static void check_pem_label(const char *label)
{
    blob_t b = csr_cn(k_p256, EVP_sha256(), "dev-pem"), pem = pem_of(label, NULL, &b, NULL);
    blob_t out = {NULL, 0};

    ck_assert_reason(decode_reason(pem.p, pem.len, &out), 0);
    ck_assert_uint_eq(out.len, b.len);
    ck_assert_mem_eq(out.p, b.p, b.len);
    blob_free(&out);
    blob_free(&pem);
    blob_free(&b);
}

START_TEST(test_pem_certificate_request)
{
    check_pem_label("CERTIFICATE REQUEST");
}
END_TEST

START_TEST(test_pem_new_certificate_request)
{
    check_pem_label("NEW CERTIFICATE REQUEST");
}
END_TEST

START_TEST(test_pem_after_leading_text)
{
    /* what `openssl req -text` writes: a dump, then the PEM block */
    blob_t b = csr_cn(k_p256, EVP_sha256(), "dev-pem"),
           pem = pem_of("CERTIFICATE REQUEST", NULL, &b, "Certificate Request:\n    Data:\n");
    blob_t out = {NULL, 0};

    ck_assert_reason(decode_reason(pem.p, pem.len, &out), 0);
    ck_assert_uint_eq(out.len, b.len);
    ck_assert_mem_eq(out.p, b.p, b.len);
    blob_free(&out);
    blob_free(&pem);
    blob_free(&b);
}
END_TEST

START_TEST(test_pem_after_leading_text_starting_with_zero)
{
    /* '0' is 0x30, the first octet of DER: the text before the block must not fool intake */
    blob_t b = csr_cn(k_p256, EVP_sha256(), "dev-pem"),
           pem = pem_of("CERTIFICATE REQUEST", NULL, &b, "0042 dev-pem\n");
    blob_t out = {NULL, 0};

    ck_assert_reason(decode_reason(pem.p, pem.len, &out), 0);
    ck_assert_uint_eq(out.len, b.len);
    ck_assert_mem_eq(out.p, b.p, b.len);
    blob_free(&out);
    blob_free(&pem);
    blob_free(&b);
}
END_TEST

START_TEST(test_pem_certificate_label_is_malformed)
{
    blob_t b = csr_cn(k_p256, EVP_sha256(), "dev-pem"), pem = pem_of("CERTIFICATE", NULL, &b, NULL);

    ck_assert_reason(decode_reason(pem.p, pem.len, NULL), LC_REASON_MALFORMED);
    blob_free(&pem);
    blob_free(&b);
}
END_TEST

START_TEST(test_pem_with_encryption_headers_is_malformed)
{
    blob_t b = csr_cn(k_p256, EVP_sha256(), "dev-pem");
    blob_t pem = pem_of("CERTIFICATE REQUEST",
                        "Proc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,"
                        "00112233445566778899AABBCCDDEEFF\n",
                        &b, NULL);

    ck_assert_reason(decode_reason(pem.p, pem.len, NULL), LC_REASON_MALFORMED);
    blob_free(&pem);
    blob_free(&b);
}
END_TEST

START_TEST(test_pem_with_bad_base64_is_malformed)
{
    static const char pem[] = "-----BEGIN CERTIFICATE REQUEST-----\n"
                              "!!!! not base64 !!!!\n"
                              "-----END CERTIFICATE REQUEST-----\n";
    ck_assert_reason(decode_reason(pem, sizeof pem - 1, NULL), LC_REASON_MALFORMED);
}
END_TEST

START_TEST(test_der_containing_pem_marker_is_not_pem)
{
    /* "-----BEGIN-1" is a valid registration ID; its DER CSR is still DER */
    blob_t b = csr_cn(k_p256, EVP_sha256(), "-----BEGIN-1"), out = {NULL, 0};

    ck_assert_reason(check_reason(&b), 0);
    ck_assert_reason(decode_reason(b.p, b.len, &out), 0);
    ck_assert_uint_eq(out.len, b.len);
    ck_assert_mem_eq(out.p, b.p, b.len);
    blob_free(&out);
    blob_free(&b);
}
END_TEST

/* ================= malformed ================= */

START_TEST(test_random_bytes_are_malformed)
{
    for (int i = 0; i < 300; i++) {
        unsigned char len_b[2];
        size_t len;
        blob_t b;

        ck_assert_int_eq(RAND_bytes(len_b, 2), 1);
        len = 1 + ((size_t)len_b[0] << 8 | len_b[1]) % 3000;
        b.p = malloc(len);
        b.len = len;
        ck_assert_ptr_nonnull(b.p);
        ck_assert_int_eq(RAND_bytes(b.p, (int)len), 1);
        if (i % 2 == 1 && len > 4) { /* a plausible outer header, random inside */
            b.p[0] = 0x30;
            b.p[1] = 0x82;
            b.p[2] = (unsigned char)((len - 4) >> 8);
            b.p[3] = (unsigned char)(len - 4);
        }
        ck_assert_reason(parse_reason(&b, NULL), LC_REASON_MALFORMED);
        blob_free(&b);
    }
}
END_TEST

static void check_every_prefix(EVP_PKEY *k)
{
    blob_t b = csr_cn(k, EVP_sha256(), "dev-prefix");

    ck_assert_reason(parse_reason(&b, NULL), 0);
    for (size_t n = 0; n < b.len; n++) {
        blob_t pre = blob_dup(b.p, n); /* exact-size copy: ASan sees any overread */
        int r = parse_reason(&pre, NULL);
        ck_assert_msg(r == LC_REASON_MALFORMED, "prefix of %zu/%zu bytes: reason %s (%s)", n, b.len,
                      policy_reason_name(r), last_detail);
        blob_free(&pre);
    }
    blob_free(&b);
}

START_TEST(test_every_prefix_is_malformed_ec)
{
    check_every_prefix(k_p256);
}
END_TEST

START_TEST(test_every_prefix_is_malformed_rsa)
{
    check_every_prefix(k_rsa2048);
}
END_TEST

START_TEST(test_trailing_garbage_is_malformed)
{
    blob_t b = csr_cn(k_p256, EVP_sha256(), "dev-1"), t1, t2;

    t1.len = b.len + 1; /* one zero octet after the CSR */
    t1.p = calloc(1, t1.len);
    t2.len = b.len * 2; /* a second whole CSR after the first */
    t2.p = malloc(t2.len);
    ck_assert(t1.p != NULL && t2.p != NULL);
    memcpy(t1.p, b.p, b.len);
    memcpy(t2.p, b.p, b.len);
    memcpy(t2.p + b.len, b.p, b.len);
    ck_assert_reason(parse_reason(&t1, NULL), LC_REASON_MALFORMED);
    ck_assert_reason(parse_reason(&t2, NULL), LC_REASON_MALFORMED);
    blob_free(&t1);
    blob_free(&t2);
    blob_free(&b);
}
END_TEST

/* The outer header length of a CSR and its content length. */
static void outer_header(const blob_t *b, size_t *hdr, size_t *body)
{
    der_cur_t c = {b->p, b->len};
    der_tlv_t t;

    ck_assert_int_eq(der_next(&c, &t), 0);
    *hdr = t.raw_len - t.val_len;
    *body = t.val_len;
}

START_TEST(test_indefinite_length_is_malformed)
{
    blob_t b = csr_cn(k_rsa2048, EVP_sha256(), "dev-1"), m;
    size_t hdr, body;

    outer_header(&b, &hdr, &body);
    m.len = 2 + body + 2;
    m.p = malloc(m.len);
    m.p[0] = 0x30;
    m.p[1] = 0x80;
    memcpy(m.p + 2, b.p + hdr, body);
    m.p[2 + body] = 0x00;
    m.p[3 + body] = 0x00;
    ck_assert_reason(parse_reason(&m, NULL), LC_REASON_MALFORMED);
    blob_free(&m);
    blob_free(&b);
}
END_TEST

START_TEST(test_non_minimal_outer_length_is_malformed)
{
    blob_t b = csr_cn(k_rsa2048, EVP_sha256(), "dev-1"), m;
    size_t hdr, body;

    outer_header(&b, &hdr, &body);
    ck_assert_uint_eq(hdr, 4); /* 30 82 hi lo */
    m.len = 5 + body;
    m.p = malloc(m.len);
    m.p[0] = 0x30;
    m.p[1] = 0x83; /* 30 83 00 hi lo: a leading zero length octet */
    m.p[2] = 0x00;
    m.p[3] = (unsigned char)(body >> 8);
    m.p[4] = (unsigned char)body;
    memcpy(m.p + 5, b.p + hdr, body);
    ck_assert_reason(parse_reason(&m, NULL), LC_REASON_MALFORMED);
    blob_free(&m);
    blob_free(&b);
}
END_TEST

START_TEST(test_long_form_short_length_is_malformed)
{
    static const unsigned char v_long[] = {0x02, 0x81, 0x01, 0x00}; /* INTEGER 0, length 81 01 */
    blob_t name = std_name("dev-1"), spki = spki_der(k_p256), b;
    parts_t pp = {.version = PIECE(v_long),
                  .name = piece(&name),
                  .spki = piece(&spki),
                  .sigalg = PIECE(ALG_ECDSA_SHA256)};

    b = csr_build(&pp, k_p256, EVP_sha256());
    ck_assert_reason(parse_reason(&b, NULL), LC_REASON_MALFORMED);
    blob_free(&b);
    blob_free(&name);
    blob_free(&spki);
}
END_TEST

START_TEST(test_version_1_is_malformed)
{
    static const unsigned char v1[] = {0x02, 0x01, 0x01};
    blob_t name = std_name("dev-1"), spki = spki_der(k_p256), b;
    parts_t pp = {.version = PIECE(v1),
                  .name = piece(&name),
                  .spki = piece(&spki),
                  .sigalg = PIECE(ALG_ECDSA_SHA256)};

    b = csr_build(&pp, k_p256, EVP_sha256());
    ck_assert_reason(parse_reason(&b, NULL), LC_REASON_MALFORMED);
    blob_free(&b);
    blob_free(&name);
    blob_free(&spki);
}
END_TEST

START_TEST(test_bad_attributes_are_malformed)
{
    static const unsigned char wrong_tag[] = {0xa1, 0x00};
    static const unsigned char extra[] = {0xa0, 0x00, 0x05, 0x00};
    blob_t name = std_name("dev-1"), spki = spki_der(k_p256), b1, b2;
    parts_t pp = {.name = piece(&name), .spki = piece(&spki), .sigalg = PIECE(ALG_ECDSA_SHA256)};

    pp.attrs = PIECE(wrong_tag);
    b1 = csr_build(&pp, k_p256, EVP_sha256());
    pp.attrs = PIECE(extra);
    b2 = csr_build(&pp, k_p256, EVP_sha256());
    ck_assert_reason(parse_reason(&b1, NULL), LC_REASON_MALFORMED);
    ck_assert_reason(parse_reason(&b2, NULL), LC_REASON_MALFORMED);
    blob_free(&b1);
    blob_free(&b2);
    blob_free(&name);
    blob_free(&spki);
}
END_TEST

START_TEST(test_signature_unused_bits_is_malformed)
{
    blob_t b = csr_cn(k_p256, EVP_sha256(), "dev-1");
    lc_csr_t csr;

    ck_assert_reason(parse_reason(&b, &csr), 0);
    b.p[(size_t)(csr.sig - b.p) - 1] = 0x01; /* the BIT STRING's unused-bits octet */
    ck_assert_reason(parse_reason(&b, NULL), LC_REASON_MALFORMED);
    blob_free(&b);
}
END_TEST

START_TEST(test_public_key_unused_bits_is_malformed)
{
    blob_t b = csr_cn(k_p256, EVP_sha256(), "dev-1");
    lc_csr_t csr;

    ck_assert_reason(parse_reason(&b, &csr), 0);
    b.p[(size_t)(csr.key_bits - b.p) - 1] = 0x03;
    ck_assert_reason(parse_reason(&b, NULL), LC_REASON_MALFORMED);
    blob_free(&b);
}
END_TEST

START_TEST(test_ec_key_without_parameters_is_malformed)
{
    blob_t spki = spki_der(k_p256), name = std_name("dev-1"), b;
    der_buf_t s = {0};
    lc_csr_t csr;
    static const unsigned char alg[] = {0x30, 0x09, 0x06, 0x07, 0x2a, 0x86,
                                        0x48, 0xce, 0x3d, 0x02, 0x01};
    parts_t pp = {.name = piece(&name), .sigalg = PIECE(ALG_ECDSA_SHA256)};

    b = csr_cn(k_p256, EVP_sha256(), "dev-1");
    ck_assert_reason(parse_reason(&b, &csr), 0);
    der_begin(&s, DER_SEQUENCE);
    der_put_raw(&s, alg, sizeof alg);
    der_put_bits(&s, csr.key_bits, csr.key_bits_len);
    der_end(&s);
    pp.spki.p = s.p;
    pp.spki.len = s.len;
    blob_free(&b);
    b = csr_build(&pp, k_p256, EVP_sha256());
    ck_assert_reason(parse_reason(&b, NULL), LC_REASON_MALFORMED);
    blob_free(&b);
    der_buf_free(&s);
    blob_free(&spki);
    blob_free(&name);
}
END_TEST

START_TEST(test_ecdsa_sigalg_with_parameters_is_malformed)
{
    blob_t b = csr_build_std(k_p256, EVP_sha256(), PIECE(ALG_ECDSA_SHA256_NULL));
    ck_assert_reason(parse_reason(&b, NULL), LC_REASON_MALFORMED);
    blob_free(&b);
}
END_TEST

START_TEST(test_rsa_sigalg_with_non_null_parameters_is_malformed)
{
    blob_t b = csr_build_std(k_rsa2048, EVP_sha256(), PIECE(ALG_RSA_SHA256_BADPARAM));
    ck_assert_reason(parse_reason(&b, NULL), LC_REASON_MALFORMED);
    blob_free(&b);
}
END_TEST

START_TEST(test_negative_rsa_modulus_is_malformed)
{
    static const unsigned char e65537[] = {0x01, 0x00, 0x01};
    unsigned char n[256];
    blob_t spki, name = std_name("dev-1"), b;
    parts_t pp = {.name = piece(&name), .sigalg = PIECE(ALG_RSA_SHA256)};

    ck_assert_int_eq(RAND_bytes(n, sizeof n), 1);
    n[0] |= 0x80; /* no leading 0x00: a negative INTEGER */
    spki = rsa_spki_raw(n, sizeof n, e65537, sizeof e65537);
    pp.spki = piece(&spki);
    b = csr_build(&pp, k_rsa2048, EVP_sha256());
    ck_assert_reason(parse_reason(&b, NULL), LC_REASON_MALFORMED);
    blob_free(&b);
    blob_free(&spki);
    blob_free(&name);
}
END_TEST

START_TEST(test_rsa_modulus_with_redundant_zero_octet_is_malformed)
{
    /*
     * A real key whose modulus INTEGER carries an extra 0x00 octet: not DER
     * (X.690 8.3.2).  The SPKI is copied verbatim into the certificate, which
     * would then not be DER either (RFC 5280 4.1); strict parsers refuse it.
     */
    static const unsigned char e65537[] = {0x01, 0x00, 0x01};
    BIGNUM *bn = NULL;
    unsigned char n[2 + 256];
    blob_t spki, name = std_name("dev-1"), b;
    parts_t pp = {.name = piece(&name), .sigalg = PIECE(ALG_RSA_SHA256)};

    ck_assert_int_eq(EVP_PKEY_get_bn_param(k_rsa2048, OSSL_PKEY_PARAM_RSA_N, &bn), 1);
    n[0] = 0x00;
    n[1] = 0x00;
    ck_assert_int_eq(BN_bn2binpad(bn, n + 2, 256), 256);
    spki = rsa_spki_raw(n, sizeof n, e65537, sizeof e65537);
    pp.spki = piece(&spki);
    b = csr_build(&pp, k_rsa2048, EVP_sha256());
    ck_assert_reason(parse_reason(&b, NULL), LC_REASON_MALFORMED);
    blob_free(&b);
    blob_free(&spki);
    blob_free(&name);
    BN_free(bn);
}
END_TEST

START_TEST(test_rdn_not_a_set_is_malformed)
{
    /* Name ::= SEQUENCE { SEQUENCE { SEQUENCE { CN, "dev-1" } } } */
    static const unsigned char name[] = {0x30, 0x0e, 0x30, 0x0c, 0x30, 0x0a, 0x06, 0x03,
                                         0x55, 0x04, 0x03, 0x0c, 0x03, 'd',  'e',  'v'};
    blob_t spki = spki_der(k_p256), b;
    parts_t pp = {.name = PIECE(name), .spki = piece(&spki), .sigalg = PIECE(ALG_ECDSA_SHA256)};

    b = csr_build(&pp, k_p256, EVP_sha256());
    ck_assert_reason(parse_reason(&b, NULL), LC_REASON_MALFORMED);
    blob_free(&b);
    blob_free(&spki);
}
END_TEST

START_TEST(test_empty_rdn_is_malformed)
{
    static const unsigned char name[] = {0x30, 0x02, 0x31, 0x00};
    blob_t spki = spki_der(k_p256), b;
    parts_t pp = {.name = PIECE(name), .spki = piece(&spki), .sigalg = PIECE(ALG_ECDSA_SHA256)};

    b = csr_build(&pp, k_p256, EVP_sha256());
    ck_assert_reason(parse_reason(&b, NULL), LC_REASON_MALFORMED);
    blob_free(&b);
    blob_free(&spki);
}
END_TEST

/* ================= bad signature ================= */

START_TEST(test_flipped_signature_bit_ec)
{
    blob_t b = csr_cn(k_p256, EVP_sha256(), "dev-1");
    lc_csr_t csr;

    ck_assert_reason(parse_reason(&b, &csr), 0);
    b.p[(size_t)(csr.sig - b.p) + csr.sig_len - 1] ^= 0x01; /* last octet of s */
    ck_assert_reason(parse_reason(&b, &csr), 0);
    ck_assert_reason(verify_reason(pctx, &csr), LC_REASON_BAD_SIGNATURE);
    blob_free(&b);
}
END_TEST

START_TEST(test_flipped_signature_bit_rsa)
{
    blob_t b = csr_cn(k_rsa2048, EVP_sha256(), "dev-1");
    lc_csr_t csr;

    ck_assert_reason(parse_reason(&b, &csr), 0);
    b.p[(size_t)(csr.sig - b.p) + csr.sig_len / 2] ^= 0x10;
    ck_assert_reason(parse_reason(&b, &csr), 0);
    ck_assert_reason(verify_reason(pctx, &csr), LC_REASON_BAD_SIGNATURE);
    blob_free(&b);
}
END_TEST

START_TEST(test_flipped_subject_bit)
{
    blob_t b = csr_cn(k_p256, EVP_sha256(), "dev-1");
    lc_csr_t csr;
    size_t at = find(&b, "Contoso", 7);

    b.p[at] ^= 0x20; /* "Contoso" -> "contoso": signed bytes changed, still a good CSR shape */
    ck_assert_reason(parse_reason(&b, &csr), 0);
    ck_assert_str_eq(csr.cn, "dev-1");
    ck_assert_reason(verify_reason(pctx, &csr), LC_REASON_BAD_SIGNATURE);
    blob_free(&b);
}
END_TEST

START_TEST(test_flipped_cn_bit)
{
    blob_t b = csr_cn(k_rsa2048, EVP_sha256(), "dev-a");
    lc_csr_t csr;
    size_t at = find(&b, "dev-a", 5);

    b.p[at + 4] ^= 0x02; /* 'a' -> 'c' */
    ck_assert_reason(parse_reason(&b, &csr), 0);
    ck_assert_str_eq(csr.cn, "dev-c");
    ck_assert_reason(verify_reason(pctx, &csr), LC_REASON_BAD_SIGNATURE);
    blob_free(&b);
}
END_TEST

START_TEST(test_signed_by_another_key)
{
    EVP_PKEY *other = key_ec("P-256");
    blob_t name = std_name("dev-1"), spki = spki_der(k_p256), b;
    parts_t pp = {.name = piece(&name), .spki = piece(&spki), .sigalg = PIECE(ALG_ECDSA_SHA256)};

    b = csr_build(&pp, other, EVP_sha256());
    ck_assert_reason(check_reason(&b), LC_REASON_BAD_SIGNATURE);
    blob_free(&b);
    blob_free(&name);
    blob_free(&spki);
    EVP_PKEY_free(other);
}
END_TEST

START_TEST(test_hash_other_than_declared)
{
    /* declares ecdsa-with-SHA384 but the signature is over SHA-256 */
    blob_t b = csr_build_std(k_p256, EVP_sha256(), PIECE(ALG_ECDSA_SHA384));
    ck_assert_reason(check_reason(&b), LC_REASON_BAD_SIGNATURE);
    blob_free(&b);
}
END_TEST

/* ================= weak hash ================= */

START_TEST(test_sha1_rsa_is_weak)
{
    blob_t b = csr_cn(k_rsa2048, EVP_sha1(), "dev-1");
    ck_assert_reason(parse_reason(&b, NULL), LC_REASON_WEAK_HASH);
    blob_free(&b);
}
END_TEST

START_TEST(test_sha1_ecdsa_is_weak)
{
    blob_t b = csr_cn(k_p256, EVP_sha1(), "dev-1");
    ck_assert_reason(parse_reason(&b, NULL), LC_REASON_WEAK_HASH);
    blob_free(&b);
}
END_TEST

START_TEST(test_sha224_is_weak)
{
    blob_t be = csr_cn(k_p256, EVP_sha224(), "dev-1"), br = csr_cn(k_rsa2048, EVP_sha224(), "d");

    ck_assert_reason(parse_reason(&be, NULL), LC_REASON_WEAK_HASH);
    ck_assert_reason(parse_reason(&br, NULL), LC_REASON_WEAK_HASH);
    blob_free(&be);
    blob_free(&br);
}
END_TEST

START_TEST(test_md5_rsa_is_weak)
{
    blob_t b = csr_cn(k_rsa2048, EVP_md5(), "dev-1");
    ck_assert_reason(parse_reason(&b, NULL), LC_REASON_WEAK_HASH);
    blob_free(&b);
}
END_TEST

/* ================= signature algorithm ================= */

START_TEST(test_rsa_pss_is_signature_algorithm)
{
    X509_REQ *req = X509_REQ_new();
    EVP_MD_CTX *mc = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pc = NULL;
    blob_t b;

    name_add(X509_REQ_get_subject_name(req), "CN", "dev-pss");
    ck_assert_int_eq(X509_REQ_set_pubkey(req, k_rsa2048), 1);
    ck_assert_int_eq(EVP_DigestSignInit(mc, &pc, EVP_sha256(), NULL, k_rsa2048), 1);
    ck_assert_int_gt(EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING), 0);
    ck_assert_int_gt(EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, RSA_PSS_SALTLEN_DIGEST), 0);
    ck_assert_int_gt(X509_REQ_sign_ctx(req, mc), 0);
    ck_assert_int_eq(X509_REQ_get_signature_nid(req), NID_rsassaPss);
    b = req_der(req);
    ck_assert_reason(parse_reason(&b, NULL), LC_REASON_SIGNATURE_ALGORITHM);
    blob_free(&b);
    EVP_MD_CTX_free(mc);
    X509_REQ_free(req);
}
END_TEST

START_TEST(test_ecdsa_sha3_is_signature_algorithm)
{
    blob_t b = csr_cn(k_p256, EVP_sha3_256(), "dev-1");
    ck_assert_reason(parse_reason(&b, NULL), LC_REASON_SIGNATURE_ALGORITHM);
    blob_free(&b);
}
END_TEST

START_TEST(test_unknown_sigalg_is_signature_algorithm)
{
    blob_t b = csr_build_std(k_p256, EVP_sha256(), PIECE(ALG_DSA_SHA256));
    ck_assert_reason(parse_reason(&b, NULL), LC_REASON_SIGNATURE_ALGORITHM);
    blob_free(&b);
}
END_TEST

START_TEST(test_ecdsa_sigalg_on_rsa_key)
{
    blob_t b = csr_build_std(k_rsa2048, EVP_sha256(), PIECE(ALG_ECDSA_SHA256));
    ck_assert_reason(parse_reason(&b, NULL), LC_REASON_SIGNATURE_ALGORITHM);
    blob_free(&b);
}
END_TEST

START_TEST(test_rsa_sigalg_on_ec_key)
{
    blob_t b = csr_build_std(k_p256, EVP_sha256(), PIECE(ALG_RSA_SHA256));
    ck_assert_reason(parse_reason(&b, NULL), LC_REASON_SIGNATURE_ALGORITHM);
    blob_free(&b);
}
END_TEST

/* ================= key type ================= */

START_TEST(test_rsa_1024_is_key_type)
{
    EVP_PKEY *k = key_rsa(1024);
    blob_t b = csr_cn(k, EVP_sha256(), "dev-1");
    lc_csr_t csr;

    ck_assert_reason(parse_reason(&b, &csr), LC_REASON_KEY_TYPE);
    ck_assert_ptr_nonnull(strstr(last_detail, "1024"));
    blob_free(&b);
    EVP_PKEY_free(k);
}
END_TEST

START_TEST(test_rsa_e3_is_key_type)
{
    EVP_PKEY *k = key_rsa_exp(2048, 3);
    blob_t b = csr_cn(k, EVP_sha256(), "dev-1");

    ck_assert_reason(parse_reason(&b, NULL), LC_REASON_KEY_TYPE);
    blob_free(&b);
    EVP_PKEY_free(k);
}
END_TEST

static int synthetic_rsa_reason(int bits, lc_csr_t *csr)
{
    blob_t spki = rsa_spki_synthetic(bits), name = std_name("dev-1"), b;
    parts_t pp = {.name = piece(&name), .spki = piece(&spki), .sigalg = PIECE(ALG_RSA_SHA256)};
    int r;

    b = csr_build(&pp, k_rsa2048, EVP_sha256()); /* the signature cannot verify; parse only */
    r = parse_reason(&b, csr);
    blob_free(&b);
    blob_free(&spki);
    blob_free(&name);
    return r;
}

START_TEST(test_rsa_4097_is_key_type)
{
    lc_csr_t csr;
    ck_assert_reason(synthetic_rsa_reason(4097, &csr), LC_REASON_KEY_TYPE);
    ck_assert_int_eq(csr.rsa_bits, 4097);
}
END_TEST

START_TEST(test_rsa_2047_is_key_type)
{
    lc_csr_t csr;
    ck_assert_reason(synthetic_rsa_reason(2047, &csr), LC_REASON_KEY_TYPE);
    ck_assert_int_eq(csr.rsa_bits, 2047);
}
END_TEST

START_TEST(test_rsa_bounds_by_modulus_size)
{
    lc_csr_t csr;

    ck_assert_reason(synthetic_rsa_reason(2048, &csr), 0);
    ck_assert_int_eq(csr.rsa_bits, 2048);
    ck_assert_reason(synthetic_rsa_reason(4096, &csr), 0);
    ck_assert_int_eq(csr.rsa_bits, 4096);
    ck_assert_reason(synthetic_rsa_reason(2049, &csr), 0);
    ck_assert_int_eq(csr.rsa_bits, 2049);
}
END_TEST

/*
 * An EC point that is not on the curve is refused at verification (the key is
 * built from cached curve parameters; the point itself must still be checked),
 * for both curves; the unmodified requests verify.
 */
START_TEST(test_ec_point_off_curve_refused_on_both_curves)
{
    EVP_PKEY *keys[2] = {k_p256, k_p384};

    for (int i = 0; i < 2; i++) {
        blob_t b = csr_cn(keys[i], i == 0 ? EVP_sha256() : EVP_sha384(), "dev-curve");
        lc_csr_t csr;
        unsigned char point[200];

        ck_assert_int_eq(parse_reason(&b, &csr), 0);
        ck_assert_int_eq(verify_reason(pctx, &csr), 0);
        ck_assert_uint_le(csr.key_bits_len, sizeof point);
        memcpy(point, csr.key_bits, csr.key_bits_len);
        point[csr.key_bits_len - 1] ^= 0x01; /* y no longer matches x */
        csr.key_bits = point;
        ck_assert_reason(verify_reason(pctx, &csr), LC_REASON_KEY_TYPE);
        ck_assert_msg(strstr(last_detail, "not a valid") != NULL, "%s", last_detail);
        blob_free(&b);
    }
}
END_TEST

START_TEST(test_ec_p521_is_key_type)
{
    EVP_PKEY *k = key_ec("P-521");
    blob_t b = csr_cn(k, EVP_sha512(), "dev-1");

    ck_assert_reason(parse_reason(&b, NULL), LC_REASON_KEY_TYPE);
    blob_free(&b);
    EVP_PKEY_free(k);
}
END_TEST

START_TEST(test_secp256k1_is_key_type)
{
    EVP_PKEY *k = key_ec("secp256k1");
    blob_t b = csr_cn(k, EVP_sha256(), "dev-1");

    ck_assert_reason(parse_reason(&b, NULL), LC_REASON_KEY_TYPE);
    blob_free(&b);
    EVP_PKEY_free(k);
}
END_TEST

START_TEST(test_ed25519_is_key_type)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    blob_t b;

    ck_assert_ptr_nonnull(k);
    b = csr_cn(k, NULL, "dev-1");
    ck_assert_reason(parse_reason(&b, NULL), LC_REASON_KEY_TYPE);
    blob_free(&b);
    EVP_PKEY_free(k);
}
END_TEST

START_TEST(test_ed448_is_key_type)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED448");
    blob_t b;

    ck_assert_ptr_nonnull(k);
    b = csr_cn(k, NULL, "dev-1");
    ck_assert_reason(parse_reason(&b, NULL), LC_REASON_KEY_TYPE);
    blob_free(&b);
    EVP_PKEY_free(k);
}
END_TEST

START_TEST(test_explicit_curve_is_key_type)
{
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, "P-256", 0),
                           OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING,
                                                            OSSL_PKEY_EC_ENCODING_EXPLICIT, 0),
                           OSSL_PARAM_construct_end()};
    EVP_PKEY *k = NULL;
    blob_t spki, b;
    der_cur_t c;
    der_tlv_t t, alg, oid, prm;

    ck_assert_ptr_nonnull(pc);
    ck_assert_int_eq(EVP_PKEY_keygen_init(pc), 1);
    ck_assert_int_eq(EVP_PKEY_CTX_set_params(pc, params), 1);
    ck_assert_int_eq(EVP_PKEY_generate(pc, &k), 1);
    /* the key really is encoded with explicit parameters (a SEQUENCE, not an OID) */
    spki = spki_der(k);
    c = (der_cur_t){spki.p, spki.len};
    ck_assert_int_eq(der_expect(&c, DER_SEQUENCE, &t), 0);
    c = der_inside(&t);
    ck_assert_int_eq(der_expect(&c, DER_SEQUENCE, &alg), 0);
    c = der_inside(&alg);
    ck_assert_int_eq(der_expect(&c, DER_OID, &oid), 0);
    ck_assert_int_eq(der_next(&c, &prm), 0);
    ck_assert_uint_eq(prm.tag, DER_SEQUENCE);
    b = csr_cn(k, EVP_sha256(), "dev-1");
    ck_assert_reason(parse_reason(&b, NULL), LC_REASON_KEY_TYPE);
    blob_free(&b);
    blob_free(&spki);
    EVP_PKEY_free(k);
    EVP_PKEY_CTX_free(pc);
}
END_TEST

START_TEST(test_ec_point_off_curve_is_key_type)
{
    blob_t spki = spki_der(k_p256), name = std_name("dev-1"), b;
    parts_t pp = {.name = piece(&name), .spki = piece(&spki), .sigalg = PIECE(ALG_ECDSA_SHA256)};
    lc_csr_t csr;

    spki.p[spki.len - 1] ^= 0x01; /* last octet of y: off the curve */
    b = csr_build(&pp, k_p256, EVP_sha256());
    ck_assert_reason(parse_reason(&b, &csr), 0);
    ck_assert_int_eq(csr.key_type, LC_KEY_EC_P256);
    ck_assert_reason(verify_reason(pctx, &csr), LC_REASON_KEY_TYPE);
    blob_free(&b);
    blob_free(&spki);
    blob_free(&name);
}
END_TEST

/*
 * The point at infinity (the one-octet encoding 00) is no key, yet ECDSA
 * verification against it reduces to R = u1·G: anyone can make a signature
 * that passes (k at random, r = x(k·G), s = e/k), and OpenSSL 3.0's
 * ECDSA_verify() accepts it.  The parser refuses the encoding, and the
 * verification refuses the point on its own too (it is called on requests
 * this parser did not see, e.g. in the signer after a station's).
 */
START_TEST(test_ec_point_at_infinity_is_key_type)
{
    static const unsigned char spki_inf[] = {0x30, 0x19, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48,
                                             0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
                                             0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x02, 0x00, 0x00};
    static const unsigned char infinity[] = {0x00};
    blob_t name = std_name("dev-1"), b;
    parts_t pp = {.name = piece(&name), .spki = PIECE(spki_inf), .sigalg = PIECE(ALG_ECDSA_SHA256)};
    EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
    BN_CTX *bc = BN_CTX_new();
    BIGNUM *k = BN_new(), *x = BN_new(), *r = BN_new(), *s = BN_new(), *e, *kinv;
    EC_POINT *R;
    ECDSA_SIG *sig = ECDSA_SIG_new();
    unsigned char digest[32], *forged = NULL;
    int flen;
    lc_csr_t csr;

    ck_assert(g != NULL && bc != NULL && k != NULL && x != NULL && r != NULL && s != NULL);
    b = csr_build(&pp, k_p256, EVP_sha256());
    ck_assert_reason(parse_reason(&b, &csr), LC_REASON_KEY_TYPE);
    blob_free(&b);

    /* The verification alone, given the point and a forged signature over the CRI. */
    b = csr_cn(k_p256, EVP_sha256(), "dev-1");
    ck_assert_reason(parse_reason(&b, &csr), 0);
    SHA256(csr.cri, csr.cri_len, digest);
    e = BN_bin2bn(digest, sizeof digest, NULL);
    R = EC_POINT_new(g);
    ck_assert_int_eq(BN_rand_range(k, EC_GROUP_get0_order(g)), 1);
    ck_assert_int_eq(EC_POINT_mul(g, R, k, NULL, NULL, bc), 1);
    ck_assert_int_eq(EC_POINT_get_affine_coordinates(g, R, x, NULL, bc), 1);
    ck_assert_int_eq(BN_nnmod(r, x, EC_GROUP_get0_order(g), bc), 1);
    kinv = BN_mod_inverse(NULL, k, EC_GROUP_get0_order(g), bc);
    ck_assert_int_eq(BN_mod_mul(s, e, kinv, EC_GROUP_get0_order(g), bc), 1);
    ck_assert_int_eq(ECDSA_SIG_set0(sig, r, s), 1);
    flen = i2d_ECDSA_SIG(sig, &forged);
    ck_assert_int_gt(flen, 0);
    csr.key_bits = infinity;
    csr.key_bits_len = sizeof infinity;
    csr.sig = forged;
    csr.sig_len = (size_t)flen;
    ck_assert_reason(verify_reason(pctx, &csr), LC_REASON_KEY_TYPE);
    ck_assert_reason(verify_reason(NULL, &csr), LC_REASON_KEY_TYPE);
    OPENSSL_free(forged);
    ECDSA_SIG_free(sig); /* frees r and s */
    BN_free(kinv);
    BN_free(e);
    BN_free(k);
    BN_free(x);
    EC_POINT_free(R);
    BN_CTX_free(bc);
    EC_GROUP_free(g);
    blob_free(&b);
    blob_free(&name);
}
END_TEST

/*
 * An EC key is one point of its curve, uncompressed (04 x y) or compressed
 * (02/03 x): any other length or first octet is refused before verification.
 */
START_TEST(test_ec_point_encoding_checked_at_parse)
{
    EVP_PKEY *keys[2] = {k_p256, k_p384};

    for (int i = 0; i < 2; i++) {
        blob_t spki = spki_der(keys[i]), name = std_name("dev-1"), b;
        size_t flen = i == 0 ? 32 : 48;
        lc_csr_t csr;
        unsigned char saved;

        /* the uncompressed point is the SPKI's last 1 + 2·flen octets */
        ck_assert_uint_eq(spki.p[spki.len - 1 - 2 * flen], 0x04);
        b = csr_cn(keys[i], i == 0 ? EVP_sha256() : EVP_sha384(), "dev-1");
        ck_assert_reason(parse_reason(&b, &csr), 0);
        ck_assert_uint_eq(csr.key_bits_len, 1 + 2 * flen);
        blob_free(&b);
        for (int form = 0; form < 3; form++) {
            parts_t pp = {.name = piece(&name),
                          .spki = piece(&spki),
                          .sigalg = i == 0 ? PIECE(ALG_ECDSA_SHA256) : PIECE(ALG_ECDSA_SHA384)};
            static const unsigned char bad_first[3] = {0x06, 0x02, 0x05};
            saved = spki.p[spki.len - 1 - 2 * flen];
            /* hybrid form (06), compressed tag on a full point, unknown tag */
            spki.p[spki.len - 1 - 2 * flen] = bad_first[form];
            b = csr_build(&pp, keys[i], i == 0 ? EVP_sha256() : EVP_sha384());
            ck_assert_reason(parse_reason(&b, NULL), LC_REASON_KEY_TYPE);
            ck_assert_msg(strstr(last_detail, "point") != NULL, "%s", last_detail);
            spki.p[spki.len - 1 - 2 * flen] = saved;
            blob_free(&b);
        }
        blob_free(&spki);
        blob_free(&name);
    }
}
END_TEST

/* A compressed point (02/03 x) is a key like any other: it parses and verifies. */
START_TEST(test_ec_compressed_point_verifies)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    blob_t b;
    lc_csr_t csr;

    ck_assert_ptr_nonnull(k);
    ck_assert_int_eq(
        EVP_PKEY_set_utf8_string_param(k, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                                       OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_COMPRESSED),
        1);
    b = csr_cn(k, EVP_sha256(), "dev-1");
    ck_assert_reason(parse_reason(&b, &csr), 0);
    ck_assert_uint_eq(csr.key_bits_len, 33);
    ck_assert_reason(verify_reason(pctx, &csr), 0);
    blob_free(&b);
    EVP_PKEY_free(k);
}
END_TEST

/* An EC signature must be exactly one DER ECDSA-Sig-Value: a byte after it fails the proof. */
START_TEST(test_ec_signature_with_trailing_byte_fails)
{
    blob_t b = csr_cn(k_p256, EVP_sha256(), "dev-1");
    unsigned char sig[200];
    lc_csr_t csr;

    ck_assert_reason(parse_reason(&b, &csr), 0);
    ck_assert_reason(verify_reason(pctx, &csr), 0);
    ck_assert_uint_lt(csr.sig_len, sizeof sig);
    memcpy(sig, csr.sig, csr.sig_len);
    sig[csr.sig_len] = 0x00;
    csr.sig = sig;
    csr.sig_len++;
    ck_assert_reason(verify_reason(pctx, &csr), LC_REASON_BAD_SIGNATURE);
    blob_free(&b);
}
END_TEST

/* ================= common name ================= */

static int cn_reason_of(X509_NAME *n)
{
    blob_t b = csr_name(k_p256, n);
    int r = parse_reason(&b, NULL);
    blob_free(&b);
    X509_NAME_free(n);
    return r;
}

/* A name with one CN of the given type and raw bytes, after O=Contoso. */
static X509_NAME *name_cn_raw(int type, const void *val, int len)
{
    X509_NAME *n = X509_NAME_new();
    name_add(n, "O", "Contoso");
    name_add_typed(n, "CN", type, val, len, 0);
    return n;
}

START_TEST(test_cn_missing)
{
    X509_NAME *n = X509_NAME_new();
    name_add(n, "O", "Contoso");
    name_add(n, "OU", "Line 1");
    ck_assert_reason(cn_reason_of(n), LC_REASON_CN_MISSING);
}
END_TEST

START_TEST(test_cn_missing_empty_subject)
{
    static const unsigned char empty_name[] = {0x30, 0x00};
    blob_t spki = spki_der(k_p256), b;
    parts_t pp = {
        .name = PIECE(empty_name), .spki = piece(&spki), .sigalg = PIECE(ALG_ECDSA_SHA256)};

    b = csr_build(&pp, k_p256, EVP_sha256());
    ck_assert_reason(parse_reason(&b, NULL), LC_REASON_CN_MISSING);
    blob_free(&b);
    blob_free(&spki);
}
END_TEST

START_TEST(test_cn_multiple)
{
    X509_NAME *n = X509_NAME_new();
    name_add(n, "CN", "dev-1");
    name_add(n, "O", "Contoso");
    name_add(n, "CN", "dev-2");
    ck_assert_reason(cn_reason_of(n), LC_REASON_CN_MULTIPLE);
}
END_TEST

START_TEST(test_cn_multiple_identical)
{
    X509_NAME *n = X509_NAME_new();
    name_add(n, "CN", "dev-1");
    name_add(n, "CN", "dev-1");
    ck_assert_reason(cn_reason_of(n), LC_REASON_CN_MULTIPLE);
}
END_TEST

START_TEST(test_cn_multiple_in_one_rdn)
{
    X509_NAME *n = X509_NAME_new();
    name_add(n, "CN", "dev-1");
    name_add_typed(n, "CN", MBSTRING_ASC, "dev-2", -1, -1); /* same RDN SET */
    ck_assert_int_eq(X509_NAME_ENTRY_set(X509_NAME_get_entry(n, 1)), 0);
    ck_assert_reason(cn_reason_of(n), LC_REASON_CN_MULTIPLE);
}
END_TEST

START_TEST(test_cn_with_space)
{
    ck_assert_reason(cn_reason_of(name_cn_raw(V_ASN1_UTF8STRING, "dev 1", -1)),
                     LC_REASON_CN_INVALID);
}
END_TEST

START_TEST(test_cn_trailing_dot)
{
    ck_assert_reason(cn_reason_of(name_cn_raw(V_ASN1_UTF8STRING, "dev-1.", -1)),
                     LC_REASON_CN_INVALID);
}
END_TEST

START_TEST(test_cn_65_chars)
{
    char cn[66];
    memset(cn, 'a', 65);
    cn[65] = '\0';
    ck_assert_reason(cn_reason_of(name_cn_raw(V_ASN1_UTF8STRING, cn, 65)), LC_REASON_CN_INVALID);
}
END_TEST

START_TEST(test_cn_empty)
{
    ck_assert_reason(cn_reason_of(name_cn_raw(V_ASN1_UTF8STRING, "", 0)), LC_REASON_CN_INVALID);
}
END_TEST

START_TEST(test_cn_bmpstring)
{
    static const unsigned char ucs2[] = {0, 'd', 0, 'e', 0, 'v', 0, '-', 0, '1'};
    ck_assert_reason(cn_reason_of(name_cn_raw(V_ASN1_BMPSTRING, ucs2, sizeof ucs2)),
                     LC_REASON_CN_INVALID);
}
END_TEST

START_TEST(test_cn_t61string)
{
    ck_assert_reason(cn_reason_of(name_cn_raw(V_ASN1_T61STRING, "dev-1", -1)),
                     LC_REASON_CN_INVALID);
}
END_TEST

START_TEST(test_cn_embedded_nul)
{
    ck_assert_reason(cn_reason_of(name_cn_raw(MBSTRING_ASC, "dev\0-1", 6)), LC_REASON_CN_INVALID);
}
END_TEST

START_TEST(test_cn_non_ascii)
{
    ck_assert_reason(cn_reason_of(name_cn_raw(MBSTRING_UTF8, "ger\xc3\xa4t-1", -1)),
                     LC_REASON_CN_INVALID);
}
END_TEST

/* ================= registration IDs ================= */

struct regid_case {
    const char *s;
    size_t len; /* 0: strlen(s) unless s is "" */
    int valid;
};

static const char A64[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
static const char A65[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

static const struct regid_case REGIDS[] = {
    {"a", 0, 1},
    {"Z", 0, 1},
    {"7", 0, 1},
    {"-", 0, 1},
    {A64, 0, 1},
    {A65, 0, 0},
    {"", 0, 0},
    {"dev-", 0, 1},
    {"dev.", 0, 0},
    {"dev_", 0, 0},
    {"dev:", 0, 0},
    {"a.b", 0, 1},
    {"a_b", 0, 1},
    {"a:b", 0, 1},
    {"a-b", 0, 1},
    {".a", 0, 1},
    {"_a", 0, 1},
    {":a", 0, 1},
    {"Line1:Dev_02.rev-3", 0, 1},
    {"MixedCASE0123456789", 0, 1},
    {".", 0, 0},
    {"_", 0, 0},
    {":", 0, 0},
    {"dev 1", 0, 0},
    {" dev", 0, 0},
    {"dev ", 0, 0},
    {"ger\xc3\xa4t", 0, 0},
    {"dev\xff", 0, 0},
    {"\x80"
     "dev",
     0, 0},
    {"ab\0cd", 5, 0},
    {"abc\0", 4, 0},
    {"dev\n", 0, 0},
    {"dev\t1", 0, 0},
    {"dev/1", 0, 0},
    {"dev@1", 0, 0},
    {"dev+1", 0, 0},
    {"dev,1", 0, 0},
    {"dev=1", 0, 0},
    {"dev#", 0, 0},
    {"abc", 2, 1},  /* len counts: "ab" */
    {"ab.", 2, 1},  /* "ab": the '.' is not part of it */
    {"ab.c", 3, 0}, /* "ab." */
};

START_TEST(test_regid_table)
{
    const struct regid_case *c = &REGIDS[_i];
    size_t len = c->len ? c->len : strlen(c->s);

    ck_assert_msg(policy_regid_valid(c->s, len) == c->valid, "case %d \"%s\" (%zu bytes): got %d",
                  _i, c->s, len, policy_regid_valid(c->s, len));
}
END_TEST

START_TEST(test_regid_null)
{
    ck_assert_int_eq(policy_regid_valid(NULL, 0), 0);
    ck_assert_int_eq(policy_regid_valid(NULL, 5), 0);
}
END_TEST

/* ================= reasons ================= */

static const struct {
    int code;
    const char *name;
    int refusal;
} REASON_TABLE[] = {
    {LC_REASON_NONE, "none", 0},
    {LC_REASON_TOO_LARGE, "too-large", 1},
    {LC_REASON_MALFORMED, "malformed", 1},
    {LC_REASON_BAD_SIGNATURE, "bad-signature", 1},
    {LC_REASON_WEAK_HASH, "weak-hash", 1},
    {LC_REASON_SIGNATURE_ALGORITHM, "signature-algorithm", 1},
    {LC_REASON_KEY_TYPE, "key-type", 1},
    {LC_REASON_CN_MISSING, "cn-missing", 1},
    {LC_REASON_CN_MULTIPLE, "cn-multiple", 1},
    {LC_REASON_CN_INVALID, "cn-invalid", 1},
    {LC_REASON_CN_DUPLICATE, "cn-duplicate", 1},
    {LC_REASON_CN_MISMATCH, "cn-mismatch", 1},
    {LC_REASON_SERIAL_INVALID, "serial-invalid", 1},
    {LC_REASON_HSM_UNAVAILABLE, "hsm-unavailable", 0},
    {LC_REASON_SIGNER_UNAVAILABLE, "signer-unavailable", 0},
    {LC_REASON_AUDIT_UNAVAILABLE, "audit-unavailable", 0},
    {LC_REASON_JIG_TIMEOUT, "jig-timeout", 0},
    {LC_REASON_JIG_FAILED, "jig-failed", 0},
    {LC_REASON_JIG_OUTPUT, "jig-output", 0},
    {LC_REASON_INSTALL_FAILED, "install-failed", 0},
    {LC_REASON_PAUSED, "paused", 0},
    {LC_REASON_INTERNAL, "internal", 0},
};
#define N_REASONS (sizeof REASON_TABLE / sizeof REASON_TABLE[0])

START_TEST(test_reason_numbers_and_names_are_the_contract)
{
    static const int numbers[] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10,
                                  11, 12, 20, 21, 22, 23, 24, 25, 26, 27, 28};

    ck_assert_uint_eq(N_REASONS, sizeof numbers / sizeof numbers[0]);
    for (size_t i = 0; i < N_REASONS; i++) {
        ck_assert_int_eq(REASON_TABLE[i].code, numbers[i]);
        ck_assert_str_eq(policy_reason_name(REASON_TABLE[i].code), REASON_TABLE[i].name);
    }
}
END_TEST

START_TEST(test_reason_names_distinct)
{
    for (size_t i = 0; i < N_REASONS; i++)
        for (size_t j = i + 1; j < N_REASONS; j++)
            ck_assert_str_ne(policy_reason_name(REASON_TABLE[i].code),
                             policy_reason_name(REASON_TABLE[j].code));
}
END_TEST

START_TEST(test_reason_from_name_round_trips)
{
    for (size_t i = 0; i < N_REASONS; i++)
        ck_assert_int_eq(policy_reason_from_name(policy_reason_name(REASON_TABLE[i].code)),
                         REASON_TABLE[i].code);
}
END_TEST

START_TEST(test_reason_from_unknown_name)
{
    ck_assert_int_eq(policy_reason_from_name("unknown"), -1);
    ck_assert_int_eq(policy_reason_from_name(""), -1);
    ck_assert_int_eq(policy_reason_from_name("CN-INVALID"), -1);
    ck_assert_int_eq(policy_reason_from_name(NULL), -1);
}
END_TEST

START_TEST(test_reason_unknown_number)
{
    ck_assert_str_eq(policy_reason_name(13), "unknown");
    ck_assert_str_eq(policy_reason_name(19), "unknown");
    ck_assert_str_eq(policy_reason_name(29), "unknown");
    ck_assert_str_eq(policy_reason_name(-1), "unknown");
    ck_assert_str_eq(policy_reason_text(13), "Unknown reason.");
}
END_TEST

START_TEST(test_reason_text_non_empty)
{
    for (size_t i = 0; i < N_REASONS; i++) {
        const char *t = policy_reason_text(REASON_TABLE[i].code);
        ck_assert_ptr_nonnull(t);
        ck_assert_uint_gt(strlen(t), 5);
        ck_assert_str_ne(t, "Unknown reason.");
        ck_assert_int_eq(t[strlen(t) - 1], '.');
    }
}
END_TEST

START_TEST(test_reason_is_refusal_exactly_1_to_12)
{
    for (int r = -3; r <= 40; r++)
        ck_assert_msg(policy_reason_is_refusal(r) == (r >= 1 && r <= 12), "reason %d", r);
    for (size_t i = 0; i < N_REASONS; i++)
        ck_assert_int_eq(policy_reason_is_refusal(REASON_TABLE[i].code), REASON_TABLE[i].refusal);
}
END_TEST

START_TEST(test_policy_refuse_fills_reason_and_detail)
{
    lc_refusal_t why;

    memset(&why, 0, sizeof why);
    ck_assert_int_eq(policy_refuse(&why, LC_REASON_KEY_TYPE, "RSA key of %d bits", 1024), -1);
    ck_assert_int_eq(why.reason, LC_REASON_KEY_TYPE);
    ck_assert_str_eq(why.detail, "RSA key of 1024 bits");
    ck_assert_int_eq(policy_refuse(NULL, LC_REASON_MALFORMED, "x"), -1);
}
END_TEST

START_TEST(test_key_type_names)
{
    ck_assert_str_eq(policy_key_type_name(LC_KEY_EC_P256), "EC P-256");
    ck_assert_str_eq(policy_key_type_name(LC_KEY_EC_P384), "EC P-384");
    ck_assert_str_eq(policy_key_type_name(LC_KEY_RSA), "RSA");
    ck_assert_str_eq(policy_key_type_name(LC_KEY_NONE), "none");
}
END_TEST

START_TEST(test_ctx_free_null)
{
    policy_ctx_free(NULL);
    ck_assert_ptr_nonnull(pctx);
}
END_TEST

static Suite *policy_suite(void)
{
    Suite *s = suite_create("policy");
    TCase *tc;

    tc = tcase_create("valid");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_valid_ec_p256);
    tcase_add_test(tc, test_valid_ec_p384);
    tcase_add_test(tc, test_valid_rsa_2048);
    tcase_add_test(tc, test_valid_rsa_3072);
    tcase_add_test(tc, test_valid_rsa_4096);
    tcase_add_test(tc, test_valid_sha512_and_sha384_on_p256);
    tcase_add_test(tc, test_valid_rsa_sha512);
    tcase_add_test(tc, test_verify_without_ctx);
    tcase_add_test(tc, test_verify_ctx_reused_across_key_types);
    tcase_add_test(tc, test_valid_cn_printable_and_ia5);
    tcase_add_test(tc, test_valid_cn_64_chars);
    tcase_add_test(tc, test_valid_cn_in_multivalued_rdn);
    tcase_add_test(tc, test_valid_handbuilt_rsa_sigalg_without_null);
    tcase_add_test(tc, test_requested_extensions_are_ignored);
    tcase_add_test(tc, test_challenge_password_attribute_is_ignored);
    suite_add_tcase(s, tc);

    tc = tcase_create("input");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_too_large_input);
    tcase_add_test(tc, test_max_size_garbage_is_malformed_not_too_large);
    tcase_add_test(tc, test_parse_refuses_oversize_der);
    tcase_add_test(tc, test_empty_input_is_malformed);
    tcase_add_test(tc, test_der_input_passes_unchanged);
    tcase_add_test(tc, test_pem_certificate_request);
    tcase_add_test(tc, test_pem_new_certificate_request);
    tcase_add_test(tc, test_pem_after_leading_text);
    tcase_add_test(tc, test_pem_after_leading_text_starting_with_zero);
    tcase_add_test(tc, test_pem_certificate_label_is_malformed);
    tcase_add_test(tc, test_pem_with_encryption_headers_is_malformed);
    tcase_add_test(tc, test_pem_with_bad_base64_is_malformed);
    tcase_add_test(tc, test_der_containing_pem_marker_is_not_pem);
    suite_add_tcase(s, tc);

    tc = tcase_create("malformed");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_random_bytes_are_malformed);
    tcase_add_test(tc, test_every_prefix_is_malformed_ec);
    tcase_add_test(tc, test_every_prefix_is_malformed_rsa);
    tcase_add_test(tc, test_trailing_garbage_is_malformed);
    tcase_add_test(tc, test_indefinite_length_is_malformed);
    tcase_add_test(tc, test_non_minimal_outer_length_is_malformed);
    tcase_add_test(tc, test_long_form_short_length_is_malformed);
    tcase_add_test(tc, test_version_1_is_malformed);
    tcase_add_test(tc, test_bad_attributes_are_malformed);
    tcase_add_test(tc, test_signature_unused_bits_is_malformed);
    tcase_add_test(tc, test_public_key_unused_bits_is_malformed);
    tcase_add_test(tc, test_ec_key_without_parameters_is_malformed);
    tcase_add_test(tc, test_ecdsa_sigalg_with_parameters_is_malformed);
    tcase_add_test(tc, test_rsa_sigalg_with_non_null_parameters_is_malformed);
    tcase_add_test(tc, test_negative_rsa_modulus_is_malformed);
    tcase_add_test(tc, test_rsa_modulus_with_redundant_zero_octet_is_malformed);
    tcase_add_test(tc, test_rdn_not_a_set_is_malformed);
    tcase_add_test(tc, test_empty_rdn_is_malformed);
    suite_add_tcase(s, tc);

    tc = tcase_create("signature");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_flipped_signature_bit_ec);
    tcase_add_test(tc, test_flipped_signature_bit_rsa);
    tcase_add_test(tc, test_flipped_subject_bit);
    tcase_add_test(tc, test_flipped_cn_bit);
    tcase_add_test(tc, test_signed_by_another_key);
    tcase_add_test(tc, test_hash_other_than_declared);
    tcase_add_test(tc, test_sha1_rsa_is_weak);
    tcase_add_test(tc, test_sha1_ecdsa_is_weak);
    tcase_add_test(tc, test_sha224_is_weak);
    tcase_add_test(tc, test_md5_rsa_is_weak);
    tcase_add_test(tc, test_rsa_pss_is_signature_algorithm);
    tcase_add_test(tc, test_ecdsa_sha3_is_signature_algorithm);
    tcase_add_test(tc, test_unknown_sigalg_is_signature_algorithm);
    tcase_add_test(tc, test_ecdsa_sigalg_on_rsa_key);
    tcase_add_test(tc, test_rsa_sigalg_on_ec_key);
    suite_add_tcase(s, tc);

    tc = tcase_create("key-type");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_rsa_1024_is_key_type);
    tcase_add_test(tc, test_rsa_e3_is_key_type);
    tcase_add_test(tc, test_rsa_4097_is_key_type);
    tcase_add_test(tc, test_rsa_2047_is_key_type);
    tcase_add_test(tc, test_rsa_bounds_by_modulus_size);
    tcase_add_test(tc, test_ec_point_off_curve_refused_on_both_curves);
    tcase_add_test(tc, test_ec_p521_is_key_type);
    tcase_add_test(tc, test_secp256k1_is_key_type);
    tcase_add_test(tc, test_ed25519_is_key_type);
    tcase_add_test(tc, test_ed448_is_key_type);
    tcase_add_test(tc, test_explicit_curve_is_key_type);
    tcase_add_test(tc, test_ec_point_off_curve_is_key_type);
    tcase_add_test(tc, test_ec_point_at_infinity_is_key_type);
    tcase_add_test(tc, test_ec_point_encoding_checked_at_parse);
    tcase_add_test(tc, test_ec_compressed_point_verifies);
    tcase_add_test(tc, test_ec_signature_with_trailing_byte_fails);
    suite_add_tcase(s, tc);

    tc = tcase_create("cn");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_cn_missing);
    tcase_add_test(tc, test_cn_missing_empty_subject);
    tcase_add_test(tc, test_cn_multiple);
    tcase_add_test(tc, test_cn_multiple_identical);
    tcase_add_test(tc, test_cn_multiple_in_one_rdn);
    tcase_add_test(tc, test_cn_with_space);
    tcase_add_test(tc, test_cn_trailing_dot);
    tcase_add_test(tc, test_cn_65_chars);
    tcase_add_test(tc, test_cn_empty);
    tcase_add_test(tc, test_cn_bmpstring);
    tcase_add_test(tc, test_cn_t61string);
    tcase_add_test(tc, test_cn_embedded_nul);
    tcase_add_test(tc, test_cn_non_ascii);
    suite_add_tcase(s, tc);

    tc = tcase_create("regid");
    tcase_add_loop_test(tc, test_regid_table, 0, (int)(sizeof REGIDS / sizeof REGIDS[0]));
    tcase_add_test(tc, test_regid_null);
    suite_add_tcase(s, tc);

    tc = tcase_create("reasons");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_reason_numbers_and_names_are_the_contract);
    tcase_add_test(tc, test_reason_names_distinct);
    tcase_add_test(tc, test_reason_from_name_round_trips);
    tcase_add_test(tc, test_reason_from_unknown_name);
    tcase_add_test(tc, test_reason_unknown_number);
    tcase_add_test(tc, test_reason_text_non_empty);
    tcase_add_test(tc, test_reason_is_refusal_exactly_1_to_12);
    tcase_add_test(tc, test_policy_refuse_fills_reason_and_detail);
    tcase_add_test(tc, test_key_type_names);
    tcase_add_test(tc, test_ctx_free_null);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr;
    int failed;

    k_p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    k_p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    k_rsa2048 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    if (k_p256 == NULL || k_p384 == NULL || k_rsa2048 == NULL) {
        fprintf(stderr, "test_policy: cannot generate the test keys\n");
        return 1;
    }
    sr = srunner_create(policy_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    EVP_PKEY_free(k_p256);
    EVP_PKEY_free(k_p384);
    EVP_PKEY_free(k_rsa2048);
    return failed == 0 ? 0 : 1;
}
