/*
 * policy.c — CSR intake and policy (see policy.h).
 *
 * The parser walks the PKCS#10 DER itself and builds the public key from
 * the bytes it found: on OpenSSL 3.0 this is several times cheaper than
 * d2i_X509_REQ + X509_REQ_verify, whose decoder setup dominates a naive
 * issuance (ARCHITECTURE.md, pitfalls), and it lets the policy see exactly
 * the bytes it is judging (no explicit curves, no surprises from lenient
 * decoders).
 *
 * An EC proof of possession is checked with ECDSA_verify() on a per-context
 * EC_KEY, an interface OpenSSL 3.0 marks deprecated but keeps: measured
 * here (tests/bench/csr-verify-bench), 42.7-44.0 µs per P-256 request
 * against 48.3-48.6 µs through a fresh EVP_PKEY (whose key object and
 * EVP_DigestVerifyInit() cost the difference), about 4 % of a whole
 * issuance.  RSA keeps the EVP path.
 */
#define OPENSSL_SUPPRESS_DEPRECATED /* EC_KEY and ECDSA_verify(), above */
#include "policy.h"

#include "der.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct policy_ctx {
    EVP_MD *md[3];          /* sha256, sha384, sha512, fetched once */
    EVP_MD_CTX *mdctx;      /* reused for every RSA verification */
    EVP_MD_CTX *hashctx;    /* reused for every EC request's digest */
    EVP_PKEY_CTX *rsa_from; /* EVP_PKEY_fromdata context, reused */
    /*
     * P-256 and P-384 keys whose point is replaced by each request's, and a
     * point to decode it into: the curve (and its Montgomery constants) is
     * built once, not per request.
     */
    EC_KEY *ec_key[2];
    EC_POINT *ec_point[2];
};

