/*
 * checkpoint.c — verifying signed checkpoints and signature accounting (see
 * checkpoint.h and docs/audit.md).
 *
 * The rule, per signer instance and line key ("run"): at a checkpoint whose
 * own signature is number C, every signature numbered up to the previous
 * checkpoint's C must have a row before this checkpoint, or be listed by it
 * as pending (its row was still being committed) or withheld; at a final
 * checkpoint, every signature up to C itself.  The one checkpoint interval
 * of grace covers signatures in flight while a checkpoint is signed; the
 * station's ordering (docs/audit.md) guarantees that none is older.
 */
#include "checkpoint.h"

#include "lcerr.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RING       65536 /* recent row hashes a checkpoint's head is looked up in */
#define MAX_CAS    256
#define PAYLOAD_V1 "linecert-checkpoint-v1 "

struct ref {
    char inst[17];
    uint64_t n, last;
};

/* One signer instance's numbering of one line key. */
struct run {
    char inst[17];
    char *line;
    uint64_t *bits; /* accounted numbers */
    size_t nwords;
    uint64_t low;    /* numbers below it are checked */
    uint64_t last_c; /* the last checkpoint's own number; 0 = none yet */
    int last_final;
    int64_t checkpoints;
    uint64_t *carry; /* pending at the last checkpoint, no row yet */
    size_t ncarry, capcarry;
};

struct ca {
    char thumb[65];
    EVP_PKEY *key;
};

struct checkpoint_verifier {
    struct ca cas[MAX_CAS];
    size_t ncas;
    struct run **runs;
    size_t nruns, capruns;
    struct run *recent[8]; /* rows come in long stretches of few runs */
    struct {
        int64_t seq;
        char hash[64];
    } * ring;
    checkpoint_summary_t sum;
};

int checkpoint_verifier_new(checkpoint_verifier_t **out)
{
    checkpoint_verifier_t *v = calloc(1, sizeof *v);

    *out = NULL;
    if (v == NULL || (v->ring = calloc(RING, sizeof *v->ring)) == NULL) {
        free(v);
        return LC_ERR_NOMEM;
    }
    *out = v;
    return LC_OK;
}

void checkpoint_verifier_free(checkpoint_verifier_t *v)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < v->ncas; i++)
        EVP_PKEY_free(v->cas[i].key);
    for (size_t i = 0; i < v->nruns; i++) {
        free(v->runs[i]->line);
        free(v->runs[i]->bits);
        free(v->runs[i]->carry);
        free(v->runs[i]);
    }
    free(v->runs);
    free(v->ring);
    free(v);
}

int checkpoint_verifier_add_ca(checkpoint_verifier_t *v, const unsigned char *der, size_t len,
                               char *err, size_t errlen)
{
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    unsigned char md[32];
    unsigned int mdlen = 0;
    struct ca *c;

    if (x == NULL)
        return lc_seterr(LC_ERR_CONFIG, err, errlen, "a line CA certificate does not parse");
    if (v->ncas == MAX_CAS) {
        X509_free(x);
        return lc_seterr(LC_ERR_CONFIG, err, errlen, "more than %d line CA certificates", MAX_CAS);
    }
    c = &v->cas[v->ncas];
    if (!EVP_Digest(der, len, md, &mdlen, EVP_sha256(), NULL) ||
        (c->key = X509_get_pubkey(x)) == NULL) {
        X509_free(x);
        return lc_seterr(LC_ERR_CRYPTO, err, errlen, "cannot read a line CA certificate's key");
    }
    lc_hex(md, 32, 1, c->thumb);
    v->ncas++;
    X509_free(x);
    return LC_OK;
}

static struct run *find_run(checkpoint_verifier_t *v, const char *inst, const char *line)
{
    struct run *r;

    for (size_t i = 0; i < sizeof v->recent / sizeof v->recent[0]; i++) {
        r = v->recent[i];
        if (r != NULL && memcmp(r->inst, inst, 16) == 0 && strcmp(r->line, line) == 0)
            return r;
    }
    r = NULL;
    for (size_t i = 0; i < v->nruns && r == NULL; i++)
        if (memcmp(v->runs[i]->inst, inst, 16) == 0 && strcmp(v->runs[i]->line, line) == 0)
            r = v->runs[i];
    if (r == NULL) {
        if (v->nruns == v->capruns) {
            size_t cap = v->capruns ? v->capruns * 2 : 16;
            struct run **nr = realloc(v->runs, cap * sizeof *nr);
            if (nr == NULL)
                return NULL;
            v->runs = nr;
            v->capruns = cap;
        }
        if ((r = calloc(1, sizeof *r)) == NULL || (r->line = strdup(line)) == NULL) {
            free(r);
            return NULL;
        }
        memcpy(r->inst, inst, 16);
        r->low = 1;
        v->runs[v->nruns++] = r;
    }
    memmove(v->recent + 1, v->recent, sizeof v->recent - sizeof v->recent[0]);
    v->recent[0] = r;
    return r;
}

