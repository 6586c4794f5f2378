/*
 * config.c — INI configuration with per-key validation (see config.h).
 */
#include "config.h"

#include "control.h"
#include "lcerr.h"
#include "p11uri.h"

#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct parse {
    lc_config_t *cfg;
    char seen[CONFIG_MAX_LINES * 24][72]; /* "section/key" given so far: duplicates are errors */
    size_t nseen;
    FILE *f;
    int lineno; /* line inih is handling now (counted by our reader) */
    char *err;
    size_t errlen;
    int failed;
};

/*
 * fgets wrapper that counts lines so errors can name them, and stops at the
 * first line inih would skip or misread (an unclosed section header, a line
 * that is neither a comment, a section nor key = value): inih would go on
 * and report a later, misleading error.
 */
static char *reader(char *str, int num, void *stream)
{
    struct parse *p = stream;
    char *r = fgets(str, num, p->f);
    const char *s = str;

    if (r == NULL || p->failed)
        return NULL;
    p->lineno++;
    if (strchr(str, '\n') == NULL && !feof(p->f)) {
        lc_seterr(LC_ERR_CONFIG, p->err, p->errlen, "%s:%d: line longer than %d characters",
                  p->cfg->path, p->lineno, num - 2);
        p->failed = 1;
        return NULL;
    }
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s == '\0' || *s == '\n' || *s == '\r' || *s == '#' || *s == ';')
        return r;
    if ((*s == '[' && strchr(s, ']') == NULL) ||
        (*s != '[' && strchr(s, '=') == NULL && strchr(s, ':') == NULL)) {
        lc_seterr(LC_ERR_CONFIG, p->err, p->errlen,
                  "%s:%d: syntax error (expected [section] or key = value)", p->cfg->path,
                  p->lineno);
        p->failed = 1;
        return NULL;
    }
    return r;
}

static int fail(struct parse *p, const char *section, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(struct parse *p, const char *section, const char *key, const char *fmt, ...)
{
    char msg[300];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!p->failed)
        lc_seterr(LC_ERR_CONFIG, p->err, p->errlen, "%s:%d: [%s] %s: %s", p->cfg->path, p->lineno,
                  section, key, msg);
    p->failed = 1;
    return 0; /* inih: stop */
}

/* Resolves a path relative to the configuration file's directory. */
static char *resolve(const lc_config_t *cfg, const char *v)
{
    char *out = NULL;

    if (v[0] == '/')
        return strdup(v);
    if (asprintf(&out, "%s/%s", cfg->dir, v) < 0)
        return NULL;
    return out;
}

static int set_str(struct parse *p, char **dst, const char *section, const char *key,
                   const char *value)
{
    if (*dst != NULL)
        return fail(p, section, key, "given twice");
    *dst = strdup(value);
    if (*dst == NULL)
        return fail(p, section, key, "out of memory");
    return 1;
}

/* A path key: resolved; must exist when must_exist; stored into *dst. */
static int set_path(struct parse *p, char **dst, const char *section, const char *key,
                    const char *value, int must_exist)
{
    struct stat st;

    if (*dst != NULL)
        return fail(p, section, key, "given twice");
    if (*value == '\0')
        return fail(p, section, key, "empty path");
    *dst = resolve(p->cfg, value);
    if (*dst == NULL)
        return fail(p, section, key, "out of memory");
    if (must_exist && stat(*dst, &st) != 0)
        return fail(p, section, key, "%s: %s", *dst, strerror(errno));
    return 1;
}

static int set_int(struct parse *p, int *dst, const char *section, const char *key,
                   const char *value, long lo, long hi)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(value, &end, 10);
    if (errno != 0 || end == value || *end != '\0' || v < lo || v > hi)
        return fail(p, section, key, "\"%s\" is not a whole number from %ld to %ld", value, lo, hi);
    *dst = (int)v;
    return 1;
}

static int valid_shifts(const char *v)
{
    int n = 0;

    while (*v) {
        int h, m, used = 0;
        if (sscanf(v, "%2d:%2d%n", &h, &m, &used) != 2 || used != 5 || h < 0 || h > 23 || m < 0 ||
            m > 59)
            return 0;
        v += used;
        n++;
        if (*v == ',')
            v++;
        else if (*v != '\0')
            return 0;
    }
    return n > 0 && n <= 8;
}

