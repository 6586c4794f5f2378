/*
 * issuer.c — the issuance pipeline (see issuer.h).
 */
#include "issuer.h"

#include "audit-private.h"
#include "lcerr.h"
#include "lifecycle.h"
#include "profile.h"
#include "signer_client.h"
#include "writer.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Signatures n..last of a line key, numbered by one signer instance. */
struct sigref {
    char inst[17];
    uint64_t n, last;
};

struct sigset {
    struct sigref *v;
    size_t n, cap;
};

struct issuer_line {
    const lc_line_cfg_t *cfg;
    /*
     * Signature accounting for checkpoints (docs/audit.md), under acct_mu:
     * what the signer returned whose row has not committed yet, and what
     * was discarded unreleased because its row could not be written.
     */
    pthread_mutex_t acct_mu;
    struct sigset pending, withheld;
    unsigned since_checkpoint; /* signatures seen since the last checkpoint began */
    unsigned long signed_here; /* signatures seen since this issuer opened */
    int checkpointing;         /* one checkpoint at a time per line */
    unsigned char *ca_der;     /* the line CA certificate (first in the chain file) */
    size_t ca_der_len;
    char *chain_pem;      /* line CA + intermediates, PEM */
    char *root_pem;       /* self-signed root(s), PEM; may be empty */
    int64_t ca_not_after; /* leaves never outlive their CA (the signer caps them too) */
};

/*
 * Read-only store handles.  Every issuance looks its registration ID up
 * before signing; with one handle the issuing threads queued for its mutex
 * (measured: a tenth of the station's CPU went to that queue at 10,000/s).
 */
#define READERS 4
struct reader {
    pthread_mutex_t mu;
    audit_t *a;
};

struct issuer {
    const lc_config_t *cfg;
    char *actor;
    signer_client_t *signer;
    struct issuer_line lines[CONFIG_MAX_LINES];
    size_t nlines;
    signer_line_t sl[CONFIG_MAX_LINES]; /* what the signer is configured with */
    writer_t *writer;                   /* owns the read-write store handle: group commit */
    struct reader readers[READERS];     /* read-only handles for lookups (reader_get) */
    pthread_mutex_t signer_mu;          /* the signer pointer and restarts */
    int cur_refs;                       /* callers using is->signer right now */
    struct {
        signer_client_t *c; /* replaced after it died; freed when its last caller is done */
        int refs;
    } retired[64];
    size_t nretired;
    pthread_mutex_t inflight_mu; /* registration IDs being issued right now */
    char (*inflight)[POLICY_MAX_REGID + 1];
    size_t ninflight, capinflight;
    unsigned restarts; /* signer processes started after the first */
};

/*
 * SHA-256 fetched once for the process: OpenSSL 3.0's implicit fetch in
 * EVP_Digest(..., EVP_sha256()) takes global locks on every call, which
 * many issuing threads then contend for.
 */
static EVP_MD *g_sha256;
static pthread_once_t g_sha256_once = PTHREAD_ONCE_INIT;

static void fetch_sha256(void)
{
    g_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

void issuer_sha256_hex(const unsigned char *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int n = 0;

    pthread_once(&g_sha256_once, fetch_sha256);
    EVP_Digest(data, len, md, &n, g_sha256 ? g_sha256 : EVP_sha256(), NULL);
    lc_hex(md, sizeof md, 1, out);
}

const char *issuer_signer_path(const lc_config_t *cfg, char *buf, size_t len)
{
    const char *env = getenv("LINECERT_SIGNER");
    char self[PATH_MAX];
    ssize_t n;

    if (cfg != NULL && cfg->signer != NULL)
        return cfg->signer;
    if (env != NULL && *env != '\0')
        return env;
    n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        char *slash;
        self[n] = '\0';
        slash = strrchr(self, '/');
        if (slash != NULL) {
            *slash = '\0';
            snprintf(buf, len, "%s/linecert-signer", self);
            if (access(buf, X_OK) == 0)
                return buf;
        }
    }
    snprintf(buf, len, "%s", LINECERT_LIBEXECDIR "/linecert-signer");
    return buf;
}

static int append_pem(char **dst, X509 *x)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data, *nd;
    long n;
    size_t old = *dst ? strlen(*dst) : 0;
    int ret = -1;

    if (b == NULL || !PEM_write_bio_X509(b, x))
        goto out;
    n = BIO_get_mem_data(b, &data);
    nd = realloc(*dst, old + (size_t)n + 1);
    if (nd == NULL)
        goto out;
    memcpy(nd + old, data, (size_t)n);
    nd[old + (size_t)n] = '\0';
    *dst = nd;
    ret = 0;
out:
    BIO_free(b);
    return ret;
}

static int load_chain(struct issuer_line *l, char *err, size_t errlen)
{
    FILE *f = fopen(l->cfg->chain, "re");
    X509 *x;
    int n = 0, ret = LC_ERR_CONFIG;

    if (f == NULL)
        return lc_seterr(ret, err, errlen, "line %s: chain %s: %s", l->cfg->id, l->cfg->chain,
                         strerror(errno));
    l->chain_pem = calloc(1, 1);
    l->root_pem = calloc(1, 1);
    while ((x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
        int self_signed = X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)) == 0;
        if (n++ == 0) {
            int len = i2d_X509(x, &l->ca_der);
            struct tm tm;
            l->ca_der_len = len > 0 ? (size_t)len : 0;
            if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1)
                l->ca_not_after = (int64_t)timegm(&tm);
        }
        if (append_pem(self_signed ? &l->root_pem : &l->chain_pem, x) != 0) {
            X509_free(x);
            fclose(f);
            return lc_seterr(LC_ERR_NOMEM, err, errlen, "out of memory");
        }
        X509_free(x);
    }
    ERR_clear_error();
    fclose(f);
    if (n == 0 || l->ca_der_len == 0)
        return lc_seterr(ret, err, errlen, "line %s: chain %s holds no PEM certificate", l->cfg->id,
                         l->cfg->chain);
    return LC_OK;
}

/* Signatures of a line key between two checkpoints (config checkpoint_every). */
static unsigned checkpoint_every(const issuer_t *is)
{
    return is->cfg->checkpoint_every > 0 ? (unsigned)is->cfg->checkpoint_every : 1000;
}

/*
 * A read-only handle, locked: the first free one, looking from this thread's
 * own; if all are busy, waits for its own.  Give it back with reader_put().
 */
static struct reader *reader_get(issuer_t *is)
{
    static atomic_uint threads;
    static _Thread_local unsigned home; /* 1 + this thread's first choice; 0: not chosen yet */
    struct reader *r;

    if (home == 0)
        home = atomic_fetch_add(&threads, 1) % READERS + 1;
    for (unsigned i = 0; i < READERS; i++) {
        r = &is->readers[(home - 1 + i) % READERS];
        if (pthread_mutex_trylock(&r->mu) == 0)
            return r;
    }
    r = &is->readers[home - 1];
    pthread_mutex_lock(&r->mu);
    return r;
}

static void reader_put(struct reader *r)
{
    pthread_mutex_unlock(&r->mu);
}

static struct issuer_line *find_line(issuer_t *is, const char *id)
{
    for (size_t i = 0; i < is->nlines; i++)
        if (strcmp(is->lines[i].cfg->id, id) == 0)
            return &is->lines[i];
    return NULL;
}

/* Adds r to set; returns 0 or -1 (out of memory). */
static int sigset_add(struct sigset *set, const struct sigref *r)
{
    if (set->n == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 64;
        struct sigref *v = realloc(set->v, cap * sizeof *v);
        if (v == NULL)
            return -1;
        set->v = v;
        set->cap = cap;
    }
    set->v[set->n++] = *r;
    return 0;
}

