/*
 * fuzz_config.c — the station configuration parser (config_load, INI via
 * libinih, docs/config.md).
 *
 * Each input is a station.ini.  It is written to one file per process in a
 * scratch directory that also holds the files a configuration names and
 * config_load checks for: a PIN file (mode 0600), a chain file, a PKCS#11
 * module, a SoftHSM2 configuration, an executable jig program and a CRL
 * directory, and the PKCS#11 module allow file naming that module
 * (LINECERT_PKCS11_ALLOW_FILE).  Because the directory's name is random,
 * every "@DIR@" in the input is replaced with it first: seeds say
 * "pkcs11_module = @DIR@/module.so" and still name files that exist.
 *
 * Beyond "no crash, leak or undefined behaviour": a refused file yields
 * LC_ERR_CONFIG with a message that names the file, and an accepted one has
 * every required key, absolute paths, sane defaults and a registration-ID
 * template with exactly one %s.
 */
#include "config.h"
#include "fuzz_util.h"
#include "lcerr.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PLACEHOLDER "@DIR@"

static char g_ini[PATH_MAX + 32]; /* the configuration file every input is written to */
static char g_dir[PATH_MAX];      /* the scratch directory, canonical */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const char chain[] = "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n";
    static const char jig[] = "#!/bin/sh\nexit 1\n";
    char path[PATH_MAX + 64], allow[PATH_MAX + 64];
    int n;

    (void)argc;
    (void)argv;
    FZ_CHECK(realpath(fz_scratch("config"), g_dir) != NULL, "realpath of the scratch directory");
    snprintf(path, sizeof path, "%s/pin", g_dir);
    fz_write_file(path, "1234\n", 5, 0600);
    snprintf(path, sizeof path, "%s/pin-open", g_dir); /* refused: readable by others */
    fz_write_file(path, "1234\n", 5, 0644);
    snprintf(path, sizeof path, "%s/chain.pem", g_dir);
    fz_write_file(path, chain, sizeof chain - 1, 0644);
    snprintf(path, sizeof path, "%s/module.so", g_dir);
    fz_write_file(path, "", 0, 0644);
    n = snprintf(allow, sizeof allow, "# fuzz_config\n%s\n", path);
    snprintf(path, sizeof path, "%s/pkcs11-modules.allow", g_dir);
    fz_write_file(path, allow, (size_t)n, 0644);
    FZ_CHECK(setenv("LINECERT_PKCS11_ALLOW_FILE", path, 1) == 0, "setenv");
    snprintf(path, sizeof path, "%s/softhsm2.conf", g_dir);
    fz_write_file(path, "directories.tokendir = /nonexistent\n", 36, 0644);
    snprintf(path, sizeof path, "%s/jig", g_dir);
    fz_write_file(path, jig, sizeof jig - 1, 0755);
    snprintf(path, sizeof path, "%s/crl", g_dir);
    FZ_CHECK(mkdir(path, 0755) == 0, "mkdir crl");
    snprintf(g_ini, sizeof g_ini, "%s/station.ini", g_dir);
    return 0;
}

/* The input with every PLACEHOLDER replaced by the scratch directory; malloc'd. */
static char *expand(const uint8_t *data, size_t size, size_t *out_len)
{
    const size_t pl = sizeof PLACEHOLDER - 1, dl = strlen(g_dir);
    size_t n = 0, cap = size + 1;
    char *out;

    for (size_t i = 0; i + pl <= size; i++)
        if (memcmp(data + i, PLACEHOLDER, pl) == 0)
            cap += dl;
    out = malloc(cap);
    FZ_CHECK(out != NULL, "malloc");
    for (size_t i = 0; i < size;) {
        if (i + pl <= size && memcmp(data + i, PLACEHOLDER, pl) == 0) {
            memcpy(out + n, g_dir, dl);
            n += dl;
            i += pl;
        } else {
            out[n++] = (char)data[i++];
        }
    }
    out[n] = '\0';
    *out_len = n;
    return out;
}