static int bit_get(const struct run *r, uint64_t n)
{
    return n / 64 < r->nwords && (r->bits[n / 64] >> (n % 64) & 1);
}

/* Sets bit n; returns 1 if it was already set, -1 out of memory, else 0. */
static int bit_set(struct run *r, uint64_t n)
{
    if (n / 64 >= r->nwords) {
        size_t words = r->nwords ? r->nwords : 1024;
        uint64_t *nb;
        while (n / 64 >= words)
            words *= 2;
        if ((nb = realloc(r->bits, words * sizeof *nb)) == NULL)
            return -1;
        memset(nb + r->nwords, 0, (words - r->nwords) * sizeof *nb);
        r->bits = nb;
        r->nwords = words;
    }
    if (r->bits[n / 64] >> (n % 64) & 1)
        return 1;
    r->bits[n / 64] |= (uint64_t)1 << (n % 64);
    return 0;
}

/* Parses "IIIIIIIIIIIIIIII:N" or "...:N-M" (16 lowercase hex digits); advances *p. */
static int parse_ref(const char **p, struct ref *ref)
{
    const char *s = *p;
    char *end;

    for (int i = 0; i < 16; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return -1;
    if (s[16] != ':' || s[17] < '1' || s[17] > '9')
        return -1;
    memcpy(ref->inst, s, 16);
    ref->inst[16] = '\0';
    ref->n = ref->last = strtoull(s + 17, &end, 10);
    if (*end == '-') {
        if (end[1] < '1' || end[1] > '9')
            return -1;
        ref->last = strtoull(end + 1, &end, 10);
        if (ref->last < ref->n || ref->last - ref->n > 100000000)
            return -1;
    }
    *p = end;
    return 0;
}

/* Marks ref accounted in its run; returns the first number already accounted, 0, or -1. */
static int64_t account(checkpoint_verifier_t *v, const struct ref *ref, const char *line)
{
    struct run *r = find_run(v, ref->inst, line);
    int64_t dup = 0;

    if (r == NULL)
        return -1;
    for (uint64_t n = ref->n; n <= ref->last; n++) {
        int b = bit_set(r, n);
        if (b < 0)
            return -1;
        if (b == 1 && dup == 0)
            dup = (int64_t)n;
        else if (b == 0)
            v->sum.accounted++;
    }
    return dup;
}

/* Rows whose signature the station names in a leading "sig=I:N; " token. */
static int signing_kind(const char *kind)
{
    static const char *const kinds[] = {"issued", "reissued", "crl", "verification-cert", "bench"};

    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(kind, kinds[i]) == 0)
            return 1;
    return 0;
}

/* A parsed checkpoint payload. */
struct cp {
    char line[128], ca[65], md[8], inst[17], head[65];
    uint64_t sig, signed_;
    int64_t rows;
    int final;
    const char *pending, *withheld; /* into the payload: "-" or a list, up to a space */
};

static int field(const char *tok, size_t toklen, const char *key, const char **val, size_t *vlen)
{
    size_t k = strlen(key);

    if (toklen <= k || memcmp(tok, key, k) != 0 || tok[k] != '=')
        return 0;
    *val = tok + k + 1;
    *vlen = toklen - k - 1;
    return 1;
}

static int copy_val(char *dst, size_t cap, const char *val, size_t n)
{
    if (n == 0 || n >= cap)
        return -1;
    memcpy(dst, val, n);
    dst[n] = '\0';
    return 0;
}

static int num_val(const char *val, size_t n, uint64_t *out)
{
    uint64_t x = 0;

    if (n == 0 || n > 19)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (val[i] < '0' || val[i] > '9')
            return -1;
        x = x * 10 + (uint64_t)(val[i] - '0');
    }
    *out = x;
    return 0;
}