/* plc = modbus-tcp://HOST:PORT */
static int set_plc(struct parse *p, lc_line_cfg_t *l, const char *s, const char *k, const char *v)
{
    static const char scheme[] = "modbus-tcp://";
    const char *host = v + sizeof scheme - 1, *colon;
    char *end;
    long port;

    if (strncmp(v, scheme, sizeof scheme - 1) != 0)
        return fail(p, s, k, "expected modbus-tcp://HOST:PORT");
    colon = strrchr(host, ':');
    if (colon == NULL || colon == host)
        return fail(p, s, k, "expected modbus-tcp://HOST:PORT");
    port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port < 1 || port > 65535)
        return fail(p, s, k, "port must be 1..65535");
    if (l->plc_host != NULL)
        return fail(p, s, k, "given twice");
    l->plc_host = strndup(host, (size_t)(colon - host));
    l->plc_port = (int)port;
    return l->plc_host != NULL ? 1 : fail(p, s, k, "out of memory");
}

/* jig = exec:/abs/program [args] */
static int set_jig(struct parse *p, lc_line_cfg_t *l, const char *s, const char *k, const char *v)
{
    if (strncmp(v, "exec:", 5) == 0) {
        const char *prog = v + 5;
        size_t n = strcspn(prog, " \t");
        char path[4096];
        if (prog[0] != '/' || n >= sizeof path)
            return fail(p, s, k, "exec: needs an absolute program path");
        memcpy(path, prog, n);
        path[n] = '\0';
        if (access(path, X_OK) != 0)
            return fail(p, s, k, "%s: %s", path, strerror(errno));
    } else {
        return fail(p, s, k, "expected exec:/path/to/program [args]");
    }
    return set_str(p, &l->jig, s, k, v);
}

/*
 * PKCS#11 modules that Debian packages (amd64 and arm64 paths), and the
 * client libraries of HSMs whose vendors install them at one fixed path.
 * Deliberately absent: pkcs11-spy.so (logs every call, the PIN included),
 * p11-kit-client.so (forwards to a remote p11-kit server) and
 * p11-kit-trust.so (a trust store, not a key store).  Anything else goes in
 * the allow file (docs/config.md).
 */
static const char *const builtin_modules[] = {
    /* SoftHSM2 (libsofthsm2): the demo and test token */
    "/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    /* OpenSC (opensc-pkcs11): smart-card HSMs such as the Nitrokey HSM / SmartCard-HSM */
    "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so",
    "/usr/lib/x86_64-linux-gnu/pkcs11/opensc-pkcs11.so",
    "/usr/lib/x86_64-linux-gnu/onepin-opensc-pkcs11.so",
    "/usr/lib/x86_64-linux-gnu/pkcs11/onepin-opensc-pkcs11.so",
    "/usr/lib/aarch64-linux-gnu/opensc-pkcs11.so",
    "/usr/lib/aarch64-linux-gnu/pkcs11/opensc-pkcs11.so",
    "/usr/lib/aarch64-linux-gnu/onepin-opensc-pkcs11.so",
    "/usr/lib/aarch64-linux-gnu/pkcs11/onepin-opensc-pkcs11.so",
    /* p11-kit proxy (p11-kit-modules): the modules configured in /etc/pkcs11/modules */
    "/usr/lib/x86_64-linux-gnu/p11-kit-proxy.so", "/usr/lib/aarch64-linux-gnu/p11-kit-proxy.so",
    /* YubiKey PIV (ykcs11) and YubiHSM 2 (Yubico's yubihsm-shell package) */
    "/usr/lib/x86_64-linux-gnu/libykcs11.so.2", "/usr/lib/aarch64-linux-gnu/libykcs11.so.2",
    "/usr/lib/x86_64-linux-gnu/pkcs11/yubihsm_pkcs11.so",
    "/usr/lib/aarch64-linux-gnu/pkcs11/yubihsm_pkcs11.so",
    /* network HSM clients at their vendors' fixed install paths */
    "/usr/safenet/lunaclient/lib/libCryptoki2_64.so", /* Thales Luna */
    "/opt/nfast/toolkits/pkcs11/libcknfast.so",       /* Entrust nShield */
    "/opt/cloudhsm/lib/libcloudhsm_pkcs11.so",        /* AWS CloudHSM client SDK 5 */
};

/* 1 if entry names the file whose canonical path is real; an entry that does not exist is not. */
static int same_file(const char *entry, const char *real)
{
    char r[PATH_MAX];

    return realpath(entry, r) != NULL && strcmp(r, real) == 0;
}