static int count_substr(const char *s, const char *sub)
{
    int n = 0;

    for (const char *p = strstr(s, sub); p != NULL; p = strstr(p + 1, sub))
        n++;
    return n;
}

static void check_config(const lc_config_t *c)
{
    FZ_CHECK(c->path != NULL && strcmp(c->path, g_ini) == 0, "path is the file given");
    FZ_CHECK(c->dir != NULL && strcmp(c->dir, g_dir) == 0, "dir is the file's directory");
    FZ_CHECK(c->audit_db != NULL && c->audit_db[0] == '/', "audit_db absolute");
    FZ_CHECK(c->pkcs11_module != NULL && c->pkcs11_module[0] == '/', "pkcs11_module absolute");
    FZ_CHECK(c->pin_file != NULL && c->pin_file[0] == '/', "pin_file absolute");
    FZ_CHECK(c->control_socket != NULL && c->control_socket[0] == '/', "control_socket absolute");
    FZ_CHECK(c->shifts != NULL, "shifts has a default");
    FZ_CHECK(c->signer_threads >= 1 && c->signer_threads <= 64, "signer_threads range");
    FZ_CHECK(c->nlines >= 1 && c->nlines <= CONFIG_MAX_LINES, "line count");
    for (size_t i = 0; i < c->nlines; i++) {
        const lc_line_cfg_t *l = &c->lines[i];
        FZ_CHECK(l->id != NULL && l->id[0] != '\0' && strlen(l->id) <= 32, "line id");
        FZ_CHECK(config_line(c, l->id) == l, "config_line finds the line by its id");
        FZ_CHECK(l->name != NULL, "line name has a default");
        FZ_CHECK(l->ca_key != NULL, "ca_key required");
        FZ_CHECK(l->chain != NULL && l->chain[0] == '/', "chain absolute");
        FZ_CHECK(l->regid_template != NULL && count_substr(l->regid_template, "%s") == 1 &&
                     strchr(l->regid_template, '%') == strstr(l->regid_template, "%s") &&
                     count_substr(l->regid_template, "%") == 1,
                 "registration_id has exactly one %s and no other %");
        FZ_CHECK(l->validity_days >= 1 && l->validity_days <= 36500, "validity_days range");
        FZ_CHECK(l->poll_ms >= 5 && l->poll_ms <= 10000, "poll_ms range");
        FZ_CHECK(l->jig_timeout_ms >= 100 && l->jig_timeout_ms <= 600000, "jig_timeout_ms range");
        FZ_CHECK(l->plc_unit >= 0 && l->plc_unit <= 255, "plc_unit range");
        FZ_CHECK(l->plc_base >= 0 && l->plc_base <= 65535 - 40, "plc_base range");
        FZ_CHECK(l->plc_host == NULL || (l->plc_port >= 1 && l->plc_port <= 65535), "plc port");
        FZ_CHECK(l->jig == NULL || strncmp(l->jig, "exec:/", 6) == 0, "jig is exec:/...");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lc_config_t *cfg = NULL;
    char err[512];
    size_t len;
    char *text = expand(data, size, &len);
    int ret;

    fz_write_file(g_ini, text, len, 0644);
    free(text);
    err[0] = '\0';
    ret = config_load(g_ini, &cfg, err, sizeof err);
    if (ret == LC_OK) {
        FZ_CHECK(cfg != NULL, "a loaded configuration");
        check_config(cfg);
    } else {
        FZ_CHECK(cfg == NULL, "no configuration on error");
        FZ_CHECK(ret == LC_ERR_CONFIG, "a bad file is LC_ERR_CONFIG");
        FZ_CHECK(strncmp(err, g_ini, strlen(g_ini)) == 0, "the error names the file");
    }
    config_free(cfg);
    return 0;
}