/* Parses the payload (up to plen); returns 0 or -1.  Every field exactly once, in order. */
static int parse_payload(const char *p, size_t plen, struct cp *cp)
{
    static const char *const keys[] = {"line", "ca",   "md",    "signer",  "sig",     "signed",
                                       "rows", "head", "final", "pending", "withheld"};
    const char *end = p + plen, *tok = p + strlen(PAYLOAD_V1);
    size_t k = 0;

    if (plen < strlen(PAYLOAD_V1) || memcmp(p, PAYLOAD_V1, strlen(PAYLOAD_V1)) != 0)
        return -1;
    memset(cp, 0, sizeof *cp);
    while (tok < end && k < sizeof keys / sizeof keys[0]) {
        const char *sp = memchr(tok, ' ', (size_t)(end - tok)), *val;
        size_t toklen = (size_t)((sp ? sp : end) - tok), vlen;
        uint64_t x = 0;
        int bad = !field(tok, toklen, keys[k], &val, &vlen);
        if (!bad) {
            switch (k) {
            case 0:
                bad = copy_val(cp->line, sizeof cp->line, val, vlen);
                break;
            case 1:
                bad = vlen != 64 || copy_val(cp->ca, sizeof cp->ca, val, vlen);
                break;
            case 2:
                bad = copy_val(cp->md, sizeof cp->md, val, vlen);
                break;
            case 3:
                bad = vlen != 16 || copy_val(cp->inst, sizeof cp->inst, val, vlen);
                break;
            case 4:
                bad = num_val(val, vlen, &cp->sig) || cp->sig == 0;
                break;
            case 5:
                bad = num_val(val, vlen, &cp->signed_);
                break;
            case 6:
                bad = num_val(val, vlen, &x) || x > INT64_MAX;
                cp->rows = (int64_t)x;
                break;
            case 7:
                bad = vlen != 64 || copy_val(cp->head, sizeof cp->head, val, vlen);
                break;
            case 8:
                bad = num_val(val, vlen, &x) || x > 1;
                cp->final = (int)x;
                break;
            case 9:
                cp->pending = val;
                break;
            case 10:
                cp->withheld = val;
                break;
            }
        }
        if (bad)
            return -1;
        k++;
        tok = sp ? sp + 1 : end;
    }
    return k == sizeof keys / sizeof keys[0] && tok >= end ? 0 : -1;
}

/* Walks a "-" or "REF,REF..." list ending at a space or NUL; fn returns non-zero to stop. */
static int each_ref(const char *list, int (*fn)(void *, const struct ref *), void *ctx)
{
    const char *p = list;
    struct ref ref;

    if (p[0] == '-' && (p[1] == ' ' || p[1] == '\0'))
        return 0;
    for (;;) {
        int rc;
        if (parse_ref(&p, &ref) != 0)
            return -1;
        if ((rc = fn(ctx, &ref)) != 0)
            return rc;
        if (*p != ',')
            break;
        p++;
    }
    return *p == ' ' || *p == '\0' ? 0 : -1;
}

static int count_ref(void *ctx, const struct ref *ref)
{
    (void)ref;
    ++*(size_t *)ctx;
    return 0;
}

struct reflist {
    struct ref *v;
    size_t n;
};

static int collect_ref(void *ctx, const struct ref *ref)
{
    struct reflist *l = ctx;
    l->v[l->n++] = *ref;
    return 0;
}

struct withheld_ctx {
    checkpoint_verifier_t *v;
    const char *line;
};

static int withheld_ref(void *ctx, const struct ref *ref)
{
    struct withheld_ctx *w = ctx;
    int64_t dup = account(w->v, ref, w->line);

    if (dup < 0)
        return -1;
    w->v->sum.withheld += (int64_t)(ref->last - ref->n + 1);
    return 0; /* also logged elsewhere (a commit reported failed that did land): harmless */
}

static int in_pending(const struct reflist *p, const char *inst, uint64_t n)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->v[i].n <= n && n <= p->v[i].last && memcmp(p->v[i].inst, inst, 16) == 0)
            return 1;
    return 0;
}

static int carry_add(struct run *r, uint64_t n)
{
    if (r->ncarry == r->capcarry) {
        size_t cap = r->capcarry ? r->capcarry * 2 : 16;
        uint64_t *c = realloc(r->carry, cap * sizeof *c);
        if (c == NULL)
            return -1;
        r->carry = c;
        r->capcarry = cap;
    }
    r->carry[r->ncarry++] = n;
    return 0;
}

static const EVP_MD *md_named(const char *name)
{
    return strcmp(name, "SHA256") == 0   ? EVP_sha256()
           : strcmp(name, "SHA384") == 0 ? EVP_sha384()
                                         : NULL;
}