/* Removes r from set; returns 1 if it was there. */
static int sigset_remove(struct sigset *set, const struct sigref *r)
{
    for (size_t i = set->n; i-- > 0;) {
        if (set->v[i].n == r->n && strcmp(set->v[i].inst, r->inst) == 0) {
            set->v[i] = set->v[--set->n];
            return 1;
        }
    }
    return 0;
}

static int sigref_from(const signer_result_t *sr, struct sigref *r)
{
    if (sr->sig_no == 0 || strlen(sr->instance) != 16)
        return -1; /* a signer without numbering: nothing to account */
    memcpy(r->inst, sr->instance, sizeof r->inst);
    r->n = r->last = sr->sig_no;
    return 0;
}

/*
 * "sig=INSTANCE:N; " — how a row names the signature it accounts for; first
 * in the detail so that nothing a device or PLC supplied can imitate it.
 */
static void sig_token(const signer_result_t *sr, char *buf, size_t len)
{
    struct sigref r;

    if (sigref_from(sr, &r) == 0)
        snprintf(buf, len, "sig=%s:%llu; ", r.inst, (unsigned long long)r.n);
    else
        buf[0] = '\0';
}

/*
 * The signer client's observer (signer_client_observe): the signer returned
 * signatures; they are pending until their row commits.  It runs in the
 * client's reader thread, in the order the signer replied, so every
 * signature numbered before a checkpoint is pending, settled or withheld by
 * the time that checkpoint's reply arrives.
 */
static void on_signature(void *ctx, const char *line, const char *instance, uint64_t first,
                         uint64_t count)
{
    struct issuer_line *l = find_line(ctx, line);
    struct sigref r;

    if (l == NULL)
        return;
    snprintf(r.inst, sizeof r.inst, "%s", instance);
    r.n = first;
    r.last = first + count - 1;
    pthread_mutex_lock(&l->acct_mu);
    sigset_add(&l->pending, &r); /* out of memory: verify will report it unaccounted */
    l->since_checkpoint += (unsigned)count;
    l->signed_here += count;
    pthread_mutex_unlock(&l->acct_mu);
}

/*
 * Its row committed (committed != 0), or it was discarded unreleased: then
 * the next checkpoint lists it as withheld.  Moving it from one set to the
 * other under one lock means a checkpoint always finds it in one of them.
 */
static void sig_settled(struct issuer_line *l, const signer_result_t *sr, int committed)
{
    struct sigref r;

    if (sigref_from(sr, &r) != 0)
        return;
    pthread_mutex_lock(&l->acct_mu);
    sigset_remove(&l->pending, &r);
    if (!committed)
        sigset_add(&l->withheld, &r);
    pthread_mutex_unlock(&l->acct_mu);
}

/*
 * The signer client's idle hook (signer_client_on_idle): the reader thread
 * has read every reply there is, so what issued() queued commits now, on
 * that thread.
 */
static void replies_read(void *ctx)
{
    issuer_t *is = ctx;

    writer_flush(is->writer); /* started before any signer, stopped after the last */
}

/*
 * Starts and configures a signer.  A signer that runs but cannot reach the
 * token is kept (it retries at each request); LC_ERR_HSM is still returned.
 */
static int start_signer(issuer_t *is, char *err, size_t errlen)
{
    const lc_config_t *cfg = is->cfg;
    signer_conf_t sc;
    char path[PATH_MAX];
    int ret;

    ret = signer_client_spawn(issuer_signer_path(cfg, path, sizeof path), 0, cfg->signer_threads,
                              &is->signer, err, errlen);
    if (ret != LC_OK)
        return ret;
    signer_client_observe(is->signer, on_signature, is);
    signer_client_on_idle(is->signer, replies_read, is);
    sc = (signer_conf_t){cfg->pkcs11_module, cfg->pin_file, cfg->softhsm2_conf, is->sl, is->nlines};
    ret = signer_client_configure(is->signer, &sc, err, errlen);
    if (ret == LC_ERR_NOT_FOUND)
        ret = LC_ERR_HSM;
    if (ret != LC_OK && ret != LC_ERR_HSM) {
        /* Never published to other threads (the caller holds signer_mu): free it now. */
        signer_client_free(is->signer);
        is->signer = NULL;
    }
    return ret;
}

/*
 * The signer client is shared by every issuing thread.  When it dies, one
 * thread starts a new one; the dead one is retired and freed only when the
 * last thread still holding it lets go (signer_put), so nobody ever calls
 * into freed memory and nothing accumulates.
 */

/* The current signer client with a reference (NULL if none runs).  Release with signer_put(). */
static signer_client_t *signer_get(issuer_t *is)
{
    signer_client_t *c;

    pthread_mutex_lock(&is->signer_mu);
    c = is->signer;
    if (c != NULL)
        is->cur_refs++;
    pthread_mutex_unlock(&is->signer_mu);
    return c;
}

/* Drops a reference; returns a retired client that is now unused (to free), or NULL. */
static signer_client_t *put_locked(issuer_t *is, signer_client_t *c)
{
    if (c == NULL)
        return NULL;
    if (c == is->signer) {
        is->cur_refs--;
        return NULL;
    }
    for (size_t i = 0; i < is->nretired; i++) {
        if (is->retired[i].c == c) {
            if (--is->retired[i].refs > 0)
                return NULL;
            is->retired[i] = is->retired[--is->nretired];
            return c;
        }
    }
    return NULL;
}

static void signer_put(issuer_t *is, signer_client_t *c)
{
    signer_client_t *dead;

    pthread_mutex_lock(&is->signer_mu);
    dead = put_locked(is, c);
    pthread_mutex_unlock(&is->signer_mu);
    signer_client_free(dead);
}

/*
 * Replaces a dead signer client, unless another thread already did.  Takes
 * over the caller's reference to `dead`; returns the new client with a
 * reference (or NULL if none could be started).
 */
static signer_client_t *signer_restart(issuer_t *is, signer_client_t *dead, char *err,
                                       size_t errlen)
{
    signer_client_t *c, *unused = NULL, *old = NULL;

    pthread_mutex_lock(&is->signer_mu);
    unused = put_locked(is, dead);
    if (is->signer == dead || is->signer == NULL) {
        if (is->signer != NULL) {
            if (is->cur_refs == 0)
                old = is->signer;
            else if (is->nretired < sizeof is->retired / sizeof is->retired[0]) {
                is->retired[is->nretired].c = is->signer;
                is->retired[is->nretired++].refs = is->cur_refs;
            } /* else: 64 dead clients all still in use at once; it leaks, the station goes on */
            is->signer = NULL;
            is->cur_refs = 0;
        }
        is->restarts++;
        start_signer(is, err, errlen);
    }
    c = is->signer;
    if (c != NULL)
        is->cur_refs++;
    pthread_mutex_unlock(&is->signer_mu);
    signer_client_free(unused);
    signer_client_free(old);
    return c;
}

