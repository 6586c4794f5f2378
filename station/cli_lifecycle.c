/*
 * cli_lifecycle.c — `linecert revoke`, `crl`, `dps-verification-cert` and
 * `export`: taking devices out of trust and handing integrators what the
 * provisioning service needs (docs/cli.md, docs/dps.md).
 */
#include "audit.h"
#include "cli.h"
#include "control.h"
#include "issuer.h"
#include "lcerr.h"
#include "lifecycle.h"
#include "revoke.h"

#include <getopt.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Writes DER as PEM with the given label into a malloc'd string. */
static char *to_pem(const char *label, const unsigned char *der, size_t len)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data, *out = NULL;
    long n;

    if (b != NULL && PEM_write_bio(b, label, "", der, (long)len) > 0) {
        n = BIO_get_mem_data(b, &data);
        out = malloc((size_t)n + 1);
        if (out != NULL) {
            memcpy(out, data, (size_t)n);
            out[n] = '\0';
        }
    }
    BIO_free(b);
    return out;
}

static void iso_time(int64_t ms, char *buf, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/*
 * `linecert revoke --via-daemon`: the running daemon revokes through its own
 * writer, after checking on its control socket that the caller is in the
 * security group, and records the caller's uid as the actor.  For staff who
 * may not write the store themselves (docs/control.md).
 */
static int revoke_via_daemon(const lc_config_t *cfg, const char *serial, const char *regid,
                             const char *reason)
{
    json_object *reply = NULL, *v;
    char arg[256], err[512];
    int ret;

    snprintf(arg, sizeof arg, "%s%s %s", regid ? "regid:" : "", regid ? regid : serial, reason);
    if (control_request(cfg->control_socket, "revoke", arg, 10000, &reply, err, sizeof err) !=
        LC_OK) {
        fprintf(stderr, "linecert: revoke: %s\n", err);
        return EXIT_DAEMON;
    }
    if (!json_object_object_get_ex(reply, "ok", &v) || !json_object_get_boolean(v)) {
        fprintf(stderr, "linecert: revoke: %s\n",
                json_object_object_get_ex(reply, "error", &v) ? json_object_get_string(v)
                                                              : "the daemon refused");
        ret = EXIT_USAGE;
    } else {
        const char *sn =
            json_object_object_get_ex(reply, "serial", &v) ? json_object_get_string(v) : "?";
        const char *line =
            json_object_object_get_ex(reply, "line", &v) ? json_object_get_string(v) : "?";
        int already = json_object_object_get_ex(reply, "already", &v) && json_object_get_boolean(v);
        printf("%s: %s (line %s) by the daemon\n", already ? "already revoked" : "revoked", sn,
               line);
        ret = 0;
    }
    json_object_put(reply);
    return ret;
}

int cmd_revoke(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"serial", required_argument, NULL, 's'},
                                         {"registration-id", required_argument, NULL, 'r'},
                                         {"reason", required_argument, NULL, 'R'},
                                         {"actor", required_argument, NULL, 'a'},
                                         {"via-daemon", no_argument, NULL, 'd'},
                                         {NULL, 0, NULL, 0}};
    const char *config = NULL, *serial = NULL, *regid = NULL, *reason = NULL, *as = NULL;
    lc_config_t *cfg = NULL;
    audit_t *a = NULL;
    revoke_result_t res;
    char err[512], actor[200], user[128], when[32];
    int c, ret, via_daemon = 0;

    optind = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 's':
            serial = optarg;
            break;
        case 'r':
            regid = optarg;
            break;
        case 'R':
            reason = optarg;
            break;
        case 'a':
            as = optarg;
            break;
        case 'd':
            via_daemon = 1;
            break;
        default:
            return EXIT_USAGE;
        }
    }
    if (optind != argc)
        return usage_error("revoke: unexpected argument %s", argv[optind]);
    if ((serial == NULL) == (regid == NULL))
        return usage_error("%s", "revoke: give exactly one of --serial HEX, --registration-id ID");
    if (reason == NULL)
        return usage_error("%s", "revoke: --reason is required (unspecified, keyCompromise, "
                                 "cACompromise, affiliationChanged, superseded, "
                                 "cessationOfOperation, certificateHold, privilegeWithdrawn)");
    if (via_daemon && as != NULL)
        return usage_error("%s", "revoke: --actor cannot be used with --via-daemon (the daemon "
                                 "records who you are from the socket)");
    if ((ret = load_config(config, &cfg)) != 0)
        return ret;
    if (via_daemon) {
        ret = revoke_via_daemon(cfg, serial, regid, reason);
        goto out;
    }
    actor_name(user, sizeof user);
    if (as != NULL)
        snprintf(actor, sizeof actor, "%.80s (Unix user %.100s)", as, user);
    else
        snprintf(actor, sizeof actor, "%s", user);
    if (audit_open(cfg->audit_db, AUDIT_READWRITE, &a, err, sizeof err) != LC_OK) {
        fprintf(stderr, "linecert: %s\n", err);
        ret = EXIT_AUDIT;
        goto out;
    }
    ret = revoke_certificate(a, serial, regid, reason, actor, &res, err, sizeof err);
    if (ret != LC_OK) {
        fprintf(stderr, "linecert: revoke: %s\n", err);
        ret = ret == LC_ERR_AUDIT ? EXIT_AUDIT : EXIT_USAGE;
        goto out;
    }
    if (res.already) {
        iso_time(res.earlier_ms, when, sizeof when);
        printf("already revoked: %s (%s, line %s) since %s, reason %s; nothing changed\n",
               res.serial, res.registration_id, res.line, when, res.earlier_reason);
    } else {
        printf("revoked: %s (%s, line %s), reason %s, audit row %lld\n", res.serial,
               res.registration_id, res.line, reason, (long long)res.seq);
    }
    ret = 0;
