/*
 * cli.c — `linecert`, the command line for security staff and plant IT.
 *
 * Subcommands: pki init, issue, audit verify, audit export (docs/cli.md);
 * status, pause, resume talk to linecertd (docs/control.md).
 * Exit codes are a contract for scripts: 0 success, 1 audit log does not
 * verify, 2 usage or configuration error, 3 refused by policy, 4 signer/HSM
 * failure, 5 audit store failure, 6 linecertd not reachable.
 */
#include "audit.h"
#include "checkpoint.h"
#include "cli.h"
#include "config.h"
#include "dps.h"
#include "control.h"
#include "issuer.h"
#include "lcerr.h"
#include "pki.h"
#include "policy.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char USAGE[] =
    "usage: linecert <command> [options]\n"
    "\n"
    "  pki init --dir DIR [--lines N] [--key-type ec-p256|ec-p384|rsa-2048|rsa-3072] [--force]\n"
    "  issue --config FILE --line ID [--csr FILE] [--out FILE] [--with-root]\n"
    "        [--reissue --reason TEXT]\n"
    "  audit verify --config FILE\n"
    "  audit export --config FILE --format csv|jsonl [--line ID] [--since TIME]\n"
    "  revoke --config FILE (--serial HEX | --registration-id ID) --reason REASON\n"
    "         [--actor NAME | --via-daemon]\n"
    "  crl --config FILE --line ID --out FILE [--next-update-hours H]\n"
    "  dps-verification-cert --config FILE --line ID --code CODE --out FILE\n"
    "  dps-check --enrollments FILE --chain CHAIN.pem\n"
    "  export enrollments --config FILE --line ID [--format csv|jsonl]\n"
    "  export chain --config FILE --line ID\n"
    "  bench --config FILE --line ID [--count N] [--threads T] [--offered-rate R]\n"
    "  status --config FILE [--json]\n"
    "  pause --config FILE --line ID\n"
    "  resume --config FILE --line ID\n"
    "\n"
    "Exit codes: 0 ok, 1 audit log does not verify (dps-check: not provisioned),\n"
    "2 usage/configuration error, "
    "3 refused by policy, 4 signer/HSM failure, 5 audit store failure,\n"
    "6 linecertd not reachable (status, pause, resume).\n"
    "See docs/cli.md.\n";

int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "linecert: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(run `linecert --help` for usage)\n");
    return EXIT_USAGE;
}

/* Maps a project error to the CLI's exit code. */
int exit_code(int err)
{
    switch (err) {
    case LC_OK:
        return EXIT_ISSUED;
    case LC_ERR_REFUSED:
        return EXIT_REFUSED;
    case LC_ERR_SIGNER:
    case LC_ERR_HSM:
    case LC_ERR_CRYPTO:
        return EXIT_SIGNER;
    case LC_ERR_AUDIT:
        return EXIT_AUDIT;
    case LC_ERR_TAMPERED:
        return EXIT_TAMPERED;
    default:
        return EXIT_USAGE;
    }
}

/* Who is acting: the Unix user, and the invoking user under sudo. */
void actor_name(char *buf, size_t len)
{
    struct passwd *pw = getpwuid(getuid());
    const char *sudo = getenv("SUDO_USER");

    if (pw != NULL)
        snprintf(buf, len, "%s", pw->pw_name);
    else
        snprintf(buf, len, "uid:%u", (unsigned)getuid());
    if (getuid() == 0 && sudo != NULL && *sudo != '\0' && strlen(buf) + strlen(sudo) + 10 < len)
        snprintf(buf + strlen(buf), len - strlen(buf), " (sudo: %s)", sudo);
}

/* Reads all of fd, at most cap+1 bytes (so the caller can see "too large"). */
static unsigned char *read_all(int fd, size_t cap, size_t *len)
{
    unsigned char *buf = malloc(cap + 1);
    size_t used = 0;
    ssize_t n;

    if (buf == NULL)
        return NULL;
    while (used < cap + 1 && (n = read(fd, buf + used, cap + 1 - used)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            free(buf);
            return NULL;
        }
        used += (size_t)n;
    }
    *len = used;
    return buf;
}

/*
 * Writes data to path.  A regular file (or a new one) is written atomically
 * (temporary file, fsync, rename), so a reader never sees half a chain; a
 * device, FIFO or socket (/dev/stdout, a pipe to the jig) is written in
 * place: renaming over it would replace the special file itself.
 */