int issuer_open(const lc_config_t *cfg, const char *line, const char *actor, int flags,
                issuer_t **out, char *err, size_t errlen)
{
    issuer_t *is;
    int ret;

    *out = NULL;
    is = calloc(1, sizeof *is);
    if (is == NULL)
        return lc_seterr(LC_ERR_NOMEM, err, errlen, "out of memory");
    is->cfg = cfg;
    is->actor = strdup(actor);
    for (size_t i = 0; i < cfg->nlines; i++) {
        if (line != NULL && strcmp(cfg->lines[i].id, line) != 0)
            continue;
        is->lines[is->nlines].cfg = &cfg->lines[i];
        pthread_mutex_init(&is->lines[is->nlines].acct_mu, NULL);
        ret = load_chain(&is->lines[is->nlines++], err, errlen);
        if (ret != LC_OK)
            goto fail;
    }
    if (is->nlines == 0) {
        ret = lc_seterr(LC_ERR_CONFIG, err, errlen, "%s: no line \"%s\"", cfg->path,
                        line ? line : "");
        goto fail;
    }
    for (size_t i = 0; i < READERS; i++)
        pthread_mutex_init(&is->readers[i].mu, NULL);
    pthread_mutex_init(&is->signer_mu, NULL);
    pthread_mutex_init(&is->inflight_mu, NULL);
    {
        audit_t *a = NULL;
        ret = audit_open(cfg->audit_db, AUDIT_READWRITE, &a, err, errlen);
        if (ret == LC_OK && (ret = writer_start(a, &is->writer, err, errlen)) != LC_OK)
            audit_free(a);
    }
    if (ret != LC_OK)
        goto fail;
    for (size_t i = 0; i < READERS && ret == LC_OK; i++)
        ret = audit_open(cfg->audit_db, AUDIT_READONLY, &is->readers[i].a, err, errlen);
    if (ret != LC_OK)
        goto fail;
    for (size_t i = 0; i < is->nlines; i++) {
        const lc_line_cfg_t *lc = is->lines[i].cfg;
        is->sl[i] = (signer_line_t){
            lc->id,        lc->ca_key,     is->lines[i].ca_der,        is->lines[i].ca_der_len,
            lc->subject_o, lc->subject_ou, (uint32_t)lc->validity_days};
    }
    ret = start_signer(is, err, errlen);
    if (ret == LC_ERR_HSM && (flags & ISSUER_TOLERATE_HSM) && is->signer != NULL)
        ret = LC_OK;
    if (ret != LC_OK)
        goto fail;
    *out = is;
    return LC_OK;
fail:
    issuer_free(is);
    return ret;
}

static int checkpoint_line(issuer_t *is, struct issuer_line *l, int final, char *err,
                           size_t errlen);
static void maybe_checkpoint(issuer_t *is, struct issuer_line *l);

void issuer_free(issuer_t *is)
{
    if (is == NULL)
        return;
    /* At shutdown every line that signed anything gets a final checkpoint. */
    for (size_t i = 0; is->writer != NULL && is->signer != NULL && i < is->nlines; i++) {
        struct issuer_line *l = &is->lines[i];
        char err[256];
        int due;
        pthread_mutex_lock(&l->acct_mu);
        due = l->signed_here > 0 || l->withheld.n > 0;
        pthread_mutex_unlock(&l->acct_mu);
        if (due)
            checkpoint_line(is, l, 1, err, sizeof err);
    }
    signer_client_free(is->signer);
    for (size_t i = 0; i < is->nretired; i++)
        signer_client_free(is->retired[i].c);
    writer_stop(is->writer); /* commits what is queued */
    for (size_t i = 0; i < READERS; i++) {
        audit_free(is->readers[i].a);
        pthread_mutex_destroy(&is->readers[i].mu);
    }
    free(is->inflight);
    for (size_t i = 0; i < is->nlines; i++) {
        free(is->lines[i].ca_der);
        free(is->lines[i].chain_pem);
        free(is->lines[i].root_pem);
        free(is->lines[i].pending.v);
        free(is->lines[i].withheld.v);
        pthread_mutex_destroy(&is->lines[i].acct_mu);
    }
    free(is->actor);
    free(is);
}

int64_t issuer_audit_rows(issuer_t *is)
{
    struct reader *rd;
    int64_t n;

    rd = reader_get(is);
    n = audit_count(rd->a);
    reader_put(rd);
    return n;
}

int issuer_crl_state(issuer_t *is, const char *line, lifecycle_crl_state_t *cs, char *err,
                     size_t errlen)
{
    struct reader *rd;
    int ret;

    rd = reader_get(is);
    ret = lifecycle_crl_state(rd->a, line, cs, err, errlen);
    reader_put(rd);
    return ret;
}

void issuer_write_stats(issuer_t *is, long long *rows, long long *transactions)
{
    writer_stats(is->writer, rows, transactions);
}

/* Folds a registration ID to ASCII lowercase (the uniqueness comparison). */
static void fold(const char *in, char *out)
{
    size_t i;

    for (i = 0; in[i] != '\0' && i < POLICY_MAX_REGID; i++)
        out[i] = (in[i] >= 'A' && in[i] <= 'Z') ? (char)(in[i] + 32) : in[i];
    out[i] = '\0';
}

/*
 * Claims a registration ID for an issuance in flight.  Two requests for one
 * device must not both pass the duplicate check before either has committed.
 * Returns 0, or -1 if it is already claimed (or out of memory).
 */
static int inflight_claim(issuer_t *is, const char *regid)
{
    char f[POLICY_MAX_REGID + 1];
    int ret = 0;

    fold(regid, f);
    pthread_mutex_lock(&is->inflight_mu);
    for (size_t i = 0; i < is->ninflight && ret == 0; i++)
        if (strcmp(is->inflight[i], f) == 0)
            ret = -1;
    if (ret == 0 && is->ninflight == is->capinflight) {
        size_t cap = is->capinflight ? is->capinflight * 2 : 64;
        char(*n)[POLICY_MAX_REGID + 1] = realloc(is->inflight, cap * sizeof *n);
        if (n == NULL)
            ret = -1;
        else {
            is->inflight = n;
            is->capinflight = cap;
        }
    }
    if (ret == 0)
        memcpy(is->inflight[is->ninflight++], f, sizeof f);
    pthread_mutex_unlock(&is->inflight_mu);
    return ret;
}

static void inflight_release(issuer_t *is, const char *regid)
{
    char f[POLICY_MAX_REGID + 1];

    fold(regid, f);
    pthread_mutex_lock(&is->inflight_mu);
    for (size_t i = 0; i < is->ninflight; i++) {
        if (strcmp(is->inflight[i], f) == 0) {
            memcpy(is->inflight[i], is->inflight[--is->ninflight], sizeof f);
            break;
        }
    }
    pthread_mutex_unlock(&is->inflight_mu);
}

void issue_res_clear(issue_res_t *res)
{
    free(res->der);
    res->der = NULL;
    res->der_len = 0;
}

/* Writes the outcome row (refused/fault) and returns the outcome, or LC_ERR_AUDIT. */
static int audit_outcome(issuer_t *is, const char *line, const char *kind, const char *csr_hash,
                         issue_res_t *res, int outcome)
{
    audit_entry_t e;
    char detail[400];
    int ret;

    memset(&e, 0, sizeof e);
    e.row.actor = is->actor;
    e.row.line = line;
    e.row.kind = kind;
    e.row.registration_id = res->regid[0] ? res->regid : NULL;
    e.row.csr_sha256 = csr_hash;
    e.row.reason = policy_reason_name(res->refusal.reason);
    snprintf(detail, sizeof detail, "%s", res->refusal.detail);
    e.row.detail = detail;
    ret = writer_append(is->writer, &e, 1, res->message, sizeof res->message);
    if (ret != LC_OK)
        return res->outcome = LC_ERR_AUDIT;
    res->seq = e.row.seq;
    return res->outcome = outcome;
}

static int refuse(issuer_t *is, const char *line, const char *csr_hash, issue_res_t *res)
{
    return audit_outcome(is, line, "refused", csr_hash, res, LC_ERR_REFUSED);
}

/*
 * The device asks again for the certificate it was issued but never
 * acknowledged (a lost ACK, a station crash): hand out the same certificate,
 * audited as a re-delivery, once the CSR proves possession of its key.
 */
