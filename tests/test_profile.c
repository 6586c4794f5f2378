/*
 * test_profile.c — the certificate profiles (hsm/profile.c) and the DER
 * writer/reader under them (hsm/der.c).
 *
 * A software CA key stands in for the HSM: the test builds a TBSCertificate
 * with the profile, signs it with EVP_DigestSign exactly as the signer would
 * (ECDSA with the profile's digest, RSA PKCS#1 v1.5), wraps it with
 * profile_assemble() and then reads the result back with OpenSSL's own
 * parser, asserting each property the profile promises (docs/profile.md).
 */
#include "der.h"
#include "lcerr.h"
#include "policy.h"
#include "profile.h"
#include "testutil.h"

#include <check.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define YEAR      (365 * 86400)
#define T_2050    ((int64_t)2524608000) /* 2050-01-01T00:00:00Z */
#define N_SERIALS 10000
#define O_CONFIG  "Contoso Devices"
#define OU_CONFIG "Line 1"

/* Made once in main(), before Check forks a child per test; read-only in tests. */
static EVP_PKEY *ca_p256, *ca_p384, *ca_rsa;    /* CA keys */
static EVP_PKEY *dev_p256, *dev_p384, *dev_rsa; /* device keys */
static X509 *cacert_p256, *cacert_p384, *cacert_rsa, *cacert_far;
static int64_t g_now, g_ca_not_after, g_far_not_after;

static const unsigned char SERIAL[PROFILE_SERIAL_LEN] = {
    0x3a, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0xff};

typedef struct blob {
    unsigned char *p;
    size_t len;
} blob_t;

static void blob_free(blob_t *b)
{
    free(b->p);
    b->p = NULL;
    b->len = 0;
}

/* ---- keys and OpenSSL-made objects ---- */

static enum lc_key_type key_type_of(EVP_PKEY *k)
{
    char group[64] = "";
    size_t gl = 0;

    if (EVP_PKEY_is_a(k, "RSA"))
        return LC_KEY_RSA;
    EVP_PKEY_get_utf8_string_param(k, "group", group, sizeof group, &gl);
    if (strcmp(group, "prime256v1") == 0)
        return LC_KEY_EC_P256;
    if (strcmp(group, "secp384r1") == 0)
        return LC_KEY_EC_P384;
    return LC_KEY_NONE;
}

static blob_t spki_der(EVP_PKEY *k)
{
    blob_t b = {NULL, 0};
    int n = i2d_PUBKEY(k, &b.p);
    ck_assert_int_gt(n, 0);
    b.len = (size_t)n;
    return b;
}

static X509 *x509_from_der(const unsigned char *p, size_t len)
{
    const unsigned char *q = p;
    X509 *x = d2i_X509(NULL, &q, (long)len);
    ck_assert_msg(x != NULL, "OpenSSL cannot parse the certificate");
    ck_assert_msg(q == p + len, "certificate has trailing bytes");
    return x;
}

/* DER round trip, as the signer loads a CA; no Check asserts: main() uses it too. */
static X509 *x509_roundtrip(X509 *x)
{
    unsigned char *der = NULL;
    const unsigned char *q;
    int n = i2d_X509(x, &der);
    X509 *y;

    if (n <= 0)
        abort();
    q = der;
    y = d2i_X509(NULL, &q, n);
    if (y == NULL)
        abort();
    OPENSSL_free(der);
    return y;
}

static void add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *e = X509V3_EXT_nconf_nid(NULL, ctx, nid, value);
    if (e == NULL || X509_add_ext(x, e, -1) != 1) {
        fprintf(stderr, "test_profile: cannot add extension %s\n", OBJ_nid2sn(nid));
        abort();
    }
    X509_EXTENSION_free(e);
}

/*
 * A line CA certificate made with the OpenSSL API (not by the code under
 * test): O=Contoso, CN=Contoso Line 1 CA, CA:TRUE, SKI by hash unless
 * with_ski is 0.  Returned parsed from its DER, like the signer loads it.
 * Aborts on failure (it also runs in main(), outside any test).
 */
static X509 *openssl_ca(EVP_PKEY *key, const EVP_MD *md, int64_t not_after, int with_ski)
{
    X509 *x = X509_new(), *y;
    X509_NAME *n = X509_NAME_new();
    X509V3_CTX ctx;

    if (x == NULL || n == NULL)
        abort();
    X509_set_version(x, X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 0x1234);
    X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"Contoso", -1, -1, 0);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"Contoso Line 1 CA",
                               -1, -1, 0);
    X509_set_subject_name(x, n);
    X509_set_issuer_name(x, n);
    ASN1_TIME_set(X509_getm_notBefore(x), (time_t)(g_now - 86400));
    ASN1_TIME_set(X509_getm_notAfter(x), (time_t)not_after);
    X509_set_pubkey(x, key);
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
    if (with_ski)
        add_ext(x, &ctx, NID_subject_key_identifier, "hash");
    if (X509_sign(x, key, md) <= 0)
        abort();
    y = x509_roundtrip(x);
    X509_free(x);
    X509_NAME_free(n);
    return y;
}

/* A CSR for key: O=Contoso Plant 7, CN=cn; extras adds attributes and extension requests. */
static blob_t csr_for(EVP_PKEY *key, const char *cn, int extras)
{
    X509_REQ *req = X509_REQ_new();
    X509_NAME *n = X509_REQ_get_subject_name(req);
    blob_t b = {NULL, 0};
    int len;

    ck_assert_ptr_nonnull(req);
    X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"Contoso Plant 7", -1,
                               -1, 0);
    if (extras) {
        X509_NAME_add_entry_by_txt(n, "L", MBSTRING_ASC, (const unsigned char *)"Berlin", -1, -1,
                                   0);
        X509_NAME_add_entry_by_txt(n, "OU", MBSTRING_ASC, (const unsigned char *)"Evil OU", -1, -1,
                                   0);
        X509_NAME_add_entry_by_txt(n, "emailAddress", MBSTRING_ASC,
                                   (const unsigned char *)"dev@example.com", -1, -1, 0);
    }
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    if (extras) {
        STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
        sk_X509_EXTENSION_push(
            exts, X509V3_EXT_nconf_nid(NULL, NULL, NID_basic_constraints, "critical,CA:TRUE"));
        sk_X509_EXTENSION_push(exts, X509V3_EXT_nconf_nid(NULL, NULL, NID_subject_alt_name,
                                                          "DNS:evil.example,email:a@b.c"));
        sk_X509_EXTENSION_push(
            exts, X509V3_EXT_nconf_nid(NULL, NULL, NID_key_usage, "critical,keyCertSign"));
        sk_X509_EXTENSION_push(
            exts, X509V3_EXT_nconf_nid(NULL, NULL, NID_ext_key_usage, "serverAuth,codeSigning"));
        ck_assert_int_eq(sk_X509_EXTENSION_num(exts), 4);
        ck_assert_int_eq(X509_REQ_add_extensions(req, exts), 1);
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    }
    ck_assert_int_eq(X509_REQ_set_pubkey(req, key), 1);
    ck_assert_int_gt(X509_REQ_sign(req, key, EVP_sha256()), 0);
    len = i2d_X509_REQ(req, &b.p);
    ck_assert_int_gt(len, 0);
    b.len = (size_t)len;
    X509_REQ_free(req);
    return b;
}

/* EVP_DigestSign of tbs with the digest the profile names for the key type. */
static blob_t sign_tbs(EVP_PKEY *key, enum lc_key_type kt, const der_buf_t *tbs)
{
    EVP_MD_CTX *mc = EVP_MD_CTX_new();
    const EVP_MD *md = EVP_get_digestbynid(profile_md_nid(kt));
    blob_t sig = {NULL, 0};
    size_t n = 0;

    ck_assert(mc != NULL && md != NULL);
    ck_assert_int_eq(EVP_DigestSignInit(mc, NULL, md, NULL, key), 1);
    ck_assert_int_eq(EVP_DigestSign(mc, NULL, &n, tbs->p, tbs->len), 1);
    sig.p = malloc(n);
    ck_assert_ptr_nonnull(sig.p);
    ck_assert_int_eq(EVP_DigestSign(mc, sig.p, &n, tbs->p, tbs->len), 1);
    sig.len = n;
    EVP_MD_CTX_free(mc);
    return sig;
}

/* Signs and assembles a TBS; returns the certificate as OpenSSL parses it. */
static X509 *sign_and_assemble(EVP_PKEY *signer, enum lc_key_type kt, const der_buf_t *tbs)
{
    blob_t sig = sign_tbs(signer, kt, tbs);
    der_buf_t cert = {0};
    X509 *x;

    ck_assert_int_eq(profile_assemble(kt, tbs->p, tbs->len, sig.p, sig.len, &cert), LC_OK);
    x = x509_from_der(cert.p, cert.len);
    der_buf_free(&cert);
    blob_free(&sig);
    return x;
}

