/*
 * test_lifecycle.c — integration: the certificate lifecycle commands as
 * security staff and plant IT run them (docs/cli.md): `linecert revoke`,
 * `crl`, `issue --reissue` with and without `revoke_superseded`,
 * `dps-verification-cert`, `export enrollments|chain`, and the CRLs that
 * `linecertd` publishes to `crl_dir`.  Each case works on its own copy of a
 * PKI made by `linecert pki init` (SoftHSM2 tokens in a temporary folder) and
 * checks the results with the openssl and sqlite3 CLIs, never with
 * linecert's own code.
 *
 * The daemon runs in its own process group and dies with the test process
 * (PR_SET_PDEATHSIG), so a failing case never leaves it behind.
 */
#include "testutil.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char *dir;       /* the temporary folder of this test case; the PKI is DIR/pki */
static char *linecert;  /* path of the built CLI */
static char *linecertd; /* path of the built daemon */
static char ini[512];   /* DIR/pki/station.ini */
static pid_t daemon_pid;

/* A valid DPS verification code: hex, 16..128 digits. */
#define CODE "5A1B2C3D4E5F60718293A4B5C6D7E8F9"

/* ---- helpers ------------------------------------------------------------ */

/* Runs one SQL statement on the audit store with the sqlite3 CLI; returns its output, trimmed. */
static char *sql(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *sql(const char *fmt, ...)
{
    va_list ap;
    char *q = NULL, *out = NULL, *err = NULL;
    size_t n;
    int rc;

    va_start(ap, fmt);
    if (vasprintf(&q, fmt, ap) < 0)
        q = NULL;
    va_end(ap);
    ck_assert_ptr_nonnull(q);
    rc = tu_runf(&out, &err, "sqlite3 %s/pki/audit.db \"%s\"", dir, q);
    ck_assert_msg(rc == 0, "sqlite3 %s: %s", q, err);
    n = strlen(out);
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
        out[--n] = '\0';
    free(q);
    free(err);
    return out;
}

static long long sql_int(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static long long sql_int(const char *fmt, ...)
{
    va_list ap;
    char *q = NULL, *v;
    long long n;

    va_start(ap, fmt);
    if (vasprintf(&q, fmt, ap) < 0)
        q = NULL;
    va_end(ap);
    ck_assert_ptr_nonnull(q);
    v = sql("%s", q);
    n = strtoll(v, NULL, 10);
    free(v);
    free(q);
    return n;
}

/* Appends text to station.ini (a section may appear twice: its keys are merged). */
static void ini_append(const char *text)
{
    FILE *f = fopen(ini, "a");

    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

/* The value after "key" on its line in text (malloc'd), or NULL. */
static char *value_after(const char *text, const char *key)
{
    const char *p = strstr(text, key);

    if (p == NULL)
        return NULL;
    p += strlen(key);
    return strndup(p, strcspn(p, "\r\n"));
}

/* Seconds since 1970 of an OpenSSL date ("Nov 23 20:15:56 2026 GMT"). */
static time_t ossl_time(const char *s)
{
    struct tm tm;
    char *end;

    memset(&tm, 0, sizeof tm);
    end = strptime(s, "%b %d %H:%M:%S %Y GMT", &tm);
    ck_assert_msg(end != NULL, "not an OpenSSL date: %s", s);
    return timegm(&tm);
}

/* The value after "key=" in the output of an `openssl ... -noout -key` run. */
static char *ossl_field(const char *args, const char *opt, const char *key)
{
    char *out = NULL, *v;

    ck_assert_int_eq(tu_runf(&out, NULL, "openssl %s -noout %s", args, opt), 0);
    v = value_after(out, key);
    ck_assert_msg(v != NULL, "no %s in: %s", key, out);
    free(out);
    return v;
}

/* A certificate's field (opt like "-serial", key like "serial="); file relative to DIR. */
static char *cert_field(const char *file, const char *opt, const char *key)
{
    char args[700];

    snprintf(args, sizeof args, "x509 -in %s/%s", dir, file);
    return ossl_field(args, opt, key);
}

/* A CRL's field; der selects -inform DER. */
static char *crl_field(const char *path, int der, const char *opt, const char *key)
{
    char args[700];

    snprintf(args, sizeof args, "crl %s-in %s", der ? "-inform DER " : "", path);
    return ossl_field(args, opt, key);
}

static unsigned long long crl_number(const char *path, int der)
{
    char *v = crl_field(path, der, "-crlnumber", "crlNumber=");
    unsigned long long n = strtoull(v, NULL, 16);

    free(v);
    return n;
}

/* `openssl crl -text` of a CRL. */
static char *crl_text(const char *path, int der)
{
    char *out = NULL, *err = NULL;
    int rc =
        tu_runf(&out, &err, "openssl crl %s-in %s -noout -text", der ? "-inform DER " : "", path);

    ck_assert_msg(rc == 0, "openssl crl %s: %s", path, err);
    free(err);
    return out;
}

/* The text of the CRL entry for serial (uppercase hex) in `openssl crl -text`, or NULL. */
static char *crl_entry(const char *text, const char *serial)
{
    char want[128];
    const char *p, *end, *next;

    snprintf(want, sizeof want, "Serial Number: %s\n", serial);
    p = strstr(text, want);
    if (p == NULL)
        return NULL;
    end = strstr(p + 1, "Serial Number:");
    next = strstr(p + 1, "Signature Algorithm:");
    if (end == NULL || (next != NULL && next < end))
        end = next;
    return end ? strndup(p, (size_t)(end - p)) : strdup(p);
}

/* Makes DIR/name.key and DIR/name.csr (EC P-256) with CN = cn. */
static void make_csr(const char *name, const char *cn)
{
    char *err = NULL;
    int rc = tu_runf(NULL, &err,
                     "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "
                     "%s/%s.key -subj '/CN=%s' -out %s/%s.csr",
                     dir, name, cn, dir, name);

    ck_assert_msg(rc == 0, "openssl req: %s", err);
    free(err);
}

/* `linecert issue` of DIR/name.csr on line to DIR/name.pem; extra options may be NULL. */
static int issue(const char *name, const char *line, const char *extra, char **err)
{
    return tu_runf(NULL, err, "%s issue --config %s --line %s --csr %s/%s.csr --out %s/%s.pem %s",
                   linecert, ini, line, dir, name, dir, name, extra ? extra : "");
}

/* Issues a new certificate with CN = cn to DIR/name.pem; returns its serial (malloc'd). */
static char *issue_cert(const char *name, const char *cn, const char *line)
{
    char *err = NULL;
    int rc;

    make_csr(name, cn);
    rc = issue(name, line, NULL, &err);
    ck_assert_msg(rc == 0, "issue %s failed (%d): %s", cn, rc, err);
    free(err);
    {
        char file[128];
        snprintf(file, sizeof file, "%s.pem", name);
        return cert_field(file, "-serial", "serial=");
    }
}

/* `linecert revoke --serial` with reason and extra options (may be NULL). */
static int revoke_serial(const char *serial, const char *reason, const char *extra, char **out,
                         char **err)
{
    return tu_runf(out, err, "%s revoke --config %s --serial %s --reason %s %s", linecert, ini,
                   serial, reason, extra ? extra : "");
}

static void revoke_ok(const char *serial, const char *reason)
{
    char *err = NULL;
    int rc = revoke_serial(serial, reason, NULL, NULL, &err);

    ck_assert_msg(rc == 0, "revoke %s (%s) failed (%d): %s", serial, reason, rc, err);
    free(err);
}

/* `linecert crl` for line into DIR/name (PEM); extra options may be NULL. Returns the path. */
static char *make_crl(const char *line, const char *name, const char *extra)
{
    char *path = NULL, *out = NULL, *err = NULL;
    int rc;

    ck_assert_int_ge(asprintf(&path, "%s/%s", dir, name), 0);
    rc = tu_runf(&out, &err, "%s crl --config %s --line %s --out %s %s", linecert, ini, line, path,
                 extra ? extra : "");
    ck_assert_msg(rc == 0, "crl failed (%d): %s", rc, err);
    free(out);
    free(err);
    return path;
}

/* Colon-free uppercase fingerprint of DIR/file with digest "sha256" or "sha1". */
static char *fingerprint(const char *file, const char *digest)
{
    char opt[64], *v, *w;

    snprintf(opt, sizeof opt, "-fingerprint -%s", digest);
    v = cert_field(file, opt, "Fingerprint=");
    w = v;
    for (const char *r = v; *r; r++)
        if (*r != ':')
            *w++ = *r;
    *w = '\0';
    return v;
}

/* ISO 8601 UTC of t ("2026-11-23T20:10:55Z"). */
static void iso(time_t t, char *buf, size_t len)
{
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* ---- fixture ------------------------------------------------------------ */

/*
 * One PKI (`linecert pki init`, a couple of seconds under the sanitizers) is
 * made by main() and copied into every test case's folder, with its
 * softhsm2.conf pointed at the copy's tokens: each case has its own tokens and
 * starts with no audit store, as after `pki init`.  A failed case exits
 * without its teardown, so the cases' folders are made inside the template's
 * folder, which main() removes at the end.
 */
static char *template_dir;

static void setup(void)
{
    char *err = NULL;
    int rc;

    linecert = tu_build_path("linecert");
    linecertd = tu_build_path("linecertd");
    /* inside the template's folder: main() removes it, with the folders of failed cases */
    ck_assert_int_ge(asprintf(&dir, "%s/case-XXXXXX", template_dir), 0);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(ini, sizeof ini, "%s/pki/station.ini", dir);
    daemon_pid = 0;
    rc = tu_runf(
        NULL, &err,
        "cp -a %s/pki %s/pki && sed -i 's|^directories.tokendir = .*|directories.tokendir = "
        "%s/pki/tokens|' %s/pki/softhsm2.conf",
        template_dir, dir, dir, dir);
    ck_assert_msg(rc == 0, "copying the PKI failed (%d): %s", rc, err);
    free(err);
}

static void teardown(void)
{
    if (daemon_pid > 0) {
        int status;
        kill(daemon_pid, SIGTERM);
        for (int i = 0; i < 100 && waitpid(daemon_pid, &status, WNOHANG) == 0; i++)
            sleep_ms(100);
        kill(-daemon_pid, SIGKILL);
        waitpid(daemon_pid, &status, WNOHANG);
        daemon_pid = 0;
    }
    tu_rmtree(dir);
    free(dir);
    free(linecert);
    free(linecertd);
    dir = linecert = linecertd = NULL;
}

/* ---- CRL contents and signature ------------------------------------------ */

/* Every reason the CLI takes, and how `openssl crl -text` names its reasonCode. */
static const struct {
    const char *name;
    const char *text; /* NULL: unspecified, which RFC 5280 says to leave out */
} REASONS[] = {
    {"unspecified", NULL},
    {"keyCompromise", "Key Compromise"},
    {"cACompromise", "CA Compromise"},
    {"affiliationChanged", "Affiliation Changed"},
    {"superseded", "Superseded"},
    {"cessationOfOperation", "Cessation Of Operation"},
    {"certificateHold", "Certificate Hold"},
    {"privilegeWithdrawn", "Privilege Withdrawn"},
};
#define NREASONS (sizeof REASONS / sizeof REASONS[0])

START_TEST(crl_lists_each_revocation_with_reason_and_date)
{
    char *serial[NREASONS], *kept, *path, *text, name[32], cn[32];

    for (size_t i = 0; i < NREASONS; i++) {
        snprintf(name, sizeof name, "r%zu", i);
        snprintf(cn, sizeof cn, "reason-device-%zu", i);
        serial[i] = issue_cert(name, cn, "1");
        revoke_ok(serial[i], REASONS[i].name);
    }
    kept = issue_cert("kept", "kept-device", "1");
    path = make_crl("1", "line-1.crl", NULL);
    text = crl_text(path, 0);
    for (size_t i = 0; i < NREASONS; i++) {
        char *entry = crl_entry(text, serial[i]), *date;
        long long revoked_s;

        ck_assert_msg(entry != NULL, "%s (%s) not in the CRL:\n%s", serial[i], REASONS[i].name,
                      text);
        if (REASONS[i].text != NULL)
            ck_assert_msg(strstr(entry, "X509v3 CRL Reason Code") != NULL &&
                              strstr(entry, REASONS[i].text) != NULL,
                          "%s: expected reason %s:\n%s", serial[i], REASONS[i].text, entry);
        else
            ck_assert_msg(strstr(entry, "X509v3 CRL Reason Code") == NULL ||
                              strstr(entry, "Unspecified") != NULL,
                          "%s: unspecified has another reason:\n%s", serial[i], entry);
        /* the revocation date is the time of the "revoked" audit row */
        date = value_after(entry, "Revocation Date: ");
        ck_assert_ptr_nonnull(date);
        revoked_s = sql_int("SELECT ts_ms / 1000 FROM audit WHERE kind = 'revoked' AND serial = "
                            "'%s'",
                            serial[i]);
        ck_assert_msg((long long)ossl_time(date) == revoked_s, "%s: revocation date %s, audit %lld",
                      serial[i], date, revoked_s);
        free(date);
        free(entry);
        free(serial[i]);
    }
    ck_assert_msg(crl_entry(text, kept) == NULL, "unrevoked %s is in the CRL", kept);
    free(kept);
    free(text);
    free(path);
}
END_TEST

START_TEST(crl_lists_only_its_own_line)
{
    char *s1 = issue_cert("a", "line-one-device", "1");
    char *s2 = issue_cert("b", "line-two-device", "2");
    char *p1, *p2, *t1, *t2, *e;

    revoke_ok(s1, "keyCompromise");
    revoke_ok(s2, "keyCompromise");
    p1 = make_crl("1", "line-1.crl", NULL);
    p2 = make_crl("2", "line-2.crl", NULL);
    t1 = crl_text(p1, 0);
    t2 = crl_text(p2, 0);
    ck_assert_ptr_nonnull(e = crl_entry(t1, s1));
    free(e);
    ck_assert_ptr_null(crl_entry(t1, s2));
    ck_assert_ptr_nonnull(e = crl_entry(t2, s2));
    free(e);
    ck_assert_ptr_null(crl_entry(t2, s1));
    free(t1);
    free(t2);
    free(p1);
    free(p2);
    free(s1);
    free(s2);
}
END_TEST

START_TEST(crl_header_v2_issuer_number_aki)
{
    char *path = make_crl("1", "line-1.crl", NULL);
    char *text = crl_text(path, 0), *issuer, *subject, *ski, *aki;

    ck_assert_msg(strstr(text, "Version 2 (0x1)") != NULL, "not a v2 CRL:\n%s", text);
    issuer = crl_field(path, 0, "-issuer", "issuer=");
    subject = cert_field("pki/line-1.pem", "-subject", "subject=");
    ck_assert_str_eq(issuer, subject);
    ck_assert_int_eq(crl_number(path, 0), 1);
    /* AKI keyIdentifier = the line CA's SKI */
    {
        char *out = NULL;
        ck_assert_int_eq(
            tu_runf(&out, NULL,
                    "openssl x509 -in %s/pki/line-1.pem -noout -ext subjectKeyIdentifier", dir),
            0);
        ski = strstr(out, "Subject Key Identifier");
        ck_assert_msg(ski != NULL && strchr(ski, '\n') != NULL, "no SKI in %s", out);
        ski = strchr(ski, '\n') + strspn(strchr(ski, '\n'), " \n");
        ski = strndup(ski, strcspn(ski, " \r\n"));
        ck_assert_msg(strlen(ski) >= 20, "no SKI in %s", out);
        free(out);
    }
    aki = strstr(text, "X509v3 Authority Key Identifier");
    ck_assert_msg(aki != NULL, "no AKI:\n%s", text);
    ck_assert_msg(strstr(aki, ski) != NULL, "AKI is not the line CA SKI %s:\n%s", ski, text);
    free(ski);
    free(issuer);
    free(subject);
    free(text);
    free(path);
}
END_TEST

/* thisUpdate is now and nextUpdate - thisUpdate is H hours. */
static void expect_window(const char *path, long hours)
{
    char *last = crl_field(path, 0, "-lastupdate", "lastUpdate=");
    char *next = crl_field(path, 0, "-nextupdate", "nextUpdate=");
    time_t tl = ossl_time(last), tn = ossl_time(next), now = time(NULL);

    ck_assert_msg(tl <= now + 2 && tl >= now - 120, "thisUpdate %s is not now", last);
    ck_assert_msg(tn - tl == hours * 3600, "nextUpdate %s - thisUpdate %s is not %ld h", next, last,
                  hours);
    free(last);
    free(next);
}

START_TEST(crl_next_update_hours_option)
{
    char *path = make_crl("1", "line-1.crl", "--next-update-hours 24");

    expect_window(path, 24);
    free(path);
    path = make_crl("1", "line-1b.crl", "--next-update-hours 1");
    expect_window(path, 1);
    free(path);
}
END_TEST

START_TEST(crl_next_update_default_then_config)
{
    char *path = make_crl("1", "line-1.crl", NULL);

    expect_window(path, 168); /* the default of crl_next_update_hours */
    free(path);
    ini_append("\n[station]\ncrl_next_update_hours = 12\n");
    path = make_crl("1", "line-1b.crl", NULL);
    expect_window(path, 12);
    free(path);
}
END_TEST

START_TEST(crl_signature_verifies_against_line_ca)
{
    char *serial = issue_cert("v", "verify-device", "1"), *path, *out = NULL, *err = NULL;
    int rc;

    revoke_ok(serial, "keyCompromise");
    path = make_crl("1", "line-1.crl", NULL);
    rc = tu_runf(&out, &err, "openssl crl -in %s -noout -verify -CAfile %s/pki/line-1.pem", path,
                 dir);
    ck_assert_msg(rc == 0 && strstr(err, "verify OK") != NULL, "verify: %d %s %s", rc, out, err);
    free(out);
    free(err);
    /* and the check can fail: line 2's CA did not sign it */
    rc = tu_runf(&out, &err, "openssl crl -in %s -noout -verify -CAfile %s/pki/line-2.pem", path,
                 dir);
    ck_assert_msg(rc != 0 || strstr(err, "verify OK") == NULL, "verified by line 2: %s", err);
    free(out);
    free(err);
    free(path);
    free(serial);
}
END_TEST

START_TEST(crl_check_rejects_revoked_leaf)
{
    char *bad = issue_cert("bad", "revoked-device", "1");
    char *good = issue_cert("good", "good-device", "1");
    char *path, *out = NULL, *err = NULL;
    int rc;

    revoke_ok(bad, "keyCompromise");
    path = make_crl("1", "line-1.crl", NULL);
    rc = tu_runf(&out, &err,
                 "openssl verify -crl_check -CAfile %s/pki/line-1-chain.pem -CRLfile %s %s/bad.pem",
                 dir, path, dir);
    ck_assert_msg(rc != 0, "revoked leaf verified: %s", out);
    ck_assert_msg(strstr(out, "certificate revoked") != NULL ||
                      strstr(err, "certificate revoked") != NULL,
                  "%s %s", out, err);
    free(out);
    free(err);
    rc =
        tu_runf(&out, &err,
                "openssl verify -crl_check -CAfile %s/pki/line-1-chain.pem -CRLfile %s %s/good.pem",
                dir, path, dir);
    ck_assert_msg(rc == 0, "unrevoked leaf: %s %s", out, err);
    free(out);
    free(err);
    free(path);
    free(bad);
    free(good);
}
END_TEST

START_TEST(crl_number_monotonic_per_line)
{
    static const struct {
        const char *line;
        unsigned long long number;
    } runs[] = {{"1", 1}, {"1", 2}, {"2", 1}, {"1", 3}, {"2", 2}};

    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        char name[32], *path;
        snprintf(name, sizeof name, "crl-%zu.crl", i);
        path = make_crl(runs[i].line, name, NULL);
        ck_assert_msg(crl_number(path, 0) == runs[i].number,
                      "run %zu, line %s: CRL #%llu, not %llu", i, runs[i].line, crl_number(path, 0),
                      runs[i].number);
        free(path);
    }
}
END_TEST

/* ---- revoke ---------------------------------------------------------------- */

START_TEST(revoke_twice_is_reported_not_duplicated)
{
    char *serial = issue_cert("d", "twice-device", "1"), *out = NULL, *err = NULL, *v, *path, *t,
         *e;
    int rc;

    revoke_ok(serial, "keyCompromise");
    rc = revoke_serial(serial, "superseded", NULL, &out, &err);
    ck_assert_msg(rc == 0, "second revoke: %d %s", rc, err);
    ck_assert_msg(strstr(out, "already revoked") != NULL && strstr(out, serial) != NULL &&
                      strstr(out, "keyCompromise") != NULL,
                  "%s", out);
    free(out);
    free(err);
    ck_assert_int_eq(
        sql_int("SELECT count(*) FROM audit WHERE kind = 'revoked' AND serial = '%s'", serial), 1);
    v = sql("SELECT reason FROM audit WHERE kind = 'revoked' AND serial = '%s'", serial);
    ck_assert_str_eq(v, "keyCompromise");
    free(v);
    /* the CRL keeps the first reason */
    path = make_crl("1", "line-1.crl", NULL);
    t = crl_text(path, 0);
    e = crl_entry(t, serial);
    ck_assert_ptr_nonnull(e);
    ck_assert_msg(strstr(e, "Key Compromise") != NULL, "%s", e);
    free(e);
    free(t);
    free(path);
    free(serial);
}
END_TEST

START_TEST(revoke_audit_row_records_reason_and_actor)
{
    char *serial = issue_cert("d", "audited-device", "1"), *out = NULL, *err = NULL, *row;
    long long seq;
    int rc;

    rc = revoke_serial(serial, "cessationOfOperation", "--actor 'Jane Doe'", &out, &err);
    ck_assert_msg(rc == 0, "revoke: %d %s", rc, err);
    seq = sql_int("SELECT max(seq) FROM audit");
    row = sql("SELECT kind||'|'||line||'|'||serial||'|'||registration_id||'|'||reason FROM audit "
              "WHERE seq = %lld",
              seq);
    {
        char want[256];
        snprintf(want, sizeof want, "revoked|1|%s|audited-device|cessationOfOperation", serial);
        ck_assert_str_eq(row, want);
    }
    free(row);
    row = sql("SELECT actor FROM audit WHERE seq = %lld", seq);
    ck_assert_msg(strstr(row, "Jane Doe") != NULL, "actor %s", row);
    free(row);
    row = sql("SELECT status FROM certificates WHERE serial = '%s'", serial);
    ck_assert_str_eq(row, "revoked");
    free(row);
    {
        char want[64];
        snprintf(want, sizeof want, "audit row %lld", seq);
        ck_assert_msg(strncmp(out, "revoked: ", 9) == 0 && strstr(out, serial) != NULL &&
                          strstr(out, want) != NULL,
                      "%s", out);
    }
    free(out);
    free(err);
    free(serial);
}
END_TEST

START_TEST(revoke_by_registration_id_ignores_case)
{
    char *serial = issue_cert("d", "Device-Case-7", "1"), *out = NULL, *err = NULL, *v;
    int rc;

    rc = tu_runf(&out, &err,
                 "%s revoke --config %s --registration-id DEVICE-case-7 --reason "
                 "keyCompromise",
                 linecert, ini);
    ck_assert_msg(rc == 0, "revoke: %d %s", rc, err);
    ck_assert_msg(strstr(out, serial) != NULL, "%s", out);
    v = sql("SELECT status FROM certificates WHERE serial = '%s'", serial);
    ck_assert_str_eq(v, "revoked");
    free(v);
    free(out);
    free(err);
    free(serial);
}
END_TEST

/* A retried `revoke --registration-id` (lost answer, script re-run) must be idempotent too. */
START_TEST(revoke_by_registration_id_twice_is_reported)
{
    char *serial = issue_cert("d", "retry-device", "1"), *out = NULL, *err = NULL;
    int rc;

    rc = tu_runf(NULL, NULL,
                 "%s revoke --config %s --registration-id retry-device --reason keyCompromise",
                 linecert, ini);
    ck_assert_int_eq(rc, 0);
    rc = tu_runf(&out, &err,
                 "%s revoke --config %s --registration-id retry-device --reason keyCompromise",
                 linecert, ini);
    ck_assert_msg(rc == 0, "second revoke by registration ID: exit %d: %s", rc, err);
    ck_assert_msg(strstr(out, "already revoked") != NULL && strstr(out, serial) != NULL, "%s", out);
    ck_assert_int_eq(sql_int("SELECT count(*) FROM audit WHERE kind = 'revoked'"), 1);
    free(out);
    free(err);
    free(serial);
}
END_TEST

START_TEST(revoke_lowercase_serial)
{
    char *serial = issue_cert("d", "lower-device", "1"), *lower = strdup(serial), *v;

    for (char *p = lower; *p; p++)
        if (*p >= 'A' && *p <= 'F')
            *p = (char)(*p - 'A' + 'a');
    revoke_ok(lower, "keyCompromise");
    v = sql("SELECT status FROM certificates WHERE serial = '%s'", serial);
    ck_assert_str_eq(v, "revoked");
    free(v);
    free(lower);
    free(serial);
}
END_TEST

START_TEST(revoke_unknown_serial_exit_2_nothing_written)
{
    char *serial = issue_cert("d", "known-device", "1"), *out = NULL, *err = NULL;
    long long rows = sql_int("SELECT count(*) FROM audit");
    int rc;

    rc = revoke_serial("0123456789ABCDEF0123456789ABCDEF", "keyCompromise", NULL, &out, &err);
    ck_assert_int_eq(rc, 2);
    ck_assert_str_eq(out, "");
    ck_assert_msg(strstr(err, "no certificate") != NULL &&
                      strstr(err, "0123456789ABCDEF0123456789ABCDEF") != NULL,
                  "%s", err);
    free(out);
    free(err);
    rc = tu_runf(&out, &err,
                 "%s revoke --config %s --registration-id nobody-here --reason "
                 "keyCompromise",
                 linecert, ini);
    ck_assert_int_eq(rc, 2);
    ck_assert_msg(strstr(err, "nobody-here") != NULL, "%s", err);
    free(out);
    free(err);
    ck_assert_int_eq(sql_int("SELECT count(*) FROM audit"), rows);
    free(serial);
}
END_TEST

START_TEST(revoke_bad_reason_or_options_exit_2)
{
    static const char *const bad[] = {"bogus", "removeFromCRL", "''"};
    char *serial = issue_cert("d", "reason-device", "1"), *err = NULL, *v;
    long long rows = sql_int("SELECT count(*) FROM audit");

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = revoke_serial(serial, bad[i], NULL, NULL, &err);
        ck_assert_msg(rc == 2, "reason %s: exit %d", bad[i], rc);
        free(err);
    }
    /* no --reason; both --serial and --registration-id */
    ck_assert_int_eq(
        tu_runf(NULL, NULL, "%s revoke --config %s --serial %s", linecert, ini, serial), 2);
    ck_assert_int_eq(tu_runf(NULL, NULL,
                             "%s revoke --config %s --serial %s --registration-id reason-device "
                             "--reason keyCompromise",
                             linecert, ini, serial),
                     2);
    ck_assert_int_eq(sql_int("SELECT count(*) FROM audit"), rows);
    v = sql("SELECT status FROM certificates WHERE serial = '%s'", serial);
    ck_assert_str_eq(v, "valid");
    free(v);
    free(serial);
}
END_TEST

/* The contract names eight reasons; aACompromise is for attribute certificates. */
START_TEST(revoke_refuses_reason_outside_the_documented_list)
{
    char *serial = issue_cert("d", "aa-device", "1"), *err = NULL, *v;
    int rc = revoke_serial(serial, "aACompromise", NULL, NULL, &err);

    ck_assert_msg(rc == 2, "aACompromise: exit %d (%s)", rc, err);
    free(err);
    v = sql("SELECT status FROM certificates WHERE serial = '%s'", serial);
    ck_assert_str_eq(v, "valid");
    free(v);
    free(serial);
}
END_TEST

START_TEST(revoke_needs_no_hsm)
{
    char *serial = issue_cert("d", "no-hsm-device", "1"), *v;

    ck_assert_int_eq(tu_runf(NULL, NULL, "mv %s/pki/tokens %s/pki/tokens.away", dir, dir), 0);
    revoke_ok(serial, "keyCompromise");
    v = sql("SELECT status FROM certificates WHERE serial = '%s'", serial);
    ck_assert_str_eq(v, "revoked");
    free(v);
    free(serial);
}
END_TEST

START_TEST(crl_without_token_exit_4)
{
    char *out = NULL, *err = NULL;
    int rc;

    ck_assert_int_eq(tu_runf(NULL, NULL, "mv %s/pki/tokens %s/pki/tokens.away", dir, dir), 0);
    rc = tu_runf(&out, &err, "%s crl --config %s --line 1 --out %s/x.crl", linecert, ini, dir);
    ck_assert_msg(rc == 4, "exit %d: %s", rc, err);
    ck_assert_int_eq(tu_runf(NULL, NULL, "test -e %s/x.crl", dir), 1);
    ck_assert_int_eq(sql_int("SELECT count(*) FROM audit WHERE kind = 'crl'"), 0);
    free(out);
    free(err);
}
END_TEST

/* ---- re-issue ---------------------------------------------------------------- */

START_TEST(reissue_with_revoke_superseded_revokes_old)
{
    char *old = issue_cert("a", "reissue-device", "1"), *new, *err = NULL, *v, *path, *t, *e;
    int rc;

    ini_append("\n[line.1]\nrevoke_superseded = yes\n");
    make_csr("b", "reissue-device");
    rc = issue("b", "1", "--reissue --reason 'board replaced'", &err);
    ck_assert_msg(rc == 0, "reissue: %d %s", rc, err);
    free(err);
    new = cert_field("b.pem", "-serial", "serial=");
    v = sql("SELECT status FROM certificates WHERE serial = '%s'", old);
    ck_assert_str_eq(v, "revoked");
    free(v);
    v = sql("SELECT reason FROM audit WHERE kind = 'revoked' AND serial = '%s'", old);
    ck_assert_str_eq(v, "superseded");
    free(v);
    path = make_crl("1", "line-1.crl", NULL);
    t = crl_text(path, 0);
    e = crl_entry(t, old);
    ck_assert_msg(e != NULL, "old %s not in the CRL:\n%s", old, t);
    ck_assert_msg(strstr(e, "Superseded") != NULL, "%s", e);
    ck_assert_ptr_null(crl_entry(t, new));
    free(e);
    free(t);
    free(path);
    free(old);
    free(new);
}
END_TEST

/* _i = 0: no revoke_superseded key (default); 1: revoke_superseded = no. */
START_TEST(reissue_without_revoke_superseded_only_supersedes)
{
    char *old = issue_cert("a", "keep-device", "1"), *err = NULL, *v, *path, *t;
    int rc;

    if (_i == 1)
        ini_append("\n[line.1]\nrevoke_superseded = no\n");
    make_csr("b", "keep-device");
    rc = issue("b", "1", "--reissue --reason 'label reprint'", &err);
    ck_assert_msg(rc == 0, "reissue: %d %s", rc, err);
    free(err);
    v = sql("SELECT status FROM certificates WHERE serial = '%s'", old);
    ck_assert_str_eq(v, "superseded");
    free(v);
    ck_assert_int_eq(sql_int("SELECT count(*) FROM audit WHERE kind = 'revoked'"), 0);
    path = make_crl("1", "line-1.crl", NULL);
    t = crl_text(path, 0);
    ck_assert_msg(crl_entry(t, old) == NULL, "superseded %s is in the CRL", old);
    free(t);
    free(path);
    free(old);
}
END_TEST

/* ---- DPS verification certificate ------------------------------------------------ */

static void make_verification_cert(void)
{
    char *out = NULL, *err = NULL;
    int rc = tu_runf(&out, &err,
                     "%s dps-verification-cert --config %s --line 1 --code %s --out %s/verify.pem",
                     linecert, ini, CODE, dir);

    ck_assert_msg(rc == 0, "dps-verification-cert: %d %s", rc, err);
    free(out);
    free(err);
}

START_TEST(verification_cert_cn_is_code_issuer_is_line_ca)
{
    char *subject, *issuer, *ca, want[128];

    make_verification_cert();
    subject = cert_field("verify.pem", "-subject -nameopt RFC2253", "subject=");
    snprintf(want, sizeof want, "CN=%s", CODE);
    ck_assert_msg(strncmp(subject, want, strlen(want)) == 0 &&
                      (subject[strlen(want)] == '\0' || subject[strlen(want)] == ','),
                  "subject %s", subject);
    issuer = cert_field("verify.pem", "-issuer", "issuer=");
    ca = cert_field("pki/line-1.pem", "-subject", "subject=");
    ck_assert_str_eq(issuer, ca);
    free(subject);
    free(issuer);
    free(ca);
}
END_TEST

START_TEST(verification_cert_verifies_against_line_ca)
{
    char *out = NULL, *err = NULL;
    int rc;

    make_verification_cert();
    rc = tu_runf(&out, &err,
                 "openssl verify -partial_chain -CAfile %s/pki/line-1.pem %s/verify.pem", dir, dir);
    ck_assert_msg(rc == 0, "%s %s", out, err);
    free(out);
    free(err);
    rc = tu_runf(&out, &err,
                 "openssl verify -partial_chain -CAfile %s/pki/line-2.pem %s/verify.pem", dir, dir);
    ck_assert_msg(rc != 0, "verified by the line 2 CA: %s", out);
    free(out);
    free(err);
}
END_TEST

START_TEST(verification_cert_no_eku_short_validity)
{
    char *text = NULL, *nb, *na;
    time_t tb, ta;

    make_verification_cert();
    ck_assert_int_eq(tu_runf(&text, NULL, "openssl x509 -in %s/verify.pem -noout -text", dir), 0);
    ck_assert_msg(strstr(text, "Extended Key Usage") == NULL, "has an EKU:\n%s", text);
    ck_assert_msg(strstr(text, "CA:FALSE") != NULL, "%s", text);
    free(text);
    nb = cert_field("verify.pem", "-startdate", "notBefore=");
    na = cert_field("verify.pem", "-enddate", "notAfter=");
    tb = ossl_time(nb);
    ta = ossl_time(na);
    ck_assert_msg(ta > time(NULL), "already expired: %s", na);
    ck_assert_msg(ta - tb <= 2 * 86400, "valid %s .. %s: more than 2 days", nb, na);
    free(nb);
    free(na);
}
END_TEST

START_TEST(verification_cert_is_audited)
{
    char *serial, *thumb, *row, want[256];

    make_verification_cert();
    serial = cert_field("verify.pem", "-serial", "serial=");
    thumb = fingerprint("verify.pem", "sha256");
    ck_assert_int_eq(sql_int("SELECT count(*) FROM audit WHERE kind = 'verification-cert'"), 1);
    row = sql("SELECT line||'|'||serial||'|'||thumbprint FROM audit WHERE kind = "
              "'verification-cert'");
    snprintf(want, sizeof want, "1|%s|%s", serial, thumb);
    ck_assert_str_eq(row, want);
    free(row);
    free(serial);
    free(thumb);
}
END_TEST

START_TEST(verification_cert_bad_code_exit_2)
{
    static const char *const bad[] = {"not-a-hex-code-at-all", "0123ABCD"};
    long long rows;

    make_verification_cert(); /* the audit store exists */
    rows = sql_int("SELECT count(*) FROM audit");

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *out = NULL, *err = NULL;
        int rc = tu_runf(&out, &err,
                         "%s dps-verification-cert --config %s --line 1 --code %s --out %s/bad.pem",
                         linecert, ini, bad[i], dir);
        ck_assert_msg(rc == 2, "code %s: exit %d %s", bad[i], rc, err);
        ck_assert_msg(strstr(err, "hex") != NULL, "code %s: %s", bad[i], err);
        ck_assert_int_eq(tu_runf(NULL, NULL, "test -e %s/bad.pem", dir), 1);
        free(out);
        free(err);
    }
    ck_assert_int_eq(sql_int("SELECT count(*) FROM audit"), rows);
}
END_TEST

/*
 * A code the signer takes (16..128 hex digits) but that cannot be a CN
 * (RFC 5280 ub-common-name is 64) is the user's input, not an HSM failure:
 * either it is issued, or refused with exit 2 -- never exit 4.
 */
START_TEST(verification_cert_long_code_is_not_hsm_failure)
{
    char code[81], *out = NULL, *err = NULL;
    int rc;

    for (int i = 0; i < 80; i++)
        code[i] = "0123456789ABCDEF"[i % 16];
    code[80] = '\0';
    rc = tu_runf(&out, &err,
                 "%s dps-verification-cert --config %s --line 1 --code %s --out %s/long.pem",
                 linecert, ini, code, dir);
    ck_assert_msg(rc == 0 || rc == 2, "80-digit code: exit %d: %s", rc, err);
    if (rc == 0) {
        char *subject = cert_field("long.pem", "-subject -nameopt RFC2253", "subject=");
        ck_assert_msg(strstr(subject, code) != NULL, "subject %s", subject);
        free(subject);
    } else {
        ck_assert_msg(strstr(err, "code") != NULL, "%s", err);
    }
    free(out);
    free(err);
}
END_TEST

/* ---- export --------------------------------------------------------------------- */

/* The CSV row of serial in an enrollments export, split into its 7 fields (malloc'd). */
static char *csv_row(const char *csv, const char *serial, char *f[7])
{
    char *copy = strdup(csv), *save = NULL;

    for (char *line = strtok_r(copy, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
        char *s = line, *fs = NULL;
        int n = 0;
        if (strstr(line, serial) == NULL)
            continue;
        for (char *t = strtok_r(s, ",", &fs); t && n < 7; t = strtok_r(NULL, ",", &fs))
            f[n++] = t;
        ck_assert_msg(n == 7 && strtok_r(NULL, ",", &fs) == NULL, "not 7 fields: %s", line);
        return copy;
    }
    ck_abort_msg("no row for %s in:\n%s", serial, csv);
    return NULL;
}

#define CSV_HEADER                                                                                 \
    "registration_id,sha256_thumbprint,sha1_thumbprint,serial,not_before,not_after,status\r\n"

static char *export_enrollments(const char *format)
{
    char *out = NULL, *err = NULL;
    int rc = tu_runf(&out, &err, "%s export enrollments --config %s --line 1%s%s", linecert, ini,
                     format ? " --format " : "", format ? format : "");

    ck_assert_msg(rc == 0, "export: %d %s", rc, err);
    free(err);
    return out;
}

START_TEST(export_thumbprints_match_openssl)
{
    char *csv, *serial[3], name[8], cn[32];

    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "e%d", i);
        snprintf(cn, sizeof cn, "export-device-%d", i);
        serial[i] = issue_cert(name, cn, "1");
    }
    csv = export_enrollments("csv");
    ck_assert_msg(strncmp(csv, CSV_HEADER, strlen(CSV_HEADER)) == 0, "header: %s", csv);
    for (int i = 0; i < 3; i++) {
        char *f[7], *buf, *sha256, *sha1, file[16];
        snprintf(file, sizeof file, "e%d.pem", i);
        snprintf(cn, sizeof cn, "export-device-%d", i);
        buf = csv_row(csv, serial[i], f);
        sha256 = fingerprint(file, "sha256");
        sha1 = fingerprint(file, "sha1");
        ck_assert_str_eq(f[0], cn);
        ck_assert_str_eq(f[1], sha256);
        ck_assert_str_eq(f[2], sha1);
        ck_assert_str_eq(f[3], serial[i]);
        free(sha256);
        free(sha1);
        free(buf);
        free(serial[i]);
    }
    free(csv);
}
END_TEST