int write_out(const char *path, const char *data, size_t len)
{
    char tmp[PATH_MAX];
    struct stat st;
    int fd, ok;

    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
            return -1;
        ok = write(fd, data, len) == (ssize_t)len;
        return close(fd) == 0 && ok ? 0 : -1;
    }
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp)
        return -1;
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    ok = write(fd, data, len) == (ssize_t)len && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

int load_config(const char *path, lc_config_t **cfg)
{
    char err[512];

    if (path == NULL)
        return usage_error("%s", "--config FILE is required");
    if (config_load(path, cfg, err, sizeof err) != LC_OK) {
        fprintf(stderr, "linecert: %s\n", err);
        return EXIT_USAGE;
    }
    return 0;
}

static int cmd_pki(int argc, char **argv)
{
    static const struct option opts[] = {{"dir", required_argument, NULL, 'd'},
                                         {"lines", required_argument, NULL, 'n'},
                                         {"key-type", required_argument, NULL, 'k'},
                                         {"force", no_argument, NULL, 'f'},
                                         {NULL, 0, NULL, 0}};
    pki_opts_t o = {NULL, 2, "ec-p256", 0, NULL};
    char err[512], signer[PATH_MAX];
    int c, ret;

    if (argc < 2 || strcmp(argv[1], "init") != 0)
        return usage_error("%s", "pki: the only subcommand is `pki init`");
    argc--;
    argv++;
    optind = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'd':
            o.dir = optarg;
            break;
        case 'n':
            o.lines = (int)strtol(optarg, &end, 10);
            if (*end != '\0' || o.lines < 1 || o.lines > 64)
                return usage_error("--lines %s: expected 1..64", optarg);
            break;
        case 'k':
            o.key_type = optarg;
            break;
        case 'f':
            o.force = 1;
            break;
        default:
            return EXIT_USAGE;
        }
    }
    if (o.dir == NULL || optind != argc)
        return usage_error("%s", "pki init: --dir DIR is required (and nothing else)");
    o.signer = issuer_signer_path(NULL, signer, sizeof signer);
    ret = pki_init(&o, err, sizeof err);
    if (ret != LC_OK) {
        fprintf(stderr, "linecert: pki init: %s\n", err);
        return ret == LC_ERR_EXISTS || ret == LC_ERR_USAGE ? EXIT_USAGE : exit_code(ret);
    }
    printf("PKI created in %s: root.pem, factory.pem, %d line CA(s), station.ini\n", o.dir,
           o.lines);
    return 0;
}

static int cmd_issue(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"line", required_argument, NULL, 'l'},
        {"csr", required_argument, NULL, 'i'},    {"out", required_argument, NULL, 'o'},
        {"with-root", no_argument, NULL, 'r'},    {"reissue", no_argument, NULL, 'R'},
        {"reason", required_argument, NULL, 'm'}, {NULL, 0, NULL, 0}};
    const char *config = NULL, *line = NULL, *csr = NULL, *out = NULL, *reason = NULL;
    int with_root = 0, reissue = 0, c, fd = 0, ret;
    lc_config_t *cfg = NULL;
    issuer_t *is = NULL;
    issue_req_t req = {0};
    issue_res_t res = {0};
    char err[512], actor[128];
    char *pem = NULL;
    size_t pem_len = 0, in_len = 0;
    unsigned char *in = NULL;

    optind = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'l':
            line = optarg;
            break;
        case 'i':
            csr = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 'r':
            with_root = 1;
            break;
        case 'R':
            reissue = 1;
            break;
        case 'm':
            reason = optarg;
            break;
        default:
            return EXIT_USAGE;
        }
    }
    if (optind != argc)
        return usage_error("issue: unexpected argument %s", argv[optind]);
    if (line == NULL)
        return usage_error("%s", "issue: --line ID is required");
    if (reissue != (reason != NULL) || (reason != NULL && *reason == '\0'))
        return usage_error("%s", "issue: --reissue and --reason TEXT go together");
    if ((ret = load_config(config, &cfg)) != 0)
        return ret;
    if (config_line(cfg, line) == NULL) {
        fprintf(stderr, "linecert: %s: no [line.%s] section\n", config, line);
        ret = EXIT_USAGE;
        goto out;
    }
    if (csr != NULL && (fd = open(csr, O_RDONLY | O_CLOEXEC)) < 0) {
        fprintf(stderr, "linecert: %s: %s\n", csr, strerror(errno));
        ret = EXIT_USAGE;
        goto out;
    }
    in = read_all(fd, POLICY_MAX_INPUT, &in_len);
    if (fd > 0)
        close(fd);
    if (in == NULL) {
        fprintf(stderr, "linecert: cannot read the CSR: %s\n", strerror(errno));
        ret = EXIT_USAGE;
        goto out;
    }
    actor_name(actor, sizeof actor);
    ret = issuer_open(cfg, line, actor, 0, &is, err, sizeof err);
    if (ret != LC_OK) {
        fprintf(stderr, "linecert: %s\n", err);
        ret = exit_code(ret);
        goto out;
    }
    req.line = line;
    req.input = in;
    req.input_len = in_len;
    req.reissue = reissue;
    req.reissue_reason = reason;
    ret = issuer_issue(is, &req, &res);
    if (ret == LC_ERR_REFUSED) {
        fprintf(stderr, "linecert: refused: %s: %s\n", policy_reason_name(res.refusal.reason),
                res.refusal.detail[0] ? res.refusal.detail
                                      : policy_reason_text(res.refusal.reason));
        ret = EXIT_REFUSED;
        goto out;
    }
    if (ret != LC_OK) {
        fprintf(stderr, "linecert: %s: %s\n", lc_strerror(ret), res.message);
        ret = exit_code(ret);
        goto out;
    }
    if (issuer_chain_pem(is, line, res.der, res.der_len, with_root, &pem, &pem_len) != LC_OK) {
        fprintf(stderr,
                "linecert: out of memory building the chain (certificate %s is in the "
                "audit log; export it from there)\n",
                res.serial);
        ret = EXIT_SIGNER;
        goto out;
    }
    if (out != NULL ? write_out(out, pem, pem_len) != 0
                    : fwrite(pem, 1, pem_len, stdout) != pem_len || fflush(stdout) != 0) {
        fprintf(stderr, "linecert: cannot write %s: %s (certificate %s is in the audit log)\n",
                out ? out : "stdout", strerror(errno), res.serial);
        ret = EXIT_USAGE;
        goto out;
    }
    ret = EXIT_ISSUED;