/* What one issuance needs and gives; released with issued_free(). */
typedef struct issued {
    blob_t csr_der;
    lc_csr_t csr;
    X509 *cert;
} issued_t;

/* Issues a leaf for dev's CSR under ca (certificate + key) with the given profile inputs. */
static void issue_full(issued_t *out, EVP_PKEY *ca_key, X509 *ca, EVP_PKEY *dev, int extras,
                       const char *o, const char *ou, int64_t nb, int64_t na)
{
    profile_issuer_t iss;
    profile_leaf_t leaf;
    lc_refusal_t why;
    der_buf_t tbs = {0};
    char err[256] = "";

    memset(out, 0, sizeof *out);
    out->csr_der = csr_for(dev, "dev-0042", extras);
    ck_assert_int_eq(policy_csr_parse(out->csr_der.p, out->csr_der.len, &out->csr, &why), 0);
    ck_assert_int_eq(profile_issuer_from_cert(ca, &iss, err, sizeof err), LC_OK);
    memset(&leaf, 0, sizeof leaf);
    leaf.csr = &out->csr;
    leaf.o = o;
    leaf.ou = ou;
    memcpy(leaf.serial, SERIAL, sizeof SERIAL);
    leaf.not_before = nb;
    leaf.not_after = na;
    ck_assert_int_eq(profile_leaf_tbs(&iss, &leaf, &tbs), LC_OK);
    ck_assert_int_eq(tbs.failed, 0);
    out->cert = sign_and_assemble(ca_key, iss.key_type, &tbs);
    der_buf_free(&tbs);
    profile_issuer_clear(&iss);
}

/* The usual leaf: P-256 CA, P-256 device, O/OU from config, one year. */
static void issue_std(issued_t *out)
{
    issue_full(out, ca_p256, cacert_p256, dev_p256, 0, O_CONFIG, OU_CONFIG, g_now - 300,
               g_now + YEAR);
}

static void issued_free(issued_t *is)
{
    X509_free(is->cert);
    blob_free(&is->csr_der);
}

static int64_t time_of(const ASN1_TIME *t)
{
    struct tm tm;
    ck_assert_int_eq(ASN1_TIME_to_tm(t, &tm), 1);
    return (int64_t)timegm(&tm);
}

/* Asserts extension nid is present once, with the criticality and exact DER value given. */
static void check_ext(X509 *x, int nid, int critical, const unsigned char *want, size_t want_len)
{
    int i = X509_get_ext_by_NID(x, nid, -1);
    X509_EXTENSION *e;
    const ASN1_OCTET_STRING *v;

    ck_assert_msg(i >= 0, "extension %s missing", OBJ_nid2sn(nid));
    ck_assert_msg(X509_get_ext_by_NID(x, nid, i) < 0, "extension %s twice", OBJ_nid2sn(nid));
    e = X509_get_ext(x, i);
    ck_assert_msg(X509_EXTENSION_get_critical(e) == critical, "%s critical=%d", OBJ_nid2sn(nid),
                  X509_EXTENSION_get_critical(e));
    v = X509_EXTENSION_get_data(e);
    ck_assert_uint_eq((size_t)ASN1_STRING_length(v), want_len);
    ck_assert_mem_eq(ASN1_STRING_get0_data(v), want, want_len);
}

static void check_sigalg(X509 *x, int nid, int want_null_param)
{
    const X509_ALGOR *outer = NULL, *inner = X509_get0_tbs_sigalg(x);
    const ASN1_OBJECT *obj;
    int ptype = -1;
    const void *pval;

    X509_get0_signature(NULL, &outer, x);
    ck_assert_int_eq(X509_get_signature_nid(x), nid);
    ck_assert_int_eq(X509_ALGOR_cmp(outer, inner), 0);
    X509_ALGOR_get0(&obj, &ptype, &pval, outer);
    ck_assert_int_eq(OBJ_obj2nid(obj), nid);
    ck_assert_int_eq(ptype, want_null_param ? V_ASN1_NULL : V_ASN1_UNDEF);
}

/* SHA-1 over the subjectPublicKey BIT STRING contents (RFC 5280 4.2.1.2 method 1). */
static void key_id_of(X509 *x, unsigned char out[20])
{
    unsigned int n = 0;
    ck_assert_int_eq(X509_pubkey_digest(x, EVP_sha1(), out, &n), 1);
    ck_assert_uint_eq(n, 20);
}

static int chain_error(X509 *leaf, X509 *const *untrusted, int n_untrusted, X509 *root, int purpose)
{
    X509_STORE *st = X509_STORE_new();
    STACK_OF(X509) *un = sk_X509_new_null();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int err;

    ck_assert(st != NULL && un != NULL && ctx != NULL);
    ck_assert_int_eq(X509_STORE_add_cert(st, root), 1);
    for (int i = 0; i < n_untrusted; i++)
        sk_X509_push(un, untrusted[i]);
    ck_assert_int_eq(X509_STORE_CTX_init(ctx, st, leaf, un), 1);
    X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(ctx), X509_V_FLAG_X509_STRICT);
    if (purpose > 0)
        ck_assert_int_eq(X509_STORE_CTX_set_purpose(ctx, purpose), 1);
    err = X509_verify_cert(ctx) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
    X509_STORE_CTX_free(ctx);
    sk_X509_free(un);
    X509_STORE_free(st);
    return err;
}

#define ck_assert_chain_ok(e)                                                                      \
    do {                                                                                           \
        int e_ = (e);                                                                              \
        ck_assert_msg(e_ == X509_V_OK, "chain does not verify: %s",                                \
                      X509_verify_cert_error_string(e_));                                          \
    } while (0)

/* ================= leaf profile ================= */

START_TEST(test_leaf_version_3)
{
    issued_t is;
    issue_std(&is);
    ck_assert_int_eq(X509_get_version(is.cert), X509_VERSION_3);
    issued_free(&is);
}
END_TEST

START_TEST(test_leaf_serial_as_given_and_positive)
{
    issued_t is;
    const ASN1_INTEGER *sn;
    BIGNUM *bn;

    issue_std(&is);
    sn = X509_get0_serialNumber(is.cert);
    ck_assert_int_eq(ASN1_STRING_type(sn), V_ASN1_INTEGER); /* not V_ASN1_NEG_INTEGER */
    ck_assert_int_eq(ASN1_STRING_length(sn), PROFILE_SERIAL_LEN);
    ck_assert_mem_eq(ASN1_STRING_get0_data(sn), SERIAL, PROFILE_SERIAL_LEN);
    bn = ASN1_INTEGER_to_BN(sn, NULL);
    ck_assert_int_eq(BN_is_negative(bn), 0);
    ck_assert_int_eq(BN_num_bits(bn), 126); /* 0x3a... */
    BN_free(bn);
    issued_free(&is);
}
END_TEST

START_TEST(test_leaf_issuer_is_ca_subject)
{
    issued_t is;
    unsigned char *a = NULL, *b = NULL;
    int la, lb;

    issue_std(&is);
    ck_assert_int_eq(
        X509_NAME_cmp(X509_get_issuer_name(is.cert), X509_get_subject_name(cacert_p256)), 0);
    la = i2d_X509_NAME(X509_get_issuer_name(is.cert), &a);
    lb = i2d_X509_NAME(X509_get_subject_name(cacert_p256), &b);
    ck_assert_int_eq(la, lb);
    ck_assert_mem_eq(a, b, (size_t)la);
    ck_assert_int_eq(X509_check_issued(cacert_p256, is.cert), X509_V_OK);
    OPENSSL_free(a);
    OPENSSL_free(b);
    issued_free(&is);
}
END_TEST

static void check_entry(const X509_NAME *n, int i, int nid, const char *value)
{
    const X509_NAME_ENTRY *e = X509_NAME_get_entry(n, i);
    const ASN1_STRING *d;

    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(OBJ_obj2nid(X509_NAME_ENTRY_get_object(e)), nid);
    ck_assert_int_eq(X509_NAME_ENTRY_set(e), i); /* each attribute its own RDN */
    d = X509_NAME_ENTRY_get_data(e);
    ck_assert_int_eq(ASN1_STRING_type(d), V_ASN1_UTF8STRING);
    ck_assert_uint_eq((size_t)ASN1_STRING_length(d), strlen(value));
    ck_assert_mem_eq(ASN1_STRING_get0_data(d), value, strlen(value));
}

START_TEST(test_leaf_subject_o_ou_cn_in_order)
{
    issued_t is;
    const X509_NAME *n;

    issue_std(&is);
    n = X509_get_subject_name(is.cert);
    ck_assert_int_eq(X509_NAME_entry_count(n), 3);
    check_entry(n, 0, NID_organizationName, O_CONFIG);
    check_entry(n, 1, NID_organizationalUnitName, OU_CONFIG);
    check_entry(n, 2, NID_commonName, "dev-0042");
    issued_free(&is);
}
END_TEST