START_TEST(export_validity_matches_certificate)
{
    char *serial = issue_cert("e", "validity-device", "1"), *csv = export_enrollments(NULL), *f[7];
    char *buf = csv_row(csv, serial, f), *nb = cert_field("e.pem", "-startdate", "notBefore="),
         *na = cert_field("e.pem", "-enddate", "notAfter="), want[32];

    iso(ossl_time(nb), want, sizeof want);
    ck_assert_str_eq(f[4], want);
    iso(ossl_time(na), want, sizeof want);
    ck_assert_str_eq(f[5], want);
    free(nb);
    free(na);
    free(buf);
    free(csv);
    free(serial);
}
END_TEST

START_TEST(export_status_after_revoke_and_reissue)
{
    char *revoked = issue_cert("a", "status-revoked", "1");
    char *old = issue_cert("b", "status-reissued", "1");
    char *valid = issue_cert("c", "status-valid", "1");
    char *new, *csv, *f[7], *buf, *err = NULL;

    revoke_ok(revoked, "keyCompromise");
    make_csr("b2", "status-reissued");
    ck_assert_int_eq(issue("b2", "1", "--reissue --reason 'new board'", &err), 0);
    free(err);
    new = cert_field("b2.pem", "-serial", "serial=");
    csv = export_enrollments("csv");
    buf = csv_row(csv, revoked, f);
    ck_assert_str_eq(f[6], "revoked");
    free(buf);
    buf = csv_row(csv, old, f);
    ck_assert_str_eq(f[6], "superseded");
    free(buf);
    buf = csv_row(csv, new, f);
    ck_assert_str_eq(f[6], "valid");
    ck_assert_str_eq(f[0], "status-reissued");
    free(buf);
    buf = csv_row(csv, valid, f);
    ck_assert_str_eq(f[6], "valid");
    free(buf);
    free(csv);
    free(revoked);
    free(old);
    free(valid);
    free(new);
}
END_TEST

