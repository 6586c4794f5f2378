/*
 * cli.c — `linecert`, the command line for security staff and plant IT.
 *
 * Subcommands: pki init, issue, audit verify, audit export (docs/cli.md).
 * Exit codes are a contract for scripts: 0 success, 1 audit log does not
 * verify, 2 usage or configuration error, 3 refused by policy, 4 signer/HSM
 * failure, 5 audit store failure.
 */
#include "audit.h"
#include "config.h"
#include "issuer.h"
#include "lcerr.h"
#include "pki.h"
#include "policy.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum {
    EXIT_ISSUED = 0,
    EXIT_TAMPERED = 1,
    EXIT_USAGE = 2,
    EXIT_REFUSED = 3,
    EXIT_SIGNER = 4,
    EXIT_AUDIT = 5,
};

static const char USAGE[] =
    "usage: linecert <command> [options]\n"
    "\n"
    "  pki init --dir DIR [--lines N] [--key-type ec-p256|ec-p384|rsa-2048|rsa-3072] [--force]\n"
    "  issue --config FILE --line ID [--csr FILE] [--out FILE] [--with-root]\n"
    "        [--reissue --reason TEXT]\n"
    "  audit verify --config FILE\n"
    "  audit export --config FILE --format csv|jsonl [--line ID] [--since TIME]\n"
    "\n"
    "Exit codes: 0 ok, 1 audit log does not verify, 2 usage/configuration error,\n"
    "3 refused by policy, 4 signer/HSM failure, 5 audit store failure.\n"
    "See docs/cli.md.\n";

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "linecert: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(run `linecert --help` for usage)\n");
    return EXIT_USAGE;
}

/* Maps a project error to the CLI's exit code. */
static int exit_code(int err)
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
static void actor_name(char *buf, size_t len)
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

/* Writes data to path atomically (temporary file, fsync, rename). */
static int write_atomic(const char *path, const char *data, size_t len)
{
    char tmp[PATH_MAX];
    int fd, ok;

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

static int load_config(const char *path, lc_config_t **cfg)
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
    ret = issuer_open(cfg, line, actor, &is, err, sizeof err);
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
    if (out != NULL ? write_atomic(out, pem, pem_len) != 0
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
        ret = audit_verify(a, &vr, err, sizeof err);
        if (ret == LC_OK) {
            printf("ok: %lld rows, head %s\n", (long long)vr.rows, vr.head[0] ? vr.head : "-");
            ret = 0;
        } else if (ret == LC_ERR_TAMPERED) {
            printf("FAILED: row %lld: %s\n", (long long)vr.first_bad_seq, vr.problem);
            fprintf(stderr, "linecert: audit log does not verify from row %lld on\n",
                    (long long)vr.first_bad_seq);
            ret = EXIT_TAMPERED;
        } else {
            fprintf(stderr, "linecert: %s\n", err);
            ret = EXIT_AUDIT;
        }
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
    if (strcmp(argv[1], "pki") == 0)
        return cmd_pki(argc - 1, argv + 1);
    if (strcmp(argv[1], "issue") == 0)
        return cmd_issue(argc - 1, argv + 1);
    if (strcmp(argv[1], "audit") == 0)
        return cmd_audit(argc - 1, argv + 1);
    return usage_error("unknown command \"%s\"", argv[1]);
}
