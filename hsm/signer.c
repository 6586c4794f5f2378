/*
 * signer.c — linecert-signer, the only process that holds the PIN and the
 * PKCS#11 session.
 *
 * It is exec'd by the station with one end of a socketpair on fd 3 and
 * answers typed requests (proto.h).  It trusts its parent for configuration
 * (which lines, which keys, which CA certificates) but not for what it signs:
 * every ISSUE request is parsed and checked against the CSR policy again,
 * the proof of possession is verified here (the authority, and the only
 * place it is verified), and the certificate is built from the fixed leaf
 * profile.  So a compromised front end can obtain only certificates the
 * profile allows, never an arbitrary signature.  CA certificates can be made
 * only when the signer was started with --setup (`linecert pki init`).
 *
 * It counts every signature it makes.  When the token goes away, signing
 * fails with LC_ERR_HSM and the next request reloads the module from
 * scratch (p11_reload) so the station recovers without a restart.
 */
#include "lcerr.h"
#include "p11.h"
#include "policy.h"
#include "profile.h"
#include "proto.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define SIGNER_FD 3
#define MAX_LINES 64

struct line {
    char *id;
    char *uri;
    char *o;
    char *ou;
    uint32_t max_days;
    X509 *ca; /* the line CA certificate from the chain file */
    profile_issuer_t iss;
    EVP_PKEY *key;      /* HSM private key; NULL until found */
    char ca_thumb[65];  /* SHA-256 of the line CA certificate, uppercase hex */
    atomic_ullong sigs; /* signatures made with this key by this process */
};

static struct {
    int setup; /* --setup: CA_CERT allowed */
    p11_t *p11;
    char *module;
    char *pin_file;
    char *softhsm_conf;
    struct line lines[MAX_LINES];
    size_t nlines;
    atomic_int need_reload;   /* a signature failed: reload the module first */
    atomic_ullong signatures; /* every signature made by this process */
    policy_ctx_t *pctx;       /* the main thread's; each worker has its own */
    int threads;              /* ISSUE workers (--threads) */
    char instance[17];        /* names this process's signature numbering (docs/audit.md) */
} S;

/*
 * Concurrency: ISSUE requests are signed by a pool of worker threads that
 * share the one PKCS#11 context and the line keys (libp11 keeps a session
 * pool per slot).  Workers hold `keys` for reading while they sign; anything
 * that can replace keys (configure, module reload, setup requests) holds it
 * for writing, so a reload never pulls a key from under a signature.
 * Replies are whole frames written under `send_mu`.
 */
static pthread_rwlock_t keys = PTHREAD_RWLOCK_INITIALIZER;
static pthread_mutex_t send_mu = PTHREAD_MUTEX_INITIALIZER;

/* A checked, built certificate waiting for its HSM signature. */
struct job {
    uint32_t id; /* the request it answers */
    struct line *line;
    der_buf_t tbs;
    struct job *next;
};

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct job *head, *tail;
    int closing;
} Q = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL, 0};

static int send_frame(int fd, proto_msg_t *m)
{
    int ret;

    pthread_mutex_lock(&send_mu);
    ret = proto_send(fd, m);
    pthread_mutex_unlock(&send_mu);
    return ret;
}

static void die(const char *msg)
{
    fprintf(stderr, "linecert-signer: fatal: %s\n", msg);
    exit(1);
}