START_TEST(export_jsonl_one_object_per_line)
{
    static const char *const keys[] = {
        "\"registration_id\":\"", "\"sha256\":\"",    "\"sha1\":\"",  "\"serial\":\"",
        "\"not_before\":\"",      "\"not_after\":\"", "\"status\":\""};
    char *serial[2], *out, *save = NULL, *sha256;
    int lines = 0;

    serial[0] = issue_cert("j0", "jsonl-device-0", "1");
    serial[1] = issue_cert("j1", "jsonl-device-1", "1");
    revoke_ok(serial[1], "keyCompromise");
    out = export_enrollments("jsonl");
    for (char *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        char want[128];
        size_t n = strlen(l);
        ck_assert_msg(lines < 2, "more than 2 lines: %s", l);
        ck_assert_msg(n > 2 && l[0] == '{' && l[n - 1] == '}', "not an object: %s", l);
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
            ck_assert_msg(strstr(l, keys[k]) != NULL, "no %s in %s", keys[k], l);
        snprintf(want, sizeof want, "\"serial\":\"%s\"", serial[lines]);
        ck_assert_msg(strstr(l, want) != NULL, "line %d: %s", lines, l);
        ck_assert_msg(strstr(l, lines == 0 ? "\"status\":\"valid\"" : "\"status\":\"revoked\""),
                      "line %d: %s", lines, l);
        if (lines == 0) {
            sha256 = fingerprint("j0.pem", "sha256");
            snprintf(want, sizeof want, "\"sha256\":\"%s\"", sha256);
            ck_assert_msg(strstr(l, want) != NULL, "%s", l);
            free(sha256);
        }
        lines++;
    }
    ck_assert_int_eq(lines, 2);
    free(out);
    free(serial[0]);
    free(serial[1]);
}
END_TEST