static int redeliver(issuer_t *is, const issue_req_t *req, const lc_csr_t *csr,
                     const char *csr_hash, const audit_cert_info_t *prev, issue_res_t *res)
{
    struct reader *rd;
    audit_entry_t e;
    char detail[400];
    unsigned char *der = NULL;
    size_t der_len = 0;
    int ret;

    if (policy_csr_verify(NULL, csr, &res->refusal) != 0)
        return refuse(is, req->line, csr_hash, res);
    rd = reader_get(is);
    ret = audit_get_cert(rd->a, prev->serial, NULL, &der, &der_len, res->message,
                         sizeof res->message);
    reader_put(rd);
    if (ret != LC_OK)
        return res->outcome = LC_ERR_AUDIT;
    snprintf(res->serial, sizeof res->serial, "%s", prev->serial);
    issuer_sha256_hex(der, der_len, res->thumbprint);
    memset(&e, 0, sizeof e);
    e.row.actor = is->actor;
    e.row.line = req->line;
    e.row.kind = "redelivered";
    e.row.registration_id = csr->cn;
    e.row.serial = res->serial;
    e.row.thumbprint = res->thumbprint;
    e.row.csr_sha256 = csr_hash;
    snprintf(detail, sizeof detail, "unacknowledged certificate delivered again%s%s",
             req->context ? "; " : "", req->context ? req->context : "");
    e.row.detail = detail;
    ret = writer_append(is->writer, &e, 1, res->message, sizeof res->message);
    if (ret != LC_OK) {
        free(der);
        return res->outcome = LC_ERR_AUDIT;
    }
    res->seq = e.row.seq;
    res->der = der;
    res->der_len = der_len;
    res->redelivered = 1;
    return res->outcome = LC_OK;
}

int issuer_audit_event(issuer_t *is, const char *line, const char *kind, const char *regid,
                       const char *serial, const char *reason, const char *detail)
{
    return issuer_audit_event_as(is, is->actor, line, kind, regid, serial, reason, detail);
}

static int append_via_writer(void *ctx, audit_entry_t *e, char *err, size_t errlen)
{
    return writer_append(((issuer_t *)ctx)->writer, e, 1, err, errlen);
}

int issuer_revoke(issuer_t *is, const char *serial, const char *regid, const char *reason,
                  const char *actor, revoke_result_t *res, char *err, size_t errlen)
{
    struct reader *rd;
    int ret;

    /* The lookup reads through a read-only handle; the row goes through the single writer. */
    rd = reader_get(is);
    ret = revoke_certificate_via(rd->a, append_via_writer, is, serial, regid, reason, actor, res,
                                 err, errlen);
    reader_put(rd);
    return ret;
}

int issuer_audit_event_as(issuer_t *is, const char *actor, const char *line, const char *kind,
                          const char *regid, const char *serial, const char *reason,
                          const char *detail)
{
    audit_entry_t e;
    char err[256];

    memset(&e, 0, sizeof e);
    e.row.actor = actor;
    e.row.line = line;
    e.row.kind = kind;
    e.row.registration_id = regid;
    e.row.serial = serial;
    e.row.reason = reason;
    e.row.detail = detail;
    return writer_append(is->writer, &e, 1, err, sizeof err) == LC_OK ? LC_OK : LC_ERR_AUDIT;
}

int issuer_mark_acked(issuer_t *is, const char *serial)
{
    writer_ack(is->writer, serial);
    return LC_OK;
}

int64_t issuer_issued_count(issuer_t *is, const char *line)
{
    struct reader *rd;
    int64_t n;

    rd = reader_get(is);
    n = audit_count_line_certs(rd->a, line);
    reader_put(rd);
    return n < 0 ? 0 : n;
}

int issuer_probe(issuer_t *is, int *hsm_ok, uint64_t *signatures, unsigned *restarts, int *pid,
                 char *err, size_t errlen)
{
    int ret = LC_ERR_SIGNER;

    *hsm_ok = 0;
    *signatures = 0;
    signer_client_t *c = signer_get(is);

    if (c != NULL)
        ret = signer_client_status(c, signatures, hsm_ok, err, errlen);
    if (ret == LC_ERR_SIGNER) {
        c = signer_restart(is, c, err, errlen);
        if (c != NULL)
            ret = signer_client_status(c, signatures, hsm_ok, err, errlen);
    }
    signer_put(is, c);
    pthread_mutex_lock(&is->signer_mu);
    *restarts = is->restarts;
    *pid = is->signer != NULL ? (int)signer_client_pid(is->signer) : 0;
    pthread_mutex_unlock(&is->signer_mu);
    return ret;
}

/*
 * One issuance from the signer's certificate on.  The signer client's reader
 * thread builds the audit row and the certificate's entry and queues them for
 * the writer (issued()), so the issuing thread sleeps once, until the commit,
 * instead of once for the reply and again for the commit.
 */
struct issuing {
    issuer_t *is;
    struct issuer_line *l;
    const issue_req_t *req;
    const lc_csr_t *csr;
    const audit_cert_info_t *prev; /* the certificate a re-issue replaces, or NULL */
    const char *csr_hash, *spki_hash;
    issue_res_t *res; /* serial in; thumbprint out */
    int64_t nb, na;
    char token[48], detail[600], rdetail[200];
    audit_cert_t cert;
    audit_entry_t batch[2]; /* the row; with revoke_superseded, the replaced one's revocation */
    size_t n;
    writer_result_t wr; /* the commit's outcome, once the caller is woken */
};

/* The entries for certificate sr into x->batch. */
static void issued_entries(struct issuing *x, const signer_result_t *sr)
{
    const issue_req_t *req = x->req;
    const audit_cert_info_t *prev = x->prev;
    audit_entry_t *e = &x->batch[0];
    audit_cert_t *cert = &x->cert;

    sig_token(sr, x->token, sizeof x->token);
    issuer_sha256_hex(sr->der, sr->der_len, x->res->thumbprint);
    memset(x->batch, 0, sizeof x->batch);
    memset(cert, 0, sizeof *cert);
    e->row.actor = x->is->actor;
    e->row.line = req->line;
    e->row.kind = prev != NULL ? "reissued" : "issued";
    e->row.registration_id = x->csr->cn;
    e->row.serial = x->res->serial;
    e->row.thumbprint = x->res->thumbprint;
    e->row.csr_sha256 = x->csr_hash;
    e->row.reason = NULL;
    if (prev != NULL)
        snprintf(x->detail, sizeof x->detail, "%sre-issue replacing %s: %s", x->token, prev->serial,
                 req->reissue_reason ? req->reissue_reason : "");
    else
        snprintf(x->detail, sizeof x->detail, "%s%s%s%s", x->token,
                 policy_key_type_name(x->csr->key_type), req->context ? "; " : "",
                 req->context ? req->context : "");
    e->row.detail = x->detail;
    cert->serial = x->res->serial;
    cert->line = req->line;
    cert->registration_id = x->csr->cn;
    cert->not_before = x->nb;
    cert->not_after = x->na;
    cert->thumbprint = x->res->thumbprint;
    cert->der = sr->der;
    cert->der_len = sr->der_len;
    cert->supersedes = prev != NULL ? prev->serial : NULL;
    cert->spki_sha256 = x->spki_hash;
    e->cert = cert;
    x->n = 1;
    /* With revoke_superseded, the replaced certificate is revoked in the same transaction. */
    if (prev != NULL && x->l->cfg->revoke_superseded) {
        audit_entry_t *r = &x->batch[1];
        snprintf(x->rdetail, sizeof x->rdetail, "revoked (superseded) by re-issue %s",
                 x->res->serial);
        r->row.actor = x->is->actor;
        r->row.line = prev->line;
        r->row.kind = "revoked";
        r->row.registration_id = prev->registration_id;
        r->row.serial = prev->serial;
        r->row.reason = "superseded";
        r->row.detail = x->rdetail;
        r->revokes = prev->serial;
        x->n = 2;
    }
}

/*
 * signer_then_fn, on the signer client's reader thread: a certificate's
 * entries go to the writer, which wakes the caller once they have committed.
 * Anything else (a refusal, an error) wakes the caller now.
 */
