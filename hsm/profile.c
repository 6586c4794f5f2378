/*
 * profile.c — DER encoding of the leaf and CA certificate profiles.
 */
#include "profile.h"

#include "lcerr.h"

#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const unsigned char OID_ECDSA_SHA256[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};
static const unsigned char OID_ECDSA_SHA384[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03};
static const unsigned char OID_RSA_SHA256[] = {0x2a, 0x86, 0x48, 0x86, 0xf7,
                                               0x0d, 0x01, 0x01, 0x0b};
static const unsigned char OID_CN[] = {0x55, 0x04, 0x03};
static const unsigned char OID_O[] = {0x55, 0x04, 0x0a};
static const unsigned char OID_OU[] = {0x55, 0x04, 0x0b};
static const unsigned char OID_SKI[] = {0x55, 0x1d, 0x0e};
static const unsigned char OID_KU[] = {0x55, 0x1d, 0x0f};
static const unsigned char OID_BC[] = {0x55, 0x1d, 0x13};
static const unsigned char OID_AKI[] = {0x55, 0x1d, 0x23};
static const unsigned char OID_EKU[] = {0x55, 0x1d, 0x25};
static const unsigned char OID_CRL_NUMBER[] = {0x55, 0x1d, 0x14};
static const unsigned char OID_CRL_REASON[] = {0x55, 0x1d, 0x15};
static const unsigned char OID_CLIENT_AUTH[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02};

int profile_md_nid(enum lc_key_type issuer_key)
{
    return issuer_key == LC_KEY_EC_P384 ? NID_sha384 : NID_sha256;
}

static void put_sigalg(der_buf_t *b, enum lc_key_type issuer_key)
{
    der_begin(b, DER_SEQUENCE);
    if (issuer_key == LC_KEY_RSA) {
        der_put_oid(b, OID_RSA_SHA256, sizeof OID_RSA_SHA256);
        der_put_tlv(b, DER_NULL, NULL, 0);
    } else if (issuer_key == LC_KEY_EC_P384) {
        der_put_oid(b, OID_ECDSA_SHA384, sizeof OID_ECDSA_SHA384);
    } else {
        der_put_oid(b, OID_ECDSA_SHA256, sizeof OID_ECDSA_SHA256);
    }
    der_end(b);
}

static void put_rdn(der_buf_t *b, const unsigned char *oid, size_t oid_len, const char *value)
{
    der_begin(b, DER_SET);
    der_begin(b, DER_SEQUENCE);
    der_put_oid(b, oid, oid_len);
    der_put_tlv(b, DER_UTF8STRING, value, strlen(value));
    der_end(b);
    der_end(b);
}

static void put_name(der_buf_t *b, const char *o, const char *ou, const char *cn)
{
    der_begin(b, DER_SEQUENCE);
    if (o != NULL && *o != '\0')
        put_rdn(b, OID_O, sizeof OID_O, o);
    if (ou != NULL && *ou != '\0')
        put_rdn(b, OID_OU, sizeof OID_OU, ou);
    put_rdn(b, OID_CN, sizeof OID_CN, cn);
    der_end(b);
}

/* Opens one Extension and its extnValue OCTET STRING; close with two der_end(). */
static void ext_begin(der_buf_t *b, const unsigned char *oid, size_t oid_len, int critical)
{
    static const unsigned char yes = 0xff;

    der_begin(b, DER_SEQUENCE);
    der_put_oid(b, oid, oid_len);
    if (critical)
        der_put_tlv(b, DER_BOOLEAN, &yes, 1);
    der_begin(b, DER_OCTET_STRING);
}

static void ext_end(der_buf_t *b)
{
    der_end(b);
    der_end(b);
}

/* RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits. */
static int key_id(const unsigned char *bits, size_t len, unsigned char out[20])
{
    unsigned int n = 0;
    return EVP_Digest(bits, len, out, &n, EVP_sha1(), NULL) == 1 && n == 20 ? 0 : -1;
}

/* The subjectPublicKey contents of an SPKI (for the key identifier). */
static int spki_bits(const unsigned char *spki, size_t len, const unsigned char **bits,
                     size_t *bits_len)
{
    der_cur_t c = {spki, len}, in;
    der_tlv_t seq, alg, bs;

    if (der_expect(&c, DER_SEQUENCE, &seq) != 0)
        return -1;
    in = der_inside(&seq);
    if (der_expect(&in, DER_SEQUENCE, &alg) != 0 || der_expect(&in, DER_BIT_STRING, &bs) != 0 ||
        bs.val_len < 2)
        return -1;
    *bits = bs.val + 1;
    *bits_len = bs.val_len - 1;
    return 0;
}