START_TEST(export_chain_has_line_factory_root)
{
    char *out = NULL, *err = NULL, path[600], *chain;
    int n = 0, rc;

    rc = tu_runf(&out, &err, "%s export chain --config %s --line 1", linecert, ini);
    ck_assert_msg(rc == 0, "%s", err);
    for (const char *p = out; (p = strstr(p, "-----BEGIN CERTIFICATE-----")) != NULL; p++)
        n++;
    ck_assert_int_eq(n, 3);
    snprintf(path, sizeof path, "%s/pki/line-1-chain.pem", dir);
    chain = tu_slurp(path, NULL);
    ck_assert_ptr_nonnull(chain);
    ck_assert_str_eq(out, chain);
    free(chain);
    free(out);
    free(err);
    /* leaf-first order: the line CA, then the factory CA, then the root */
    snprintf(path, sizeof path, "%s/pki/line-1.pem", dir);
    chain = tu_slurp(path, NULL);
    ck_assert_ptr_nonnull(chain);
    ck_assert_int_eq(tu_runf(&out, NULL, "%s export chain --config %s --line 1", linecert, ini), 0);
    ck_assert_int_eq(strncmp(out, chain, strlen(chain)), 0);
    free(chain);
    free(out);
}
END_TEST

/* ---- the audit log after all of it ------------------------------------------------ */