static int hex_to_bytes(const char *hex, unsigned char *out, size_t cap, size_t *n)
{
    size_t len = strlen(hex);

    if (len == 0 || len % 2 != 0 || len / 2 > cap)
        return -1;
    for (size_t i = 0; i < len / 2; i++) {
        int hi = hex[2 * i], lo = hex[2 * i + 1];
        hi = hi >= '0' && hi <= '9' ? hi - '0' : hi >= 'a' && hi <= 'f' ? hi - 'a' + 10 : -1;
        lo = lo >= '0' && lo <= '9' ? lo - '0' : lo >= 'a' && lo <= 'f' ? lo - 'a' + 10 : -1;
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    *n = len / 2;
    return 0;
}

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        snprintf(problem, plen, __VA_ARGS__);                                                      \
        ret = 1;                                                                                   \
        goto out;                                                                                  \
    } while (0)

static int check_checkpoint(checkpoint_verifier_t *v, const audit_row_t *row, char *problem,
                            size_t plen)
{
    const char *detail = row->detail ? row->detail : "", *sigp = strstr(detail, " signature=");
    struct reflist pend = {NULL, 0};
    struct withheld_ctx wctx = {v, row->line};
    unsigned char sig[1024];
    size_t sig_len = 0, npend = 0;
    const struct ca *ca = NULL;
    const EVP_MD *md;
    EVP_MD_CTX *mctx = NULL;
    struct cp cp;
    struct run *r;
    uint64_t bound;
    int64_t dup;
    int ret = 0;

    if (sigp == NULL || parse_payload(detail, (size_t)(sigp - detail), &cp) != 0 ||
        hex_to_bytes(sigp + 11, sig, sizeof sig, &sig_len) != 0 || cp.signed_ + 1 != cp.sig)
        FAIL("row %lld: checkpoint is malformed", (long long)row->seq);
    if (strcmp(cp.line, row->line) != 0)
        FAIL("row %lld: checkpoint of line %s filed under line %s", (long long)row->seq, cp.line,
             row->line);
    for (size_t i = 0; i < v->ncas && ca == NULL; i++)
        if (strcmp(v->cas[i].thumb, cp.ca) == 0)
            ca = &v->cas[i];
    if (ca == NULL)
        FAIL("row %lld: checkpoint signed by line CA %.16s..., which is not in the "
             "configuration's chains",
             (long long)row->seq, cp.ca);
    if ((md = md_named(cp.md)) == NULL || (mctx = EVP_MD_CTX_new()) == NULL ||
        EVP_DigestVerifyInit(mctx, NULL, md, NULL, ca->key) != 1 ||
        EVP_DigestVerify(mctx, sig, sig_len, (const unsigned char *)detail,
                         (size_t)(sigp - detail)) != 1)
        FAIL("row %lld: checkpoint signature does not verify with the line %s CA key",
             (long long)row->seq, cp.line);
    if (cp.rows >= row->seq)
        FAIL("row %lld: checkpoint names row %lld, not before it", (long long)row->seq,
             (long long)cp.rows);
    if (cp.rows == 0 ? strspn(cp.head, "0") != 64
                     : (v->ring[cp.rows % RING].seq != cp.rows ||
                        memcmp(v->ring[cp.rows % RING].hash, cp.head, 64) != 0))
        FAIL("row %lld: checkpoint names head %.16s... at row %lld, which the log does not have",
             (long long)row->seq, cp.head, (long long)cp.rows);
    if ((r = find_run(v, cp.inst, cp.line)) == NULL)
        FAIL("row %lld: out of memory", (long long)row->seq);
    if (cp.sig <= r->last_c)
        FAIL("row %lld: checkpoint signature number %llu is not after the previous one (%llu)",
             (long long)row->seq, (unsigned long long)cp.sig, (unsigned long long)r->last_c);
    {
        struct ref own;
        memcpy(own.inst, cp.inst, sizeof own.inst);
        own.n = own.last = cp.sig;
        if ((dup = account(v, &own, cp.line)) != 0)
            FAIL("row %lld: signature %s:%llu of line %s is accounted for twice",
                 (long long)row->seq, cp.inst, (unsigned long long)cp.sig, cp.line);
    }
    if (each_ref(cp.withheld, withheld_ref, &wctx) != 0 ||
        each_ref(cp.pending, count_ref, &npend) != 0)
        FAIL("row %lld: checkpoint lists are malformed", (long long)row->seq);
    if ((pend.v = calloc(npend ? npend : 1, sizeof *pend.v)) == NULL)
        FAIL("row %lld: out of memory", (long long)row->seq);
    each_ref(cp.pending, collect_ref, &pend);
    /* Pending at the last checkpoint: accounted since, or still pending. */
    for (size_t i = 0; i < r->ncarry;) {
        uint64_t n = r->carry[i];
        if (bit_get(r, n)) {
            r->carry[i] = r->carry[--r->ncarry];
        } else if (!cp.final && in_pending(&pend, cp.inst, n)) {
            i++;
        } else {
            FAIL("row %lld: signature %s:%llu of line %s was pending at an earlier checkpoint "
                 "and has no row",
                 (long long)row->seq, cp.inst, (unsigned long long)n, cp.line);
        }
    }
    bound = cp.final ? cp.sig : r->last_c;
    for (uint64_t n = r->low; n <= bound; n++) {
        if (bit_get(r, n))
            continue;
        if (!cp.final && in_pending(&pend, cp.inst, n)) {
            if (carry_add(r, n) != 0)
                FAIL("row %lld: out of memory", (long long)row->seq);
            continue;
        }
        FAIL("row %lld: the signer made signature %s:%llu of line %s before this checkpoint, "
             "and the log has no row for it",
             (long long)row->seq, cp.inst, (unsigned long long)n, cp.line);
    }
    if (bound + 1 > r->low)
        r->low = bound + 1;
    r->last_c = cp.sig;
    r->last_final = cp.final;
    r->checkpoints++;
    v->sum.checkpoints++;
out:
    free(pend.v);
    EVP_MD_CTX_free(mctx);
    return ret;
}