static int issued(void *ctx, signer_result_t *sr, sem_t *done)
{
    struct issuing *x = ctx;

    if (sr->kind != PROTO_CERT)
        return 0;
    issued_entries(x, sr);
    return writer_queue(x->is->writer, x->batch, x->n, &x->wr, done) == LC_OK;
}

int issuer_issue(issuer_t *is, const issue_req_t *req, issue_res_t *res)
{
    struct reader *rd;
    struct issuer_line *l = find_line(is, req->line);
    unsigned char *der = NULL, serial[PROFILE_SERIAL_LEN];
    size_t der_len = 0;
    char csr_hash[65] = "", spki_hash[65] = "";
    lc_csr_t csr;
    audit_cert_info_t prev;
    int have_prev = 0, claimed = 0, ret;
    signer_result_t sr = {0};
    signer_client_t *sc;
    struct issuing x;
    int64_t now = (int64_t)time(NULL), nb, na;

    memset(res, 0, sizeof *res);
    if (l == NULL) {
        snprintf(res->message, sizeof res->message, "no line \"%s\" in the configuration",
                 req->line);
        return res->outcome = LC_ERR_CONFIG;
    }
    /* 1. intake and station-side policy (no signature check: the signer is the authority) */
    if (policy_decode_input(req->input, req->input_len, &der, &der_len, &res->refusal) != 0) {
        issuer_sha256_hex(req->input, req->input_len, csr_hash);
        ret = refuse(is, req->line, csr_hash, res);
        goto out;
    }
    issuer_sha256_hex(der, der_len, csr_hash);
    if (policy_csr_parse(der, der_len, &csr, &res->refusal) != 0) {
        ret = refuse(is, req->line, csr_hash, res);
        goto out;
    }
    snprintf(res->regid, sizeof res->regid, "%s", csr.cn);
    issuer_sha256_hex(csr.spki, csr.spki_len, spki_hash);
    if (req->expect_regid != NULL && strcmp(csr.cn, req->expect_regid) != 0) {
        policy_refuse(&res->refusal, LC_REASON_CN_MISMATCH,
                      "CSR CN \"%s\" is not the registration ID \"%s\" of the device in the jig",
                      csr.cn, req->expect_regid);
        ret = refuse(is, req->line, csr_hash, res);
        goto out;
    }
    /* 2. registration IDs are unique case-insensitively, unless this is an audited re-issue */
    rd = reader_get(is);
    ret = audit_find_valid_regid(rd->a, csr.cn, &prev, res->message, sizeof res->message);
    reader_put(rd);
    if (ret == LC_OK) {
        if (req->allow_redeliver && !prev.acked && strcmp(prev.line, req->line) == 0 &&
            strcmp(prev.registration_id, csr.cn) == 0 && strcmp(prev.spki_sha256, spki_hash) == 0) {
            ret = redeliver(is, req, &csr, csr_hash, &prev, res);
            goto out;
        }
        if (!req->reissue) {
            policy_refuse(&res->refusal, LC_REASON_CN_DUPLICATE,
                          "registration ID %s already holds certificate %s (line %s)",
                          prev.registration_id, prev.serial, prev.line);
            ret = refuse(is, req->line, csr_hash, res);
            goto out;
        }
        have_prev = 1;
    } else if (ret != LC_ERR_NOT_FOUND) {
        ret = res->outcome = LC_ERR_AUDIT;
        goto out;
    }
    /* Until it commits, no other request may pass the duplicate check for this device. */
    if (inflight_claim(is, csr.cn) != 0) {
        policy_refuse(&res->refusal, LC_REASON_CN_DUPLICATE,
                      "registration ID %s is being issued by another request right now", csr.cn);
        ret = refuse(is, req->line, csr_hash, res);
        goto out;
    }
    claimed = 1;
    /*
     * 3. a fresh serial: time prefix and 80 random bits; uniqueness is enforced by the
     * store's primary key (a collision would fail this one issuance cleanly).
     */
    if (profile_draw_serial(serial) != LC_OK) {
        ret = res->outcome = LC_ERR_SIGNER;
        snprintf(res->message, sizeof res->message, "random generator failed");
        goto out;
    }
    profile_serial_hex(serial, sizeof serial, res->serial);
    /* 4. the signer re-checks the policy, verifies proof of possession, builds and signs */
    nb = now - is->cfg->not_before_skew_s;
    na = now + (int64_t)l->cfg->validity_days * 86400;
    if (l->ca_not_after > 0 && na > l->ca_not_after)
        na = l->ca_not_after; /* what the signer puts in the certificate, so the store agrees */
    memset(&x, 0, sizeof x);
    x.is = is;
    x.l = l;
    x.req = req;
    x.csr = &csr;
    x.prev = have_prev ? &prev : NULL;
    x.csr_hash = csr_hash;
    x.spki_hash = spki_hash;
    x.res = res;
    x.nb = nb;
    x.na = na;
    x.wr.ret = LC_ERR_AUDIT; /* until the writer says otherwise, nothing is released */
    snprintf(x.wr.err, sizeof x.wr.err, "the certificate's row was not written");
    sc = signer_get(is);
    if (sc == NULL || signer_client_issue(sc, req->line, der, der_len, serial, nb, na, &sr, issued,
                                          &x) == LC_ERR_SIGNER) {
        /* The signer died (or never started): start a new one and ask once more. */
        char why[200] = "";
        free(sr.der);
        memset(&sr, 0, sizeof sr);
        sc = signer_restart(is, sc, why, sizeof why);
        if (sc == NULL) {
            sr.kind = PROTO_ERROR;
            sr.err = LC_ERR_SIGNER;
            snprintf(sr.detail, sizeof sr.detail, "signer restart failed: %s", why);
        } else {
            signer_client_issue(sc, req->line, der, der_len, serial, nb, na, &sr, issued, &x);
        }
    }
    signer_put(is, sc);
    if (sr.kind == PROTO_REFUSED) {
        res->refusal.reason = sr.reason;
        snprintf(res->refusal.detail, sizeof res->refusal.detail, "%s", sr.detail);
        res->serial[0] = '\0';
        ret = refuse(is, req->line, csr_hash, res);
        goto out;
    }
    if (sr.kind != PROTO_CERT) {
        int fault = sr.err == LC_ERR_HSM ? LC_ERR_HSM : LC_ERR_SIGNER;
        res->serial[0] = '\0';
        snprintf(res->message, sizeof res->message, "%s", sr.detail);
        policy_refuse(&res->refusal,
                      fault == LC_ERR_HSM ? LC_REASON_HSM_UNAVAILABLE
                                          : LC_REASON_SIGNER_UNAVAILABLE,
                      "%s", sr.detail);
        ret = audit_outcome(is, req->line, "fault", csr_hash, res, fault);
        if (ret == LC_ERR_AUDIT) /* keep the signer's message: it is the first failure */
            snprintf(res->message, sizeof res->message, "%s; and the fault could not be audited",
                     sr.detail);
        goto out;
    }
    /* 5. the audit row and the certificate: committed (queued by issued()) before we woke */
    ret = x.wr.ret;
    if (ret != LC_OK)
        snprintf(res->message, sizeof res->message, "%s", x.wr.err);
    sig_settled(l, &sr, ret == LC_OK);
    if (ret != LC_OK) {
        ret = res->outcome = LC_ERR_AUDIT; /* the certificate is discarded, never released */
        goto out;
    }
    res->seq = x.batch[0].row.seq;
    res->der = sr.der;
    res->der_len = sr.der_len;
    sr.der = NULL;
    ret = res->outcome = LC_OK;
    maybe_checkpoint(is, l);
out:
    if (claimed)
        inflight_release(is, csr.cn);
    free(sr.der);
    free(der);
    return ret;
}

/*
 * One request whose answer must be a CERT frame (a CRL, a verification
 * certificate): sends m, fills *sr (caller frees sr->der).  Returns LC_OK, or
 * the signer's error code with its message.
 */