/* Encoded OID bodies. */
static const unsigned char OID_EC_PUBKEY[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01};
static const unsigned char OID_P256[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static const unsigned char OID_P384[] = {0x2b, 0x81, 0x04, 0x00, 0x22};
static const unsigned char OID_RSA[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01};
static const unsigned char OID_CN[] = {0x55, 0x04, 0x03};

struct sigalg {
    unsigned char oid[9];
    size_t oid_len;
    enum lc_key_type family; /* LC_KEY_EC_P256 stands for "any EC" here */
    int md_nid;              /* NID_undef: recognised but too weak */
    const char *name;
};

static const struct sigalg SIGALGS[] = {
    {{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02},
     8,
     LC_KEY_EC_P256,
     NID_sha256,
     "ecdsa-with-SHA256"},
    {{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03},
     8,
     LC_KEY_EC_P256,
     NID_sha384,
     "ecdsa-with-SHA384"},
    {{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04},
     8,
     LC_KEY_EC_P256,
     NID_sha512,
     "ecdsa-with-SHA512"},
    {{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01}, 7, LC_KEY_EC_P256, NID_undef, "ecdsa-with-SHA1"},
    {{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x01},
     8,
     LC_KEY_EC_P256,
     NID_undef,
     "ecdsa-with-SHA224"},
    {{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b},
     9,
     LC_KEY_RSA,
     NID_sha256,
     "sha256WithRSAEncryption"},
    {{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c},
     9,
     LC_KEY_RSA,
     NID_sha384,
     "sha384WithRSAEncryption"},
    {{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d},
     9,
     LC_KEY_RSA,
     NID_sha512,
     "sha512WithRSAEncryption"},
    {{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05},
     9,
     LC_KEY_RSA,
     NID_undef,
     "sha1WithRSAEncryption"},
    {{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x04},
     9,
     LC_KEY_RSA,
     NID_undef,
     "md5WithRSAEncryption"},
    {{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0e},
     9,
     LC_KEY_RSA,
     NID_undef,
     "sha224WithRSAEncryption"},
};

struct reason_info {
    int code;
    const char *name;
    const char *text;
};

static const struct reason_info REASONS[] = {
    {LC_REASON_NONE, "none", "No problem."},
    {LC_REASON_TOO_LARGE, "too-large", "The CSR is larger than 16 KiB."},
    {LC_REASON_MALFORMED, "malformed", "The input is not a well-formed PKCS#10 CSR."},
    {LC_REASON_BAD_SIGNATURE, "bad-signature",
     "The CSR's signature does not verify: no proof the device holds the key."},
    {LC_REASON_WEAK_HASH, "weak-hash", "The CSR is signed with a hash weaker than SHA-256."},
    {LC_REASON_SIGNATURE_ALGORITHM, "signature-algorithm",
     "The CSR's signature algorithm is not supported or does not match its key."},
    {LC_REASON_KEY_TYPE, "key-type",
     "The device key type is not allowed (EC P-256/P-384 or RSA 2048-4096 with e=65537)."},
    {LC_REASON_CN_MISSING, "cn-missing", "The CSR has no common name."},
    {LC_REASON_CN_MULTIPLE, "cn-multiple", "The CSR has more than one common name."},
    {LC_REASON_CN_INVALID, "cn-invalid", "The CSR's common name is not a valid registration ID."},
    {LC_REASON_CN_DUPLICATE, "cn-duplicate",
     "A certificate was already issued for this registration ID."},
    {LC_REASON_CN_MISMATCH, "cn-mismatch",
     "The CSR's common name does not match the device serial from the PLC."},
    {LC_REASON_SERIAL_INVALID, "serial-invalid",
     "The device serial from the PLC is empty or not printable."},
    {LC_REASON_HSM_UNAVAILABLE, "hsm-unavailable",
     "HSM token not reachable: check the HSM cable/service."},
    {LC_REASON_SIGNER_UNAVAILABLE, "signer-unavailable",
     "The signer process is not running: it is being restarted."},
    {LC_REASON_AUDIT_UNAVAILABLE, "audit-unavailable",
     "The audit log cannot be written: check the disk; nothing is issued until it can."},
    {LC_REASON_JIG_TIMEOUT, "jig-timeout", "The jig program did not answer in time."},
    {LC_REASON_JIG_FAILED, "jig-failed", "The jig program failed (non-zero exit)."},
    {LC_REASON_JIG_OUTPUT, "jig-output", "The jig program's output was too large or unusable."},
    {LC_REASON_INSTALL_FAILED, "install-failed",
     "The certificate was issued but the jig could not install it."},
    {LC_REASON_PAUSED, "paused", "The line is paused by an operator."},
    {LC_REASON_INTERNAL, "internal", "Internal error in the station: see the log."},
};

static const struct reason_info *reason_lookup(int reason)
{
    for (size_t i = 0; i < sizeof REASONS / sizeof REASONS[0]; i++)
        if (REASONS[i].code == reason)
            return &REASONS[i];
    return NULL;
}

const char *policy_reason_name(int reason)
{
    const struct reason_info *r = reason_lookup(reason);
    return r ? r->name : "unknown";
}

const char *policy_reason_text(int reason)
{
    const struct reason_info *r = reason_lookup(reason);
    return r ? r->text : "Unknown reason.";
}

int policy_reason_from_name(const char *name)
{
    for (size_t i = 0; name != NULL && i < sizeof REASONS / sizeof REASONS[0]; i++)
        if (strcmp(REASONS[i].name, name) == 0)
            return REASONS[i].code;
    return -1;
}

int policy_reason_is_refusal(int reason)
{
    return reason >= LC_REASON_TOO_LARGE && reason <= LC_REASON_SERIAL_INVALID;
}

int policy_refuse(lc_refusal_t *why, int reason, const char *fmt, ...)
{
    va_list ap;

    if (why != NULL) {
        why->reason = reason;
        va_start(ap, fmt);
        vsnprintf(why->detail, sizeof why->detail, fmt, ap);
        va_end(ap);
    }
    return -1;
}

const char *policy_key_type_name(enum lc_key_type t)
{
    switch (t) {
    case LC_KEY_EC_P256:
        return "EC P-256";
    case LC_KEY_EC_P384:
        return "EC P-384";
    case LC_KEY_RSA:
        return "RSA";
    case LC_KEY_NONE:
        break;
    }
    return "none";
}

policy_ctx_t *policy_ctx_new(void)
{
    policy_ctx_t *ctx = calloc(1, sizeof *ctx);

    if (ctx == NULL)
        return NULL;
    ctx->md[0] = EVP_MD_fetch(NULL, "SHA256", NULL);
    ctx->md[1] = EVP_MD_fetch(NULL, "SHA384", NULL);
    ctx->md[2] = EVP_MD_fetch(NULL, "SHA512", NULL);
    ctx->mdctx = EVP_MD_CTX_new();
    ctx->hashctx = EVP_MD_CTX_new();
    ctx->rsa_from = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    for (int i = 0; i < 2; i++) {
        ctx->ec_key[i] = EC_KEY_new_by_curve_name(i == 0 ? NID_X9_62_prime256v1 : NID_secp384r1);
        if (ctx->ec_key[i] != NULL)
            ctx->ec_point[i] = EC_POINT_new(EC_KEY_get0_group(ctx->ec_key[i]));
    }
    if (!ctx->md[0] || !ctx->md[1] || !ctx->md[2] || !ctx->mdctx || !ctx->hashctx ||
        !ctx->rsa_from || !ctx->ec_point[0] || !ctx->ec_point[1]) {
        policy_ctx_free(ctx);
        return NULL;
    }
    return ctx;
}

void policy_ctx_free(policy_ctx_t *ctx)
{
    if (ctx == NULL)
        return;
    for (int i = 0; i < 3; i++)
        EVP_MD_free(ctx->md[i]);
    EVP_MD_CTX_free(ctx->mdctx);
    EVP_MD_CTX_free(ctx->hashctx);
    EVP_PKEY_CTX_free(ctx->rsa_from);
    for (int i = 0; i < 2; i++) {
        EC_POINT_free(ctx->ec_point[i]);
        EC_KEY_free(ctx->ec_key[i]);
    }
    free(ctx);
}

int policy_regid_valid(const char *s, size_t len)
{
    unsigned char last;

    if (s == NULL || len < 1 || len > POLICY_MAX_REGID)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && c != '-' && c != '.' && c != '_' && c != ':')
            return 0;
    }
    last = (unsigned char)s[len - 1];
    return (last >= 'a' && last <= 'z') || (last >= 'A' && last <= 'Z') ||
           (last >= '0' && last <= '9') || last == '-';
}