/*
 * Files that decide what linecert trusts (the configuration, the allow
 * file) must be owned by root or by whoever loads them, and writable by
 * nobody else: otherwise another account could make the signer load its
 * library.  Returns NULL if st passes, else a static reason.
 */
static const char *untrusted_file(const struct stat *st)
{
    if (!S_ISREG(st->st_mode))
        return "is not a regular file";
    if (st->st_mode & 022)
        return "is writable by group or others";
    if (st->st_uid != 0 && st->st_uid != geteuid())
        return "is not owned by root or by the user loading it";
    return NULL;
}

/*
 * Looks real up in the allow file.  Returns 1 (listed), 0 (not listed, or
 * no allow file), or -1 after fail() (the allow file is unusable or
 * malformed: better to stop than to guess).
 */
static int allow_file_lists(struct parse *p, const char *s, const char *k, const char *real)
{
    const char *env = secure_getenv(CONFIG_PKCS11_ALLOW_ENV);
    const char *path = env != NULL && *env != '\0' ? env : CONFIG_PKCS11_ALLOW_FILE;
    char *line = NULL;
    size_t cap = 0;
    struct stat st;
    const char *why;
    int found = 0, n = 0;
    ssize_t len;
    FILE *f;

    f = fopen(path, "re");
    if (f == NULL) {
        if (errno == ENOENT && path != env)
            return 0;
        fail(p, s, k, "allow-list %s%s: %s", path,
             path == env ? " (" CONFIG_PKCS11_ALLOW_ENV ")" : "", strerror(errno));
        return -1;
    }
    if (fstat(fileno(f), &st) != 0) {
        fail(p, s, k, "allow-list %s: %s", path, strerror(errno));
        fclose(f);
        return -1;
    }
    if ((why = untrusted_file(&st)) != NULL) {
        fail(p, s, k,
             "allow-list %s %s (mode %04o, uid %u); it must be owned by root or uid %u "
             "and not writable by group or others",
             path, why, (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid, (unsigned)geteuid());
        fclose(f);
        return -1;
    }
    while (!found && (len = getline(&line, &cap, f)) >= 0) {
        char *e = line, *end = line + len;
        n++;
        while (end > e && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
            *--end = '\0';
        while (*e == ' ' || *e == '\t')
            e++;
        if (*e == '\0' || *e == '#')
            continue;
        if (*e != '/') {
            fail(p, s, k, "allow-list %s:%d: \"%.200s\" is not an absolute path", path, n, e);
            found = -1;
            break;
        }
        found = same_file(e, real);
    }
    free(line);
    fclose(f);
    return found;
}

/*
 * pkcs11_module: absolute, a root- or self-owned regular file nobody else
 * can write, and, compared as canonical paths (a symlink cannot smuggle in
 * another library), on the built-in list or in the allow file.  The
 * canonical path is stored, so the signer loads exactly the file checked.
 */
static int set_module(struct parse *p, const char *s, const char *k, const char *v)
{
    lc_config_t *c = p->cfg;
    char real[PATH_MAX], shown[PATH_MAX + 32];
    struct stat st;
    const char *why;
    int listed = 0;

    if (c->pkcs11_module != NULL)
        return fail(p, s, k, "given twice");
    if (v[0] != '/')
        return fail(p, s, k, "must be an absolute path");
    if (realpath(v, real) == NULL || stat(real, &st) != 0)
        return fail(p, s, k, "%s: %s", v, strerror(errno));
    if (strcmp(real, v) != 0)
        snprintf(shown, sizeof shown, "%s (which is %s)", v, real);
    else
        snprintf(shown, sizeof shown, "%s", v);
    if ((why = untrusted_file(&st)) != NULL)
        return fail(p, s, k, "%s %s (mode %04o, uid %u)", shown, why,
                    (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid);
    for (size_t i = 0; i < sizeof builtin_modules / sizeof builtin_modules[0] && !listed; i++)
        listed = same_file(builtin_modules[i], real);
    if (!listed && (listed = allow_file_lists(p, s, k, real)) < 0)
        return 0;
    if (!listed)
        return fail(p, s, k, "%s is not on the PKCS#11 module allow-list (see docs/config.md)",
                    shown);
    c->pkcs11_module = strdup(real);
    return c->pkcs11_module != NULL ? 1 : fail(p, s, k, "out of memory");
}

/* operator_group, security_group: set explicitly, the group must exist here. */
static int set_group(struct parse *p, char **dst, const char *s, const char *k, const char *v)
{
    if (strlen(v) > 63)
        return fail(p, s, k, "group name longer than 63 characters");
    /* the same lookup the control socket enforces with */
    if (!control_group_lookup(v, NULL))
        return fail(p, s, k, "group \"%s\" does not exist on this system", v);
    return set_str(p, dst, s, k, v);
}

static int station_key(struct parse *p, const char *s, const char *k, const char *v)
{
    lc_config_t *c = p->cfg;
    struct stat st;

    if (strcmp(k, "audit_db") == 0) {
        char *dir, *slash;
        if (!set_path(p, &c->audit_db, s, k, v, 0))
            return 0;
        dir = strdup(c->audit_db);
        if (dir == NULL)
            return fail(p, s, k, "out of memory");
        slash = strrchr(dir, '/');
        if (slash != NULL && slash != dir)
            *slash = '\0';
        if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
            fail(p, s, k, "directory %s does not exist", dir);
            free(dir);
            return 0;
        }
        free(dir);
        return 1;
    }
    if (strcmp(k, "pkcs11_module") == 0)
        return set_module(p, s, k, v);
    if (strcmp(k, "pin_file") == 0) {
        if (!set_path(p, &c->pin_file, s, k, v, 1))
            return 0;
        if (stat(c->pin_file, &st) != 0 || !S_ISREG(st.st_mode))
            return fail(p, s, k, "%s is not a regular file", c->pin_file);
        if (st.st_mode & 077)
            return fail(p, s, k, "%s is readable by group/other (mode %03o); chmod 600 it",
                        c->pin_file, (unsigned)(st.st_mode & 0777));
        return 1;
    }
    if (strcmp(k, "softhsm2_conf") == 0)
        return set_path(p, &c->softhsm2_conf, s, k, v, 1);
    if (strcmp(k, "signer") == 0)
        return set_path(p, &c->signer, s, k, v, 1);
    if (strcmp(k, "signer_threads") == 0)
        return set_int(p, &c->signer_threads, s, k, v, 1, 64);
    if (strcmp(k, "not_before_skew_s") == 0)
        return set_int(p, &c->not_before_skew_s, s, k, v, 0, 86400);
    if (strcmp(k, "crl_dir") == 0) {
        if (!set_path(p, &c->crl_dir, s, k, v, 1))
            return 0;
        if (stat(c->crl_dir, &st) != 0 || !S_ISDIR(st.st_mode))
            return fail(p, s, k, "%s is not a directory", c->crl_dir);
        return 1;
    }
    if (strcmp(k, "crl_next_update_hours") == 0)
        return set_int(p, &c->crl_next_update_hours, s, k, v, 1, 24 * 366);
    if (strcmp(k, "checkpoint_every") == 0)
        return set_int(p, &c->checkpoint_every, s, k, v, 1, 1000000);
    if (strcmp(k, "operator_group") == 0)
        return set_group(p, &c->operator_group, s, k, v);
    if (strcmp(k, "security_group") == 0)
        return set_group(p, &c->security_group, s, k, v);
    if (strcmp(k, "control_socket") == 0)
        return set_path(p, &c->control_socket, s, k, v, 0);
    if (strcmp(k, "shifts") == 0) {
        if (!valid_shifts(v))
            return fail(p, s, k, "expected HH:MM[,HH:MM...] (e.g. 06:00,14:00,22:00)");
        return set_str(p, &c->shifts, s, k, v);
    }
    return fail(p, s, k, "unknown key");
}

static lc_line_cfg_t *line_for(struct parse *p, const char *section)
{
    lc_config_t *c = p->cfg;
    const char *id = section + 5;

    for (size_t i = 0; i < c->nlines; i++)
        if (strcmp(c->lines[i].id, id) == 0)
            return &c->lines[i];
    if (c->nlines == CONFIG_MAX_LINES)
        return NULL;
    c->lines[c->nlines].id = strdup(id);
    c->lines[c->nlines].validity_days = 3650;
    c->lines[c->nlines].plc_unit = 1;
    c->lines[c->nlines].poll_ms = 20;
    c->lines[c->nlines].jig_timeout_ms = 5000;
    return &c->lines[c->nlines++];
}

static int line_key(struct parse *p, const char *s, const char *k, const char *v)
{
    lc_line_cfg_t *l = line_for(p, s);
    char msg[200];

    if (l == NULL || l->id == NULL)
        return fail(p, s, k, "too many lines (at most %d)", CONFIG_MAX_LINES);
    if (strcmp(k, "name") == 0)
        return set_str(p, &l->name, s, k, v);
    if (strcmp(k, "ca_key") == 0) {
        if (p11uri_check(v, msg, sizeof msg) != LC_OK)
            return fail(p, s, k, "%s", msg);
        return set_str(p, &l->ca_key, s, k, v);
    }
    if (strcmp(k, "chain") == 0)
        return set_path(p, &l->chain, s, k, v, 1);
    if (strcmp(k, "validity_days") == 0)
        return set_int(p, &l->validity_days, s, k, v, 1, 36500);
    if (strcmp(k, "subject_o") == 0)
        return set_str(p, &l->subject_o, s, k, v);
    if (strcmp(k, "subject_ou") == 0)
        return set_str(p, &l->subject_ou, s, k, v);
    if (strcmp(k, "revoke_superseded") == 0) {
        if (strcmp(v, "yes") != 0 && strcmp(v, "no") != 0)
            return fail(p, s, k, "expected yes or no");
        l->revoke_superseded = strcmp(v, "yes") == 0;
        return 1;
    }
    if (strcmp(k, "plc") == 0)
        return set_plc(p, l, s, k, v);
    if (strcmp(k, "plc_unit") == 0)
        return set_int(p, &l->plc_unit, s, k, v, 0, 255);
    if (strcmp(k, "plc_base") == 0)
        return set_int(p, &l->plc_base, s, k, v, 0, 65535 - 40);
    if (strcmp(k, "poll_ms") == 0)
        return set_int(p, &l->poll_ms, s, k, v, 5, 10000);
    if (strcmp(k, "jig") == 0)
        return set_jig(p, l, s, k, v);
    if (strcmp(k, "jig_timeout_ms") == 0)
        return set_int(p, &l->jig_timeout_ms, s, k, v, 100, 600000);
    if (strcmp(k, "registration_id") == 0) {
        const char *pct = strstr(v, "%s");
        if (pct == NULL || strstr(pct + 2, "%") != NULL || strchr(v, '%') != pct)
            return fail(p, s, k, "must contain %%s exactly once and no other %%");
        return set_str(p, &l->regid_template, s, k, v);
    }
    return fail(p, s, k, "unknown key");
}

static int valid_line_id(const char *id)
{
    if (*id == '\0' || strlen(id) > 32)
        return 0;
    for (; *id; id++)
        if (!((*id >= 'a' && *id <= 'z') || (*id >= 'A' && *id <= 'Z') ||
              (*id >= '0' && *id <= '9') || *id == '-' || *id == '_'))
            return 0;
    return 1;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
    struct parse *p = user;

    if (p->failed)
        return 0;
    if (*value == '\0')
        return fail(p, section, name, "empty value");
    {
        char key[72];
        snprintf(key, sizeof key, "%.40s/%.30s", section, name);
        for (size_t i = 0; i < p->nseen; i++)
            if (strcmp(p->seen[i], key) == 0)
                return fail(p, section, name, "given twice");
        if (p->nseen < sizeof p->seen / sizeof p->seen[0])
            memcpy(p->seen[p->nseen++], key, sizeof key);
    }
    if (strcmp(section, "station") == 0)
        return station_key(p, section, name, value);
    if (strncmp(section, "line.", 5) == 0) {
        if (!valid_line_id(section + 5))
            return fail(p, section, name,
                        "line id must be 1-32 characters of A-Za-z0-9-_ (in the section name)");
        return line_key(p, section, name, value);
    }
    return fail(p, section, name, "unknown section (expected [station] or [line.<id>])");
}

int config_load(const char *path, lc_config_t **out, char *err, size_t errlen)
{
    struct parse p = {0};
    lc_config_t *c;
    char real[PATH_MAX];
    struct stat st;
    const char *why;
    int rc, ret = LC_ERR_CONFIG;

    *out = NULL;
    c = calloc(1, sizeof *c);
    if (c == NULL)
        return lc_seterr(LC_ERR_NOMEM, err, errlen, "out of memory");
    c->path = strdup(path);
    c->not_before_skew_s = 300;
    c->crl_next_update_hours = 168;
    c->signer_threads = 2;
    c->checkpoint_every = 1000;
    p.cfg = c;
    p.err = err;
    p.errlen = errlen;
    if (c->path == NULL || realpath(path, real) == NULL) {
        lc_seterr(ret, err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    {
        char *slash = strrchr(real, '/');
        if (slash == real)
            slash[1] = '\0';
        else if (slash != NULL)
            *slash = '\0';
        c->dir = strdup(real);
    }
    p.f = fopen(path, "re");
    if (p.f == NULL) {
        lc_seterr(ret, err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    /* fstat of what was opened: what is checked is what is read. */
    if (fstat(fileno(p.f), &st) != 0) {
        lc_seterr(ret, err, errlen, "%s: %s", path, strerror(errno));
        fclose(p.f);
        goto out;
    }
    if ((why = untrusted_file(&st)) != NULL) {
        lc_seterr(ret, err, errlen,
                  "%s %s (mode %04o, owner uid %u); it must be owned by root or uid %u and not "
                  "writable by group or others (chown root, chmod go-w)",
                  path, why, (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid,
                  (unsigned)geteuid());
        fclose(p.f);
        goto out;
    }
    rc = ini_parse_stream(reader, &p, handler, &p);
    fclose(p.f);
    if (p.failed)
        goto out;
    if (rc != 0) {
        lc_seterr(ret, err, errlen, "%s:%d: syntax error (expected [section] or key = value)", path,
                  rc > 0 ? rc : p.lineno);
        goto out;
    }
    if (c->audit_db == NULL || c->pkcs11_module == NULL || c->pin_file == NULL) {
        lc_seterr(ret, err, errlen, "%s: [station]: missing required key %s", path,
                  c->audit_db == NULL        ? "audit_db"
                  : c->pkcs11_module == NULL ? "pkcs11_module"
                                             : "pin_file");
        goto out;
    }
    if (c->control_socket == NULL &&
        asprintf(&c->control_socket, "%s/linecertd.sock", c->dir) < 0) {
        c->control_socket = NULL;
        lc_seterr(ret, err, errlen, "out of memory");
        goto out;
    }
    if ((c->shifts == NULL && (c->shifts = strdup("06:00,14:00,22:00")) == NULL) ||
        (c->operator_group == NULL &&
         (c->operator_group = strdup(CONTROL_DEFAULT_OPERATOR_GROUP)) == NULL) ||
        (c->security_group == NULL &&
         (c->security_group = strdup(CONTROL_DEFAULT_SECURITY_GROUP)) == NULL)) {
        lc_seterr(ret, err, errlen, "out of memory");
        goto out;
    }
    if (c->nlines == 0) {
        lc_seterr(ret, err, errlen, "%s: no [line.<id>] section", path);
        goto out;
    }
    for (size_t i = 0; i < c->nlines; i++) {
        lc_line_cfg_t *l = &c->lines[i];
        if (l->ca_key == NULL || l->chain == NULL) {
            lc_seterr(ret, err, errlen, "%s: [line.%s]: missing required key %s", path, l->id,
                      l->ca_key == NULL ? "ca_key" : "chain");
            goto out;
        }
        if (l->regid_template == NULL && (l->regid_template = strdup("%s")) == NULL) {
            lc_seterr(ret, err, errlen, "out of memory");
            goto out;
        }
        if (l->name == NULL && asprintf(&l->name, "Line %s", l->id) < 0) {
            l->name = NULL;
            lc_seterr(ret, err, errlen, "out of memory");
            goto out;
        }
    }
    *out = c;
    c = NULL;
    ret = LC_OK;
out:
    config_free(c);
    return ret;
}

void config_free(lc_config_t *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->nlines; i++) {
        lc_line_cfg_t *l = &c->lines[i];
        free(l->id);
        free(l->name);
        free(l->ca_key);
        free(l->chain);
        free(l->subject_o);
        free(l->subject_ou);
        free(l->plc_host);
        free(l->jig);
        free(l->regid_template);
    }
    free(c->path);
    free(c->dir);
    free(c->audit_db);
    free(c->pkcs11_module);
    free(c->pin_file);
    free(c->softhsm2_conf);
    free(c->signer);
    free(c->control_socket);
    free(c->crl_dir);
    free(c->shifts);
    free(c->operator_group);
    free(c->security_group);
    free(c);
}

const lc_line_cfg_t *config_line(const lc_config_t *cfg, const char *id)
{
    for (size_t i = 0; i < cfg->nlines; i++)
        if (strcmp(cfg->lines[i].id, id) == 0)
            return &cfg->lines[i];
    return NULL;
}