out:
    audit_free(a);
    config_free(cfg);
    return ret;
}

/* Options shared by crl and dps-verification-cert: --config, --line, --out. */
struct line_out {
    const char *config, *line, *out, *code;
    int hours;
};

static int parse_line_out(int argc, char **argv, struct line_out *o, int want_code)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"line", required_argument, NULL, 'l'},
                                         {"out", required_argument, NULL, 'o'},
                                         {"code", required_argument, NULL, 'C'},
                                         {"next-update-hours", required_argument, NULL, 'H'},
                                         {NULL, 0, NULL, 0}};
    int c;

    optind = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'c':
            o->config = optarg;
            break;
        case 'l':
            o->line = optarg;
            break;
        case 'o':
            o->out = optarg;
            break;
        case 'C':
            if (!want_code)
                return usage_error("%s", "--code belongs to dps-verification-cert");
            o->code = optarg;
            break;
        case 'H':
            if (want_code)
                return usage_error("%s", "--next-update-hours belongs to crl");
            o->hours = (int)strtol(optarg, &end, 10);
            if (*end != '\0' || o->hours < 1 || o->hours > 24 * 366)
                return usage_error("--next-update-hours %s: expected 1..8784", optarg);
            break;
        default:
            return EXIT_USAGE;
        }
    }
    if (optind != argc)
        return usage_error("unexpected argument %s", argv[optind]);
    if (o->line == NULL || o->out == NULL || (want_code && o->code == NULL))
        return usage_error("%s", want_code ? "--line ID, --code CODE and --out FILE are required"
                                           : "--line ID and --out FILE are required");
    return 0;
}

int cmd_crl(int argc, char **argv)
{
    struct line_out o = {NULL, NULL, NULL, NULL, 0};
    lc_config_t *cfg = NULL;
    issuer_t *is = NULL;
    unsigned char *der = NULL;
    size_t len = 0;
    uint64_t number = 0;
    char err[512], actor[128], *pem = NULL;
    int ret;

    if ((ret = parse_line_out(argc, argv, &o, 0)) != 0)
        return ret;
    if ((ret = load_config(o.config, &cfg)) != 0)
        return ret;
    if (o.hours == 0)
        o.hours = cfg->crl_next_update_hours;
    actor_name(actor, sizeof actor);
    ret = issuer_open(cfg, o.line, actor, 0, &is, err, sizeof err);
    if (ret == LC_OK)
        ret = issuer_crl(is, o.line, o.hours, &der, &len, &number, err, sizeof err);
    if (ret != LC_OK) {
        fprintf(stderr, "linecert: crl: %s\n", err);
        ret = exit_code(ret);
        goto out;
    }
    pem = to_pem("X509 CRL", der, len);
    if (pem == NULL || write_out(o.out, pem, strlen(pem)) != 0) {
        fprintf(stderr, "linecert: crl: cannot write %s (CRL #%llu is audited)\n", o.out,
                (unsigned long long)number);
        ret = EXIT_USAGE;
        goto out;
    }
    printf("CRL #%llu for line %s written to %s, next update in %d h\n", (unsigned long long)number,
           o.line, o.out, o.hours);
    ret = 0;
out:
    free(pem);
    free(der);
    issuer_free(is);
    config_free(cfg);
    return ret;
}

int cmd_verification_cert(int argc, char **argv)
{
    struct line_out o = {NULL, NULL, NULL, NULL, 0};
    lc_config_t *cfg = NULL;
    issuer_t *is = NULL;
    unsigned char *der = NULL;
    size_t len = 0;
    char err[512], actor[128], serial[40], *pem = NULL;
    int ret;

    if ((ret = parse_line_out(argc, argv, &o, 1)) != 0)
        return ret;
    if ((ret = load_config(o.config, &cfg)) != 0)
        return ret;
    actor_name(actor, sizeof actor);
    ret = issuer_open(cfg, o.line, actor, 0, &is, err, sizeof err);
    if (ret == LC_OK)
        ret = issuer_verification_cert(is, o.line, o.code, &der, &len, serial, err, sizeof err);
    if (ret != LC_OK) {
        fprintf(stderr, "linecert: dps-verification-cert: %s\n", err);
        ret = exit_code(ret);
        goto out;
    }
    pem = to_pem("CERTIFICATE", der, len);
    if (pem == NULL || write_out(o.out, pem, strlen(pem)) != 0) {
        fprintf(stderr, "linecert: cannot write %s\n", o.out);
        ret = EXIT_USAGE;
        goto out;
    }
    printf("verification certificate %s (CN=%s, signed by line %s CA) written to %s\n", serial,
           o.code, o.line, o.out);
    ret = 0;
out:
    free(pem);
    free(der);
    issuer_free(is);
    config_free(cfg);
    return ret;
}