static int looks_like_pem(const unsigned char *in, size_t len)
{
    static const char tag[] = "-----BEGIN";

    der_cur_t c = {in, len};
    der_tlv_t t;

    /* One complete DER SEQUENCE is DER, whatever bytes it contains ("-----BEGIN" too). */
    if (der_expect(&c, DER_SEQUENCE, &t) == 0 && c.len == 0)
        return 0;
    for (size_t i = 0; i + sizeof tag - 1 <= len && i < 256; i++)
        if (memcmp(in + i, tag, sizeof tag - 1) == 0)
            return 1;
    return 0;
}

int policy_decode_input(const unsigned char *in, size_t len, unsigned char **der, size_t *der_len,
                        lc_refusal_t *why)
{
    BIO *bio = NULL;
    char *name = NULL, *header = NULL;
    unsigned char *data = NULL;
    long dlen = 0;
    int ret = -1;

    *der = NULL;
    *der_len = 0;
    if (len > POLICY_MAX_INPUT)
        return policy_refuse(why, LC_REASON_TOO_LARGE, "input is %zu bytes; at most %d allowed",
                             len, POLICY_MAX_INPUT);
    if (len == 0)
        return policy_refuse(why, LC_REASON_MALFORMED, "input is empty");
    if (!looks_like_pem(in, len)) {
        *der = malloc(len);
        if (*der == NULL)
            return policy_refuse(why, LC_REASON_INTERNAL, "out of memory");
        memcpy(*der, in, len);
        *der_len = len;
        return 0;
    }
    bio = BIO_new_mem_buf(in, (int)len);
    if (bio == NULL || !PEM_read_bio(bio, &name, &header, &data, &dlen)) {
        policy_refuse(why, LC_REASON_MALFORMED, "PEM input has no readable block");
        goto out;
    }
    if (strcmp(name, "CERTIFICATE REQUEST") != 0 && strcmp(name, "NEW CERTIFICATE REQUEST") != 0) {
        /* The label comes from the device: printable ASCII only into logs and the audit. */
        char shown[61];
        size_t i;
        for (i = 0; name[i] != '\0' && i < sizeof shown - 1; i++)
            shown[i] = name[i] >= 0x20 && name[i] <= 0x7e ? name[i] : '?';
        shown[i] = '\0';
        policy_refuse(why, LC_REASON_MALFORMED, "PEM block is \"%s\", not a CERTIFICATE REQUEST",
                      shown);
        goto out;
    }
    if (header != NULL && header[0] != '\0') {
        policy_refuse(why, LC_REASON_MALFORMED, "PEM block has encryption headers");
        goto out;
    }
    *der = malloc((size_t)dlen > 0 ? (size_t)dlen : 1);
    if (*der == NULL) {
        policy_refuse(why, LC_REASON_INTERNAL, "out of memory");
        goto out;
    }
    memcpy(*der, data, (size_t)dlen);
    *der_len = (size_t)dlen;
    ret = 0;
out:
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(data);
    BIO_free(bio);
    ERR_clear_error();
    return ret;
}