static void put_validity(der_buf_t *b, int64_t nb, int64_t na)
{
    der_begin(b, DER_SEQUENCE);
    der_put_time(b, nb);
    der_put_time(b, na);
    der_end(b);
}

static void put_ski_aki(der_buf_t *b, const unsigned char *ski, size_t ski_len,
                        const unsigned char *aki, size_t aki_len)
{
    ext_begin(b, OID_SKI, sizeof OID_SKI, 0);
    der_put_tlv(b, DER_OCTET_STRING, ski, ski_len);
    ext_end(b);
    ext_begin(b, OID_AKI, sizeof OID_AKI, 0);
    der_begin(b, DER_SEQUENCE);
    der_put_tlv(b, 0x80, aki, aki_len); /* [0] IMPLICIT KeyIdentifier */
    der_end(b);
    ext_end(b);
}

int profile_leaf_tbs(const profile_issuer_t *iss, const profile_leaf_t *leaf, der_buf_t *b)
{
    /* keyUsage as a DER named-bit BIT STRING: unused-bits octet, then bits */
    static const unsigned char ku_ds[] = {0x07, 0x80};    /* digitalSignature */
    static const unsigned char ku_ds_ke[] = {0x05, 0xa0}; /* + keyEncipherment */
    const lc_csr_t *csr = leaf->csr;
    unsigned char ski[20];
    int64_t not_after = leaf->not_after;

    if (key_id(csr->key_bits, csr->key_bits_len, ski) != 0)
        return LC_ERR_CRYPTO;
    if (iss->not_after > 0 && not_after > iss->not_after)
        not_after = iss->not_after;
    der_begin(b, DER_SEQUENCE);
    der_begin(b, DER_CTX(0));
    der_put_small_int(b, 2); /* v3 */
    der_end(b);
    der_put_uint(b, leaf->serial, PROFILE_SERIAL_LEN);
    put_sigalg(b, iss->key_type);
    der_put_raw(b, iss->name_der, iss->name_len);
    put_validity(b, leaf->not_before, not_after);
    put_name(b, leaf->o, leaf->ou, csr->cn);
    der_put_raw(b, csr->spki, csr->spki_len);
    der_begin(b, DER_CTX(3));
    der_begin(b, DER_SEQUENCE);
    ext_begin(b, OID_BC, sizeof OID_BC, 1);
    der_begin(b, DER_SEQUENCE); /* cA FALSE is the DEFAULT: empty */
    der_end(b);
    ext_end(b);
    ext_begin(b, OID_KU, sizeof OID_KU, 1);
    if (csr->key_type == LC_KEY_RSA)
        der_put_tlv(b, DER_BIT_STRING, ku_ds_ke, sizeof ku_ds_ke);
    else
        der_put_tlv(b, DER_BIT_STRING, ku_ds, sizeof ku_ds);
    ext_end(b);
    if (!leaf->verification) { /* a proof-of-possession certificate is good for nothing else */
        ext_begin(b, OID_EKU, sizeof OID_EKU, 0);
        der_begin(b, DER_SEQUENCE);
        der_put_oid(b, OID_CLIENT_AUTH, sizeof OID_CLIENT_AUTH);
        der_end(b);
        ext_end(b);
    }
    put_ski_aki(b, ski, sizeof ski, iss->ski, iss->ski_len);
    der_end(b);
    der_end(b);
    der_end(b);
    return b->failed ? LC_ERR_NOMEM : LC_OK;
}

