/*
 * dps.c — Azure IoT DPS's X.509 decision, replayed offline (see dps.h).
 *
 * The service's documentation is the specification: a device authenticates
 * only if its chain leads, by signatures, to a CA verified by proof of
 * possession; then its individual enrollment, else the enrollment group of
 * the first CA up the chain that has one, decides.  We check a little more
 * than the documentation states (validity periods, CA:TRUE on issuers),
 * because a chain that fails those would fail TLS with the service anyway;
 * docs/dps.md lists every rule and why.
 *
 * Certificates are identified by the SHA-256 of their DER, as the service
 * identifies them by thumbprint: two files with the same certificate are the
 * same certificate, and a certificate with the same name and key but other
 * bytes is not.  Issuance is never trusted on names alone: every link is a
 * signature check.
 */
#include "dps.h"

#include "lcerr.h"
#include "policy.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LABEL_MAX 72 /* a certificate's name in messages: 64 characters and "..." */

enum entry_kind {
    ENTRY_INDIVIDUAL,
    ENTRY_GROUP,
    ENTRY_VERIFIED,
};

static const char *const KIND_NAME[] = {"individual", "group", "verified"};

struct dps_entry {
    enum entry_kind kind;
    int enabled;          /* verified entries have no status: always 1 */
    int line;             /* in the enrollments file, for messages */
    char *path;           /* as written in the file: what people recognise */
    X509 *cert;           /* the first certificate of the file */
    unsigned char id[32]; /* SHA-256 of the DER: the identity, as the service's thumbprint */
};

struct dps_enrollments {
    char *file; /* as given, for FILE:LINE messages */
    struct dps_entry *v;
    size_t n;
    size_t cap;
};

/*
 * The chain as the decision sees it: what the service walks, from the leaf
 * up to the verified CA and on through any further presented issuers.
 */
struct walk {
    X509 *path[DPS_MAX_CHAIN + 1]; /* leaf first; borrowed from the chain or the entries */
    unsigned char id[DPS_MAX_CHAIN + 1][32];
    char label[DPS_MAX_CHAIN + 1][LABEL_MAX];
    size_t len;       /* certificates in path */
    size_t presented; /* path[0..presented-1] came from the device; a last one may not */
    size_t unused;    /* presented certificates the walk did not reach */
    size_t anchor;    /* index of the verified CA in path; == len when there is none */
    char stop[320];   /* why the walk stopped before the last presented certificate */
};

static const char *const REASON_NAME[] = {
    [DPS_REASON_ENROLLED] = "enrolled",
    [DPS_REASON_DISABLED] = "enrollment-disabled",
    [DPS_REASON_NO_ENROLLMENT] = "no-enrollment",
    [DPS_REASON_CHAIN_UNVERIFIED] = "chain-unverified",
    [DPS_REASON_EXPIRED] = "certificate-expired",
    [DPS_REASON_NOT_YET_VALID] = "certificate-not-yet-valid",
    [DPS_REASON_NOT_CA] = "issuer-not-ca",
    [DPS_REASON_REGID_INVALID] = "registration-id-invalid",
};

const char *dps_reason_name(enum dps_reason r)
{
    const char *name = NULL;

    if ((unsigned)r < sizeof REASON_NAME / sizeof REASON_NAME[0])
        name = REASON_NAME[r];
    return name != NULL ? name : "unknown";
}