START_TEST(audit_log_verifies_after_lifecycle)
{
    char *a = issue_cert("a", "audit-a", "1"), *b = issue_cert("b", "audit-b", "2");
    char *out = NULL, *err = NULL, *p, want[64];
    long long rows;

    revoke_ok(a, "keyCompromise");
    revoke_ok(a, "superseded"); /* idempotent: no row */
    free(make_crl("1", "c1.crl", NULL));
    free(make_crl("2", "c2.crl", NULL));
    make_verification_cert();
    ini_append("\n[line.2]\nrevoke_superseded = yes\n");
    make_csr("b2", "audit-b");
    ck_assert_int_eq(issue("b2", "2", "--reissue --reason 'new key'", NULL), 0);
    free(make_crl("2", "c3.crl", NULL));
    /* issued x2, revoked, crl x2, verification-cert, reissued + revoked, crl */
    ck_assert_int_eq(sql_int("SELECT count(*) FROM audit WHERE kind != 'checkpoint'"), 9);
    /* and a final checkpoint after each of the 7 CLI commands that signed */
    ck_assert_int_eq(sql_int("SELECT count(*) FROM audit WHERE kind = 'checkpoint'"), 7);
    rows = sql_int("SELECT count(*) FROM audit");
    ck_assert_int_eq(tu_runf(&out, &err, "%s audit verify --config %s", linecert, ini), 0);
    snprintf(want, sizeof want, "ok: %lld rows, head ", rows);
    ck_assert_msg(strncmp(out, want, strlen(want)) == 0, "%s %s", out, err);
    free(out);
    free(err);
    /* and it still catches an edit of a lifecycle row */
    p = sql("UPDATE audit SET reason = 'unspecified' WHERE kind = 'revoked' AND serial = '%s'", a);
    free(p);
    ck_assert_int_eq(tu_runf(&out, &err, "%s audit verify --config %s", linecert, ini), 1);
    free(out);
    free(err);
    free(a);
    free(b);
}
END_TEST