int profile_ca_tbs(const profile_issuer_t *iss, enum lc_key_type signer_key, const profile_ca_t *ca,
                   der_buf_t *b)
{
    static const unsigned char ku_ca[] = {0x01, 0x06}; /* keyCertSign, cRLSign */
    static const unsigned char yes = 0xff;
    const unsigned char *bits;
    size_t bits_len;
    unsigned char ski[20];

    if (spki_bits(ca->spki, ca->spki_len, &bits, &bits_len) != 0 ||
        key_id(bits, bits_len, ski) != 0)
        return LC_ERR_CRYPTO;
    der_begin(b, DER_SEQUENCE);
    der_begin(b, DER_CTX(0));
    der_put_small_int(b, 2);
    der_end(b);
    der_put_uint(b, ca->serial, PROFILE_SERIAL_LEN);
    put_sigalg(b, signer_key);
    if (iss != NULL)
        der_put_raw(b, iss->name_der, iss->name_len);
    else
        put_name(b, ca->o, NULL, ca->cn);
    put_validity(b, ca->not_before, ca->not_after);
    put_name(b, ca->o, NULL, ca->cn);
    der_put_raw(b, ca->spki, ca->spki_len);
    der_begin(b, DER_CTX(3));
    der_begin(b, DER_SEQUENCE);
    ext_begin(b, OID_BC, sizeof OID_BC, 1);
    der_begin(b, DER_SEQUENCE);
    der_put_tlv(b, DER_BOOLEAN, &yes, 1);
    if (ca->pathlen >= 0)
        der_put_small_int(b, ca->pathlen);
    der_end(b);
    ext_end(b);
    ext_begin(b, OID_KU, sizeof OID_KU, 1);
    der_put_tlv(b, DER_BIT_STRING, ku_ca, sizeof ku_ca);
    ext_end(b);
    if (iss != NULL)
        put_ski_aki(b, ski, sizeof ski, iss->ski, iss->ski_len);
    else
        put_ski_aki(b, ski, sizeof ski, ski, sizeof ski);
    der_end(b);
    der_end(b);
    der_end(b);
    return b->failed ? LC_ERR_NOMEM : LC_OK;
}

int profile_assemble(enum lc_key_type issuer_key, const unsigned char *tbs, size_t tbs_len,
                     const unsigned char *sig, size_t sig_len, der_buf_t *b)
{
    der_begin(b, DER_SEQUENCE);
    der_put_raw(b, tbs, tbs_len);
    put_sigalg(b, issuer_key);
    der_put_bits(b, sig, sig_len);
    der_end(b);
    return b->failed ? LC_ERR_NOMEM : LC_OK;
}

int profile_issuer_from_cert(X509 *ca, profile_issuer_t *iss, char *err, size_t errlen)
{
    const ASN1_OCTET_STRING *ski;
    EVP_PKEY *pub;
    const ASN1_TIME *na;
    struct tm tm;
    int len, ret = LC_ERR_CONFIG;
    unsigned char *p;

    memset(iss, 0, sizeof *iss);
    ski = X509_get0_subject_key_id(ca);
    if (ski == NULL || ASN1_STRING_length(ski) <= 0 ||
        (size_t)ASN1_STRING_length(ski) > sizeof iss->ski)
        return lc_seterr(LC_ERR_CONFIG, err, errlen, "CA certificate has no usable SKI");
    memcpy(iss->ski, ASN1_STRING_get0_data(ski), (size_t)ASN1_STRING_length(ski));
    iss->ski_len = (size_t)ASN1_STRING_length(ski);
    pub = X509_get0_pubkey(ca);
    if (pub == NULL)
        return lc_seterr(LC_ERR_CONFIG, err, errlen, "CA certificate public key unreadable");
    if (EVP_PKEY_is_a(pub, "RSA")) {
        iss->key_type = LC_KEY_RSA;
    } else if (EVP_PKEY_is_a(pub, "EC")) {
        char group[64] = "";
        size_t gl = 0;
        EVP_PKEY_get_utf8_string_param(pub, "group", group, sizeof group, &gl);
        if (strcmp(group, "prime256v1") == 0)
            iss->key_type = LC_KEY_EC_P256;
        else if (strcmp(group, "secp384r1") == 0)
            iss->key_type = LC_KEY_EC_P384;
        else
            return lc_seterr(LC_ERR_CONFIG, err, errlen, "CA key curve %s not supported", group);
    } else {
        return lc_seterr(LC_ERR_CONFIG, err, errlen, "CA key type not supported");
    }
    na = X509_get0_notAfter(ca);
    if (na != NULL && ASN1_TIME_to_tm(na, &tm) == 1)
        iss->not_after = (int64_t)timegm(&tm);
    len = i2d_X509_NAME(X509_get_subject_name(ca), NULL);
    if (len <= 0 || (iss->name_der = malloc((size_t)len)) == NULL) {
        ret = lc_seterr(LC_ERR_NOMEM, err, errlen, "cannot encode CA subject");
        goto fail;
    }
    p = iss->name_der;
    i2d_X509_NAME(X509_get_subject_name(ca), &p);
    iss->name_len = (size_t)len;
    return LC_OK;
fail:
    profile_issuer_clear(iss);
    return ret;
}