/* Finds the single CN in a Name and checks it as a registration ID. */
static int parse_subject(const der_tlv_t *name, lc_csr_t *csr, lc_refusal_t *why)
{
    der_cur_t rdns = der_inside(name);
    der_tlv_t cn_val = {0};
    int ncn = 0;

    while (rdns.len > 0) {
        der_tlv_t rdn, atv;
        der_cur_t atvs;
        if (der_expect(&rdns, DER_SET, &rdn) != 0)
            return policy_refuse(why, LC_REASON_MALFORMED, "subject: RDN is not a SET");
        atvs = der_inside(&rdn);
        if (atvs.len == 0)
            return policy_refuse(why, LC_REASON_MALFORMED, "subject: empty RDN");
        while (atvs.len > 0) {
            der_tlv_t type, value;
            der_cur_t in;
            if (der_expect(&atvs, DER_SEQUENCE, &atv) != 0)
                return policy_refuse(why, LC_REASON_MALFORMED, "subject: bad attribute");
            in = der_inside(&atv);
            if (der_expect(&in, DER_OID, &type) != 0 || der_next(&in, &value) != 0 || in.len != 0)
                return policy_refuse(why, LC_REASON_MALFORMED, "subject: bad attribute");
            if (der_oid_eq(&type, OID_CN, sizeof OID_CN)) {
                ncn++;
                cn_val = value;
            }
        }
    }
    if (ncn == 0)
        return policy_refuse(why, LC_REASON_CN_MISSING, "subject has no CN");
    if (ncn > 1)
        return policy_refuse(why, LC_REASON_CN_MULTIPLE, "subject has %d CNs; exactly one allowed",
                             ncn);
    if (cn_val.tag != DER_UTF8STRING && cn_val.tag != DER_PRINTABLESTRING &&
        cn_val.tag != DER_IA5STRING)
        return policy_refuse(why, LC_REASON_CN_INVALID,
                             "CN has string type 0x%02x; UTF8, Printable or IA5 expected",
                             cn_val.tag);
    if (!policy_regid_valid((const char *)cn_val.val, cn_val.val_len)) {
        char shown[72];
        size_t n = cn_val.val_len < 64 ? cn_val.val_len : 64;
        for (size_t i = 0; i < n; i++) {
            unsigned char c = cn_val.val[i];
            shown[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
        }
        shown[n] = '\0';
        return policy_refuse(why, LC_REASON_CN_INVALID,
                             "CN \"%s%s\" (%zu bytes) is not a registration ID: 1-64 of "
                             "A-Za-z0-9-._:, ending alphanumeric or '-'",
                             shown, cn_val.val_len > 64 ? "..." : "", cn_val.val_len);
    }
    memcpy(csr->cn, cn_val.val, cn_val.val_len);
    csr->cn[cn_val.val_len] = '\0';
    return 0;
}

/* Checks SubjectPublicKeyInfo: EC P-256/P-384 by named curve, or RSA 2048-4096, e=65537. */
static int parse_spki(const der_tlv_t *spki, lc_csr_t *csr, lc_refusal_t *why)
{
    der_cur_t in = der_inside(spki), alg_in;
    der_tlv_t alg, oid, params, bits;

    if (der_expect(&in, DER_SEQUENCE, &alg) != 0 || der_expect(&in, DER_BIT_STRING, &bits) != 0 ||
        in.len != 0)
        return policy_refuse(why, LC_REASON_MALFORMED, "bad SubjectPublicKeyInfo");
    if (bits.val_len < 2 || bits.val[0] != 0)
        return policy_refuse(why, LC_REASON_MALFORMED, "bad public key bit string");
    csr->key_bits = bits.val + 1;
    csr->key_bits_len = bits.val_len - 1;
    alg_in = der_inside(&alg);
    if (der_expect(&alg_in, DER_OID, &oid) != 0)
        return policy_refuse(why, LC_REASON_MALFORMED, "bad public key algorithm");
    if (der_oid_eq(&oid, OID_EC_PUBKEY, sizeof OID_EC_PUBKEY)) {
        if (der_next(&alg_in, &params) != 0 || alg_in.len != 0)
            return policy_refuse(why, LC_REASON_MALFORMED, "EC key without parameters");
        if (params.tag != DER_OID)
            return policy_refuse(why, LC_REASON_KEY_TYPE,
                                 "EC key with explicit curve parameters; named curves only");
        size_t flen;
        if (der_oid_eq(&params, OID_P256, sizeof OID_P256))
            csr->key_type = LC_KEY_EC_P256;
        else if (der_oid_eq(&params, OID_P384, sizeof OID_P384))
            csr->key_type = LC_KEY_EC_P384;
        else
            return policy_refuse(why, LC_REASON_KEY_TYPE,
                                 "EC curve not allowed; P-256 or P-384 only");
        /*
         * One point of the curve, uncompressed (04 x y) or compressed (02/03
         * x).  Not the point at infinity (00): no key, and any signature made
         * as R = u1·G verifies against it.  Not the hybrid forms (06/07).
         */
        flen = csr->key_type == LC_KEY_EC_P256 ? 32 : 48;
        if (!(csr->key_bits[0] == 0x04 && csr->key_bits_len == 1 + 2 * flen) &&
            !((csr->key_bits[0] == 0x02 || csr->key_bits[0] == 0x03) &&
              csr->key_bits_len == 1 + flen))
            return policy_refuse(why, LC_REASON_KEY_TYPE,
                                 "EC public key is not a point of %s (04 x y or 02/03 x)",
                                 policy_key_type_name(csr->key_type));
        return 0;
    }
    if (der_oid_eq(&oid, OID_RSA, sizeof OID_RSA)) {
        der_cur_t rk = {csr->key_bits, csr->key_bits_len}, rin;
        der_tlv_t seq, n, e;
        const unsigned char *nm;
        size_t nl;
        if (alg_in.len != 0 &&
            (der_expect(&alg_in, DER_NULL, &params) != 0 || params.val_len != 0 || alg_in.len != 0))
            return policy_refuse(why, LC_REASON_MALFORMED, "RSA key with parameters");
        if (der_expect(&rk, DER_SEQUENCE, &seq) != 0 || rk.len != 0)
            return policy_refuse(why, LC_REASON_MALFORMED, "bad RSAPublicKey");
        rin = der_inside(&seq);
        if (der_expect(&rin, DER_INTEGER, &n) != 0 || der_expect(&rin, DER_INTEGER, &e) != 0 ||
            rin.len != 0 || n.val_len == 0 || (n.val[0] & 0x80) ||
            (n.val_len > 1 && n.val[0] == 0 && !(n.val[1] & 0x80)))
            return policy_refuse(why, LC_REASON_MALFORMED, "bad RSAPublicKey (not DER)");
        nm = n.val;
        nl = n.val_len;
        while (nl > 0 && nm[0] == 0) {
            nm++;
            nl--;
        }
        csr->rsa_n = nm;
        csr->rsa_n_len = nl;
        csr->rsa_bits = 0;
        if (nl > 0) {
            int top = 8;
            while (top > 0 && !(nm[0] & (1u << (top - 1))))
                top--;
            csr->rsa_bits = (int)((nl - 1) * 8) + top;
        }
        if (e.val_len != 3 || e.val[0] != 0x01 || e.val[1] != 0x00 || e.val[2] != 0x01)
            return policy_refuse(why, LC_REASON_KEY_TYPE, "RSA public exponent is not 65537");
        if (csr->rsa_bits < 2048 || csr->rsa_bits > 4096)
            return policy_refuse(why, LC_REASON_KEY_TYPE, "RSA key of %d bits; 2048-4096 allowed",
                                 csr->rsa_bits);
        csr->key_type = LC_KEY_RSA;
        return 0;
    }
    return policy_refuse(why, LC_REASON_KEY_TYPE,
                         "public key algorithm not allowed; EC P-256/P-384 or RSA only");
}

static int parse_sigalg(const der_tlv_t *alg, lc_csr_t *csr, lc_refusal_t *why)
{
    der_cur_t in = der_inside(alg);
    der_tlv_t oid, params;

    if (der_expect(&in, DER_OID, &oid) != 0)
        return policy_refuse(why, LC_REASON_MALFORMED, "bad signature algorithm");
    for (size_t i = 0; i < sizeof SIGALGS / sizeof SIGALGS[0]; i++) {
        const struct sigalg *s = &SIGALGS[i];
        if (!der_oid_eq(&oid, s->oid, s->oid_len))
            continue;
        if (s->md_nid == NID_undef)
            return policy_refuse(why, LC_REASON_WEAK_HASH, "signed with %s; SHA-256 or stronger",
                                 s->name);
        if (s->family == LC_KEY_RSA) {
            /* parameters must be NULL or absent (RFC 4055 allows both) */
            if (in.len != 0 && (der_expect(&in, DER_NULL, &params) != 0 || in.len != 0))
                return policy_refuse(why, LC_REASON_MALFORMED, "RSA signature parameters");
        } else if (in.len != 0) {
            return policy_refuse(why, LC_REASON_MALFORMED, "ECDSA signature with parameters");
        }
        if ((s->family == LC_KEY_RSA) != (csr->key_type == LC_KEY_RSA))
            return policy_refuse(why, LC_REASON_SIGNATURE_ALGORITHM, "%s does not match a %s key",
                                 s->name, policy_key_type_name(csr->key_type));
        csr->sig_md_nid = s->md_nid;
        return 0;
    }
    return policy_refuse(why, LC_REASON_SIGNATURE_ALGORITHM,
                         "signature algorithm not supported (ECDSA or PKCS#1 v1.5 with SHA-2)");
}

int policy_csr_parse(const unsigned char *der, size_t len, lc_csr_t *csr, lc_refusal_t *why)
{
    der_cur_t top = {der, len}, req, cri;
    der_tlv_t outer, info, alg, sig, ver, subject, spki;

    memset(csr, 0, sizeof *csr);
    if (len > POLICY_MAX_INPUT)
        return policy_refuse(why, LC_REASON_TOO_LARGE, "CSR is %zu bytes; at most %d allowed", len,
                             POLICY_MAX_INPUT);
    if (der_expect(&top, DER_SEQUENCE, &outer) != 0 || top.len != 0)
        return policy_refuse(why, LC_REASON_MALFORMED, "not a DER SEQUENCE (or trailing data)");
    req = der_inside(&outer);
    if (der_expect(&req, DER_SEQUENCE, &info) != 0 || der_expect(&req, DER_SEQUENCE, &alg) != 0 ||
        der_expect(&req, DER_BIT_STRING, &sig) != 0 || req.len != 0)
        return policy_refuse(why, LC_REASON_MALFORMED, "not a CertificationRequest");
    cri = der_inside(&info);
    if (der_expect(&cri, DER_INTEGER, &ver) != 0 || ver.val_len != 1 || ver.val[0] != 0)
        return policy_refuse(why, LC_REASON_MALFORMED, "CSR version is not 1 (0)");
    if (der_expect(&cri, DER_SEQUENCE, &subject) != 0 || der_expect(&cri, DER_SEQUENCE, &spki) != 0)
        return policy_refuse(why, LC_REASON_MALFORMED, "bad CertificationRequestInfo");
    if (cri.len != 0) { /* [0] attributes: ignored by design, but must be well-formed */
        der_tlv_t attrs;
        if (der_expect(&cri, DER_CTX(0), &attrs) != 0 || cri.len != 0)
            return policy_refuse(why, LC_REASON_MALFORMED, "bad CSR attributes");
    }
    if (sig.val_len < 2 || sig.val[0] != 0)
        return policy_refuse(why, LC_REASON_MALFORMED, "bad signature bit string");
    csr->der = der;
    csr->der_len = len;
    csr->cri = info.raw;
    csr->cri_len = info.raw_len;
    csr->spki = spki.raw;
    csr->spki_len = spki.raw_len;
    csr->sig = sig.val + 1;
    csr->sig_len = sig.val_len - 1;
    if (parse_spki(&spki, csr, why) != 0)
        return -1;
    if (parse_sigalg(&alg, csr, why) != 0)
        return -1;
    return parse_subject(&subject, csr, why);
}

/* The CSR's RSA public key; NULL if OpenSSL rejects it. */
static EVP_PKEY *build_rsa_key(policy_ctx_t *ctx, const lc_csr_t *csr)
{
    OSSL_PARAM_BLD *bld;
    OSSL_PARAM *params = NULL;
    EVP_PKEY *pkey = NULL;
    BIGNUM *n = NULL, *e = NULL;

    if ((bld = OSSL_PARAM_BLD_new()) == NULL)
        return NULL;
    n = BN_bin2bn(csr->rsa_n, (int)csr->rsa_n_len, NULL);
    e = BN_new();
    if (n == NULL || e == NULL || !BN_set_word(e, 65537) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
        goto out;
    params = OSSL_PARAM_BLD_to_param(bld);
    if (params == NULL || EVP_PKEY_fromdata_init(ctx->rsa_from) <= 0 ||
        EVP_PKEY_fromdata(ctx->rsa_from, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
out:
    BN_free(n);
    BN_free(e);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    return pkey;
}

/*
 * The EC proof of possession: 1 if it verifies, 0 if the signature does not,
 * -1 if the point is not one of the curve's (off the curve, or infinity).
 */
static int verify_ec(policy_ctx_t *ctx, const EVP_MD *md, const lc_csr_t *csr)
{
    int i = csr->key_type == LC_KEY_EC_P256 ? 0 : 1;
    EC_KEY *key = ctx->ec_key[i];
    const EC_GROUP *group = EC_KEY_get0_group(key);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;

    if (EC_POINT_oct2point(group, ctx->ec_point[i], csr->key_bits, csr->key_bits_len, NULL) != 1 ||
        EC_POINT_is_at_infinity(group, ctx->ec_point[i]) ||
        EC_KEY_set_public_key(key, ctx->ec_point[i]) != 1)
        return -1;
    if (EVP_DigestInit_ex2(ctx->hashctx, md, NULL) != 1 ||
        EVP_DigestUpdate(ctx->hashctx, csr->cri, csr->cri_len) != 1 ||
        EVP_DigestFinal_ex(ctx->hashctx, digest, &dlen) != 1)
        return 0;
    /* ECDSA_verify() also refuses a signature that is not DER or has trailing bytes. */
    return ECDSA_verify(0, digest, (int)dlen, csr->sig, (int)csr->sig_len, key) == 1;
}

int policy_csr_verify(policy_ctx_t *ctx, const lc_csr_t *csr, lc_refusal_t *why)
{
    policy_ctx_t *own = NULL;
    EVP_PKEY *pkey = NULL;
    const EVP_MD *md;
    int ret = -1, ok;

    if (ctx == NULL) {
        own = ctx = policy_ctx_new();
        if (ctx == NULL)
            return policy_refuse(why, LC_REASON_INTERNAL, "out of memory");
    }
    md = csr->sig_md_nid == NID_sha256   ? ctx->md[0]
         : csr->sig_md_nid == NID_sha384 ? ctx->md[1]
                                         : ctx->md[2];
    if (csr->key_type == LC_KEY_RSA) {
        if ((pkey = build_rsa_key(ctx, csr)) != NULL) {
            EVP_MD_CTX_reset(ctx->mdctx);
            ok = EVP_DigestVerifyInit(ctx->mdctx, NULL, md, NULL, pkey) > 0 &&
                 EVP_DigestVerify(ctx->mdctx, csr->sig, csr->sig_len, csr->cri, csr->cri_len) == 1;
        } else {
            ok = -1;
        }
    } else {
        ok = verify_ec(ctx, md, csr);
    }
    if (ok < 0) {
        policy_refuse(why, LC_REASON_KEY_TYPE, "public key is not a valid %s key",
                      policy_key_type_name(csr->key_type));
        goto out;
    }
    if (!ok) {
        policy_refuse(why, LC_REASON_BAD_SIGNATURE,
                      "signature over the request does not verify with its public key");
        goto out;
    }
    ret = 0;
out:
    ERR_clear_error();
    EVP_PKEY_free(pkey);
    policy_ctx_free(own);
    return ret;
}