/* ---- daemon publication --------------------------------------------------------- */

/* Starts linecertd with crl_dir = crl; it dies with the test process. */
static void daemon_start(void)
{
    char logpath[600], crl[600];
    pid_t pid;

    snprintf(crl, sizeof crl, "%s/pki/crl", dir);
    ck_assert_int_eq(mkdir(crl, 0755), 0);
    ini_append("\n[station]\ncrl_dir = crl\n");
    snprintf(logpath, sizeof logpath, "%s/linecertd.log", dir);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int fo = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0644);
        int fi = open("/dev/null", O_RDONLY);

        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (fo < 0 || fi < 0)
            _exit(126);
        dup2(fi, 0);
        dup2(fo, 1);
        dup2(fo, 2);
        execl(linecertd, "linecertd", "--config", ini, (char *)NULL);
        _exit(127);
    }
    setpgid(pid, pid);
    daemon_pid = pid;
}

static char *daemon_log(void)
{
    char path[600], *text;

    snprintf(path, sizeof path, "%s/linecertd.log", dir);
    text = tu_slurp(path, NULL);
    return text ? text : strdup("(no log)");
}

/* Waits until the daemon published line's CRL (DER); returns its path. */
static char *wait_published(const char *line, double timeout_s)
{
    char *path = NULL;
    struct stat st;

    ck_assert_int_ge(asprintf(&path, "%s/pki/crl/line-%s.crl", dir, line), 0);
    for (int ms = 0; stat(path, &st) != 0; ms += 100) {
        int status;
        if (ms >= timeout_s * 1000) {
            char *lg = daemon_log();
            ck_abort_msg("%s not published in %.0f s: %s", path, timeout_s, lg);
        }
        ck_assert_msg(waitpid(daemon_pid, &status, WNOHANG) == 0, "linecertd exited");
        sleep_ms(100);
    }
    return path;
}