void profile_issuer_clear(profile_issuer_t *iss)
{
    if (iss == NULL)
        return;
    free(iss->name_der);
    memset(iss, 0, sizeof *iss);
}

/*
 * 48 bits of Unix milliseconds, then 80 bits from the CSPRNG.  The time
 * prefix makes each new serial land at the end of the store's serial index,
 * not at a random leaf of a 10-million-row B-tree that is often not in
 * memory (docs/benchmarks.md, large log); 80 random bits keep serials
 * unpredictable (RFC 5280 practice asks for at least 64).  The first octet
 * is 0x01 until the year 10889, so the serial is positive and 16 octets long.
 */
int profile_draw_serial(unsigned char serial[PROFILE_SERIAL_LEN])
{
    /* One RAND_priv_bytes() call per 32 serials: a call costs ~1.5 µs, mostly its locking. */
    enum { RND = PROFILE_SERIAL_LEN - 6 };
    static _Thread_local unsigned char pool[32 * RND];
    static _Thread_local size_t left;
    struct timespec ts;
    uint64_t ms;

    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return LC_ERR_CRYPTO;
    if (left == 0) {
        if (RAND_priv_bytes(pool, sizeof pool) != 1)
            return LC_ERR_CRYPTO;
        left = sizeof pool;
    }
    left -= RND;
    memcpy(serial + 6, pool + left, RND);
    OPENSSL_cleanse(pool + left, RND); /* each byte is used once */
    ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    for (int i = 0; i < 6; i++)
        serial[i] = (unsigned char)(ms >> (40 - 8 * i));
    if (serial[0] == 0 || (serial[0] & 0x80)) /* a clock before 1978 or far in the future */
        return LC_ERR_CRYPTO;
    return LC_OK;
}

void profile_serial_hex(const unsigned char *serial, size_t len, char *out)
{
    lc_hex(serial, len, 1, out);
}

static const char *const CRL_REASONS[] = {
    "unspecified",   "keyCompromise",        "cACompromise",    "affiliationChanged",
    "superseded",    "cessationOfOperation", "certificateHold", NULL,
    "removeFromCRL", "privilegeWithdrawn",   "aACompromise",
};

int profile_crl_reason(const char *name)
{
    for (size_t i = 0; name != NULL && i < sizeof CRL_REASONS / sizeof CRL_REASONS[0]; i++)
        if (CRL_REASONS[i] != NULL && strcmp(CRL_REASONS[i], name) == 0)
            return (int)i;
    return -1;
}

int profile_crl_tbs(const profile_issuer_t *iss, uint64_t number, int64_t this_update,
                    int64_t next_update, const profile_crl_entry_t *entries, size_t n, der_buf_t *b)
{
    unsigned char num[8];

    for (int i = 0; i < 8; i++)
        num[i] = (unsigned char)(number >> (56 - 8 * i));
    der_begin(b, DER_SEQUENCE);
    der_put_small_int(b, 1); /* v2 */
    put_sigalg(b, iss->key_type);
    der_put_raw(b, iss->name_der, iss->name_len);
    der_put_time(b, this_update);
    der_put_time(b, next_update);
    if (n > 0) {
        der_begin(b, DER_SEQUENCE);
        for (size_t i = 0; i < n; i++) {
            der_begin(b, DER_SEQUENCE);
            der_put_uint(b, entries[i].serial, entries[i].serial_len);
            der_put_time(b, entries[i].revoked_at);
            if (entries[i].reason > 0) {
                unsigned char code = (unsigned char)entries[i].reason;
                der_begin(b, DER_SEQUENCE);
                ext_begin(b, OID_CRL_REASON, sizeof OID_CRL_REASON, 0);
                der_put_tlv(b, 0x0a, &code, 1); /* ENUMERATED */
                ext_end(b);
                der_end(b);
            }
            der_end(b);
        }
        der_end(b);
    }
    der_begin(b, DER_CTX(0));
    der_begin(b, DER_SEQUENCE);
    ext_begin(b, OID_AKI, sizeof OID_AKI, 0);
    der_begin(b, DER_SEQUENCE);
    der_put_tlv(b, 0x80, iss->ski, iss->ski_len);
    der_end(b);
    ext_end(b);
    ext_begin(b, OID_CRL_NUMBER, sizeof OID_CRL_NUMBER, 0);
    der_put_uint(b, num, sizeof num);
    ext_end(b);
    der_end(b);
    der_end(b);
    der_end(b);
    return b->failed ? LC_ERR_NOMEM : LC_OK;
}