static int signer_expect_cert(issuer_t *is, proto_msg_t *m, signer_result_t *sr, char *err,
                              size_t errlen)
{
    signer_client_t *sc = signer_get(is);
    proto_msg_t r = {0};
    int ret;

    memset(sr, 0, sizeof *sr);
    ret = sc ? signer_client_call(sc, m, &r, err, errlen)
             : lc_seterr(LC_ERR_SIGNER, err, errlen, "signer not running");
    signer_put(is, sc);
    if (ret == LC_OK)
        ret = signer_client_result(&r, sr);
    if (ret == LC_OK && sr->kind != PROTO_CERT)
        ret = lc_seterr(sr->err ? sr->err : LC_ERR_SIGNER, err, errlen, "%s", sr->detail);
    proto_free(&r);
    return ret;
}

/* Copies a set (NULL on out of memory for a non-empty one). */
static struct sigref *sigset_copy(const struct sigset *set)
{
    struct sigref *v = malloc((set->n ? set->n : 1) * sizeof *v);

    if (v != NULL && set->n > 0)
        memcpy(v, set->v, set->n * sizeof *v);
    return v;
}

static void put_sigrefs(proto_msg_t *m, uint16_t tag, const struct sigref *v, size_t n)
{
    char buf[64];

    if (n > CHECKPOINT_MAX_LIST)
        n = CHECKPOINT_MAX_LIST; /* never near: the pipeline holds far fewer */
    for (size_t i = 0; i < n; i++) {
        if (v[i].last > v[i].n)
            snprintf(buf, sizeof buf, "%s:%llu-%llu", v[i].inst, (unsigned long long)v[i].n,
                     (unsigned long long)v[i].last);
        else
            snprintf(buf, sizeof buf, "%s:%llu", v[i].inst, (unsigned long long)v[i].n);
        proto_put_str(m, tag, buf);
    }
}

/* The last committed row's seq and hash (0 and the zero hash for an empty log). */
static int log_head(issuer_t *is, int64_t *rows, char head[65], char *err, size_t errlen)
{
    struct reader *rd;
    sqlite3_stmt *st = NULL;
    int rc;

    *rows = 0;
    memset(head, '0', 64);
    head[64] = '\0';
    rd = reader_get(is);
    rc = sqlite3_prepare_v2(audit_sqlite(rd->a),
                            "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", -1, &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *h = (const char *)sqlite3_column_text(st, 1);
        *rows = sqlite3_column_int64(st, 0);
        if (h != NULL && strlen(h) == 64)
            memcpy(head, h, 64);
        rc = SQLITE_DONE;
    }
    sqlite3_finalize(st);
    reader_put(rd);
    return rc == SQLITE_DONE ? LC_OK
                             : lc_seterr(LC_ERR_AUDIT, err, errlen, "cannot read the log head");
}

/*
 * A signed checkpoint of line l (docs/audit.md): the signer signs the log's
 * row count and head hash, its own count of the line key's signatures, and
 * what the station holds uncommitted (pending) or discarded (withheld); the
 * row it becomes lets `audit verify` prove that the log accounts for every
 * signature made before it.  final: at shutdown, nothing in flight.
 */
static int checkpoint_line(issuer_t *is, struct issuer_line *l, int final, char *err, size_t errlen)
{
    struct sigref *pend = NULL, *held = NULL;
    size_t npend = 0, nheld = 0;
    proto_msg_t m = {0}, r = {0};
    proto_field_t f;
    size_t pos = 0;
    signer_client_t *sc;
    signer_result_t own = {0};
    const unsigned char *sig = NULL;
    size_t sig_len = 0, payload_len = 0;
    const char *payload = NULL;
    char head[65], *detail = NULL;
    int64_t rows;
    audit_entry_t e;
    int ret;

    pthread_mutex_lock(&l->acct_mu);
    if (l->checkpointing) {
        pthread_mutex_unlock(&l->acct_mu);
        return LC_OK;
    }
    l->checkpointing = 1;
    l->since_checkpoint = 0;
    npend = l->pending.n;
    nheld = l->withheld.n;
    pend = sigset_copy(&l->pending);
    held = sigset_copy(&l->withheld);
    pthread_mutex_unlock(&l->acct_mu);
    if (pend == NULL || held == NULL) {
        ret = lc_seterr(LC_ERR_NOMEM, err, errlen, "out of memory");
        goto out;
    }
    if ((ret = log_head(is, &rows, head, err, errlen)) != LC_OK)
        goto out;
    proto_init(&m, PROTO_CHECKPOINT, 0);
    proto_put_str(&m, T_LINE, l->cfg->id);
    proto_put_i64(&m, T_ROWS, rows);
    proto_put_str(&m, T_HEAD, head);
    proto_put_u32(&m, T_FINAL, final && npend == 0 ? 1 : 0);
    put_sigrefs(&m, T_PENDING, pend, npend);
    put_sigrefs(&m, T_WITHHELD, held, nheld);
    sc = signer_get(is);
    ret = sc ? signer_client_call(sc, &m, &r, err, errlen)
             : lc_seterr(LC_ERR_SIGNER, err, errlen, "signer not running");
    signer_put(is, sc);
    if (ret != LC_OK)
        goto out;
    if (r.type != PROTO_CERT) {
        signer_result_t sr;
        ret = signer_client_result(&r, &sr) == LC_OK
                  ? lc_seterr(sr.err ? sr.err : LC_ERR_SIGNER, err, errlen, "checkpoint: %s",
                              sr.detail)
                  : lc_seterr(LC_ERR_SIGNER, err, errlen, "bad reply to CHECKPOINT");
        free(sr.der);
        goto out;
    }
    while (proto_next(&r, &pos, &f) == 1) {
        if (f.tag == T_CERT) {
            sig = f.val;
            sig_len = f.len;
        } else if (f.tag == T_DETAIL) {
            payload = (const char *)f.val;
            payload_len = f.len;
        } else if (f.tag == T_SIG_NO) {
            int64_t v = 0;
            proto_get_i64(&f, &v);
            own.sig_no = v > 0 ? (uint64_t)v : 0;
        } else if (f.tag == T_INSTANCE && f.len == 16) {
            memcpy(own.instance, f.val, 16);
        }
    }
    if (sig == NULL || payload == NULL || memchr(payload, '\0', payload_len) != NULL) {
        ret = lc_seterr(LC_ERR_SIGNER, err, errlen, "malformed CHECKPOINT reply");
        goto out;
    }
    /* The row: the signed text, then the signature over it. */
    detail = malloc(payload_len + 2 * sig_len + 16);
    if (detail == NULL) {
        ret = lc_seterr(LC_ERR_NOMEM, err, errlen, "out of memory");
        sig_settled(l, &own, 0);
        goto out;
    }
    memcpy(detail, payload, payload_len);
    memcpy(detail + payload_len, " signature=", 11);
    for (size_t i = 0; i < sig_len; i++)
        snprintf(detail + payload_len + 11 + 2 * i, 3, "%02x", sig[i]);
    detail[payload_len + 11 + 2 * sig_len] = '\0';
    memset(&e, 0, sizeof e);
    e.row.actor = is->actor;
    e.row.line = l->cfg->id;
    e.row.kind = "checkpoint";
    e.row.detail = detail;
    ret = writer_append(is->writer, &e, 1, err, errlen);
    sig_settled(l, &own, ret == LC_OK);
    if (ret == LC_OK) {
        /* What it listed as withheld is accounted for now. */
        pthread_mutex_lock(&l->acct_mu);
        for (size_t i = 0; i < nheld; i++)
            sigset_remove(&l->withheld, &held[i]);
        if (l->since_checkpoint > 0)
            l->since_checkpoint--; /* its own signature */
        pthread_mutex_unlock(&l->acct_mu);
    }
out:
    pthread_mutex_lock(&l->acct_mu);
    l->checkpointing = 0;
    if (ret != LC_OK && l->since_checkpoint == 0)
        l->since_checkpoint = 1; /* try again with the next signature */
    pthread_mutex_unlock(&l->acct_mu);
    free(detail);
    free(pend);
    free(held);
    proto_free(&m);
    proto_free(&r);
    return ret;
}