static void harden(void)
{
    struct rlimit rl = {0, 0};

    /* The PIN and the session must never end up in a core file or a debugger. */
    if (setrlimit(RLIMIT_CORE, &rl) != 0 || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        die("cannot disable core dumps / ptrace");
    signal(SIGPIPE, SIG_IGN);
}

static void line_clear(struct line *l)
{
    free(l->id);
    free(l->uri);
    free(l->o);
    free(l->ou);
    X509_free(l->ca);
    EVP_PKEY_free(l->key);
    profile_issuer_clear(&l->iss);
    memset(l, 0, sizeof *l);
}

static void drop_keys(void)
{
    for (size_t i = 0; i < S.nlines; i++) {
        EVP_PKEY_free(S.lines[i].key);
        S.lines[i].key = NULL;
    }
}

static int reply_error(int fd, uint32_t id, int err, const char *msg)
{
    proto_msg_t m = {0};
    int ret;

    proto_init(&m, PROTO_ERROR, id);
    proto_put_u32(&m, T_ERROR, (uint32_t)err);
    proto_put_str(&m, T_DETAIL, msg);
    ret = send_frame(fd, &m);
    proto_free(&m);
    return ret;
}

/*
 * A signed object.  sig_no (0 = none: setup mode) is the number of its
 * signature among the line key's; with the instance it names the signature
 * in the audit log, which must account for every one (checkpoints).
 */
static void put_sig(proto_msg_t *m, const struct line *l, uint64_t sig_no, uint32_t count)
{
    proto_put_str(m, T_LINE, l->id);
    proto_put_i64(m, T_SIG_NO, (int64_t)sig_no);
    if (count != 1)
        proto_put_u32(m, T_COUNT, count);
    proto_put_str(m, T_INSTANCE, S.instance);
}

static int reply_cert(int fd, uint32_t id, const unsigned char *der, size_t len,
                      const struct line *l, uint64_t sig_no)
{
    proto_msg_t m = {0};
    int ret;

    proto_init(&m, PROTO_CERT, id);
    proto_put(&m, T_CERT, der, len);
    proto_put_i64(&m, T_SIGNATURES, (int64_t)atomic_load(&S.signatures));
    if (l != NULL && sig_no != 0)
        put_sig(&m, l, sig_no, 1);
    ret = send_frame(fd, &m);
    proto_free(&m);
    return ret;
}

/* Makes sure the module is loaded and every line's key found; reloads after a failure. */
static int ensure_keys(char *err, size_t errlen)
{
    int ret;

    if (S.p11 == NULL) {
        ret = p11_open(S.module, S.softhsm_conf, S.pin_file, &S.p11, err, errlen);
        if (ret != LC_OK)
            return ret;
    } else if (atomic_load(&S.need_reload)) {
        drop_keys();
        ret = p11_reload(S.p11, err, errlen);
        if (ret != LC_OK)
            return ret;
    }
    atomic_store(&S.need_reload, 0);
    for (size_t i = 0; i < S.nlines; i++) {
        struct line *l = &S.lines[i];
        if (l->key != NULL)
            continue;
        ret = p11_find_key(S.p11, l->uri, 1, &l->key, err, errlen);
        if (ret != LC_OK) {
            atomic_store(&S.need_reload,
                         1); /* the token may come back only with a fresh slot list */
            return ret == LC_ERR_CONFIG ? ret : LC_ERR_HSM;
        }
    }
    return LC_OK;
}

/*
 * For workers: returns LC_OK holding `keys` for reading with every line key
 * present, reloading the module first (under the write lock) if needed.
 */
static int keys_acquire(char *err, size_t errlen)
{
    int present = 1, ret;

    pthread_rwlock_rdlock(&keys);
    for (size_t i = 0; i < S.nlines; i++)
        present = present && S.lines[i].key != NULL;
    if (present && !atomic_load(&S.need_reload))
        return LC_OK;
    pthread_rwlock_unlock(&keys);
    pthread_rwlock_wrlock(&keys);
    ret = ensure_keys(err, errlen);
    pthread_rwlock_unlock(&keys);
    if (ret != LC_OK)
        return ret;
    pthread_rwlock_rdlock(&keys);
    return LC_OK;
}

/* Checks that the HSM key is the one certified by the line's CA certificate. */
static int check_key_matches(struct line *l, char *err, size_t errlen)
{
    EVP_PKEY *pub = NULL;
    int ret;

    ret = p11_find_key(S.p11, l->uri, 0, &pub, err, errlen);
    if (ret == LC_ERR_NOT_FOUND)
        return LC_OK; /* no public key object on the token: nothing to compare */
    if (ret != LC_OK)
        return ret;
    if (EVP_PKEY_eq(pub, X509_get0_pubkey(l->ca)) != 1)
        ret = lc_seterr(LC_ERR_CONFIG, err, errlen,
                        "line %s: the key %s is not the key of the line CA certificate", l->id,
                        l->uri);
    EVP_PKEY_free(pub);
    ERR_clear_error();
    return ret;
}

/* SHA-256 of a certificate's DER, uppercase hex: how checkpoints name the line CA. */
static int cert_thumbprint(X509 *x, char out[65])
{
    unsigned char md[32];
    unsigned int n = 0;

    if (!X509_digest(x, EVP_sha256(), md, &n) || n != 32)
        return -1;
    lc_hex(md, sizeof md, 1, out);
    return 0;
}

static int do_configure(int fd, const proto_msg_t *m)
{
    proto_field_t f;
    size_t pos = 0;
    struct line *cur = NULL;
    char err[256] = "";
    int ret = LC_ERR_PROTOCOL, rc;
    uint32_t version = 0;

    if (S.module != NULL)
        return reply_error(fd, m->id, LC_ERR_PROTOCOL, "already configured");
    while ((rc = proto_next(m, &pos, &f)) == 1) {
        char **dst = NULL;
        switch (f.tag) {
        case T_VERSION:
            if (proto_get_u32(&f, &version) != 0)
                goto bad;
            break;
        case T_MODULE:
            dst = &S.module;
            break;
        case T_PIN_FILE:
            dst = &S.pin_file;
            break;
        case T_SOFTHSM_CONF:
            dst = &S.softhsm_conf;
            break;
        case T_LINE:
            if (S.nlines == MAX_LINES)
                goto bad;
            cur = &S.lines[S.nlines++];
            dst = &cur->id;
            break;
        case T_KEY_URI:
        case T_SUBJECT_O:
        case T_SUBJECT_OU:
            if (cur == NULL)
                goto bad;
            dst = f.tag == T_KEY_URI ? &cur->uri : f.tag == T_SUBJECT_O ? &cur->o : &cur->ou;
            break;
        case T_MAX_DAYS:
            if (cur == NULL || proto_get_u32(&f, &cur->max_days) != 0)
                goto bad;
            break;
        case T_ISSUER_CERT: {
            const unsigned char *p = f.val;
            if (cur == NULL || cur->ca != NULL)
                goto bad;
            cur->ca = d2i_X509(NULL, &p, f.len);
            if (cur->ca == NULL || p != f.val + f.len)
                goto bad;
            break;
        }
        default:
            goto bad;
        }
        if (dst != NULL) {
            free(*dst);
            if ((*dst = proto_get_str(&f)) == NULL)
                goto bad;
        }
    }
    if (rc != 0 || version != PROTO_VERSION || S.module == NULL || S.pin_file == NULL)
        goto bad;
    for (size_t i = 0; i < S.nlines; i++) {
        struct line *l = &S.lines[i];
        if (l->id == NULL || l->uri == NULL || l->ca == NULL || l->max_days == 0)
            goto bad;
        ret = profile_issuer_from_cert(l->ca, &l->iss, err, sizeof err);
        if (ret == LC_OK && cert_thumbprint(l->ca, l->ca_thumb) != 0)
            ret =
                lc_seterr(LC_ERR_INTERNAL, err, sizeof err, "cannot hash the line CA certificate");
        if (ret != LC_OK)
            goto fail;
    }
    ret = ensure_keys(err, sizeof err);
    for (size_t i = 0; ret == LC_OK && i < S.nlines; i++)
        ret = check_key_matches(&S.lines[i], err, sizeof err);
    if (ret != LC_OK) /* configuration is kept: an HSM that comes back is picked up later */
        return reply_error(fd, m->id, ret, err);
    {
        proto_msg_t r = {0};
        proto_init(&r, PROTO_OK, m->id);
        ret = send_frame(fd, &r);
        proto_free(&r);
    }
    return ret;
bad:
    ret = LC_ERR_PROTOCOL;
    snprintf(err, sizeof err, "malformed CONFIGURE message");
fail:
    /* Nothing of a refused configuration stays: a half-set line would be used later. */
    for (size_t i = 0; i < S.nlines; i++)
        line_clear(&S.lines[i]);
    S.nlines = 0;
    free(S.module);
    free(S.pin_file);
    free(S.softhsm_conf);
    S.module = S.pin_file = S.softhsm_conf = NULL;
    return reply_error(fd, m->id, ret, err);
}

static int enqueue_sign(uint32_t id, struct line *l, der_buf_t *tbs);

static struct line *find_line(const proto_field_t *f)
{
    for (size_t i = 0; i < S.nlines; i++)
        if (strlen(S.lines[i].id) == f->len && memcmp(S.lines[i].id, f->val, f->len) == 0)
            return &S.lines[i];
    return NULL;
}

/*
 * Signs tbs with key, counting the signature (also in *counter, the line
 * key's, when not NULL: *sig_no is then its number); marks the module for
 * reload on failure.
 */
static int sign_tbs(EVP_PKEY *key, enum lc_key_type kt, const der_buf_t *tbs, der_buf_t *cert,
                    atomic_ullong *counter, uint64_t *sig_no, char *err, size_t errlen)
{
    unsigned char *sig = NULL;
    size_t sig_len = 0;
    int ret;

    ret = p11_sign(key, profile_md_nid(kt), tbs->p, tbs->len, &sig, &sig_len, err, errlen);
    if (ret != LC_OK) {
        atomic_store(&S.need_reload, 1);
        return ret;
    }
    atomic_fetch_add(&S.signatures, 1);
    if (counter != NULL)
        *sig_no = atomic_fetch_add(counter, 1) + 1;
    ret = profile_assemble(kt, tbs->p, tbs->len, sig, sig_len, cert);
    free(sig);
    return ret;
}

static int do_issue(int fd, const proto_msg_t *m, policy_ctx_t *pctx)
{
    proto_field_t f, csr_f = {0};
    size_t pos = 0;
    struct line *l = NULL;
    profile_leaf_t leaf;
    lc_csr_t csr;
    lc_refusal_t why = {0};
    der_buf_t tbs = {0};
    int have_serial = 0, rc, ret;
    int64_t now = (int64_t)time(NULL);

    memset(&leaf, 0, sizeof leaf);
    while ((rc = proto_next(m, &pos, &f)) == 1) {
        if (f.tag == T_LINE)
            l = find_line(&f);
        else if (f.tag == T_CSR)
            csr_f = f;
        else if (f.tag == T_SERIAL && f.len == PROFILE_SERIAL_LEN) {
            memcpy(leaf.serial, f.val, PROFILE_SERIAL_LEN);
            have_serial = 1;
        } else if (f.tag == T_NOT_BEFORE) {
            if (proto_get_i64(&f, &leaf.not_before) != 0)
                rc = -1;
        } else if (f.tag == T_NOT_AFTER) {
            if (proto_get_i64(&f, &leaf.not_after) != 0)
                rc = -1;
        } else {
            rc = -1;
        }
        if (rc < 0)
            break;
    }
    if (rc != 0 || csr_f.val == NULL || !have_serial)
        return reply_error(fd, m->id, LC_ERR_PROTOCOL, "malformed ISSUE message");
    if (l == NULL)
        return reply_error(fd, m->id, LC_ERR_CONFIG, "unknown line");
    /* The serial must have the profile's form: positive, 16 octets, no leading zero octet. */
    if ((leaf.serial[0] & 0x80) || leaf.serial[0] == 0)
        return reply_error(fd, m->id, LC_ERR_PROTOCOL, "serial does not follow the profile");
    if (leaf.not_before > now + 300 || leaf.not_before < now - 86400 ||
        leaf.not_after <= leaf.not_before ||
        leaf.not_after - leaf.not_before > (int64_t)l->max_days * 86400 + 86400)
        return reply_error(fd, m->id, LC_ERR_PROTOCOL, "validity outside the line's profile");
    if (policy_csr_parse(csr_f.val, csr_f.len, &csr, &why) != 0 ||
        policy_csr_verify(pctx, &csr, &why) != 0) {
        proto_msg_t r = {0};
        proto_init(&r, PROTO_REFUSED, m->id);
        proto_put_u32(&r, T_REASON, (uint32_t)why.reason);
        proto_put_str(&r, T_DETAIL, why.detail);
        ret = send_frame(fd, &r);
        proto_free(&r);
        return ret;
    }
    leaf.csr = &csr;
    leaf.o = l->o;
    leaf.ou = l->ou;
    ret = profile_leaf_tbs(&l->iss, &leaf, &tbs);
    if (ret != LC_OK) {
        der_buf_free(&tbs);
        return reply_error(fd, m->id, ret, lc_strerror(ret));
    }
    /* Checked and built: only the HSM signature is left, for a signing thread. */
    return enqueue_sign(m->id, l, &tbs);
}

static int do_crl(int fd, const proto_msg_t *m)
{
    proto_field_t f;
    size_t pos = 0, n = 0, cap = 0;
    struct line *l = NULL;
    profile_crl_entry_t *entries = NULL;
    int64_t this_update = 0, next_update = 0, number = 0, now = (int64_t)time(NULL);
    der_buf_t tbs = {0}, crl = {0};
    char err[256] = "";
    uint64_t sig_no = 0;
    int rc, ret;

    while ((rc = proto_next(m, &pos, &f)) == 1) {
        if (f.tag == T_LINE) {
            l = find_line(&f);
        } else if (f.tag == T_CRL_NUMBER) {
            rc = proto_get_i64(&f, &number) == 0 ? 1 : -1;
        } else if (f.tag == T_THIS_UPDATE) {
            rc = proto_get_i64(&f, &this_update) == 0 ? 1 : -1;
        } else if (f.tag == T_NEXT_UPDATE) {
            rc = proto_get_i64(&f, &next_update) == 0 ? 1 : -1;
        } else if (f.tag == T_CRL_ENTRY && f.len > 9 && f.len - 9 <= sizeof entries->serial) {
            if (n == cap) {
                profile_crl_entry_t *ne = realloc(entries, (cap = cap ? cap * 2 : 64) * sizeof *ne);
                if (ne == NULL) {
                    rc = -1;
                    break;
                }
                entries = ne;
            }
            proto_field_t t = {T_CRL_ENTRY, f.val, 8};
            proto_get_i64(&t, &entries[n].revoked_at);
            entries[n].reason = f.val[8];
            entries[n].serial_len = f.len - 9;
            memcpy(entries[n].serial, f.val + 9, f.len - 9);
            n++;
        } else {
            rc = -1;
        }
        if (rc < 0)
            break;
    }
    if (rc != 0 || number <= 0) {
        ret = reply_error(fd, m->id, LC_ERR_PROTOCOL, "malformed CRL message");
        goto out;
    }
    if (l == NULL) {
        ret = reply_error(fd, m->id, LC_ERR_CONFIG, "unknown line");
        goto out;
    }
    if (this_update < now - 86400 || this_update > now + 300 || next_update <= this_update) {
        ret = reply_error(fd, m->id, LC_ERR_PROTOCOL, "CRL times out of range");
        goto out;
    }
    ret = ensure_keys(err, sizeof err);
    if (ret == LC_OK)
        ret =
            profile_crl_tbs(&l->iss, (uint64_t)number, this_update, next_update, entries, n, &tbs);
    if (ret == LC_OK)
        ret = sign_tbs(l->key, l->iss.key_type, &tbs, &crl, &l->sigs, &sig_no, err, sizeof err);
    ret = ret == LC_OK ? reply_cert(fd, m->id, crl.p, crl.len, l, sig_no)
                       : reply_error(fd, m->id, ret, err[0] ? err : lc_strerror(ret));
out:
    free(entries);
    der_buf_free(&tbs);
    der_buf_free(&crl);
    return ret;
}

/* A DPS verification code: hex, 16..64 characters (a CN holds at most 64). */
static int code_ok(const char *c)
{
    size_t n = strlen(c);

    if (n < 16 || n > 64)
        return 0;
    for (; *c; c++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f') || (*c >= 'A' && *c <= 'F')))
            return 0;
    return 1;
}

/*
 * The DPS proof-of-possession certificate: CN = the verification code, at
 * most two days of validity, no extended key usage, so it cannot serve as a
 * device certificate.
 */
static int do_verify_cert(int fd, const proto_msg_t *m)
{
    proto_field_t f, csr_f = {0};
    size_t pos = 0;
    struct line *l = NULL;
    profile_leaf_t leaf;
    lc_csr_t csr;
    lc_refusal_t why = {0};
    der_buf_t tbs = {0}, cert = {0};
    char err[256] = "", *code = NULL;
    uint64_t sig_no = 0;
    int have_serial = 0, rc, ret;
    int64_t now = (int64_t)time(NULL);

    memset(&leaf, 0, sizeof leaf);
    while ((rc = proto_next(m, &pos, &f)) == 1) {
        if (f.tag == T_LINE)
            l = find_line(&f);
        else if (f.tag == T_CSR)
            csr_f = f;
        else if (f.tag == T_CODE && code == NULL)
            rc = (code = proto_get_str(&f)) != NULL ? 1 : -1;
        else if (f.tag == T_SERIAL && f.len == PROFILE_SERIAL_LEN) {
            memcpy(leaf.serial, f.val, PROFILE_SERIAL_LEN);
            have_serial = 1;
        } else if (f.tag == T_NOT_BEFORE)
            rc = proto_get_i64(&f, &leaf.not_before) == 0 ? 1 : -1;
        else if (f.tag == T_NOT_AFTER)
            rc = proto_get_i64(&f, &leaf.not_after) == 0 ? 1 : -1;
        else
            rc = -1;
        if (rc < 0)
            break;
    }
    if (rc != 0 || csr_f.val == NULL || code == NULL || !have_serial || (leaf.serial[0] & 0x80) ||
        leaf.serial[0] == 0) {
        ret = reply_error(fd, m->id, LC_ERR_PROTOCOL, "malformed VERIFY_CERT message");
        goto out;
    }
    if (l == NULL) {
        ret = reply_error(fd, m->id, LC_ERR_CONFIG, "unknown line");
        goto out;
    }
    if (!code_ok(code) || leaf.not_before > now + 300 || leaf.not_before < now - 86400 ||
        leaf.not_after <= leaf.not_before || leaf.not_after - leaf.not_before > 2 * 86400) {
        ret = reply_error(fd, m->id, LC_ERR_PROTOCOL,
                          "verification code must be 16-64 hex digits, validity at most 2 days");
        goto out;
    }
    if (policy_csr_parse(csr_f.val, csr_f.len, &csr, &why) != 0 ||
        policy_csr_verify(S.pctx, &csr, &why) != 0 || strcmp(csr.cn, code) != 0) {
        ret = reply_error(fd, m->id, LC_ERR_PROTOCOL,
                          why.detail[0] ? why.detail : "CSR CN is not the verification code");
        goto out;
    }
    ret = ensure_keys(err, sizeof err);
    leaf.csr = &csr;
    leaf.verification = 1;
    if (ret == LC_OK)
        ret = profile_leaf_tbs(&l->iss, &leaf, &tbs);
    if (ret == LC_OK)
        ret = sign_tbs(l->key, l->iss.key_type, &tbs, &cert, &l->sigs, &sig_no, err, sizeof err);
    ret = ret == LC_OK ? reply_cert(fd, m->id, cert.p, cert.len, l, sig_no)
                       : reply_error(fd, m->id, ret, err[0] ? err : lc_strerror(ret));
out:
    free(code);
    der_buf_free(&tbs);
    der_buf_free(&cert);
    return ret;
}

/* Setup mode: the SubjectPublicKeyInfo of a token key (DER, in a CERT reply's T_CERT). */
static int spki_of(const char *uri, unsigned char **spki, int *len, EVP_PKEY **pub_out, char *err,
                   size_t errlen)
{
    EVP_PKEY *pub = NULL;
    int ret;

    *spki = NULL;
    ret = p11_find_key(S.p11, uri, 0, &pub, err, errlen);
    if (ret != LC_OK)
        return ret;
    *len = i2d_PUBKEY(pub, spki);
    if (*len <= 0) {
        EVP_PKEY_free(pub);
        return lc_seterr(LC_ERR_CRYPTO, err, errlen, "cannot encode public key of %s", uri);
    }
    if (pub_out != NULL)
        *pub_out = pub;
    else
        EVP_PKEY_free(pub);
    return LC_OK;
}

static enum lc_key_type key_type_of(EVP_PKEY *pub)
{
    char group[64] = "";
    size_t gl = 0;

    if (EVP_PKEY_is_a(pub, "RSA"))
        return LC_KEY_RSA;
    EVP_PKEY_get_utf8_string_param(pub, "group", group, sizeof group, &gl);
    if (strcmp(group, "secp384r1") == 0)
        return LC_KEY_EC_P384;
    if (strcmp(group, "prime256v1") == 0)
        return LC_KEY_EC_P256;
    return LC_KEY_NONE;
}

static int do_ca_cert(int fd, const proto_msg_t *m)
{
    proto_field_t f;
    size_t pos = 0;
    char *issuer_uri = NULL, *subject_uri = NULL, *cn = NULL, *o = NULL;
    char err[256] = "";
    X509 *issuer_cert = NULL;
    profile_issuer_t iss = {0};
    profile_ca_t ca;
    unsigned char *spki = NULL;
    int spki_len = 0, rc, ret = LC_ERR_PROTOCOL;
    uint32_t pathlen = (uint32_t)-1;
    EVP_PKEY *signer_key = NULL, *subject_pub = NULL;
    enum lc_key_type kt;
    der_buf_t tbs = {0}, cert = {0};

    memset(&ca, 0, sizeof ca);
    while ((rc = proto_next(m, &pos, &f)) == 1) {
        const unsigned char *p = f.val;
        switch (f.tag) {
        case T_ISSUER_KEY_URI:
            issuer_uri = proto_get_str(&f);
            break;
        case T_SUBJECT_KEY_URI:
            subject_uri = proto_get_str(&f);
            break;
        case T_SUBJECT_CN:
            cn = proto_get_str(&f);
            break;
        case T_SUBJECT_O:
            o = proto_get_str(&f);
            break;
        case T_PATHLEN:
            proto_get_u32(&f, &pathlen);
            break;
        case T_ISSUER_CERT:
            issuer_cert = d2i_X509(NULL, &p, f.len);
            break;
        case T_SERIAL:
            if (f.len == PROFILE_SERIAL_LEN)
                memcpy(ca.serial, f.val, PROFILE_SERIAL_LEN);
            break;
        case T_NOT_BEFORE:
            proto_get_i64(&f, &ca.not_before);
            break;
        case T_NOT_AFTER:
            proto_get_i64(&f, &ca.not_after);
            break;
        default:
            rc = -1;
        }
        if (rc < 0)
            break;
    }
    if (rc != 0 || issuer_uri == NULL || subject_uri == NULL || cn == NULL) {
        ret = reply_error(fd, m->id, LC_ERR_PROTOCOL, "malformed CA_CERT message");
        goto out;
    }
    ret = ensure_keys(err, sizeof err);
    if (ret == LC_OK)
        ret = spki_of(subject_uri, &spki, &spki_len, &subject_pub, err, sizeof err);
    if (ret == LC_OK)
        ret = p11_find_key(S.p11, issuer_uri, 1, &signer_key, err, sizeof err);
    if (ret == LC_OK && issuer_cert != NULL)
        ret = profile_issuer_from_cert(issuer_cert, &iss, err, sizeof err);
    if (ret != LC_OK) {
        ret = reply_error(fd, m->id, ret, err);
        goto out;
    }
    kt = issuer_cert != NULL ? iss.key_type : key_type_of(subject_pub);
    ca.spki = spki;
    ca.spki_len = (size_t)spki_len;
    ca.cn = cn;
    ca.o = o;
    ca.pathlen = (int32_t)pathlen;
    ret = profile_ca_tbs(issuer_cert != NULL ? &iss : NULL, kt, &ca, &tbs);
    if (ret == LC_OK)
        ret = sign_tbs(signer_key, kt, &tbs, &cert, NULL, NULL, err, sizeof err);
    ret = ret == LC_OK ? reply_cert(fd, m->id, cert.p, cert.len, NULL, 0)
                       : reply_error(fd, m->id, ret, err[0] ? err : lc_strerror(ret));
out:
    der_buf_free(&tbs);
    der_buf_free(&cert);
    EVP_PKEY_free(signer_key);
    EVP_PKEY_free(subject_pub);
    OPENSSL_free(spki);
    X509_free(issuer_cert);
    profile_issuer_clear(&iss);
    free(issuer_uri);
    free(subject_uri);
    free(cn);
    free(o);
    return ret;
}

/*
 * Appends ",INSTANCE:N" or ",INSTANCE:N-M" (the first without the comma) to
 * a list, after checking its form; a number of this process's own numbering
 * must be one it has made.  Returns 0, or -1 for a malformed entry.
 */
static int list_add(char *list, size_t cap, size_t *len, const proto_field_t *f,
                    const struct line *l)
{
    char buf[64], *end;
    unsigned long long n;

    if (f->len < 18 || f->len >= sizeof buf)
        return -1;
    memcpy(buf, f->val, f->len);
    buf[f->len] = '\0';
    for (int i = 0; i < 16; i++)
        if (!((buf[i] >= '0' && buf[i] <= '9') || (buf[i] >= 'a' && buf[i] <= 'f')))
            return -1;
    if (buf[16] != ':' || buf[17] < '1' || buf[17] > '9')
        return -1;
    errno = 0;
    n = strtoull(buf + 17, &end, 10);
    if (*end == '-') {
        unsigned long long last = strtoull(end + 1, &end, 10);
        if (last < n)
            return -1;
        n = last;
    }
    if (errno != 0 || *end != '\0' || n > INT64_MAX)
        return -1;
    if (memcmp(buf, S.instance, 16) == 0 && n > atomic_load(&l->sigs))
        return -1;
    if (*len + f->len + 2 > cap)
        return -1;
    *len += (size_t)snprintf(list + *len, cap - *len, "%s%s", *len ? "," : "", buf);
    return 0;
}

/*
 * An audit checkpoint (docs/audit.md): the station says how many rows the
 * log has and its head hash, which signatures it holds uncommitted
 * (pending) and which it discarded unreleased (withheld); the signer adds
 * its own count of the line key's signatures and signs it all with that
 * key.  `audit verify` then proves the log accounts for every signature the
 * signer made up to the checkpoint, whatever the station claimed.
 */
static int do_checkpoint(int fd, const proto_msg_t *m)
{
    enum { LIST_CAP = CHECKPOINT_MAX_LIST * 60 }; /* "INSTANCE:N-M," with 20-digit numbers */
    proto_field_t f;
    size_t pos = 0, plen = 0, wlen = 0, np = 0, nw = 0;
    struct line *l = NULL;
    int64_t rows = -1;
    uint32_t final = 0;
    char *head = NULL, *pending = calloc(1, LIST_CAP), *withheld = calloc(1, LIST_CAP);
    char *payload = NULL, err[256] = "";
    unsigned char *sig = NULL;
    size_t sig_len = 0, cap;
    uint64_t no;
    int rc, ret;
    proto_msg_t r = {0};

    if (pending == NULL || withheld == NULL)
        die("out of memory");
    while ((rc = proto_next(m, &pos, &f)) == 1) {
        if (f.tag == T_LINE && l == NULL)
            rc = (l = find_line(&f)) != NULL ? 1 : -1;
        else if (f.tag == T_ROWS)
            rc = proto_get_i64(&f, &rows) == 0 ? 1 : -1;
        else if (f.tag == T_HEAD && head == NULL)
            rc = (head = proto_get_str(&f)) != NULL ? 1 : -1;
        else if (f.tag == T_FINAL)
            rc = proto_get_u32(&f, &final) == 0 && final <= 1 ? 1 : -1;
        else if (f.tag == T_PENDING && l != NULL && np++ < CHECKPOINT_MAX_LIST)
            rc = list_add(pending, LIST_CAP, &plen, &f, l) == 0 ? 1 : -1;
        else if (f.tag == T_WITHHELD && l != NULL && nw++ < CHECKPOINT_MAX_LIST)
            rc = list_add(withheld, LIST_CAP, &wlen, &f, l) == 0 ? 1 : -1;
        else
            rc = -1;
        if (rc < 0)
            break;
    }
    if (rc != 0 || l == NULL || rows < 0 || head == NULL || strlen(head) != 64 ||
        strspn(head, "0123456789abcdef") != 64) {
        ret = reply_error(fd, m->id, LC_ERR_PROTOCOL, "malformed CHECKPOINT message");
        goto out;
    }
    if (plen + wlen > PROTO_MAX_FRAME - 4096) { /* the signed text must fit in the reply */
        ret = reply_error(fd, m->id, LC_ERR_PROTOCOL, "CHECKPOINT lists too long");
        goto out;
    }
    if ((ret = ensure_keys(err, sizeof err)) != LC_OK) {
        ret = reply_error(fd, m->id, ret, err);
        goto out;
    }
    /* This checkpoint's own signature is the next one: it vouches for those before it. */
    no = atomic_fetch_add(&l->sigs, 1) + 1;
    cap = 512 + plen + wlen;
    if ((payload = malloc(cap)) == NULL)
        die("out of memory");
    snprintf(payload, cap,
             "linecert-checkpoint-v1 line=%s ca=%s md=%s signer=%s sig=%llu signed=%llu"
             " rows=%lld head=%s final=%u pending=%s withheld=%s",
             l->id, l->ca_thumb,
             profile_md_nid(l->iss.key_type) == NID_sha384 ? "SHA384" : "SHA256", S.instance,
             (unsigned long long)no, (unsigned long long)(no - 1), (long long)rows, head, final,
             plen ? pending : "-", wlen ? withheld : "-");
    ret = p11_sign(l->key, profile_md_nid(l->iss.key_type), (const unsigned char *)payload,
                   strlen(payload), &sig, &sig_len, err, sizeof err);
    if (ret != LC_OK) {
        atomic_store(&S.need_reload, 1);
        ret = reply_error(fd, m->id, ret, err);
        goto out;
    }
    atomic_fetch_add(&S.signatures, 1);
    proto_init(&r, PROTO_CERT, m->id);
    proto_put(&r, T_CERT, sig, sig_len);
    proto_put_str(&r, T_DETAIL, payload);
    put_sig(&r, l, no, 1);
    ret = send_frame(fd, &r);
out:
    proto_free(&r);
    free(sig);
    free(payload);
    free(head);
    free(pending);
    free(withheld);
    return ret;
}

static int do_status(int fd, const proto_msg_t *m)
{
    proto_msg_t r = {0};
    char err[256];
    int ret, ok = S.module != NULL && ensure_keys(err, sizeof err) == LC_OK;

    /* Keys in hand say nothing about a token that left: ask the module (no signature). */
    if (ok && p11_probe(S.p11, err, sizeof err) != LC_OK) {
        ok = 0;
        atomic_store(&S.need_reload, 1);
    }

    proto_init(&r, PROTO_STATUS_REPLY, m->id);
    proto_put_i64(&r, T_SIGNATURES, (int64_t)atomic_load(&S.signatures));
    proto_put_u32(&r, T_HSM_OK, (uint32_t)ok);
    proto_put_str(&r, T_INSTANCE, S.instance);
    ret = send_frame(fd, &r);
    proto_free(&r);
    return ret;
}

static void *worker(void *arg)
{
    int fd = SIGNER_FD;

    (void)arg;
    for (;;) {
        struct job *j;
        der_buf_t cert = {0};
        char err[256] = "";
        uint64_t sig_no = 0;
        int ret;
        pthread_mutex_lock(&Q.mu);
        while (Q.head == NULL && !Q.closing)
            pthread_cond_wait(&Q.cv, &Q.mu);
        j = Q.head;
        if (j != NULL && (Q.head = j->next) == NULL)
            Q.tail = NULL;
        pthread_mutex_unlock(&Q.mu);
        if (j == NULL)
            break;
        ret = keys_acquire(err, sizeof err);
        if (ret == LC_OK) {
            ret = sign_tbs(j->line->key, j->line->iss.key_type, &j->tbs, &cert, &j->line->sigs,
                           &sig_no, err, sizeof err);
            /*
             * Sent before letting go of `keys`: a checkpoint (which holds it
             * for writing) then always follows the reply of every signature
             * numbered before it, so the station has seen them all.
             */
            if (ret == LC_OK)
                reply_cert(fd, j->id, cert.p, cert.len, j->line, sig_no);
            pthread_rwlock_unlock(&keys);
        }
        if (ret != LC_OK)
            reply_error(fd, j->id, ret, err[0] ? err : lc_strerror(ret));
        der_buf_free(&cert);
        der_buf_free(&j->tbs);
        free(j);
    }
    return NULL;
}

/* Hands a built TBSCertificate to the signing threads (taking over its buffer). */
static int enqueue_sign(uint32_t id, struct line *l, der_buf_t *tbs)
{
    struct job *j = calloc(1, sizeof *j);

    if (j == NULL)
        die("out of memory");
    j->id = id;
    j->line = l;
    j->tbs = *tbs;
    memset(tbs, 0, sizeof *tbs);
    pthread_mutex_lock(&Q.mu);
    if (Q.tail != NULL)
        Q.tail->next = j;
    else
        Q.head = j;
    Q.tail = j;
    pthread_cond_signal(&Q.cv);
    pthread_mutex_unlock(&Q.mu);
    return LC_OK;
}

struct bench_arg {
    EVP_PKEY *key;
    int md_nid;
    uint32_t count;
    int failed;
};

static void *bench_thread(void *arg)
{
    struct bench_arg *b = arg;
    unsigned char digest[48] = {1, 2, 3};
    char err[256];

    for (uint32_t i = 0; i < b->count; i++) {
        unsigned char *sig = NULL;
        size_t len = 0;
        digest[0] = (unsigned char)i;
        if (p11_sign_digest(b->key, b->md_nid, digest, b->md_nid == NID_sha384 ? 48 : 32, &sig,
                            &len, err, sizeof err) != LC_OK) {
            b->failed = 1;
            break;
        }
        atomic_fetch_add(&S.signatures, 1);
        free(sig);
    }
    return NULL;
}

/*
 * The raw signing rate of a line key through the same PKCS#11 path the
 * issuance uses, on the same number of threads: the reference `linecert
 * bench` compares issuance with.  Every signature is counted like any other
 * (the station audits the run).
 */
static int do_bench_sign(int fd, const proto_msg_t *m)
{
    proto_field_t f;
    size_t pos = 0;
    struct line *l = NULL;
    uint32_t count = 0;
    struct bench_arg args[64];
    pthread_t th[64];
    struct timespec t0, t1;
    char err[256] = "";
    proto_msg_t r = {0};
    uint64_t first;
    int n = S.threads < 64 ? S.threads : 64, ret, failed = 0;

    while (proto_next(m, &pos, &f) == 1) {
        if (f.tag == T_LINE)
            l = find_line(&f);
        else if (f.tag == T_COUNT)
            proto_get_u32(&f, &count);
    }
    if (l == NULL || count == 0 || count > 10000000)
        return reply_error(fd, m->id, LC_ERR_PROTOCOL, "BENCH_SIGN needs a line and a count");
    ret = ensure_keys(err, sizeof err);
    if (ret != LC_OK)
        return reply_error(fd, m->id, ret, err);
    /* The run's signatures get one block of numbers, which the station audits as a range. */
    first = atomic_fetch_add(&l->sigs, count) + 1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < n; i++) {
        args[i] = (struct bench_arg){l->key, profile_md_nid(l->iss.key_type),
                                     count / (uint32_t)n + (i < (int)(count % (uint32_t)n)), 0};
        pthread_create(&th[i], NULL, bench_thread, &args[i]);
    }
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        failed |= args[i].failed;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    /* Failed or not, the block is spent: the reply names it for the station to audit. */
    if (failed) {
        atomic_store(&S.need_reload, 1);
        proto_init(&r, PROTO_ERROR, m->id);
        proto_put_u32(&r, T_ERROR, (uint32_t)LC_ERR_HSM);
        proto_put_str(&r, T_DETAIL, "signing failed during the benchmark");
    } else {
        proto_init(&r, PROTO_STATUS_REPLY, m->id);
    }
    put_sig(&r, l, first, count);
    proto_put_i64(&r, T_ELAPSED_NS,
                  (int64_t)(t1.tv_sec - t0.tv_sec) * 1000000000 + (t1.tv_nsec - t0.tv_nsec));
    proto_put_i64(&r, T_SIGNATURES, (int64_t)atomic_load(&S.signatures));
    ret = send_frame(fd, &r);
    proto_free(&r);
    return ret;
}

int main(int argc, char **argv)
{
    static proto_reader_t in; /* 64 KiB: not on the stack */
    proto_msg_t m = {0};
    int fd = SIGNER_FD, ret;
    pthread_t *workers;

    S.threads = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--setup") == 0) {
            S.setup = 1;
        } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            S.threads = atoi(argv[++i]);
            if (S.threads < 1 || S.threads > 64) {
                fprintf(stderr, "linecert-signer: --threads must be 1..64\n");
                return 2;
            }
        } else {
            fprintf(stderr, "usage: linecert-signer [--setup] [--threads N]  (started by "
                            "linecert with the request socket on fd 3)\n");
            return 2;
        }
    }
    harden();
    {
        /* Writers first: a checkpoint must not wait behind a stream of signing threads. */
        pthread_rwlockattr_t attr;
        pthread_rwlockattr_init(&attr);
        pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
        pthread_rwlock_init(&keys, &attr);
        pthread_rwlockattr_destroy(&attr);
    }
    {
        unsigned char rnd[8];
        if (RAND_bytes(rnd, sizeof rnd) != 1)
            die("no randomness for the signer instance");
        lc_hex(rnd, sizeof rnd, 0, S.instance);
    }
    S.pctx = policy_ctx_new();
    workers = calloc((size_t)S.threads, sizeof *workers);
    if (S.pctx == NULL || workers == NULL)
        die("out of memory");
    for (int i = 0; i < S.threads; i++)
        if (pthread_create(&workers[i], NULL, worker, NULL) != 0)
            die("cannot start signing threads");
    proto_reader_init(&in, fd);
    for (;;) {
        ret = proto_read(&in, &m);
        if (ret == LC_ERR_IO && errno == 0)
            break; /* the station closed the socket: orderly exit */
        if (ret != LC_OK)
            die("malformed frame from the station");
        if (m.type == PROTO_ISSUE && S.module != NULL) {
            /* Parse, policy, proof of possession, TBS here; the signing threads sign. */
            if (do_issue(fd, &m, S.pctx) != LC_OK)
                break;
            continue;
        }
        pthread_rwlock_wrlock(&keys);
        switch (m.type) {
        case PROTO_BENCH_SIGN:
            pthread_rwlock_unlock(&keys); /* the benchmark threads take it for reading */
            pthread_rwlock_rdlock(&keys);
            ret = S.module ? do_bench_sign(fd, &m)
                           : reply_error(fd, m.id, LC_ERR_PROTOCOL, "not configured");
            break;
        case PROTO_CONFIGURE:
            ret = do_configure(fd, &m);
            break;
        case PROTO_ISSUE:
            ret = reply_error(fd, m.id, LC_ERR_PROTOCOL, "not configured");
            break;
        case PROTO_STATUS:
            ret = do_status(fd, &m);
            break;
        case PROTO_CRL:
            ret = S.module ? do_crl(fd, &m)
                           : reply_error(fd, m.id, LC_ERR_PROTOCOL, "not configured");
            break;
        case PROTO_CHECKPOINT:
            ret = S.module ? do_checkpoint(fd, &m)
                           : reply_error(fd, m.id, LC_ERR_PROTOCOL, "not configured");
            break;
        case PROTO_VERIFY_CERT:
            ret = S.module ? do_verify_cert(fd, &m)
                           : reply_error(fd, m.id, LC_ERR_PROTOCOL, "not configured");
            break;
        case PROTO_CA_CERT:
            ret = S.setup && S.module ? do_ca_cert(fd, &m)
                                      : reply_error(fd, m.id, LC_ERR_PROTOCOL,
                                                    "CA certificates only in --setup mode");
            break;
        default:
            ret = reply_error(fd, m.id, LC_ERR_PROTOCOL, "unknown request type");
        }
        pthread_rwlock_unlock(&keys);
        if (ret != LC_OK)
            break; /* the station is gone */
    }
    pthread_mutex_lock(&Q.mu);
    Q.closing = 1; /* workers finish what is queued, then exit */
    pthread_cond_broadcast(&Q.cv);
    pthread_mutex_unlock(&Q.mu);
    for (int i = 0; i < S.threads; i++)
        pthread_join(workers[i], NULL);
    free(workers);
    proto_free(&m);
    drop_keys();
    for (size_t i = 0; i < S.nlines; i++)
        line_clear(&S.lines[i]);
    p11_free(S.p11);
    policy_ctx_free(S.pctx);
    free(S.module);
    free(S.pin_file);
    free(S.softhsm_conf);
    return 0;
}