out:
    free(pem);
    free(in);
    issue_res_clear(&res);
    issuer_free(is);
    config_free(cfg);
    return ret;
}

/* Parses 2026-11-23, 2026-11-23T10:00:00Z or a number of ms since the epoch. */
static int parse_since(const char *s, int64_t *ms)
{
    struct tm tm;
    const char *end;
    char *e;
    long long v;

    memset(&tm, 0, sizeof tm);
    end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (end != NULL && (*end == '\0' || strcmp(end, "Z") == 0)) {
        *ms = (int64_t)timegm(&tm) * 1000;
        return 0;
    }
    memset(&tm, 0, sizeof tm);
    end = strptime(s, "%Y-%m-%d", &tm);
    if (end != NULL && *end == '\0') {
        *ms = (int64_t)timegm(&tm) * 1000;
        return 0;
    }
    errno = 0;
    v = strtoll(s, &e, 10);
    if (errno == 0 && *e == '\0' && v >= 0) {
        *ms = v;
        return 0;
    }
    return -1;
}

/*
 * The line CA certificates checkpoints are checked against: the first
 * certificate of every configured line's chain file.
 */
static int add_line_cas(const lc_config_t *cfg, checkpoint_verifier_t *cv, char *err, size_t errlen)
{
    for (size_t i = 0; i < cfg->nlines; i++) {
        FILE *f = fopen(cfg->lines[i].chain, "re");
        X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
        unsigned char *der = NULL;
        int len = x ? i2d_X509(x, &der) : -1, ret;
        if (f != NULL)
            fclose(f);
        X509_free(x);
        if (len <= 0)
            return lc_seterr(LC_ERR_CONFIG, err, errlen,
                             "line %s: cannot read the CA certificate "
                             "from %s",
                             cfg->lines[i].id, cfg->lines[i].chain);
        ret = checkpoint_verifier_add_ca(cv, der, (size_t)len, err, errlen);
        OPENSSL_free(der);
        if (ret != LC_OK)
            return ret;
    }
    return LC_OK;
}

static void print_accounting(const checkpoint_summary_t *cs)
{
    printf("checkpoints: %lld verified; signatures accounted for: %lld (%lld withheld "
           "unreleased)\n",
           (long long)cs->checkpoints, (long long)cs->accounted, (long long)cs->withheld);
    printf("signer runs: %lld with checkpoints, %lld ended with a final checkpoint\n",
           (long long)cs->runs, (long long)cs->final_runs);
    if (cs->unconfirmed > 0)
        printf("warning: %lld signatures made before a signer's last checkpoint have no row: "
               "in flight when that signer stopped without a final checkpoint (a crash), "
               "never released; first: %s\n",
               (long long)cs->unconfirmed, cs->first_note);
    if (cs->uncovered > 0)
        printf("note: %lld signatures are logged after their signer's last checkpoint (no "
               "checkpoint vouches for that signer's later count)\n",
               (long long)cs->uncovered);
}