/* Appends to a NUL-terminated buffer; what does not fit is cut, never overflows. */
static void appendf(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void appendf(char *buf, size_t cap, const char *fmt, ...)
{
    size_t used = strnlen(buf, cap);
    va_list ap;

    if (used + 1 >= cap)
        return;
    va_start(ap, fmt);
    vsnprintf(buf + used, cap - used, fmt, ap);
    va_end(ap);
}

/* Bytes a person can read: printable ASCII kept, anything else '?', at most 64 shown. */
static void show_bytes(const unsigned char *s, size_t len, char *out, size_t outlen)
{
    size_t n = len < 64 ? len : 64, o = 0;

    for (size_t i = 0; i < n && o + 1 < outlen; i++)
        out[o++] = s[i] >= 0x20 && s[i] < 0x7f ? (char)s[i] : '?';
    out[o] = '\0';
    if (len > n)
        appendf(out, outlen, "...");
}

/*
 * The only CN of a name as UTF-8.  Returns 1 with *cn (OPENSSL_free it), 0
 * when the name has no CN, 2 when it has more than one, -1 when it cannot be
 * converted.
 */
static int only_cn(const X509_NAME *name, unsigned char **cn, int *len)
{
    int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1), ret = 0;

    *cn = NULL;
    *len = 0;
    if (idx < 0)
        goto out;
    ret = 2;
    if (X509_NAME_get_index_by_NID(name, NID_commonName, idx) >= 0)
        goto out;
    ret = -1;
    *len = ASN1_STRING_to_UTF8(cn, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx)));
    if (*len < 0) {
        *cn = NULL;
        *len = 0;
        ERR_clear_error();
        goto out;
    }
    ret = 1;
out:
    return ret;
}

/* How messages name a certificate: its CN, else its whole subject. */
static void cert_label(const X509 *x, char *out, size_t outlen)
{
    unsigned char *cn = NULL;
    int len = 0;

    if (only_cn(X509_get_subject_name(x), &cn, &len) == 1) {
        show_bytes(cn, (size_t)len, out, outlen);
    } else {
        char subject[256];
        X509_NAME_oneline(X509_get_subject_name(x), subject, sizeof subject);
        show_bytes((const unsigned char *)subject, strlen(subject), out, outlen);
    }
    OPENSSL_free(cn);
}

static int cert_id(const X509 *x, unsigned char id[32])
{
    unsigned int n = 0;

    return X509_digest(x, EVP_sha256(), id, &n) == 1 && n == 32 ? 0 : -1;
}

static int is_ca(X509 *x)
{
    /* EXFLAG_CA is set only by basicConstraints cA TRUE (a v1 root does not count). */
    return (X509_get_extension_flags(x) & EXFLAG_CA) != 0;
}

enum link {
    LINK_OK,
    LINK_NAME, /* the issuer name is not the candidate's subject */
    LINK_SIG,  /* the names match but the candidate's key did not make the signature */
};

/* Whether parent issued child: names AND signature, never names alone. */
static enum link issued_by(X509 *child, const X509 *parent)
{
    EVP_PKEY *key = X509_get0_pubkey(parent);
    enum link ret = LINK_NAME;

    if (X509_NAME_cmp(X509_get_issuer_name(child), X509_get_subject_name(parent)) != 0)
        goto out;
    ret = LINK_SIG;
    if (key == NULL || X509_verify(child, key) != 1)
        goto out;
    ret = LINK_OK;
out:
    ERR_clear_error();
    return ret;
}

static const struct dps_entry *find_entry(const dps_enrollments_t *e, int verified,
                                          const unsigned char id[32])
{
    for (size_t i = 0; i < e->n; i++)
        if ((e->v[i].kind == ENTRY_VERIFIED) == (verified != 0) && memcmp(e->v[i].id, id, 32) == 0)
            return &e->v[i];
    return NULL;
}

/* 1 if the PEM reader stopped only because no further PEM block was there. */
static int pem_ended_cleanly(void)
{
    unsigned long e = ERR_peek_last_error();
    int clean =
        e == 0 || (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE);

    ERR_clear_error();
    return clean;
}