START_TEST(test_leaf_subject_cn_only_without_o_ou)
{
    issued_t is;
    const X509_NAME *n;

    issue_full(&is, ca_p256, cacert_p256, dev_p256, 0, NULL, NULL, g_now - 300, g_now + YEAR);
    n = X509_get_subject_name(is.cert);
    ck_assert_int_eq(X509_NAME_entry_count(n), 1);
    check_entry(n, 0, NID_commonName, "dev-0042");
    issued_free(&is);
}
END_TEST

START_TEST(test_leaf_subject_o_without_ou)
{
    issued_t is;
    const X509_NAME *n;

    issue_full(&is, ca_p256, cacert_p256, dev_p256, 0, O_CONFIG, NULL, g_now - 300, g_now + YEAR);
    n = X509_get_subject_name(is.cert);
    ck_assert_int_eq(X509_NAME_entry_count(n), 2);
    check_entry(n, 0, NID_organizationName, O_CONFIG);
    check_entry(n, 1, NID_commonName, "dev-0042");
    issued_free(&is);
}
END_TEST

START_TEST(test_leaf_validity_as_given)
{
    issued_t is;
    int64_t nb = g_now - 300, na = g_now + 3650LL * 86400 / 10;

    issue_full(&is, ca_p256, cacert_p256, dev_p256, 0, O_CONFIG, OU_CONFIG, nb, na);
    ck_assert_int_eq(time_of(X509_get0_notBefore(is.cert)), nb);
    ck_assert_int_eq(time_of(X509_get0_notAfter(is.cert)), na);
    issued_free(&is);
}
END_TEST

START_TEST(test_leaf_not_after_capped_at_ca)
{
    issued_t is;

    issue_full(&is, ca_p256, cacert_p256, dev_p256, 0, O_CONFIG, OU_CONFIG, g_now - 300,
               g_ca_not_after + 100LL * 86400);
    ck_assert_int_eq(time_of(X509_get0_notAfter(is.cert)), g_ca_not_after);
    ck_assert_int_eq(time_of(X509_get0_notBefore(is.cert)), g_now - 300);
    issued_free(&is);
}
END_TEST

START_TEST(test_leaf_not_after_equal_to_ca_kept)
{
    issued_t is;

    issue_full(&is, ca_p256, cacert_p256, dev_p256, 0, O_CONFIG, OU_CONFIG, g_now - 300,
               g_ca_not_after);
    ck_assert_int_eq(time_of(X509_get0_notAfter(is.cert)), g_ca_not_after);
    issued_free(&is);
}
END_TEST

START_TEST(test_leaf_generalized_time_from_2050)
{
    issued_t is;
    const ASN1_TIME *na;

    issue_full(&is, ca_p256, cacert_far, dev_p256, 0, O_CONFIG, OU_CONFIG, g_now - 300, T_2050);
    na = X509_get0_notAfter(is.cert);
    ck_assert_int_eq(ASN1_STRING_type(na), V_ASN1_GENERALIZEDTIME);
    ck_assert_int_eq(ASN1_STRING_length(na), 15);
    ck_assert_mem_eq(ASN1_STRING_get0_data(na), "20500101000000Z", 15);
    ck_assert_int_eq(ASN1_STRING_type(X509_get0_notBefore(is.cert)), V_ASN1_UTCTIME);
    issued_free(&is);
}
END_TEST

START_TEST(test_leaf_utctime_before_2050)
{
    issued_t is;
    const ASN1_TIME *na;

    issue_full(&is, ca_p256, cacert_far, dev_p256, 0, O_CONFIG, OU_CONFIG, g_now - 300, T_2050 - 1);
    na = X509_get0_notAfter(is.cert);
    ck_assert_int_eq(ASN1_STRING_type(na), V_ASN1_UTCTIME);
    ck_assert_int_eq(ASN1_STRING_length(na), 13);
    ck_assert_mem_eq(ASN1_STRING_get0_data(na), "491231235959Z", 13);
    issued_free(&is);
}
END_TEST

START_TEST(test_leaf_basic_constraints_critical_ca_false)
{
    static const unsigned char empty_seq[] = {0x30, 0x00}; /* cA DEFAULT FALSE omitted */
    issued_t is;
    BASIC_CONSTRAINTS *bc;
    int crit = -1;

    issue_std(&is);
    check_ext(is.cert, NID_basic_constraints, 1, empty_seq, sizeof empty_seq);
    bc = X509_get_ext_d2i(is.cert, NID_basic_constraints, &crit, NULL);
    ck_assert_ptr_nonnull(bc);
    ck_assert_int_eq(bc->ca, 0);
    ck_assert_ptr_null(bc->pathlen);
    ck_assert_int_eq(X509_check_ca(is.cert), 0);
    BASIC_CONSTRAINTS_free(bc);
    issued_free(&is);
}
END_TEST

START_TEST(test_leaf_key_usage_ec_digital_signature_only)
{
    static const unsigned char ku[] = {0x03, 0x02, 0x07, 0x80};
    issued_t a, b;

    issue_std(&a);
    issue_full(&b, ca_p256, cacert_p256, dev_p384, 0, O_CONFIG, OU_CONFIG, g_now - 300,
               g_now + YEAR);
    check_ext(a.cert, NID_key_usage, 1, ku, sizeof ku);
    check_ext(b.cert, NID_key_usage, 1, ku, sizeof ku);
    ck_assert_uint_eq(X509_get_key_usage(a.cert), KU_DIGITAL_SIGNATURE);
    ck_assert_uint_eq(X509_get_key_usage(b.cert), KU_DIGITAL_SIGNATURE);
    issued_free(&a);
    issued_free(&b);
}
END_TEST

START_TEST(test_leaf_key_usage_rsa_adds_key_encipherment)
{
    static const unsigned char ku[] = {0x03, 0x02, 0x05, 0xa0};
    issued_t is;

    issue_full(&is, ca_p256, cacert_p256, dev_rsa, 0, O_CONFIG, OU_CONFIG, g_now - 300,
               g_now + YEAR);
    check_ext(is.cert, NID_key_usage, 1, ku, sizeof ku);
    ck_assert_uint_eq(X509_get_key_usage(is.cert), KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
    issued_free(&is);
}
END_TEST

START_TEST(test_leaf_eku_client_auth_only)
{
    static const unsigned char eku[] = {0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06,
                                        0x01, 0x05, 0x05, 0x07, 0x03, 0x02};
    issued_t is;

    issue_std(&is);
    check_ext(is.cert, NID_ext_key_usage, 0, eku, sizeof eku);
    ck_assert_uint_eq(X509_get_extended_key_usage(is.cert), XKU_SSL_CLIENT);
    ck_assert_int_eq(X509_check_purpose(is.cert, X509_PURPOSE_SSL_CLIENT, 0), 1);
    ck_assert_int_eq(X509_check_purpose(is.cert, X509_PURPOSE_SSL_SERVER, 0), 0);
    issued_free(&is);
}
END_TEST

START_TEST(test_leaf_ski_is_sha1_of_key_bits)
{
    issued_t is;
    unsigned char id[20], want[22] = {0x04, 0x14}, from_csr[20];
    unsigned int n = 0;

    issue_std(&is);
    key_id_of(is.cert, id);
    ck_assert_int_eq(
        EVP_Digest(is.csr.key_bits, is.csr.key_bits_len, from_csr, &n, EVP_sha1(), NULL), 1);
    ck_assert_mem_eq(id, from_csr, 20);
    memcpy(want + 2, id, 20);
    check_ext(is.cert, NID_subject_key_identifier, 0, want, sizeof want);
    issued_free(&is);
}
END_TEST

START_TEST(test_leaf_aki_is_ca_ski)
{
    issued_t is;
    const ASN1_OCTET_STRING *ca_ski = X509_get0_subject_key_id(cacert_p256);
    unsigned char want[24] = {0x30, 0x16, 0x80, 0x14};
    AUTHORITY_KEYID *aki;

    ck_assert_ptr_nonnull(ca_ski);
    ck_assert_int_eq(ASN1_STRING_length(ca_ski), 20);
    memcpy(want + 4, ASN1_STRING_get0_data(ca_ski), 20);
    issue_std(&is);
    check_ext(is.cert, NID_authority_key_identifier, 0, want, sizeof want);
    aki = X509_get_ext_d2i(is.cert, NID_authority_key_identifier, NULL, NULL);
    ck_assert_ptr_nonnull(aki);
    ck_assert_ptr_null(aki->issuer);
    ck_assert_ptr_null(aki->serial);
    ck_assert_int_eq(ASN1_OCTET_STRING_cmp(aki->keyid, ca_ski), 0);
    AUTHORITY_KEYID_free(aki);
    issued_free(&is);
}
END_TEST

START_TEST(test_leaf_exactly_five_extensions_in_order)
{
    static const int order[] = {NID_basic_constraints, NID_key_usage, NID_ext_key_usage,
                                NID_subject_key_identifier, NID_authority_key_identifier};
    issued_t is;

    issue_std(&is);
    ck_assert_int_eq(X509_get_ext_count(is.cert), 5);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(OBJ_obj2nid(X509_EXTENSION_get_object(X509_get_ext(is.cert, i))),
                         order[i]);
    issued_free(&is);
}
END_TEST

START_TEST(test_leaf_sigalg_p256_ca)
{
    issued_t is;
    issue_std(&is);
    check_sigalg(is.cert, NID_ecdsa_with_SHA256, 0);
    issued_free(&is);
}
END_TEST

START_TEST(test_leaf_sigalg_p384_ca)
{
    issued_t is;
    issue_full(&is, ca_p384, cacert_p384, dev_p256, 0, O_CONFIG, OU_CONFIG, g_now - 300,
               g_now + YEAR);
    check_sigalg(is.cert, NID_ecdsa_with_SHA384, 0);
    issued_free(&is);
}
END_TEST

START_TEST(test_leaf_sigalg_rsa_ca)
{
    issued_t is;
    issue_full(&is, ca_rsa, cacert_rsa, dev_p256, 0, O_CONFIG, OU_CONFIG, g_now - 300,
               g_now + YEAR);
    check_sigalg(is.cert, NID_sha256WithRSAEncryption, 1);
    issued_free(&is);
}
END_TEST

/* 3 CA keys x 3 device keys */
START_TEST(test_leaf_verifies_with_ca_key)
{
    EVP_PKEY *ca_keys[3] = {ca_p256, ca_p384, ca_rsa};
    X509 *cas[3] = {cacert_p256, cacert_p384, cacert_rsa};
    EVP_PKEY *devs[3] = {dev_p256, dev_p384, dev_rsa};
    issued_t is;

    issue_full(&is, ca_keys[_i / 3], cas[_i / 3], devs[_i % 3], 0, O_CONFIG, OU_CONFIG, g_now - 300,
               g_now + YEAR);
    ck_assert_int_eq(X509_verify(is.cert, X509_get0_pubkey(cas[_i / 3])), 1);
    ck_assert_int_ne(X509_verify(is.cert, X509_get0_pubkey(cas[(_i / 3 + 1) % 3])), 1);
    issued_free(&is);
}
END_TEST

START_TEST(test_leaf_chain_verifies_strict_client_auth)
{
    issued_t is;

    issue_std(&is);
    ck_assert_chain_ok(chain_error(is.cert, NULL, 0, cacert_p256, X509_PURPOSE_SSL_CLIENT));
    issued_free(&is);
}
END_TEST

START_TEST(test_leaf_public_key_is_csrs)
{
    issued_t is;
    blob_t spki = spki_der(dev_rsa);
    unsigned char *leaf_spki = NULL;
    int n;

    issue_full(&is, ca_p256, cacert_p256, dev_rsa, 0, O_CONFIG, OU_CONFIG, g_now - 300,
               g_now + YEAR);
    ck_assert_int_eq(EVP_PKEY_eq(X509_get0_pubkey(is.cert), dev_rsa), 1);
    n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(is.cert), &leaf_spki);
    ck_assert_uint_eq((size_t)n, is.csr.spki_len);
    ck_assert_mem_eq(leaf_spki, is.csr.spki, is.csr.spki_len);
    ck_assert_mem_eq(leaf_spki, spki.p, spki.len);
    OPENSSL_free(leaf_spki);
    blob_free(&spki);
    issued_free(&is);
}
END_TEST