/* Every checkpoint_every signatures of a line, a checkpoint (errors wait for the next try). */
static void maybe_checkpoint(issuer_t *is, struct issuer_line *l)
{
    char err[256];
    int due;

    pthread_mutex_lock(&l->acct_mu);
    due = !l->checkpointing && l->since_checkpoint >= checkpoint_every(is);
    pthread_mutex_unlock(&l->acct_mu);
    if (due)
        checkpoint_line(is, l, 0, err, sizeof err);
}

/* Parses uppercase/lowercase hex into big-endian bytes; returns the length or -1. */
static int hex_bytes(const char *hex, unsigned char *out, size_t cap)
{
    size_t n = strlen(hex), i;

    if (n == 0 || n % 2 != 0 || n / 2 > cap)
        return -1;
    for (i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (unsigned char)v;
    }
    return (int)i;
}

/* Takes the store's CRL numbering lock (<audit_db>.crl-lock); returns its fd or -1. */
static int crl_lock(issuer_t *is, char *err, size_t errlen)
{
    char path[PATH_MAX];
    int fd;

    if (snprintf(path, sizeof path, "%s.crl-lock", is->cfg->audit_db) >= (int)sizeof path) {
        lc_seterr(LC_ERR_AUDIT, err, errlen, "audit store path too long");
        return -1;
    }
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 || flock(fd, LOCK_EX) != 0) {
        lc_seterr(LC_ERR_AUDIT, err, errlen, "CRL lock %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

int issuer_crl(issuer_t *is, const char *line, int next_update_hours, unsigned char **der,
               size_t *der_len, uint64_t *number, char *err, size_t errlen)
{
    struct reader *rd;
    lifecycle_revoked_t *rev = NULL;
    lifecycle_crl_state_t cs;
    size_t n = 0;
    proto_msg_t m = {0};
    signer_result_t sr = {0};
    audit_entry_t e;
    char num_hex[17], detail[240], thumb[65], token[48];
    int64_t now = (int64_t)time(NULL), next = now + (int64_t)next_update_hours * 3600;
    struct issuer_line *l = find_line(is, line);
    int ret, lock_fd;

    *der = NULL;
    *der_len = 0;
    *number = 0;
    if (l == NULL)
        return lc_seterr(LC_ERR_CONFIG, err, errlen, "no line \"%s\"", line);
    /*
     * CRL numbers come from the log, and the daemon and a `linecert crl` may
     * both make one: from reading the last number to committing the next,
     * hold a lock that every station process on this store takes.
     */
    if ((lock_fd = crl_lock(is, err, errlen)) < 0)
        return LC_ERR_AUDIT;
    rd = reader_get(is);
    ret = lifecycle_crl_state(rd->a, line, &cs, err, errlen);
    if (ret == LC_OK)
        ret = lifecycle_revoked(rd->a, line, &rev, &n, err, errlen);
    reader_put(rd);
    if (ret != LC_OK) {
        close(lock_fd);
        return LC_ERR_AUDIT;
    }
    proto_init(&m, PROTO_CRL, 0);
    proto_put_str(&m, T_LINE, line);
    proto_put_i64(&m, T_CRL_NUMBER, (int64_t)(cs.number + 1));
    proto_put_i64(&m, T_THIS_UPDATE, now);
    proto_put_i64(&m, T_NEXT_UPDATE, next);
    for (size_t i = 0; i < n; i++) {
        unsigned char entry[9 + 64];
        int sl = hex_bytes(rev[i].serial, entry + 9, 64),
            reason = profile_crl_reason(rev[i].reason);
        int64_t t = rev[i].revoked_ms / 1000;
        if (sl < 0)
            continue; /* not a serial this station wrote: cannot be in its CRL */
        for (int b = 0; b < 8; b++)
            entry[b] = (unsigned char)((uint64_t)t >> (56 - 8 * b));
        entry[8] = (unsigned char)(reason > 0 ? reason : 0);
        proto_put(&m, T_CRL_ENTRY, entry, 9 + (size_t)sl);
    }
    ret = signer_expect_cert(is, &m, &sr, err, errlen);
    if (ret != LC_OK)
        goto out;
    /* The CRL is audited: its number comes from the log, so numbering survives restarts. */
    snprintf(num_hex, sizeof num_hex, "%016llX", (unsigned long long)(cs.number + 1));
    sig_token(&sr, token, sizeof token);
    snprintf(detail, sizeof detail, "%snext-update-ms=%lld; entries=%zu; CRL #%llu signed", token,
             (long long)next * 1000, n, (unsigned long long)(cs.number + 1));
    issuer_sha256_hex(sr.der, sr.der_len, thumb);
    memset(&e, 0, sizeof e);
    e.row.actor = is->actor;
    e.row.line = line;
    e.row.kind = "crl";
    e.row.serial = num_hex;
    e.row.thumbprint = thumb;
    e.row.detail = detail;
    ret = writer_append(is->writer, &e, 1, err, errlen);
    sig_settled(l, &sr, ret == LC_OK);
    if (ret != LC_OK) {
        ret = LC_ERR_AUDIT;
        goto out;
    }
    *der = sr.der;
    *der_len = sr.der_len;
    *number = cs.number + 1;
    sr.der = NULL;
out:
    free(sr.der);
    free(rev);
    close(lock_fd); /* releases the lock */
    proto_free(&m);
    return ret;
}

/* An ephemeral EC P-256 key and a CSR with CN = cn (DER, malloc'd). */
static int make_csr(const char *cn, unsigned char **der, size_t *len)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509_REQ *req = X509_REQ_new();
    X509_NAME *name = X509_NAME_new();
    unsigned char *p = NULL;
    int n = -1;

    if (key != NULL && req != NULL && name != NULL &&
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
                                   0) == 1 &&
        X509_REQ_set_subject_name(req, name) == 1 && X509_REQ_set_pubkey(req, key) == 1 &&
        X509_REQ_sign(req, key, EVP_sha256()) > 0)
        n = i2d_X509_REQ(req, &p);
    X509_NAME_free(name);
    X509_REQ_free(req);
    EVP_PKEY_free(key); /* the private key is not needed: DPS only checks who signed the cert */
    if (n <= 0)
        return -1;
    *der = p;
    *len = (size_t)n;
    return 0;
}