struct export_ctx {
    int jsonl;
    int failed;
};

static void hex_digest(const EVP_MD *md, const unsigned char *der, size_t len, char *out)
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int n = 0;

    EVP_Digest(der, len, d, &n, md, NULL);
    lc_hex(d, n, 1, out);
}

static int export_one(void *user, const lifecycle_cert_t *c)
{
    struct export_ctx *x = user;
    char sha256[65], sha1[41], nb[32], na[32];

    hex_digest(EVP_sha256(), c->der, c->der_len, sha256);
    hex_digest(EVP_sha1(), c->der, c->der_len, sha1);
    iso_time(c->not_before * 1000, nb, sizeof nb);
    iso_time(c->not_after * 1000, na, sizeof na);
    /* Registration IDs and serials are [A-Za-z0-9-._:] and hex: no quoting needed. */
    if (x->jsonl)
        printf("{\"registration_id\":\"%s\",\"sha256\":\"%s\",\"sha1\":\"%s\",\"serial\":\"%s\","
               "\"not_before\":\"%s\",\"not_after\":\"%s\",\"status\":\"%s\"}\n",
               c->registration_id, sha256, sha1, c->serial, nb, na, c->status);
    else
        printf("%s,%s,%s,%s,%s,%s,%s\r\n", c->registration_id, sha256, sha1, c->serial, nb, na,
               c->status);
    return ferror(stdout) ? (x->failed = 1) : 0;
}

int cmd_export(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"line", required_argument, NULL, 'l'},
                                         {"format", required_argument, NULL, 'f'},
                                         {NULL, 0, NULL, 0}};
    const char *config = NULL, *line = NULL, *format = "csv", *what;
    lc_config_t *cfg = NULL;
    audit_t *a = NULL;
    struct export_ctx x = {0, 0};
    char err[512];
    int c, ret;

    if (argc < 2 || (strcmp(argv[1], "enrollments") != 0 && strcmp(argv[1], "chain") != 0))
        return usage_error("%s", "export: subcommands are `enrollments` and `chain`");
    what = argv[1];
    argc--;
    argv++;
    optind = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'l':
            line = optarg;
            break;
        case 'f':
            format = optarg;
            break;
        default:
            return EXIT_USAGE;
        }
    }
    if (optind != argc || line == NULL)
        return usage_error("%s", "export: --config FILE --line ID are required");
    if (strcmp(format, "csv") != 0 && strcmp(format, "jsonl") != 0)
        return usage_error("--format %s: expected csv or jsonl", format);
    if ((ret = load_config(config, &cfg)) != 0)
        return ret;
    if (config_line(cfg, line) == NULL) {
        fprintf(stderr, "linecert: %s: no [line.%s] section\n", cfg->path, line);
        ret = EXIT_USAGE;
        goto out;
    }
    if (strcmp(what, "chain") == 0) {
        /* What to upload for the line's enrollment group: line CA, factory CA, root. */
        FILE *f = fopen(config_line(cfg, line)->chain, "re");
        char buf[8192];
        size_t n;
        if (f == NULL) {
            fprintf(stderr, "linecert: %s: cannot read\n", config_line(cfg, line)->chain);
            ret = EXIT_USAGE;
            goto out;
        }
        while ((n = fread(buf, 1, sizeof buf, f)) > 0)
            fwrite(buf, 1, n, stdout);
        fclose(f);
        ret = fflush(stdout) == 0 ? 0 : EXIT_USAGE;
        goto out;
    }
    if (audit_open(cfg->audit_db, AUDIT_READONLY, &a, err, sizeof err) != LC_OK) {
        fprintf(stderr, "linecert: %s\n", err);
        ret = EXIT_AUDIT;
        goto out;
    }
    x.jsonl = strcmp(format, "jsonl") == 0;
    if (!x.jsonl)
        printf("registration_id,sha256_thumbprint,sha1_thumbprint,serial,not_before,not_after,"
               "status\r\n");
    ret = lifecycle_foreach_cert(a, line, export_one, &x, err, sizeof err);
    if (ret != LC_OK || fflush(stdout) != 0) {
        fprintf(stderr, "linecert: export: %s\n", x.failed ? "write error" : err);
        ret = x.failed ? EXIT_USAGE : EXIT_AUDIT;
        goto out;
    }
    ret = 0;
out:
    audit_free(a);
    config_free(cfg);
    return ret;
}