START_TEST(test_leaf_copies_nothing_else_from_csr)
{
    static const unsigned char ku[] = {0x03, 0x02, 0x07, 0x80};
    issued_t is;
    const X509_NAME *n;

    issue_full(&is, ca_p256, cacert_p256, dev_p256, 1, O_CONFIG, OU_CONFIG, g_now - 300,
               g_now + YEAR);
    n = X509_get_subject_name(is.cert);
    ck_assert_int_eq(X509_NAME_entry_count(n), 3);
    check_entry(n, 0, NID_organizationName, O_CONFIG);
    check_entry(n, 1, NID_organizationalUnitName, OU_CONFIG);
    check_entry(n, 2, NID_commonName, "dev-0042");
    ck_assert_int_lt(X509_NAME_get_index_by_NID(n, NID_localityName, -1), 0);
    ck_assert_int_lt(X509_NAME_get_index_by_NID(n, NID_pkcs9_emailAddress, -1), 0);
    ck_assert_int_eq(X509_get_ext_count(is.cert), 5);
    ck_assert_int_lt(X509_get_ext_by_NID(is.cert, NID_subject_alt_name, -1), 0);
    ck_assert_int_eq(X509_check_ca(is.cert), 0);
    check_ext(is.cert, NID_key_usage, 1, ku, sizeof ku);
    ck_assert_uint_eq(X509_get_extended_key_usage(is.cert), XKU_SSL_CLIENT);
    issued_free(&is);
}
END_TEST

START_TEST(test_leaf_tbs_appends_to_buffer)
{
    issued_t is;
    profile_issuer_t iss;
    profile_leaf_t leaf;
    lc_refusal_t why;
    der_buf_t alone = {0}, after = {0};
    char err[256];

    is.csr_der = csr_for(dev_p256, "dev-0042", 0);
    ck_assert_int_eq(policy_csr_parse(is.csr_der.p, is.csr_der.len, &is.csr, &why), 0);
    ck_assert_int_eq(profile_issuer_from_cert(cacert_p256, &iss, err, sizeof err), LC_OK);
    memset(&leaf, 0, sizeof leaf);
    leaf.csr = &is.csr;
    memcpy(leaf.serial, SERIAL, sizeof SERIAL);
    leaf.not_before = g_now;
    leaf.not_after = g_now + YEAR;
    der_put_raw(&after, "abc", 3);
    ck_assert_int_eq(profile_leaf_tbs(&iss, &leaf, &alone), LC_OK);
    ck_assert_int_eq(profile_leaf_tbs(&iss, &leaf, &after), LC_OK);
    ck_assert_uint_eq(after.len, alone.len + 3);
    ck_assert_mem_eq(after.p, "abc", 3);
    ck_assert_mem_eq(after.p + 3, alone.p, alone.len);
    der_buf_free(&alone);
    der_buf_free(&after);
    profile_issuer_clear(&iss);
    blob_free(&is.csr_der);
}
END_TEST

/* ================= issuer from a CA certificate ================= */

START_TEST(test_issuer_from_p256_ca)
{
    profile_issuer_t iss;
    char err[256] = "";
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(cacert_p256);
    unsigned char *name = NULL;
    int nl;

    ck_assert_int_eq(profile_issuer_from_cert(cacert_p256, &iss, err, sizeof err), LC_OK);
    ck_assert_int_eq(iss.key_type, LC_KEY_EC_P256);
    ck_assert_uint_eq(iss.ski_len, (size_t)ASN1_STRING_length(ski));
    ck_assert_mem_eq(iss.ski, ASN1_STRING_get0_data(ski), iss.ski_len);
    ck_assert_int_eq(iss.not_after, g_ca_not_after);
    nl = i2d_X509_NAME(X509_get_subject_name(cacert_p256), &name);
    ck_assert_uint_eq(iss.name_len, (size_t)nl);
    ck_assert_mem_eq(iss.name_der, name, (size_t)nl);
    OPENSSL_free(name);
    profile_issuer_clear(&iss);
}
END_TEST

START_TEST(test_issuer_key_types_p384_rsa)
{
    profile_issuer_t iss;
    char err[256] = "";

    ck_assert_int_eq(profile_issuer_from_cert(cacert_p384, &iss, err, sizeof err), LC_OK);
    ck_assert_int_eq(iss.key_type, LC_KEY_EC_P384);
    profile_issuer_clear(&iss);
    ck_assert_int_eq(profile_issuer_from_cert(cacert_rsa, &iss, err, sizeof err), LC_OK);
    ck_assert_int_eq(iss.key_type, LC_KEY_RSA);
    profile_issuer_clear(&iss);
}
END_TEST

START_TEST(test_issuer_without_ski_is_config_error)
{
    X509 *ca = openssl_ca(ca_p256, EVP_sha256(), g_ca_not_after, 0);
    profile_issuer_t iss;
    char err[256] = "";

    ck_assert_int_eq(profile_issuer_from_cert(ca, &iss, err, sizeof err), LC_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err, "SKI"));
    ck_assert_ptr_null(iss.name_der);
    X509_free(ca);
}
END_TEST

START_TEST(test_issuer_p521_is_config_error)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
    X509 *ca;
    profile_issuer_t iss;
    char err[256] = "";

    ck_assert_ptr_nonnull(k);
    ca = openssl_ca(k, EVP_sha512(), g_ca_not_after, 1);
    ck_assert_int_eq(profile_issuer_from_cert(ca, &iss, err, sizeof err), LC_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err, "secp521r1"));
    X509_free(ca);
    EVP_PKEY_free(k);
}
END_TEST