static int cmd_audit(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"format", required_argument, NULL, 'f'},
                                         {"line", required_argument, NULL, 'l'},
                                         {"since", required_argument, NULL, 's'},
                                         {NULL, 0, NULL, 0}};
    const char *config = NULL, *format = NULL, *line = NULL, *sub;
    int64_t since = 0;
    lc_config_t *cfg = NULL;
    audit_t *a = NULL;
    char err[512];
    int c, ret;

    if (argc < 2 || (strcmp(argv[1], "verify") != 0 && strcmp(argv[1], "export") != 0))
        return usage_error("%s", "audit: subcommands are `verify` and `export`");
    sub = argv[1];
    argc--;
    argv++;
    optind = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'f':
            format = optarg;
            break;
        case 'l':
            line = optarg;
            break;
        case 's':
            if (parse_since(optarg, &since) != 0)
                return usage_error("--since %s: expected 2026-11-23 or 2026-11-23T10:00:00Z",
                                   optarg);
            break;
        default:
            return EXIT_USAGE;
        }
    }
    if (optind != argc)
        return usage_error("audit: unexpected argument %s", argv[optind]);
    if (strcmp(sub, "export") == 0 &&
        (format == NULL || (strcmp(format, "csv") != 0 && strcmp(format, "jsonl") != 0)))
        return usage_error("%s", "audit export: --format csv|jsonl is required");
    if (strcmp(sub, "verify") == 0 && (format || line || since))
        return usage_error("%s", "audit verify takes only --config");
    if ((ret = load_config(config, &cfg)) != 0)
        return ret;
    if (audit_open(cfg->audit_db, AUDIT_READONLY, &a, err, sizeof err) != LC_OK) {
        fprintf(stderr, "linecert: %s\n", err);
        ret = EXIT_AUDIT;
        goto out;
    }
    if (strcmp(sub, "verify") == 0) {
        audit_verify_result_t vr;
        checkpoint_verifier_t *cv = NULL;
        checkpoint_summary_t cs;
        ret = checkpoint_verifier_new(&cv);
        if (ret == LC_OK)
            ret = add_line_cas(cfg, cv, err, sizeof err);
        if (ret == LC_OK)
            ret = audit_verify_rows(a, &vr, checkpoint_verify_row, cv, err, sizeof err);
        if (ret == LC_OK) {
            checkpoint_verifier_finish(cv, &cs);
            printf("ok: %lld rows, head %s\n", (long long)vr.rows, vr.head[0] ? vr.head : "-");
            print_accounting(&cs);
            ret = 0;
        } else if (ret == LC_ERR_TAMPERED) {
            printf("FAILED: %s\n", vr.problem);
            fprintf(stderr, "linecert: audit log does not verify from row %lld on\n",
                    (long long)vr.first_bad_seq);
            ret = EXIT_TAMPERED;
        } else {
            fprintf(stderr, "linecert: %s\n", err);
            ret = ret == LC_ERR_CONFIG ? EXIT_USAGE : EXIT_AUDIT;
        }
        checkpoint_verifier_free(cv);
    } else {
        ret = audit_export(a, stdout,
                           strcmp(format, "csv") == 0 ? AUDIT_EXPORT_CSV : AUDIT_EXPORT_JSONL, line,
                           since, err, sizeof err);
        if (ret != LC_OK || fflush(stdout) != 0) {
            fprintf(stderr, "linecert: %s\n", ret != LC_OK ? err : strerror(errno));
            ret = ret == LC_ERR_IO ? EXIT_USAGE : EXIT_AUDIT;
        } else {
            ret = 0;
        }
    }
out:
    audit_free(a);
    config_free(cfg);
    return ret;
}

/*
 * status, pause, resume: requests to linecertd over its control socket
 * (docs/control.md).  The daemon's JSON is read tolerantly — a missing or
 * mistyped field is shown as "-" or left out — so that the CLI keeps
 * working against a daemon one version older or newer.
 */
#define CONTROL_TIMEOUT_MS 5000

/* Nearest whole number, without pulling in libm for llround(). */
static long long round_ll(double v)
{
    return (long long)(v < 0 ? v - 0.5 : v + 0.5);
}