/* Reads the first certificate of a PEM file named by line `line` of the enrollments file. */
static int entry_read_cert(const dps_enrollments_t *e, int line, const char *shown,
                           const char *path, X509 **x, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    int ret;

    *x = NULL;
    if (f == NULL) {
        ret = lc_seterr(LC_ERR_CONFIG, err, errlen, "%s:%d: %s: %s", e->file, line, shown,
                        strerror(errno));
        goto out;
    }
    ERR_clear_error();
    *x = PEM_read_X509(f, NULL, NULL, NULL);
    if (*x == NULL) {
        ret = lc_seterr(LC_ERR_CONFIG, err, errlen, "%s:%d: %s: %s", e->file, line, shown,
                        pem_ended_cleanly() ? "holds no PEM certificate"
                                            : "the PEM certificate cannot be read");
        goto out;
    }
    ret = LC_OK;
out:
    if (f != NULL)
        fclose(f);
    return ret;
}

static void entry_clear(struct dps_entry *ent)
{
    free(ent->path);
    X509_free(ent->cert);
    memset(ent, 0, sizeof *ent);
}

/* Splits off the next whitespace-separated word of *s; "" when there is none. */
static char *next_word(char **s)
{
    char *w = *s + strspn(*s, " \t");
    char *end = w + strcspn(w, " \t");

    *s = end + strspn(end, " \t");
    if (*end != '\0')
        *end = '\0';
    return w;
}

/*
 * One line of the enrollments file.  dir is the file's folder (with a
 * trailing '/', or "" for the current one), for relative paths.
 */
static int parse_line(dps_enrollments_t *e, const char *dir, char *s, int line, char *err,
                      size_t errlen)
{
    struct dps_entry ent = {0};
    const struct dps_entry *dup;
    char *kw, *rest = s, *full = NULL;
    size_t len = strlen(s);
    int ret;

    while (len > 0 && strchr(" \t\r\n", s[len - 1]) != NULL)
        s[--len] = '\0';
    rest += strspn(rest, " \t");
    ret = LC_OK;
    if (*rest == '\0' || *rest == '#')
        goto out;
    kw = next_word(&rest);
    ent.line = line;
    ent.enabled = 1;
    if (strcmp(kw, "individual") == 0 || strcmp(kw, "group") == 0) {
        const char *status = next_word(&rest);
        ent.kind = kw[0] == 'i' ? ENTRY_INDIVIDUAL : ENTRY_GROUP;
        if (strcmp(status, "enabled") != 0 && strcmp(status, "disabled") != 0) {
            char shown[LABEL_MAX];
            show_bytes((const unsigned char *)status, strlen(status), shown, sizeof shown);
            ret = lc_seterr(LC_ERR_CONFIG, err, errlen,
                            "%s:%d: %s: status \"%s\" must be enabled or disabled", e->file, line,
                            kw, shown);
            goto out;
        }
        ent.enabled = status[0] == 'e';
    } else if (strcmp(kw, "verified") == 0) {
        ent.kind = ENTRY_VERIFIED;
    } else {
        char shown[LABEL_MAX];
        show_bytes((const unsigned char *)kw, strlen(kw), shown, sizeof shown);
        ret = lc_seterr(LC_ERR_CONFIG, err, errlen,
                        "%s:%d: unknown keyword \"%s\" (expected individual, group or verified)",
                        e->file, line, shown);
        goto out;
    }
    /* The rest of the line is the path, spaces included. */
    if (*rest == '\0') {
        ret = lc_seterr(LC_ERR_CONFIG, err, errlen, "%s:%d: %s: the certificate PATH is missing",
                        e->file, line, kw);
        goto out;
    }
    if ((ent.path = strdup(rest)) == NULL ||
        asprintf(&full, "%s%s", rest[0] == '/' ? "" : dir, rest) < 0) {
        full = NULL;
        ret = lc_seterr(LC_ERR_NOMEM, err, errlen, "out of memory");
        goto out;
    }
    if ((ret = entry_read_cert(e, line, ent.path, full, &ent.cert, err, errlen)) != LC_OK)
        goto out;
    if (cert_id(ent.cert, ent.id) != 0) {
        ret = lc_seterr(LC_ERR_CONFIG, err, errlen, "%s:%d: %s: the certificate cannot be encoded",
                        e->file, line, ent.path);
        goto out;
    }
    /* A leaf here would never match: groups are looked up for CAs, trust starts at a CA. */
    if (ent.kind != ENTRY_INDIVIDUAL && !is_ca(ent.cert)) {
        ret = lc_seterr(LC_ERR_CONFIG, err, errlen,
                        "%s:%d: %s: a %s certificate must be a CA (basicConstraints CA:TRUE)",
                        e->file, line, ent.path, kw);
        goto out;
    }
    /* Verified CAs are registered apart from enrollments: a CA may be both. */
    dup = find_entry(e, ent.kind == ENTRY_VERIFIED, ent.id);
    if (dup != NULL) {
        ret = lc_seterr(LC_ERR_CONFIG, err, errlen,
                        ent.kind == ENTRY_VERIFIED
                            ? "%s:%d: %s: this certificate is already verified on line %d (%s)"
                            : "%s:%d: %s: this certificate is already in an enrollment on line %d "
                              "(%s); a certificate may appear in only one enrollment",
                        e->file, line, ent.path, dup->line, dup->path);
        goto out;
    }
    if (e->n == e->cap) {
        size_t cap = e->cap ? 2 * e->cap : 16;
        struct dps_entry *v = realloc(e->v, cap * sizeof *v);
        if (v == NULL) {
            ret = lc_seterr(LC_ERR_NOMEM, err, errlen, "out of memory");
            goto out;
        }
        e->v = v;
        e->cap = cap;
    }
    e->v[e->n++] = ent;
    memset(&ent, 0, sizeof ent);
    ret = LC_OK;
out:
    free(full);
    entry_clear(&ent);
    return ret;
}