START_TEST(test_issuer_ed25519_is_config_error)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    X509 *ca;
    profile_issuer_t iss;
    char err[256] = "";

    ck_assert_ptr_nonnull(k);
    ca = openssl_ca(k, NULL, g_ca_not_after, 1);
    ck_assert_int_eq(profile_issuer_from_cert(ca, &iss, err, sizeof err), LC_ERR_CONFIG);
    X509_free(ca);
    EVP_PKEY_free(k);
}
END_TEST

START_TEST(test_issuer_clear)
{
    profile_issuer_t iss;
    char err[256];

    ck_assert_int_eq(profile_issuer_from_cert(cacert_p256, &iss, err, sizeof err), LC_OK);
    profile_issuer_clear(&iss);
    ck_assert_ptr_null(iss.name_der);
    ck_assert_uint_eq(iss.name_len, 0);
    ck_assert_uint_eq(iss.ski_len, 0);
    profile_issuer_clear(NULL);
}
END_TEST

START_TEST(test_md_nid_per_key_type)
{
    ck_assert_int_eq(profile_md_nid(LC_KEY_EC_P256), NID_sha256);
    ck_assert_int_eq(profile_md_nid(LC_KEY_EC_P384), NID_sha384);
    ck_assert_int_eq(profile_md_nid(LC_KEY_RSA), NID_sha256);
}
END_TEST

/* ================= CA profile (pki init) ================= */

/* A CA certificate from profile_ca_tbs; parent == NULL makes a self-signed root. */
static X509 *make_profile_ca(EVP_PKEY *key, EVP_PKEY *parent_key, X509 *parent, const char *cn,
                             int pathlen)
{
    profile_issuer_t iss;
    profile_ca_t ca;
    blob_t spki = spki_der(key);
    der_buf_t tbs = {0};
    enum lc_key_type kt;
    char err[256] = "";
    X509 *x;

    memset(&iss, 0, sizeof iss);
    memset(&ca, 0, sizeof ca);
    ca.spki = spki.p;
    ca.spki_len = spki.len;
    ca.cn = cn;
    ca.o = "linecert demo";
    ca.pathlen = pathlen;
    ck_assert_int_eq(profile_draw_serial(ca.serial), LC_OK);
    ca.not_before = g_now - 3600;
    ca.not_after = g_now + 15LL * YEAR;
    if (parent != NULL) {
        ck_assert_int_eq(profile_issuer_from_cert(parent, &iss, err, sizeof err), LC_OK);
        kt = iss.key_type;
    } else {
        kt = key_type_of(key);
    }
    ck_assert_int_eq(profile_ca_tbs(parent != NULL ? &iss : NULL, kt, &ca, &tbs), LC_OK);
    x = sign_and_assemble(parent != NULL ? parent_key : key, kt, &tbs);
    der_buf_free(&tbs);
    blob_free(&spki);
    profile_issuer_clear(&iss);
    return x;
}

static void check_bc(X509 *x, int pathlen)
{
    static const unsigned char none[] = {0x30, 0x03, 0x01, 0x01, 0xff};
    unsigned char with[] = {0x30, 0x06, 0x01, 0x01, 0xff, 0x02, 0x01, (unsigned char)pathlen};
    BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(x, NID_basic_constraints, NULL, NULL);

    if (pathlen < 0)
        check_ext(x, NID_basic_constraints, 1, none, sizeof none);
    else
        check_ext(x, NID_basic_constraints, 1, with, sizeof with);
    ck_assert_ptr_nonnull(bc);
    ck_assert_int_ne(bc->ca, 0);
    if (pathlen < 0)
        ck_assert_ptr_null(bc->pathlen);
    else
        ck_assert_int_eq(ASN1_INTEGER_get(bc->pathlen), pathlen);
    BASIC_CONSTRAINTS_free(bc);
}

START_TEST(test_root_is_self_signed)
{
    X509 *root = make_profile_ca(ca_p256, NULL, NULL, "linecert Demo Root CA", -1);

    ck_assert_int_eq(X509_get_version(root), X509_VERSION_3);
    ck_assert_int_eq(X509_NAME_cmp(X509_get_issuer_name(root), X509_get_subject_name(root)), 0);
    ck_assert_int_eq(X509_verify(root, ca_p256), 1);
    ck_assert_int_eq(X509_check_issued(root, root), X509_V_OK);
    ck_assert_uint_ne(X509_get_extension_flags(root) & EXFLAG_SS, 0);
    X509_free(root);
}
END_TEST

START_TEST(test_root_subject_o_then_cn)
{
    X509 *root = make_profile_ca(ca_p256, NULL, NULL, "linecert Demo Root CA", -1);
    const X509_NAME *n = X509_get_subject_name(root);

    ck_assert_int_eq(X509_NAME_entry_count(n), 2);
    check_entry(n, 0, NID_organizationName, "linecert demo");
    check_entry(n, 1, NID_commonName, "linecert Demo Root CA");
    X509_free(root);
}
END_TEST

START_TEST(test_root_basic_constraints_no_pathlen)
{
    X509 *root = make_profile_ca(ca_p256, NULL, NULL, "Root", -1);
    check_bc(root, -1);
    ck_assert_int_eq(X509_check_ca(root), 1);
    X509_free(root);
}
END_TEST

START_TEST(test_root_aki_equals_ski)
{
    X509 *root = make_profile_ca(ca_p384, NULL, NULL, "Root", -1);
    unsigned char id[20], ski[22] = {0x04, 0x14}, aki[24] = {0x30, 0x16, 0x80, 0x14};

    key_id_of(root, id);
    memcpy(ski + 2, id, 20);
    memcpy(aki + 4, id, 20);
    check_ext(root, NID_subject_key_identifier, 0, ski, sizeof ski);
    check_ext(root, NID_authority_key_identifier, 0, aki, sizeof aki);
    X509_free(root);
}
END_TEST