static const char *js_str(json_object *o, const char *key)
{
    json_object *v;

    if (o == NULL || !json_object_object_get_ex(o, key, &v) ||
        !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static int js_num(json_object *o, const char *key, double *out)
{
    json_object *v;

    if (o == NULL || !json_object_object_get_ex(o, key, &v) ||
        !(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
        return 0;
    *out = json_object_get_double(v);
    return 1;
}

static int js_bool(json_object *o, const char *key, int *out)
{
    json_object *v;

    if (o == NULL || !json_object_object_get_ex(o, key, &v) ||
        !json_object_is_type(v, json_type_boolean))
        return 0;
    *out = json_object_get_boolean(v);
    return 1;
}

static json_object *js_obj(json_object *o, const char *key)
{
    json_object *v;

    if (o == NULL || !json_object_object_get_ex(o, key, &v) ||
        !json_object_is_type(v, json_type_object))
        return NULL;
    return v;
}

/* 1234567 -> "1,234,567": counters are read by people at a glance. */
static const char *fmt_count(double v, char *buf, size_t len)
{
    char digits[32];
    long long n = round_ll(v);
    size_t nd, o = 0;

    snprintf(digits, sizeof digits, "%lld", n < 0 ? -n : n);
    nd = strlen(digits);
    if (n < 0 && o + 1 < len)
        buf[o++] = '-';
    for (size_t i = 0; i < nd && o + 1 < len; i++) {
        if (i > 0 && (nd - i) % 3 == 0 && o + 2 < len)
            buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = '\0';
    return buf;
}

/* Decimal units, as `df -H`: 1234567 -> "1.2 MB". */
static const char *fmt_bytes(double v, char *buf, size_t len)
{
    static const char *units[] = {"kB", "MB", "GB", "TB", "PB"};
    int u = -1;

    while (v >= 1000.0 && u < 4) {
        v /= 1000.0;
        u++;
    }
    if (u < 0)
        snprintf(buf, len, "%.0f B", v);
    else
        snprintf(buf, len, "%.1f %s", v, units[u]);
    return buf;
}

/* 7380 -> "2h03m": two units are enough to tell a restart from a long run. */
static const char *fmt_uptime(double sec, char *buf, size_t len)
{
    long long s = sec > 0 ? round_ll(sec) : 0;

    if (s < 60)
        snprintf(buf, len, "%llds", s);
    else if (s < 3600)
        snprintf(buf, len, "%lldm%02llds", s / 60, s % 60);
    else if (s < 86400)
        snprintf(buf, len, "%lldh%02lldm", s / 3600, s / 60 % 60);
    else
        snprintf(buf, len, "%lldd%02lldh", s / 86400, s / 3600 % 24);
    return buf;
}

/* 41 -> "41s", 200 -> "3m": how long ago, in its largest unit. */
static const char *fmt_age(double sec, char *buf, size_t len)
{
    long long s = sec > 0 ? round_ll(sec) : 0;

    if (s < 60)
        snprintf(buf, len, "%llds", s);
    else if (s < 3600)
        snprintf(buf, len, "%lldm", s / 60);
    else if (s < 86400)
        snprintf(buf, len, "%lldh", s / 3600);
    else
        snprintf(buf, len, "%lldd", s / 86400);
    return buf;
}

static void upcase(char *s)
{
    for (; *s; s++)
        *s = (char)toupper((unsigned char)*s);
}

/*
 * Sends one request to the daemon the configuration names.  Returns 0 with
 * *reply (the caller puts it), or an exit code after printing why.
 */
static int daemon_request(const lc_config_t *cfg, const char *cmd, const char *arg,
                          json_object **reply)
{
    char err[512];
    int ret =
        control_request(cfg->control_socket, cmd, arg, CONTROL_TIMEOUT_MS, reply, err, sizeof err);

    if (ret == LC_OK)
        return 0;
    fprintf(stderr, "linecert: %s\n", err);
    return ret == LC_ERR_USAGE ? EXIT_USAGE : EXIT_DAEMON;
}

/*
 * 0 if the daemon said ok.  Its refusal ("unknown line 7") is the user's to
 * fix: printed, exit 2.  A reply without "ok" did not come from linecertd.
 */
static int reply_check(json_object *reply)
{
    const char *e = js_str(reply, "error");
    int ok;

    if (!js_bool(reply, "ok", &ok)) {
        fprintf(stderr, "linecert: unexpected reply from linecertd (no \"ok\" field)\n");
        return EXIT_DAEMON;
    }
    if (ok)
        return 0;
    fprintf(stderr, "linecert: %s\n", e != NULL && *e ? e : "linecertd refused the request");
    return EXIT_USAGE;
}

enum {
    COL_LINE,
    COL_NAME,
    COL_STATE,
    COL_PLC,
    COL_ISSUED,
    COL_REFUSED,
    COL_FAULTS,
    COL_RATE_MIN,
    COL_RATE_HOUR,
    COL_LAST,
    STATUS_NCOLS
};

static const struct {
    const char *head;
    int min;   /* narrowest width, so that short tables still line up with the docs */
    int right; /* numbers are right-aligned */
    int gap;   /* spaces before the column */
} status_cols[STATUS_NCOLS] = {
    {"LINE", 5, 0, 0},     {"NAME", 12, 0, 1},   {"STATE", 8, 0, 1},  {"PLC", 19, 0, 1},
    {"ISSUED", 6, 1, 1},   {"REFUSED", 7, 1, 1}, {"FAULTS", 6, 1, 1}, {"/MIN(1m)", 8, 1, 2},
    {"/MIN(1h)", 8, 1, 1}, {"LAST", 0, 0, 2},
};

#define STATUS_CELL 160

/* The table cells of one line's status object. */
static void status_cells(json_object *l, char cells[STATUS_NCOLS][STATUS_CELL])
{
    json_object *plc = js_obj(l, "plc"), *last = js_obj(l, "last");
    const char *s, *addr = js_str(plc, "address");
    char age[32];
    double v;
    int up;

    snprintf(cells[COL_LINE], STATUS_CELL, "%s", (s = js_str(l, "id")) ? s : "?");
    snprintf(cells[COL_NAME], STATUS_CELL, "%s", (s = js_str(l, "name")) ? s : "");
    snprintf(cells[COL_STATE], STATUS_CELL, "%s", (s = js_str(l, "state")) ? s : "-");
    upcase(cells[COL_STATE]);
    if (addr == NULL || *addr == '\0')
        snprintf(cells[COL_PLC], STATUS_CELL, "-");
    else if (js_bool(plc, "connected", &up))
        snprintf(cells[COL_PLC], STATUS_CELL, "%s %s", addr, up ? "up" : "down");
    else
        snprintf(cells[COL_PLC], STATUS_CELL, "%s", addr);
    strcpy(cells[COL_ISSUED], "-");
    strcpy(cells[COL_REFUSED], "-");
    strcpy(cells[COL_FAULTS], "-");
    strcpy(cells[COL_RATE_MIN], "-");
    strcpy(cells[COL_RATE_HOUR], "-");
    if (js_num(l, "issued", &v))
        fmt_count(v, cells[COL_ISSUED], STATUS_CELL);
    if (js_num(l, "refused", &v))
        fmt_count(v, cells[COL_REFUSED], STATUS_CELL);
    if (js_num(l, "faults", &v))
        fmt_count(v, cells[COL_FAULTS], STATUS_CELL);
    if (js_num(l, "rate_last_min", &v))
        snprintf(cells[COL_RATE_MIN], STATUS_CELL, "%.0f", v);
    if (js_num(l, "rate_last_hour", &v))
        snprintf(cells[COL_RATE_HOUR], STATUS_CELL, "%.1f", v);
    s = js_str(last, "serial");
    if (s == NULL || *s == '\0') {
        strcpy(cells[COL_LAST], "-");
    } else {
        const char *result = js_str(last, "result"), *reason = js_str(last, "reason");
        int o = snprintf(cells[COL_LAST], STATUS_CELL, "%s %s", s, result ? result : "?");
        if (o > 0 && o < STATUS_CELL && reason != NULL && *reason && strcmp(reason, "none") != 0)
            o += snprintf(cells[COL_LAST] + o, STATUS_CELL - (size_t)o, " (%s)", reason);
        if (o > 0 && o < STATUS_CELL && js_num(last, "age_s", &v))
            snprintf(cells[COL_LAST] + o, STATUS_CELL - (size_t)o, " %s ago",
                     fmt_age(v, age, sizeof age));
    }
}

/*
 * What is wrong with a line, one "->" line each, under its row.  The
 * daemon's reason_text is the sentence for people ("PLC 127.0.0.1:1502 not
 * answering: ..."); PLC and jig errors are added only when it does not
 * already say them.  A pause needs no explanation: the state says it.
 */
static void status_details(json_object *l, int indent)
{
    json_object *plc = js_obj(l, "plc"), *jig = js_obj(l, "jig");
    const char *reason = js_str(l, "reason"), *text = js_str(l, "reason_text");
    const char *addr = js_str(plc, "address"), *perr = js_str(plc, "error");
    const char *jerr = js_str(jig, "error");
    int flag;

    if (text == NULL || *text == '\0')
        text = reason != NULL && strcmp(reason, "none") != 0 ? reason : "";
    if (*text && (reason == NULL || strcmp(reason, "paused") != 0))
        printf("%*s-> %s\n", indent, "", text);
    if (addr != NULL && *addr && js_bool(plc, "connected", &flag) && !flag &&
        strstr(text, addr) == NULL)
        printf("%*s-> PLC %s not answering%s%s\n", indent, "", addr, perr && *perr ? ": " : "",
               perr ? perr : "");
    if (js_bool(jig, "ok", &flag) && !flag &&
        (jerr == NULL || *jerr == '\0' || !strstr(text, jerr)))
        printf("%*s-> jig%s%s\n", indent, "", jerr && *jerr ? ": " : " not ready",
               jerr ? jerr : "");
}

/* The first line: the daemon, its signer and its audit store. */
static void status_header(json_object *st)
{
    json_object *sg = js_obj(st, "signer"), *au = js_obj(st, "audit");
    const char *s, *sep;
    char buf[64];
    double v;
    int flag;

    printf("linecertd");
    if (js_num(st, "uptime_s", &v))
        printf(" up %s", fmt_uptime(v, buf, sizeof buf));
    if ((s = js_str(st, "state")) != NULL && strcmp(s, "ok") != 0) {
        snprintf(buf, sizeof buf, "%s", s);
        upcase(buf);
        printf(" [%s]", buf);
    }
    if (sg != NULL) {
        printf("  signer: ");
        sep = "";
        if (js_bool(sg, "running", &flag)) {
            printf("%s", flag ? "running" : "NOT RUNNING");
            if (flag && js_num(sg, "pid", &v) && v > 0)
                printf(" (pid %.0f)", v);
            sep = ", ";
        }
        if (js_num(sg, "restarts", &v) && v > 0) {
            printf("%s%s restart%s", sep, fmt_count(v, buf, sizeof buf), v == 1 ? "" : "s");
            sep = ", ";
        }
        if (js_bool(sg, "hsm_ok", &flag)) {
            printf("%sHSM %s", sep, flag ? "ok" : "FAIL");
            sep = ", ";
        }
        if (js_num(sg, "signatures", &v))
            printf("%s%s signatures", sep, fmt_count(v, buf, sizeof buf));
    }
    if (au != NULL) {
        printf("  audit: ");
        sep = "";
        if (js_bool(au, "ok", &flag)) {
            printf("%s", flag ? "ok" : "FAIL");
            sep = ", ";
        }
        if (js_num(au, "size_bytes", &v)) {
            printf("%s%s", sep, fmt_bytes(v, buf, sizeof buf));
            sep = ", ";
        }
        if (js_num(au, "free_bytes", &v)) {
            printf("%s%s free", sep, fmt_bytes(v, buf, sizeof buf));
            sep = ", ";
        }
        if (js_num(au, "rows", &v) && v >= 0) /* -1: not known yet */
            printf("%s%s rows", sep, fmt_count(v, buf, sizeof buf));
    }
    printf("\n");
    if ((s = js_str(sg, "error")) != NULL && *s)
        printf("  -> signer: %s\n", s);
    if ((s = js_str(au, "error")) != NULL && *s)
        printf("  -> audit: %s\n", s);
}

/* The readable status: header, then one row per line, widths fitted to the data. */
static void status_print(json_object *st)
{
    char cells[STATUS_NCOLS][STATUS_CELL];
    int width[STATUS_NCOLS];
    json_object *lines;
    size_t n = 0;

    status_header(st);
    if (json_object_object_get_ex(st, "lines", &lines) &&
        json_object_is_type(lines, json_type_array))
        n = json_object_array_length(lines);
    if (n == 0) {
        printf("no lines driven by this daemon\n");
        return;
    }
    for (int c = 0; c < STATUS_NCOLS; c++)
        width[c] = (int)strlen(status_cols[c].head) > status_cols[c].min
                       ? (int)strlen(status_cols[c].head)
                       : status_cols[c].min;
    for (size_t i = 0; i < n; i++) {
        status_cells(json_object_array_get_idx(lines, i), cells);
        for (int c = 0; c < STATUS_NCOLS; c++)
            if ((int)strlen(cells[c]) > width[c])
                width[c] = (int)strlen(cells[c]);
    }
    for (size_t i = 0; i <= n; i++) {
        json_object *l = i > 0 ? json_object_array_get_idx(lines, i - 1) : NULL;
        if (l != NULL)
            status_cells(l, cells);
        for (int c = 0; c < STATUS_NCOLS; c++) {
            const char *text = l != NULL ? cells[c] : status_cols[c].head;
            if (c == STATUS_NCOLS - 1)
                printf("%*s%s", status_cols[c].gap, "", text);
            else
                printf("%*s%*s", status_cols[c].gap, "",
                       status_cols[c].right ? width[c] : -width[c], text);
        }
        printf("\n");
        if (l != NULL)
            status_details(l, width[COL_LINE] + status_cols[COL_NAME].gap);
    }
}

static int cmd_status(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"json", no_argument, NULL, 'j'},
                                         {NULL, 0, NULL, 0}};
    const char *config = NULL;
    json_object *reply = NULL;
    lc_config_t *cfg = NULL;
    int c, json = 0, ret;

    optind = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'j':
            json = 1;
            break;
        default:
            return EXIT_USAGE;
        }
    }
    if (optind != argc)
        return usage_error("status: unexpected argument %s", argv[optind]);
    if ((ret = load_config(config, &cfg)) != 0)
        return ret;
    if ((ret = daemon_request(cfg, "status", "", &reply)) != 0)
        goto out;
    if (json) {
        /* As the daemon sent it, for scripts; only the layout is made readable. */
        printf("%s\n", json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PRETTY |
                                                                 JSON_C_TO_STRING_SPACED |
                                                                 JSON_C_TO_STRING_NOSLASHESCAPE));
        ret = reply_check(reply);
    } else if ((ret = reply_check(reply)) == 0) {
        status_print(reply);
    }
    if (fflush(stdout) != 0) {
        fprintf(stderr, "linecert: cannot write to stdout: %s\n", strerror(errno));
        ret = EXIT_USAGE;
    }
out:
    json_object_put(reply);
    config_free(cfg);
    return ret;
}