/* Polls the published CRL until it lists serial with a number above n0; returns 1 if so. */
static int wait_listed(const char *path, const char *serial, unsigned long long n0,
                       double timeout_s)
{
    for (int ms = 0; ms <= timeout_s * 1000; ms += 250) {
        char *text = crl_text(path, 1), *e = crl_entry(text, serial);
        int ok = e != NULL && crl_number(path, 1) > n0;
        free(e);
        free(text);
        if (ok)
            return 1;
        sleep_ms(250);
    }
    return 0;
}

/* SIGTERM; asserts the daemon exits cleanly (0: no sanitizer report) within 15 s. */
static void daemon_stop(void)
{
    int status = 0, i;

    ck_assert_int_eq(kill(daemon_pid, SIGTERM), 0);
    for (i = 0; i < 150 && waitpid(daemon_pid, &status, WNOHANG) == 0; i++)
        sleep_ms(100);
    ck_assert_msg(i < 150, "linecertd did not stop within 15 s of SIGTERM");
    daemon_pid = 0;
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "linecertd ended with 0x%x",
                  (unsigned)status);
}

START_TEST(daemon_publishes_crl_after_revocation)
{
    char *serial = issue_cert("d", "daemon-device", "1"), *p1, *p2, *text, *e;
    unsigned long long n0;

    daemon_start();
    p1 = wait_published("1", 20);
    p2 = wait_published("2", 20); /* every configured line, though none has a PLC */
    n0 = crl_number(p1, 1);
    text = crl_text(p1, 1);
    ck_assert_ptr_null(crl_entry(text, serial));
    free(text);
    revoke_ok(serial, "keyCompromise");
    if (!wait_listed(p1, serial, n0, 30)) {
        char *lg = daemon_log();
        ck_abort_msg("revoked %s not in the published CRL after 30 s: %s", serial, lg);
    }
    /* the published CRL is the line CA's, DER, with the reason */
    text = crl_text(p1, 1);
    e = crl_entry(text, serial);
    ck_assert_ptr_nonnull(e);
    ck_assert_msg(strstr(e, "Key Compromise") != NULL, "%s", e);
    free(e);
    free(text);
    ck_assert_int_eq(
        tu_runf(NULL, NULL,
                "openssl crl -inform DER -in %s -noout -verify -CAfile %s/pki/line-1.pem", p1, dir),
        0);
    daemon_stop();
    free(p1);
    free(p2);
    free(serial);
}
END_TEST