/* "dir/" of a path, "" when it has no folder part; malloc'd. */
static char *folder_of(const char *path)
{
    const char *slash = strrchr(path, '/');

    return strndup(path, slash != NULL ? (size_t)(slash - path) + 1 : 0);
}

int dps_enrollments_load(const char *path, dps_enrollments_t **out, char *err, size_t errlen)
{
    dps_enrollments_t *e = NULL;
    FILE *f = NULL;
    char *line = NULL, *dir = NULL;
    size_t cap = 0;
    ssize_t n;
    int lineno = 0, ret;

    *out = NULL;
    e = calloc(1, sizeof *e);
    if (e == NULL || (e->file = strdup(path)) == NULL || (dir = folder_of(path)) == NULL) {
        ret = lc_seterr(LC_ERR_NOMEM, err, errlen, "out of memory");
        goto out;
    }
    f = fopen(path, "re");
    if (f == NULL) {
        ret = lc_seterr(LC_ERR_IO, err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    while ((n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (strlen(line) != (size_t)n) {
            ret =
                lc_seterr(LC_ERR_CONFIG, err, errlen, "%s:%d: NUL byte in the line", path, lineno);
            goto out;
        }
        if ((ret = parse_line(e, dir, line, lineno, err, errlen)) != LC_OK)
            goto out;
    }
    if (!feof(f)) {
        ret = lc_seterr(errno == ENOMEM ? LC_ERR_NOMEM : LC_ERR_IO, err, errlen,
                        "%s: read after line %d: %s", path, lineno, strerror(errno));
        goto out;
    }
    *out = e;
    e = NULL;
    ret = LC_OK;
out:
    free(line);
    if (f != NULL)
        fclose(f);
    free(dir);
    dps_enrollments_free(e);
    return ret;
}

void dps_enrollments_free(dps_enrollments_t *e)
{
    if (e == NULL)
        return;
    for (size_t i = 0; i < e->n; i++)
        entry_clear(&e->v[i]);
    free(e->v);
    free(e->file);
    free(e);
}

/* Reads every certificate of the device's chain file, leaf first. */
static int read_chain(const char *path, X509 **chain, size_t *n, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    X509 *x = NULL;
    int ret;

    *n = 0;
    if (f == NULL) {
        ret = lc_seterr(LC_ERR_IO, err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    ERR_clear_error();
    while ((x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
        if (*n == DPS_MAX_CHAIN) {
            ret = lc_seterr(LC_ERR_CONFIG, err, errlen,
                            "%s: more than %d certificates; a device presents fewer", path,
                            DPS_MAX_CHAIN);
            goto out;
        }
        chain[(*n)++] = x;
        x = NULL;
    }
    if (!pem_ended_cleanly()) {
        ret = lc_seterr(LC_ERR_CONFIG, err, errlen, "%s: PEM certificate %zu cannot be read", path,
                        *n + 1);
        goto out;
    }
    if (*n == 0) {
        ret = lc_seterr(LC_ERR_CONFIG, err, errlen, "%s: holds no PEM certificate", path);
        goto out;
    }
    ret = LC_OK;
out:
    X509_free(x);
    if (f != NULL)
        fclose(f);
    return ret;
}

/* "2026-11-23 10:00:00 UTC" */
static void show_time(const ASN1_TIME *t, char *out, size_t outlen)
{
    struct tm tm;

    if (ASN1_TIME_to_tm(t, &tm) != 1 || strftime(out, outlen, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
        snprintf(out, outlen, "(unreadable time)");
}

/* The verified CA, other than x itself, that issued x; NULL if none did. */
static const struct dps_entry *verified_issuer(const dps_enrollments_t *e, X509 *x,
                                               const unsigned char id[32])
{
    const struct dps_entry *found = NULL;

    for (size_t i = 0; i < e->n && found == NULL; i++)
        if (e->v[i].kind == ENTRY_VERIFIED && memcmp(e->v[i].id, id, 32) != 0 &&
            issued_by(x, e->v[i].cert) == LINK_OK)
            found = &e->v[i];
    return found;
}

static void walk_add(struct walk *w, X509 *x, const unsigned char id[32])
{
    w->path[w->len] = x;
    memcpy(w->id[w->len], id, 32);
    cert_label(x, w->label[w->len], LABEL_MAX);
    w->len++;
}

/*
 * Walks up from the leaf as the service does: each presented certificate
 * must be issued by the next one; the walk is authenticated as soon as a
 * certificate is verified or was issued by a verified CA, which the device
 * need not present (the service knows it).  Issuers presented beyond a
 * verified certificate stay on the path, so that their enrollment groups
 * are found, and so does the verified CA that issued the last of them.
 */
static void walk_chain(const dps_enrollments_t *e, X509 **chain, const unsigned char (*ids)[32],
                       size_t n, struct walk *w)
{
    const struct dps_entry *v = NULL;
    enum link l = LINK_OK;
    size_t k = 1;

    memset(w, 0, sizeof *w);
    while (k < n && (l = issued_by(chain[k - 1], chain[k])) == LINK_OK)
        k++;
    if (k < n) {
        char next[LABEL_MAX], cur[LABEL_MAX];
        cert_label(chain[k - 1], cur, sizeof cur);
        cert_label(chain[k], next, sizeof next);
        snprintf(w->stop, sizeof w->stop,
                 "the walk stops at %s: the next certificate presented, %s, did not issue it (%s)",
                 cur, next,
                 l == LINK_NAME ? "its subject is not that issuer name"
                                : "the names match but the signature does not verify");
    }
    w->anchor = SIZE_MAX;
    for (size_t j = 0; j < k; j++) {
        walk_add(w, chain[j], ids[j]);
        if (find_entry(e, 1, ids[j]) != NULL) {
            w->anchor = j;
            break;
        }
        v = verified_issuer(e, chain[j], ids[j]);
        /* Presented next: it is verified itself and ends the walk on the next round. */
        if (v != NULL && !(j + 1 < k && memcmp(ids[j + 1], v->id, 32) == 0))
            break;
        v = NULL;
    }
    if (w->anchor != SIZE_MAX) {
        for (size_t j = w->len; j < k; j++)
            walk_add(w, chain[j], ids[j]);
        v = verified_issuer(e, chain[k - 1], ids[k - 1]);
    }
    w->presented = w->len;
    w->unused = n - w->presented;
    if (v != NULL) {
        if (w->anchor == SIZE_MAX)
            w->anchor = w->len;
        walk_add(w, v->cert, v->id);
    }
    if (w->anchor == SIZE_MAX)
        w->anchor = w->len;
}

/* "a -> b -> c (not presented; its signature on b checks)" */
static void describe_chain(const struct walk *w, char *why, size_t cap)
{
    appendf(why, cap, "%s", w->label[0]);
    for (size_t i = 1; i < w->len; i++)
        appendf(why, cap, " -> %s", w->label[i]);
    if (w->len > w->presented)
        appendf(why, cap, " (not presented; its signature on %s checks)",
                w->label[w->presented - 1]);
}

/* Validity of every certificate on the path and CA:TRUE on every issuer; 0 or -1 with res filled.
 */
static int check_path(const struct walk *w, time_t now, dps_result_t *res)
{
    char when[48];
    int ret = -1;

    for (size_t i = 0; i < w->len; i++) {
        X509 *x = w->path[i];
        time_t t = now;
        if (X509_cmp_time(X509_get0_notBefore(x), &t) != -1) {
            show_time(X509_get0_notBefore(x), when, sizeof when);
            res->reason = DPS_REASON_NOT_YET_VALID;
            appendf(res->why, sizeof res->why, "; %s is not valid before %s", w->label[i], when);
            goto out;
        }
        if (X509_cmp_time(X509_get0_notAfter(x), &t) != 1) {
            show_time(X509_get0_notAfter(x), when, sizeof when);
            res->reason = DPS_REASON_EXPIRED;
            appendf(res->why, sizeof res->why, "; %s expired on %s", w->label[i], when);
            goto out;
        }
        if (i > 0 && !is_ca(x)) {
            res->reason = DPS_REASON_NOT_CA;
            appendf(res->why, sizeof res->why,
                    "; %s issued %s but is not a CA (no basicConstraints CA:TRUE)", w->label[i],
                    w->label[i - 1]);
            goto out;
        }
    }
    ret = 0;
out:
    ERR_clear_error();
    return ret;
}

/* The leaf's CN as a registration ID into regid; 1 if valid, else 0 with the why in why. */
static int check_regid(const X509 *leaf, char *regid, char *why, size_t whylen)
{
    unsigned char *cn = NULL;
    char shown[LABEL_MAX];
    int len = 0, ok = 0;

    switch (only_cn(X509_get_subject_name(leaf), &cn, &len)) {
    case 1:
        if (policy_regid_valid((const char *)cn, (size_t)len)) {
            memcpy(regid, cn, (size_t)len);
            regid[len] = '\0';
            ok = 1;
            break;
        }
        show_bytes(cn, (size_t)len, shown, sizeof shown);
        snprintf(why, whylen,
                 "the leaf's CN \"%s\" is not a valid registration ID (1-64 of A-Za-z0-9-._:, "
                 "ending alphanumeric or '-')",
                 shown);
        break;
    case 0:
        snprintf(why, whylen, "the leaf has no CN, so no registration ID");
        break;
    case 2:
        snprintf(why, whylen, "the leaf has more than one CN, so no single registration ID");
        break;
    default:
        snprintf(why, whylen, "the leaf's CN cannot be read as UTF-8");
        break;
    }
    OPENSSL_free(cn);
    return ok;
}

static void set_entry(dps_result_t *res, const struct dps_entry *ent)
{
    snprintf(res->entry, sizeof res->entry, "%s %s %s (line %d)", KIND_NAME[ent->kind],
             ent->enabled ? "enabled" : "disabled", ent->path, ent->line);
    res->provisioned = ent->enabled;
    res->reason = ent->enabled ? DPS_REASON_ENROLLED : DPS_REASON_DISABLED;
}

/* The decision proper, on a chain already read.  Fills res; cannot fail. */
static void decide(const dps_enrollments_t *e, X509 **chain, const unsigned char (*ids)[32],
                   size_t n, time_t now, dps_result_t *res)
{
    const struct dps_entry *ent = NULL;
    char regid_why[256] = "";
    struct walk w;
    size_t i;
    int regid_ok;

    walk_chain(e, chain, ids, n, &w);
    /* Computed whatever else fails, so that the output always shows it. */
    regid_ok = check_regid(w.path[0], res->registration_id, regid_why, sizeof regid_why);
    if (w.anchor == w.len) {
        res->reason = DPS_REASON_CHAIN_UNVERIFIED;
        appendf(res->why, sizeof res->why, "chain does not lead to a verified CA: ");
        describe_chain(&w, res->why, sizeof res->why);
        if (w.stop[0] != '\0')
            appendf(res->why, sizeof res->why, "; %s", w.stop);
        appendf(res->why, sizeof res->why,
                "; none of %s is verified by proof of possession or issued by a verified CA",
                w.len == 1 ? "it" : "these");
        return;
    }
    appendf(res->why, sizeof res->why, "chain ");
    describe_chain(&w, res->why, sizeof res->why);
    appendf(res->why, sizeof res->why, "; %s verified by proof of possession", w.label[w.anchor]);
    if (w.unused > 0)
        appendf(res->why, sizeof res->why, "; %zu certificate%s presented after %s not used",
                w.unused, w.unused == 1 ? "" : "s", w.label[w.presented - 1]);
    if (check_path(&w, now, res) != 0)
        return;
    res->authenticated = 1;
    if (!regid_ok) {
        res->reason = DPS_REASON_REGID_INVALID;
        appendf(res->why, sizeof res->why, "; %s", regid_why);
        return;
    }
    ent = find_entry(e, 0, w.id[0]);
    if (ent != NULL && ent->kind == ENTRY_INDIVIDUAL) {
        set_entry(res, ent);
        appendf(res->why, sizeof res->why, "; individual enrollment for the leaf, %s",
                ent->enabled ? "enabled" : "disabled");
        return;
    }
    /* The first intermediate, then the next, up to the root. */
    for (i = 1; i < w.len; i++) {
        ent = find_entry(e, 0, w.id[i]);
        if (ent != NULL && ent->kind == ENTRY_GROUP)
            break;
    }
    if (i == w.len) {
        res->reason = DPS_REASON_NO_ENROLLMENT;
        appendf(res->why, sizeof res->why,
                "; no individual enrollment for the leaf and no enrollment group for any CA of "
                "the chain");
        return;
    }
    set_entry(res, ent);
    appendf(res->why, sizeof res->why,
            "; no individual enrollment for the leaf; first enrollment group found up the chain "
            "is %s's, %s",
            w.label[i], ent->enabled ? "enabled" : "disabled");
}

int dps_check_chain(const dps_enrollments_t *e, const char *chain_path, time_t now,
                    dps_result_t *res, char *err, size_t errlen)
{
    X509 *chain[DPS_MAX_CHAIN] = {NULL};
    unsigned char ids[DPS_MAX_CHAIN][32];
    size_t n = 0;
    int ret;

    memset(res, 0, sizeof *res);
    res->reason = DPS_REASON_CHAIN_UNVERIFIED;
    if ((ret = read_chain(chain_path, chain, &n, err, errlen)) != LC_OK)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (cert_id(chain[i], ids[i]) != 0) {
            ret = lc_seterr(LC_ERR_CONFIG, err, errlen, "%s: certificate %zu cannot be encoded",
                            chain_path, i + 1);
            goto out;
        }
    }
    decide(e, chain, (const unsigned char(*)[32])ids, n, now, res);
    ret = LC_OK;
out:
    for (size_t i = 0; i < n; i++)
        X509_free(chain[i]);
    return ret;
}