/* `pause` and `resume` (argv[0]) of one line. */
static int cmd_line_control(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"line", required_argument, NULL, 'l'},
                                         {NULL, 0, NULL, 0}};
    const char *verb = argv[0], *config = NULL, *line = NULL, *msg;
    json_object *reply = NULL;
    lc_config_t *cfg = NULL;
    int c, ret;

    optind = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'l':
            line = optarg;
            break;
        default:
            return EXIT_USAGE;
        }
    }
    if (optind != argc)
        return usage_error("unexpected argument %s", argv[optind]);
    if (line == NULL)
        return usage_error("%s: --line ID is required", verb);
    if ((ret = load_config(config, &cfg)) != 0)
        return ret;
    /* Checked here too, so that a typo is named even when the daemon is down. */
    if (config_line(cfg, line) == NULL) {
        fprintf(stderr, "linecert: %s: no [line.%s] section\n", config, line);
        ret = EXIT_USAGE;
        goto out;
    }
    if ((ret = daemon_request(cfg, verb, line, &reply)) != 0)
        goto out;
    if ((ret = reply_check(reply)) != 0)
        goto out;
    msg = js_str(reply, "message");
    if (msg != NULL && *msg)
        printf("%s\n", msg);
    else
        printf("line %s %s\n", line, strcmp(verb, "pause") == 0 ? "paused" : "resumed");
    ret = 0;
out:
    json_object_put(reply);
    config_free(cfg);
    return ret;
}

/* Every subcommand: its name on the command line and the function that runs it. */
static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
} COMMANDS[] = {
    {"pki", cmd_pki},
    {"issue", cmd_issue},
    {"audit", cmd_audit},
    {"revoke", cmd_revoke},
    {"crl", cmd_crl},
    {"dps-verification-cert", cmd_verification_cert},
    {"dps-check", cmd_dps_check},
    {"export", cmd_export},
    {"bench", cmd_bench},
    {"status", cmd_status},
    {"pause", cmd_line_control},
    {"resume", cmd_line_control},
};

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(USAGE, stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(USAGE, stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("linecert %s\n", LINECERT_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        if (strcmp(argv[1], COMMANDS[i].name) == 0)
            return COMMANDS[i].run(argc - 1, argv + 1);
    return usage_error("unknown command \"%s\"", argv[1]);
}