/*
 * A CRL made by hand (`linecert crl`) right after a revocation must not stop
 * the daemon from re-publishing: the file in crl_dir is what relying parties
 * fetch.  The revocation and the hand-made CRL happen right after the
 * daemon's first publication, well inside its 10 s check interval.
 */
START_TEST(daemon_republishes_after_manual_crl)
{
    char *serial = issue_cert("d", "manual-device", "1"), *p1, *manual;
    unsigned long long n0;

    daemon_start();
    p1 = wait_published("1", 20);
    n0 = crl_number(p1, 1);
    revoke_ok(serial, "keyCompromise");
    manual = make_crl("1", "manual.crl", NULL);
    if (!wait_listed(p1, serial, n0, 20)) {
        char *lg = daemon_log();
        ck_abort_msg("revoked %s not in the published CRL #%llu 20 s after a manual CRL #%llu: %s",
                     serial, crl_number(p1, 1), crl_number(manual, 0), lg);
    }
    daemon_stop();
    free(manual);
    free(p1);
    free(serial);
}
END_TEST

/*
 * Two processes making a CRL of one line at the same moment (the daemon's
 * publication and a `linecert crl`) must take different numbers.  SoftHSM2
 * may refuse a second process starting at the same instant (exit 4, a clean
 * failure); every CRL that was made must have a number of its own.
 */
START_TEST(concurrent_crls_never_share_a_number)
{
    int made = 0;

    for (int round = 0; round < 4; round++) {
        int rc = tu_runf(NULL, NULL,
                         "(%s crl --config %s --line 1 --out %s/p%d-a.crl >/dev/null 2>&1 &"
                         " %s crl --config %s --line 1 --out %s/p%d-b.crl >/dev/null 2>&1 & wait)",
                         linecert, ini, dir, round, linecert, ini, dir, round);
        ck_assert_int_eq(rc, 0);
    }
    made = (int)sql_int("SELECT count(*) FROM audit WHERE kind = 'crl' AND line = '1'");
    ck_assert_int_ge(made, 4);
    ck_assert_int_eq(sql_int("SELECT count(DISTINCT serial) FROM audit WHERE kind = 'crl' AND "
                             "line = '1'"),
                     made);
}
END_TEST

static Suite *lifecycle_suite(void)
{
    Suite *s = suite_create("lifecycle");
    TCase *crl = tcase_create("crl");
    TCase *rev = tcase_create("revoke");
    TCase *re = tcase_create("reissue");
    TCase *dps = tcase_create("dps verification certificate");
    TCase *ex = tcase_create("export");
    TCase *dmn = tcase_create("daemon publication");

    tcase_add_checked_fixture(crl, setup, teardown);
    tcase_set_timeout(crl, 120);
    tcase_add_test(crl, crl_lists_each_revocation_with_reason_and_date);
    tcase_add_test(crl, crl_lists_only_its_own_line);
    tcase_add_test(crl, crl_header_v2_issuer_number_aki);
    tcase_add_test(crl, crl_next_update_hours_option);
    tcase_add_test(crl, crl_next_update_default_then_config);
    tcase_add_test(crl, crl_signature_verifies_against_line_ca);
    tcase_add_test(crl, crl_check_rejects_revoked_leaf);
    tcase_add_test(crl, crl_number_monotonic_per_line);
    tcase_add_test(crl, crl_without_token_exit_4);
    tcase_add_test(crl, concurrent_crls_never_share_a_number);
    suite_add_tcase(s, crl);

    tcase_add_checked_fixture(rev, setup, teardown);
    tcase_set_timeout(rev, 120);
    tcase_add_test(rev, revoke_twice_is_reported_not_duplicated);
    tcase_add_test(rev, revoke_audit_row_records_reason_and_actor);
    tcase_add_test(rev, revoke_by_registration_id_ignores_case);
    tcase_add_test(rev, revoke_by_registration_id_twice_is_reported);
    tcase_add_test(rev, revoke_lowercase_serial);
    tcase_add_test(rev, revoke_unknown_serial_exit_2_nothing_written);
    tcase_add_test(rev, revoke_bad_reason_or_options_exit_2);
    tcase_add_test(rev, revoke_refuses_reason_outside_the_documented_list);
    tcase_add_test(rev, revoke_needs_no_hsm);
    tcase_add_test(rev, audit_log_verifies_after_lifecycle);
    suite_add_tcase(s, rev);

    tcase_add_checked_fixture(re, setup, teardown);
    tcase_set_timeout(re, 120);
    tcase_add_test(re, reissue_with_revoke_superseded_revokes_old);
    tcase_add_loop_test(re, reissue_without_revoke_superseded_only_supersedes, 0, 2);
    suite_add_tcase(s, re);

    tcase_add_checked_fixture(dps, setup, teardown);
    tcase_set_timeout(dps, 120);
    tcase_add_test(dps, verification_cert_cn_is_code_issuer_is_line_ca);
    tcase_add_test(dps, verification_cert_verifies_against_line_ca);
    tcase_add_test(dps, verification_cert_no_eku_short_validity);
    tcase_add_test(dps, verification_cert_is_audited);
    tcase_add_test(dps, verification_cert_bad_code_exit_2);
    tcase_add_test(dps, verification_cert_long_code_is_not_hsm_failure);
    suite_add_tcase(s, dps);

    tcase_add_checked_fixture(ex, setup, teardown);
    tcase_set_timeout(ex, 120);
    tcase_add_test(ex, export_thumbprints_match_openssl);
    tcase_add_test(ex, export_validity_matches_certificate);
    tcase_add_test(ex, export_status_after_revoke_and_reissue);
    tcase_add_test(ex, export_jsonl_one_object_per_line);
    tcase_add_test(ex, export_chain_has_line_factory_root);
    suite_add_tcase(s, ex);

    tcase_add_checked_fixture(dmn, setup, teardown);
    tcase_set_timeout(dmn, 120);
    tcase_add_test(dmn, daemon_publishes_crl_after_revocation);
    tcase_add_test(dmn, daemon_republishes_after_manual_crl);
    suite_add_tcase(s, dmn);
    return s;
}

int main(void)
{
    SRunner *sr;
    char *cli = tu_build_path("linecert"), *cmd = NULL, *err = NULL;
    int failed, rc;

    template_dir = tu_mkdtemp("lifecycle-pki");
    if (template_dir == NULL ||
        asprintf(&cmd, "%s pki init --dir %s/pki --lines 2", cli, template_dir) < 0)
        return EXIT_FAILURE;
    rc = tu_run(cmd, NULL, 0, NULL, &err);
    if (rc != 0) {
        fprintf(stderr, "pki init failed (%d): %s\n", rc, err ? err : "");
        tu_rmtree(template_dir);
        return EXIT_FAILURE;
    }
    free(cmd);
    free(err);
    free(cli);
    sr = srunner_create(lifecycle_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    tu_rmtree(template_dir);
    free(template_dir);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