int checkpoint_verify_row(void *ctx, const audit_row_t *row, char *problem, size_t plen)
{
    checkpoint_verifier_t *v = ctx;
    const char *kind = row->kind ? row->kind : "", *line = row->line ? row->line : "";
    int ret = 0;

    if (strcmp(kind, "checkpoint") == 0) {
        ret = check_checkpoint(v, row, problem, plen);
    } else if (signing_kind(kind) && row->detail != NULL && strncmp(row->detail, "sig=", 4) == 0) {
        const char *p = row->detail + 4;
        struct ref ref;
        int64_t dup;
        if (parse_ref(&p, &ref) != 0 || (*p != ';' && *p != '\0')) {
            snprintf(problem, plen, "row %lld: malformed signature reference", (long long)row->seq);
            return 1;
        }
        if ((dup = account(v, &ref, line)) != 0) {
            snprintf(problem, plen,
                     dup < 0 ? "row %lld: out of memory"
                             : "row %lld: signature %s:%lld of line %s is accounted for twice",
                     (long long)row->seq, ref.inst, (long long)dup, line);
            return 1;
        }
    }
    /* Remembered after the row's own check: a checkpoint names a row before it. */
    v->ring[row->seq % RING].seq = row->seq;
    memcpy(v->ring[row->seq % RING].hash, row->hash, 64);
    return ret;
}

void checkpoint_verifier_finish(checkpoint_verifier_t *v, checkpoint_summary_t *sum)
{
    for (size_t i = 0; i < v->nruns; i++) {
        struct run *r = v->runs[i];
        uint64_t words = r->nwords;
        if (r->checkpoints > 0) {
            v->sum.runs++;
            v->sum.final_runs += r->last_final;
        }
        /* Made before a non-final last checkpoint and never logged: in flight at a crash. */
        if (r->checkpoints > 0 && !r->last_final) {
            for (uint64_t n = r->low; n <= r->last_c; n++) {
                if (!bit_get(r, n) && v->sum.unconfirmed++ == 0)
                    snprintf(v->sum.first_note, sizeof v->sum.first_note,
                             "signature %s:%llu of line %s", r->inst, (unsigned long long)n,
                             r->line);
            }
            for (size_t k = 0; k < r->ncarry; k++)
                if (!bit_get(r, r->carry[k]))
                    v->sum.unconfirmed++;
        }
        /* Rows after the run's last checkpoint (no checkpoint vouches for what came next). */
        for (uint64_t w = r->last_c / 64; w < words; w++) {
            uint64_t bits = r->bits[w];
            if (w == r->last_c / 64)
                bits &= r->last_c % 64 == 63 ? 0 : ~(uint64_t)0 << (r->last_c % 64 + 1);
            v->sum.uncovered += __builtin_popcountll(bits);
        }
    }
    *sum = v->sum;
}