int issuer_verification_cert(issuer_t *is, const char *line, const char *code, unsigned char **der,
                             size_t *der_len, char *serial_hex, char *err, size_t errlen)
{
    unsigned char *csr = NULL, serial[PROFILE_SERIAL_LEN];
    size_t csr_len = 0;
    proto_msg_t m = {0};
    signer_result_t sr = {0};
    audit_entry_t e;
    char thumb[65], detail[240], token[48];
    int64_t now = (int64_t)time(NULL);
    struct issuer_line *l = find_line(is, line);
    int ret;

    *der = NULL;
    *der_len = 0;
    if (l == NULL)
        return lc_seterr(LC_ERR_CONFIG, err, errlen, "no line \"%s\"", line);
    {
        size_t n = strlen(code), hex = strspn(code, "0123456789abcdefABCDEF");
        if (n < 16 || n > 64 || hex != n)
            return lc_seterr(LC_ERR_USAGE, err, errlen,
                             "verification code must be 16-64 hex digits (the CN it becomes "
                             "holds at most 64)");
    }
    if (make_csr(code, &csr, &csr_len) != 0 || profile_draw_serial(serial) != LC_OK)
        return lc_seterr(LC_ERR_CRYPTO, err, errlen, "cannot make the verification key");
    profile_serial_hex(serial, sizeof serial, serial_hex);
    proto_init(&m, PROTO_VERIFY_CERT, 0);
    proto_put_str(&m, T_LINE, line);
    proto_put(&m, T_CSR, csr, csr_len);
    proto_put_str(&m, T_CODE, code);
    proto_put(&m, T_SERIAL, serial, sizeof serial);
    proto_put_i64(&m, T_NOT_BEFORE, now - 300);
    proto_put_i64(&m, T_NOT_AFTER, now + 86400);
    ret = signer_expect_cert(is, &m, &sr, err, errlen);
    if (ret == LC_ERR_PROTOCOL) /* the signer judged the request: a usage error */
        ret = LC_ERR_USAGE;
    if (ret != LC_OK)
        goto out;
    issuer_sha256_hex(sr.der, sr.der_len, thumb);
    sig_token(&sr, token, sizeof token);
    snprintf(detail, sizeof detail,
             "%sDPS proof-of-possession certificate for code %s, valid 1 day", token, code);
    memset(&e, 0, sizeof e);
    e.row.actor = is->actor;
    e.row.line = line;
    e.row.kind = "verification-cert";
    e.row.serial = serial_hex;
    e.row.thumbprint = thumb;
    e.row.detail = detail;
    ret = writer_append(is->writer, &e, 1, err, errlen);
    sig_settled(l, &sr, ret == LC_OK);
    if (ret != LC_OK) {
        ret = LC_ERR_AUDIT; /* not released without its audit row */
        goto out;
    }
    *der = sr.der;
    *der_len = sr.der_len;
    sr.der = NULL;
out:
    free(sr.der);
    OPENSSL_free(csr);
    proto_free(&m);
    return ret;
}

int issuer_bench_sign(issuer_t *is, const char *line, uint32_t count, int64_t *elapsed_ns,
                      char *err, size_t errlen)
{
    proto_msg_t m = {0}, r = {0};
    proto_field_t f;
    signer_client_t *sc = signer_get(is);
    struct issuer_line *l = find_line(is, line);
    struct sigref block = {"", 0, 0};
    int64_t first = 0;
    uint32_t made = 0;
    size_t pos = 0;
    char detail[240];
    int ret, aret;

    *elapsed_ns = 0;
    proto_init(&m, PROTO_BENCH_SIGN, 0);
    proto_put_str(&m, T_LINE, line);
    proto_put_u32(&m, T_COUNT, count);
    ret = sc ? signer_client_call(sc, &m, &r, err, errlen)
             : lc_seterr(LC_ERR_SIGNER, err, errlen, "signer not running");
    signer_put(is, sc);
    if (ret == LC_OK && r.type != PROTO_STATUS_REPLY) {
        signer_result_t sr;
        ret = signer_client_result(&r, &sr) == LC_OK
                  ? lc_seterr(sr.err ? sr.err : LC_ERR_SIGNER, err, errlen, "%s", sr.detail)
                  : lc_seterr(LC_ERR_SIGNER, err, errlen, "bad reply to BENCH_SIGN");
        free(sr.der);
    }
    while (proto_next(&r, &pos, &f) == 1) {
        if (f.tag == T_ELAPSED_NS)
            proto_get_i64(&f, elapsed_ns);
        else if (f.tag == T_SIG_NO)
            proto_get_i64(&f, &first);
        else if (f.tag == T_COUNT)
            proto_get_u32(&f, &made);
        else if (f.tag == T_INSTANCE && f.len == 16)
            memcpy(block.inst, f.val, 16);
    }
    proto_free(&m);
    proto_free(&r);
    if (first <= 0 || made == 0 || block.inst[0] == '\0' || l == NULL)
        return ret; /* no signature was numbered: nothing to account */
    block.n = (uint64_t)first;
    block.last = block.n + made - 1;
    /* Benchmark signatures are signatures too, failed run or not: the log accounts for them. */
    snprintf(detail, sizeof detail,
             "sig=%s:%llu-%llu; raw signing benchmark%s: %u signatures of fixed digests, "
             "no certificate",
             block.inst, (unsigned long long)block.n, (unsigned long long)block.last,
             ret == LC_OK ? "" : " (failed)", made);
    aret = issuer_audit_event(is, line, "bench", NULL, NULL, NULL, detail);
    pthread_mutex_lock(&l->acct_mu);
    sigset_remove(&l->pending, &block);
    if (aret != LC_OK)
        sigset_add(&l->withheld, &block);
    pthread_mutex_unlock(&l->acct_mu);
    if (ret == LC_OK && aret != LC_OK)
        ret = lc_seterr(LC_ERR_AUDIT, err, errlen, "cannot audit the benchmark");
    if (ret == LC_OK)
        maybe_checkpoint(is, l);
    return ret;
}

const char *issuer_line_key_type(issuer_t *is, const char *line)
{
    struct issuer_line *l = find_line(is, line);
    const unsigned char *p;
    X509 *x;
    EVP_PKEY *k;
    static const char *names[] = {"ec-p256",  "ec-p384",  "rsa-2048",
                                  "rsa-3072", "rsa-4096", "unknown"};
    const char *name = names[5];
    char group[64] = "";
    size_t gl;

    if (l == NULL)
        return name;
    p = l->ca_der;
    x = d2i_X509(NULL, &p, (long)l->ca_der_len);
    k = x ? X509_get0_pubkey(x) : NULL;
    if (k != NULL && EVP_PKEY_is_a(k, "RSA")) {
        int bits = EVP_PKEY_get_bits(k);
        name = bits == 2048 ? names[2] : bits == 3072 ? names[3] : bits == 4096 ? names[4] : name;
    } else if (k != NULL &&
               EVP_PKEY_get_utf8_string_param(k, "group", group, sizeof group, &gl) == 1) {
        name = strcmp(group, "prime256v1") == 0  ? names[0]
               : strcmp(group, "secp384r1") == 0 ? names[1]
                                                 : name;
    }
    X509_free(x);
    return name;
}

int issuer_chain_pem(issuer_t *is, const char *line, const unsigned char *der, size_t der_len,
                     int with_root, char **pem, size_t *pem_len)
{
    static const char head[] = "-----BEGIN CERTIFICATE-----\n",
                      tail[] = "-----END CERTIFICATE-----\n";
    struct issuer_line *l = find_line(is, line);
    size_t chain = 0, root = 0, n, used;
    char *out;

    *pem = NULL;
    *pem_len = 0;
    if (l == NULL)
        return LC_ERR_NOT_FOUND;
    chain = strlen(l->chain_pem);
    root = with_root ? strlen(l->root_pem) : 0;
    /* The leaf's PEM straight from its DER: 64 columns of base64, no re-parsing. */
    n = sizeof head - 1 + (der_len + 2) / 3 * 4 + der_len / 48 + 1 + sizeof tail - 1;
    out = malloc(n + chain + root + 1);
    if (out == NULL)
        return LC_ERR_NOMEM;
    memcpy(out, head, sizeof head - 1);
    used = sizeof head - 1;
    for (size_t off = 0; off < der_len; off += 48) {
        size_t k = der_len - off < 48 ? der_len - off : 48;
        used += (size_t)EVP_EncodeBlock((unsigned char *)out + used, der + off, (int)k);
        out[used++] = '\n';
    }
    memcpy(out + used, tail, sizeof tail - 1);
    used += sizeof tail - 1;
    memcpy(out + used, l->chain_pem, chain);
    used += chain;
    memcpy(out + used, l->root_pem, root);
    used += root;
    out[used] = '\0';
    *pem = out;
    *pem_len = used;
    return LC_OK;
}