START_TEST(test_ca_key_usage_cert_sign_crl_sign)
{
    static const unsigned char ku[] = {0x03, 0x02, 0x01, 0x06};
    X509 *root = make_profile_ca(ca_rsa, NULL, NULL, "Root", -1);

    check_ext(root, NID_key_usage, 1, ku, sizeof ku);
    ck_assert_uint_eq(X509_get_key_usage(root), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
    X509_free(root);
}
END_TEST

START_TEST(test_ca_exactly_four_extensions_in_order)
{
    static const int order[] = {NID_basic_constraints, NID_key_usage, NID_subject_key_identifier,
                                NID_authority_key_identifier};
    X509 *root = make_profile_ca(ca_p256, NULL, NULL, "Root", -1);

    ck_assert_int_eq(X509_get_ext_count(root), 4);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(OBJ_obj2nid(X509_EXTENSION_get_object(X509_get_ext(root, i))), order[i]);
    X509_free(root);
}
END_TEST

START_TEST(test_intermediate_pathlen_1)
{
    X509 *root = make_profile_ca(ca_p256, NULL, NULL, "Root", -1);
    X509 *factory = make_profile_ca(ca_p384, ca_p256, root, "Factory", 1);

    check_bc(factory, 1);
    X509_free(factory);
    X509_free(root);
}
END_TEST

START_TEST(test_intermediate_pathlen_0)
{
    X509 *root = make_profile_ca(ca_p256, NULL, NULL, "Root", -1);
    X509 *line = make_profile_ca(ca_p384, ca_p256, root, "Line", 0);

    check_bc(line, 0);
    X509_free(line);
    X509_free(root);
}
END_TEST

START_TEST(test_intermediate_issuer_aki_and_signature_from_parent)
{
    X509 *root = make_profile_ca(ca_rsa, NULL, NULL, "Root", -1);
    X509 *factory = make_profile_ca(ca_p256, ca_rsa, root, "Factory", 1);
    unsigned char parent_id[20], own_id[20], aki[24] = {0x30, 0x16, 0x80, 0x14},
                                             ski[22] = {0x04, 0x14};

    ck_assert_int_eq(X509_NAME_cmp(X509_get_issuer_name(factory), X509_get_subject_name(root)), 0);
    key_id_of(root, parent_id);
    key_id_of(factory, own_id);
    memcpy(aki + 4, parent_id, 20);
    memcpy(ski + 2, own_id, 20);
    check_ext(factory, NID_authority_key_identifier, 0, aki, sizeof aki);
    check_ext(factory, NID_subject_key_identifier, 0, ski, sizeof ski);
    check_sigalg(factory, NID_sha256WithRSAEncryption, 1); /* the signer's key decides */
    ck_assert_int_eq(X509_verify(factory, ca_rsa), 1);
    ck_assert_int_ne(X509_verify(factory, ca_p256), 1);
    X509_free(factory);
    X509_free(root);
}
END_TEST

START_TEST(test_root_sigalg_p384)
{
    X509 *root = make_profile_ca(ca_p384, NULL, NULL, "Root", -1);
    check_sigalg(root, NID_ecdsa_with_SHA384, 0);
    X509_free(root);
}
END_TEST

START_TEST(test_pki_chain_verifies_strict)
{
    X509 *root = make_profile_ca(ca_p384, NULL, NULL, "linecert Demo Root CA", -1);
    X509 *factory = make_profile_ca(ca_rsa, ca_p384, root, "linecert Demo Factory CA", 1);
    X509 *line = make_profile_ca(ca_p256, ca_rsa, factory, "linecert Line 1 CA", 0);
    X509 *untrusted[2] = {line, factory};
    issued_t is;

    issue_full(&is, ca_p256, line, dev_p256, 0, O_CONFIG, OU_CONFIG, g_now - 300, g_now + YEAR);
    ck_assert_chain_ok(chain_error(is.cert, untrusted, 2, root, X509_PURPOSE_SSL_CLIENT));
    ck_assert_chain_ok(chain_error(line, &factory, 1, root, 0));
    issued_free(&is);
    X509_free(line);
    X509_free(factory);
    X509_free(root);
}
END_TEST

START_TEST(test_pathlen_0_line_cannot_issue_a_ca)
{
    /* a CA certificate made under the line CA is useless: its leaves do not verify */
    X509 *root = make_profile_ca(ca_p384, NULL, NULL, "Root", -1);
    X509 *line = make_profile_ca(ca_p256, ca_p384, root, "Line", 0);
    X509 *sub = make_profile_ca(ca_rsa, ca_p256, line, "Rogue", 0);
    X509 *untrusted[2] = {sub, line};
    issued_t is;

    issue_full(&is, ca_rsa, sub, dev_p256, 0, O_CONFIG, OU_CONFIG, g_now - 300, g_now + YEAR);
    ck_assert_int_eq(chain_error(is.cert, untrusted, 2, root, 0), X509_V_ERR_PATH_LENGTH_EXCEEDED);
    issued_free(&is);
    X509_free(sub);
    X509_free(line);
    X509_free(root);
}
END_TEST

/* ================= serial numbers ================= */

static unsigned char (*draw_many(void))[PROFILE_SERIAL_LEN]
{
    unsigned char(*s)[PROFILE_SERIAL_LEN] = calloc(N_SERIALS, PROFILE_SERIAL_LEN);

    ck_assert_ptr_nonnull(s);
    for (int i = 0; i < N_SERIALS; i++)
        ck_assert_int_eq(profile_draw_serial(s[i]), LC_OK);
    return s;
}

START_TEST(test_serial_first_byte_range)
{
    unsigned char(*s)[PROFILE_SERIAL_LEN] = draw_many();

    for (int i = 0; i < N_SERIALS; i++)
        ck_assert_msg(s[i][0] >= 0x01 && s[i][0] <= 0x7f, "draw %d: first byte 0x%02x", i, s[i][0]);
    free(s);
}
END_TEST

static int cmp_serial(const void *a, const void *b)
{
    return memcmp(a, b, PROFILE_SERIAL_LEN);
}

START_TEST(test_serial_distinct)
{
    unsigned char(*s)[PROFILE_SERIAL_LEN] = draw_many();

    qsort(s, N_SERIALS, PROFILE_SERIAL_LEN, cmp_serial);
    for (int i = 1; i < N_SERIALS; i++)
        ck_assert_msg(memcmp(s[i - 1], s[i], PROFILE_SERIAL_LEN) != 0, "duplicate serial");
    free(s);
}
END_TEST

/* 80 random bits, balanced; the 48-bit millisecond time before them (docs/profile.md). */
START_TEST(test_serial_bits_balanced)
{
    unsigned char(*s)[PROFILE_SERIAL_LEN] = draw_many();
    int count[PROFILE_SERIAL_LEN * 8] = {0};
    int random_bits = 0;

    for (int i = 0; i < N_SERIALS; i++)
        for (int bit = 0; bit < PROFILE_SERIAL_LEN * 8; bit++)
            count[bit] += (s[i][bit / 8] >> (7 - bit % 8)) & 1;
    ck_assert_int_eq(count[0], 0); /* the sign bit */
    /* octets 0-5: the time in milliseconds; 6-15: 80 bits from the CSPRNG */
    for (int bit = 6 * 8; bit < PROFILE_SERIAL_LEN * 8; bit++) {
        ck_assert_msg(count[bit] >= N_SERIALS * 35 / 100 && count[bit] <= N_SERIALS * 65 / 100,
                      "bit %d set in %d of %d draws", bit, count[bit], N_SERIALS);
        random_bits++;
    }
    ck_assert_int_ge(random_bits, 64);
    /* the time prefix: now, within the seconds the draws took, and never going back */
    {
        struct timespec ts;
        uint64_t first = 0, last = 0, now;
        clock_gettime(CLOCK_REALTIME, &ts);
        now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
        for (int i = 0; i < 6; i++) {
            first = first << 8 | s[0][i];
            last = last << 8 | s[N_SERIALS - 1][i];
        }
        ck_assert_msg(first <= last && last <= now && now - first < 60000,
                      "time prefix %llu..%llu, now %llu", (unsigned long long)first,
                      (unsigned long long)last, (unsigned long long)now);
    }
    free(s);
}
END_TEST

START_TEST(test_serial_encodes_as_16_octet_integer)
{
    for (int i = 0; i < 1000; i++) {
        unsigned char s[PROFILE_SERIAL_LEN];
        der_buf_t b = {0};

        ck_assert_int_eq(profile_draw_serial(s), LC_OK);
        der_put_uint(&b, s, sizeof s);
        ck_assert_uint_eq(b.len, 2 + PROFILE_SERIAL_LEN);
        ck_assert_uint_eq(b.p[0], DER_INTEGER);
        ck_assert_uint_eq(b.p[1], PROFILE_SERIAL_LEN);
        ck_assert_mem_eq(b.p + 2, s, sizeof s);
        der_buf_free(&b);
    }
}
END_TEST

START_TEST(test_serial_hex)
{
    static const unsigned char s[] = {0x01, 0xab, 0xcd, 0xef, 0x00, 0x7f, 0x80, 0xff};
    char out[2 * sizeof s + 1];
    char sentinel[4] = "xyz";

    memset(out, '#', sizeof out);
    profile_serial_hex(s, sizeof s, out);
    ck_assert_str_eq(out, "01ABCDEF007F80FF");
    profile_serial_hex(s, 0, sentinel);
    ck_assert_str_eq(sentinel, "");
}
END_TEST

START_TEST(test_serial_hex_full_length)
{
    char out[2 * PROFILE_SERIAL_LEN + 1];

    profile_serial_hex(SERIAL, PROFILE_SERIAL_LEN, out);
    ck_assert_str_eq(out, "3A0102030405060708090A0B0C0D0EFF");
}
END_TEST

/* ================= DER writer and reader ================= */

static void check_buf(const der_buf_t *b, const unsigned char *want, size_t want_len)
{
    ck_assert_int_eq(b->failed, 0);
    ck_assert_uint_eq(b->len, want_len);
    ck_assert_mem_eq(b->p, want, want_len);
}

START_TEST(test_der_uint_trims_leading_zeros)
{
    static const unsigned char in[] = {0x00, 0x00, 0x12, 0x34};
    static const unsigned char want[] = {0x02, 0x02, 0x12, 0x34};
    der_buf_t b = {0};

    der_put_uint(&b, in, sizeof in);
    check_buf(&b, want, sizeof want);
    der_buf_free(&b);
}
END_TEST

START_TEST(test_der_uint_adds_zero_for_high_bit)
{
    static const unsigned char in1[] = {0x80, 0x01}, in2[] = {0x00, 0x00, 0xff};
    static const unsigned char want1[] = {0x02, 0x03, 0x00, 0x80, 0x01},
                               want2[] = {0x02, 0x02, 0x00, 0xff};
    der_buf_t b1 = {0}, b2 = {0};

    der_put_uint(&b1, in1, sizeof in1);
    der_put_uint(&b2, in2, sizeof in2);
    check_buf(&b1, want1, sizeof want1);
    check_buf(&b2, want2, sizeof want2);
    der_buf_free(&b1);
    der_buf_free(&b2);
}
END_TEST

START_TEST(test_der_uint_zero)
{
    static const unsigned char zeros[] = {0x00, 0x00, 0x00};
    static const unsigned char want[] = {0x02, 0x01, 0x00};
    der_buf_t b1 = {0}, b2 = {0};

    der_put_uint(&b1, zeros, sizeof zeros);
    der_put_uint(&b2, zeros, 0);
    check_buf(&b1, want, sizeof want);
    check_buf(&b2, want, sizeof want);
    der_buf_free(&b1);
    der_buf_free(&b2);
}
END_TEST

START_TEST(test_der_small_int)
{
    static const struct {
        long v;
        unsigned char der[5];
        size_t len;
    } cases[] = {
        {0, {0x02, 0x01, 0x00}, 3},         {1, {0x02, 0x01, 0x01}, 3},
        {2, {0x02, 0x01, 0x02}, 3},         {127, {0x02, 0x01, 0x7f}, 3},
        {128, {0x02, 0x02, 0x00, 0x80}, 4}, {255, {0x02, 0x02, 0x00, 0xff}, 4},
        {256, {0x02, 0x02, 0x01, 0x00}, 4}, {65537, {0x02, 0x03, 0x01, 0x00, 0x01}, 5},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        der_buf_t b = {0};
        der_put_small_int(&b, cases[i].v);
        check_buf(&b, cases[i].der, cases[i].len);
        der_buf_free(&b);
    }
}
END_TEST

static const struct {
    size_t n;
    unsigned char hdr[5];
    size_t hdr_len;
} LENGTHS[] = {
    {0, {0x04, 0x00}, 2},
    {1, {0x04, 0x01}, 2},
    {127, {0x04, 0x7f}, 2},
    {128, {0x04, 0x81, 0x80}, 3},
    {255, {0x04, 0x81, 0xff}, 3},
    {256, {0x04, 0x82, 0x01, 0x00}, 4},
    {65535, {0x04, 0x82, 0xff, 0xff}, 4},
    {65536, {0x04, 0x83, 0x01, 0x00, 0x00}, 5},
    {0xffffff, {0x04, 0x83, 0xff, 0xff, 0xff}, 5},
};
#define N_LENGTHS ((int)(sizeof LENGTHS / sizeof LENGTHS[0]))

/* Loop: even _i through der_put_tlv, odd through der_begin/der_end; read back by der_next. */
START_TEST(test_der_length_minimal_and_read_back)
{
    size_t n = LENGTHS[_i / 2].n, hl = LENGTHS[_i / 2].hdr_len;
    unsigned char *val = malloc(n + 1);
    der_buf_t b = {0};
    der_cur_t c;
    der_tlv_t t;

    ck_assert_ptr_nonnull(val);
    for (size_t i = 0; i < n; i++)
        val[i] = (unsigned char)(i * 31 + 7);
    if (_i % 2 == 0) {
        der_put_tlv(&b, DER_OCTET_STRING, val, n);
    } else {
        der_begin(&b, DER_OCTET_STRING);
        der_put_raw(&b, val, n);
        der_end(&b);
    }
    ck_assert_int_eq(b.failed, 0);
    ck_assert_uint_eq(b.len, hl + n);
    ck_assert_mem_eq(b.p, LENGTHS[_i / 2].hdr, hl);
    c = (der_cur_t){b.p, b.len};
    ck_assert_int_eq(der_next(&c, &t), 0);
    ck_assert_uint_eq(t.tag, DER_OCTET_STRING);
    ck_assert_uint_eq(t.val_len, n);
    ck_assert_uint_eq(t.raw_len, hl + n);
    ck_assert_ptr_eq(t.raw, b.p);
    ck_assert_ptr_eq(t.val, b.p + hl);
    ck_assert_uint_eq(c.len, 0);
    if (n > 0)
        ck_assert_mem_eq(t.val, val, n);
    der_buf_free(&b);
    free(val);
}
END_TEST

START_TEST(test_der_nested_constructed)
{
    /* SEQUENCE { SET { NULL }, INTEGER 5 } */
    static const unsigned char want[] = {0x30, 0x07, 0x31, 0x02, 0x05, 0x00, 0x02, 0x01, 0x05};
    der_buf_t b = {0};

    der_begin(&b, DER_SEQUENCE);
    der_begin(&b, DER_SET);
    der_put_tlv(&b, DER_NULL, NULL, 0);
    der_end(&b);
    der_put_small_int(&b, 5);
    der_end(&b);
    check_buf(&b, want, sizeof want);
    ck_assert_int_eq(b.depth, 0);
    der_buf_free(&b);
}
END_TEST

START_TEST(test_der_nesting_limit_and_unbalanced_end)
{
    der_buf_t deep = {0}, unbalanced = {0};

    for (int i = 0; i < 9; i++)
        der_begin(&deep, DER_SEQUENCE);
    ck_assert_int_eq(deep.failed, 1);
    der_end(&unbalanced);
    ck_assert_int_eq(unbalanced.failed, 1);
    der_buf_free(&deep);
    der_buf_free(&unbalanced);
}
END_TEST

START_TEST(test_der_bits_and_oid)
{
    static const unsigned char oid[] = {0x55, 0x04, 0x03};
    static const unsigned char want[] = {0x03, 0x03, 0x00, 0xde, 0xad,
                                         0x06, 0x03, 0x55, 0x04, 0x03};
    der_buf_t b = {0};
    der_cur_t c;
    der_tlv_t t;

    der_put_bits(&b, "\xde\xad", 2);
    der_put_oid(&b, oid, sizeof oid);
    check_buf(&b, want, sizeof want);
    c = (der_cur_t){b.p + 5, 5};
    ck_assert_int_eq(der_next(&c, &t), 0);
    ck_assert_int_eq(der_oid_eq(&t, oid, sizeof oid), 1);
    ck_assert_int_eq(der_oid_eq(&t, oid, 2), 0);
    der_buf_free(&b);
}
END_TEST

START_TEST(test_der_too_long_for_writer_fails)
{
    /* 2^24 octets need a 4-octet length; the writer must fail, not truncate it */
    size_t n = (size_t)1 << 24;
    unsigned char *val = calloc(1, n);
    der_buf_t b = {0};

    ck_assert_ptr_nonnull(val);
    der_put_tlv(&b, DER_OCTET_STRING, val, n);
    ck_assert_msg(b.failed == 1 || (b.len == 6 + n && b.p[1] == 0x84 && b.p[2] == 0x01 &&
                                    b.p[3] == 0 && b.p[4] == 0 && b.p[5] == 0),
                  "encoded a %zu-octet value with header %02x %02x %02x %02x %02x", n, b.p[0],
                  b.p[1], b.p[2], b.p[3], b.p[4]);
    der_buf_free(&b);
    free(val);
}
END_TEST

static int next_rc(const unsigned char *p, size_t len)
{
    unsigned char *copy = malloc(len + 1); /* exact-size copy: ASan sees any overread */
    der_cur_t c;
    der_tlv_t t;
    int rc;

    ck_assert_ptr_nonnull(copy);
    memcpy(copy, p, len);
    c = (der_cur_t){copy, len};
    rc = der_next(&c, &t);
    if (rc != 0) { /* a refused read leaves the cursor alone */
        ck_assert_ptr_eq(c.p, copy);
        ck_assert_uint_eq(c.len, len);
    }
    free(copy);
    return rc;
}

START_TEST(test_der_next_rejects_non_minimal_lengths)
{
    unsigned char buf[300];

    memset(buf, 0, sizeof buf);
    /* long form for a length below 128 */
    memcpy(buf, "\x04\x81\x05", 3);
    ck_assert_int_eq(next_rc(buf, 3 + 5), -1);
    /* a leading zero length octet */
    memcpy(buf, "\x04\x82\x00\x80", 4);
    ck_assert_int_eq(next_rc(buf, 4 + 128), -1);
    memcpy(buf, "\x04\x83\x00\x00\x05", 5);
    ck_assert_int_eq(next_rc(buf, 5 + 5), -1);
    /* the same contents, minimally encoded, are fine */
    memcpy(buf, "\x04\x81\x80", 3);
    ck_assert_int_eq(next_rc(buf, 3 + 128), 0);
}
END_TEST

START_TEST(test_der_next_rejects_indefinite_length)
{
    static const unsigned char indef[] = {0x30, 0x80, 0x05, 0x00, 0x00, 0x00};
    ck_assert_int_eq(next_rc(indef, sizeof indef), -1);
}
END_TEST

START_TEST(test_der_next_rejects_lengths_beyond_buffer)
{
    static const unsigned char short_form[] = {0x04, 0x05, 1, 2, 3, 4};
    static const unsigned char long_form[] = {0x04, 0x81, 0x80, 1, 2, 3};
    static const unsigned char cut_length[] = {0x04, 0x82, 0x01};
    static const unsigned char one[] = {0x04};

    ck_assert_int_eq(next_rc(short_form, sizeof short_form), -1);
    ck_assert_int_eq(next_rc(short_form, sizeof short_form - 1), -1);
    ck_assert_int_eq(next_rc(long_form, sizeof long_form), -1);
    ck_assert_int_eq(next_rc(cut_length, sizeof cut_length), -1);
    ck_assert_int_eq(next_rc(one, 1), -1);
    ck_assert_int_eq(next_rc(one, 0), -1);
}
END_TEST

START_TEST(test_der_next_rejects_four_length_octets_and_high_tags)
{
    static const unsigned char four[] = {0x04, 0x84, 0x00, 0x00, 0x00, 0x01, 0x00};
    static const unsigned char high_tag[] = {0x1f, 0x81, 0x01, 0x00};

    ck_assert_int_eq(next_rc(four, sizeof four), -1);
    ck_assert_int_eq(next_rc(high_tag, sizeof high_tag), -1);
}
END_TEST

START_TEST(test_der_next_walks_a_sequence)
{
    static const unsigned char seq[] = {0x02, 0x01, 0x05, 0x05, 0x00, 0x04, 0x02, 0xaa, 0xbb};
    der_cur_t c = {seq, sizeof seq};
    der_tlv_t t;

    ck_assert_int_eq(der_next(&c, &t), 0);
    ck_assert_uint_eq(t.tag, DER_INTEGER);
    ck_assert_uint_eq(t.val[0], 5);
    ck_assert_int_eq(der_expect(&c, DER_INTEGER, &t), -1); /* wrong tag: cursor unchanged */
    ck_assert_ptr_eq(c.p, seq + 3);
    ck_assert_int_eq(der_expect(&c, DER_NULL, &t), 0);
    ck_assert_uint_eq(t.val_len, 0);
    ck_assert_int_eq(der_next(&c, &t), 0);
    ck_assert_uint_eq(t.val_len, 2);
    ck_assert_uint_eq(c.len, 0);
    ck_assert_int_eq(der_next(&c, &t), -1);
}
END_TEST

START_TEST(test_der_time_boundaries)
{
    static const struct {
        int64_t t;
        const char *s;
        unsigned tag;
    } cases[] = {
        {T_2050 - 1, "491231235959Z", DER_UTCTIME},
        {T_2050, "20500101000000Z", DER_GENERALIZEDTIME},
        {-631152000, "500101000000Z", DER_UTCTIME}, /* 1950-01-01 */
        {-631152001, "19491231235959Z", DER_GENERALIZEDTIME},
        {0, "700101000000Z", DER_UTCTIME},
        {1700000000, "231114221320Z", DER_UTCTIME},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        der_buf_t b = {0};
        size_t sl = strlen(cases[i].s);

        der_put_time(&b, cases[i].t);
        ck_assert_int_eq(b.failed, 0);
        ck_assert_uint_eq(b.len, 2 + sl);
        ck_assert_uint_eq(b.p[0], cases[i].tag);
        ck_assert_uint_eq(b.p[1], sl);
        ck_assert_mem_eq(b.p + 2, cases[i].s, sl);
        der_buf_free(&b);
    }
}
END_TEST

static Suite *profile_suite(void)
{
    Suite *s = suite_create("profile");
    TCase *tc;

    tc = tcase_create("leaf");
    tcase_add_test(tc, test_leaf_version_3);
    tcase_add_test(tc, test_leaf_serial_as_given_and_positive);
    tcase_add_test(tc, test_leaf_issuer_is_ca_subject);
    tcase_add_test(tc, test_leaf_subject_o_ou_cn_in_order);
    tcase_add_test(tc, test_leaf_subject_cn_only_without_o_ou);
    tcase_add_test(tc, test_leaf_subject_o_without_ou);
    tcase_add_test(tc, test_leaf_validity_as_given);
    tcase_add_test(tc, test_leaf_not_after_capped_at_ca);
    tcase_add_test(tc, test_leaf_not_after_equal_to_ca_kept);
    tcase_add_test(tc, test_leaf_generalized_time_from_2050);
    tcase_add_test(tc, test_leaf_utctime_before_2050);
    tcase_add_test(tc, test_leaf_basic_constraints_critical_ca_false);
    tcase_add_test(tc, test_leaf_key_usage_ec_digital_signature_only);
    tcase_add_test(tc, test_leaf_key_usage_rsa_adds_key_encipherment);
    tcase_add_test(tc, test_leaf_eku_client_auth_only);
    tcase_add_test(tc, test_leaf_ski_is_sha1_of_key_bits);
    tcase_add_test(tc, test_leaf_aki_is_ca_ski);
    tcase_add_test(tc, test_leaf_exactly_five_extensions_in_order);
    tcase_add_test(tc, test_leaf_sigalg_p256_ca);
    tcase_add_test(tc, test_leaf_sigalg_p384_ca);
    tcase_add_test(tc, test_leaf_sigalg_rsa_ca);
    tcase_add_loop_test(tc, test_leaf_verifies_with_ca_key, 0, 9);
    tcase_add_test(tc, test_leaf_chain_verifies_strict_client_auth);
    tcase_add_test(tc, test_leaf_public_key_is_csrs);
    tcase_add_test(tc, test_leaf_copies_nothing_else_from_csr);
    tcase_add_test(tc, test_leaf_tbs_appends_to_buffer);
    suite_add_tcase(s, tc);

    tc = tcase_create("issuer");
    tcase_add_test(tc, test_issuer_from_p256_ca);
    tcase_add_test(tc, test_issuer_key_types_p384_rsa);
    tcase_add_test(tc, test_issuer_without_ski_is_config_error);
    tcase_add_test(tc, test_issuer_p521_is_config_error);
    tcase_add_test(tc, test_issuer_ed25519_is_config_error);
    tcase_add_test(tc, test_issuer_clear);
    tcase_add_test(tc, test_md_nid_per_key_type);
    suite_add_tcase(s, tc);

    tc = tcase_create("ca");
    tcase_add_test(tc, test_root_is_self_signed);
    tcase_add_test(tc, test_root_subject_o_then_cn);
    tcase_add_test(tc, test_root_basic_constraints_no_pathlen);
    tcase_add_test(tc, test_root_aki_equals_ski);
    tcase_add_test(tc, test_ca_key_usage_cert_sign_crl_sign);
    tcase_add_test(tc, test_ca_exactly_four_extensions_in_order);
    tcase_add_test(tc, test_intermediate_pathlen_1);
    tcase_add_test(tc, test_intermediate_pathlen_0);
    tcase_add_test(tc, test_intermediate_issuer_aki_and_signature_from_parent);
    tcase_add_test(tc, test_root_sigalg_p384);
    tcase_add_test(tc, test_pki_chain_verifies_strict);
    tcase_add_test(tc, test_pathlen_0_line_cannot_issue_a_ca);
    suite_add_tcase(s, tc);

    tc = tcase_create("serial");
    tcase_add_test(tc, test_serial_first_byte_range);
    tcase_add_test(tc, test_serial_distinct);
    tcase_add_test(tc, test_serial_bits_balanced);
    tcase_add_test(tc, test_serial_encodes_as_16_octet_integer);
    tcase_add_test(tc, test_serial_hex);
    tcase_add_test(tc, test_serial_hex_full_length);
    suite_add_tcase(s, tc);

    tc = tcase_create("der");
    tcase_add_test(tc, test_der_uint_trims_leading_zeros);
    tcase_add_test(tc, test_der_uint_adds_zero_for_high_bit);
    tcase_add_test(tc, test_der_uint_zero);
    tcase_add_test(tc, test_der_small_int);
    tcase_add_loop_test(tc, test_der_length_minimal_and_read_back, 0, 2 * N_LENGTHS);
    tcase_add_test(tc, test_der_nested_constructed);
    tcase_add_test(tc, test_der_nesting_limit_and_unbalanced_end);
    tcase_add_test(tc, test_der_bits_and_oid);
    tcase_add_test(tc, test_der_too_long_for_writer_fails);
    tcase_add_test(tc, test_der_next_rejects_non_minimal_lengths);
    tcase_add_test(tc, test_der_next_rejects_indefinite_length);
    tcase_add_test(tc, test_der_next_rejects_lengths_beyond_buffer);
    tcase_add_test(tc, test_der_next_rejects_four_length_octets_and_high_tags);
    tcase_add_test(tc, test_der_next_walks_a_sequence);
    tcase_add_test(tc, test_der_time_boundaries);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr;
    int failed;

    g_now = (int64_t)time(NULL);
    g_ca_not_after = g_now + 10LL * YEAR;
    g_far_not_after = T_2050 + 10LL * YEAR;
    ca_p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ca_p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    ca_rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    dev_p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    dev_p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    dev_rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    if (!ca_p256 || !ca_p384 || !ca_rsa || !dev_p256 || !dev_p384 || !dev_rsa) {
        fprintf(stderr, "test_profile: cannot generate the test keys\n");
        return 1;
    }
    cacert_p256 = openssl_ca(ca_p256, EVP_sha256(), g_ca_not_after, 1);
    cacert_p384 = openssl_ca(ca_p384, EVP_sha384(), g_ca_not_after, 1);
    cacert_rsa = openssl_ca(ca_rsa, EVP_sha256(), g_ca_not_after, 1);
    cacert_far = openssl_ca(ca_p256, EVP_sha256(), g_far_not_after, 1);
    sr = srunner_create(profile_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    X509_free(cacert_p256);
    X509_free(cacert_p384);
    X509_free(cacert_rsa);
    X509_free(cacert_far);
    EVP_PKEY_free(ca_p256);
    EVP_PKEY_free(ca_p384);
    EVP_PKEY_free(ca_rsa);
    EVP_PKEY_free(dev_p256);
    EVP_PKEY_free(dev_p384);
    EVP_PKEY_free(dev_rsa);
    return failed == 0 ? 0 : 1;
}
