/*
 * test_config.c — the configuration file: every error names file, line and
 * key; valid files load with defaults and relative paths resolved; what the
 * loader refuses to trust (the file's owner and mode, PKCS#11 modules off
 * the allow-list); and deploy/: the unit file's hardening and install.sh.
 */
#include "config.h"
#include "lcerr.h"
#include "testutil.h"

#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* On the built-in allow-list, and installed with softhsm2 (a test dependency). */
#define SOFTHSM "/usr/lib/softhsm/libsofthsm2.so"

static char *dir;
static char ini[600];

static void put(const char *name, const char *text, mode_t mode)
{
    char path[600];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}

static void setup(void)
{
    dir = tu_mkdtemp("config");
    ck_assert_ptr_nonnull(dir);
    put("pin", "1234\n", 0600);
    put("chain.pem", "-----BEGIN CERTIFICATE-----\n", 0644);
    put("module.so", "", 0644);
    snprintf(ini, sizeof ini, "%s/station.ini", dir);
    /* the stand-in module.so is allowed by a test allow file, not by the machine's */
    {
        char text[700];
        snprintf(text, sizeof text, "%s/module.so\n", dir);
        put("pkcs11.allow", text, 0644);
        snprintf(text, sizeof text, "%s/pkcs11.allow", dir);
        setenv(CONFIG_PKCS11_ALLOW_ENV, text, 1);
    }
}

static void teardown(void)
{
    tu_rmtree(dir);
    free(dir);
}

/* Writes station.ini with [station] pointing at the test files plus `extra`. */
static void write_ini(const char *station_extra, const char *lines)
{
    char text[4096];

    snprintf(text, sizeof text,
             "[station]\naudit_db = audit.db\npkcs11_module = %s/module.so\npin_file = pin\n%s\n%s",
             dir, station_extra, lines);
    put("station.ini", text, 0644);
}

/* Loads and expects success. */
static void expect_ok(void)
{
    lc_config_t *cfg = NULL;
    char err[512] = "";

    ck_assert_msg(config_load(ini, &cfg, err, sizeof err) == LC_OK, "%s", err);
    config_free(cfg);
}

static const char *LINE1 = "[line.1]\nname = Enclosure A\n"
                           "ca_key = pkcs11:token=lines;object=line-1;type=private\n"
                           "chain = chain.pem\n";

/* Loads and expects failure with a message containing every needle. */
static void expect_error(const char *needle1, const char *needle2)
{
    lc_config_t *cfg = NULL;
    char err[512] = "";

    ck_assert_int_eq(config_load(ini, &cfg, err, sizeof err), LC_ERR_CONFIG);
    ck_assert_ptr_null(cfg);
    ck_assert_msg(strstr(err, needle1) != NULL, "'%s' not in: %s", needle1, err);
    if (needle2 != NULL)
        ck_assert_msg(strstr(err, needle2) != NULL, "'%s' not in: %s", needle2, err);
    ck_assert_msg(strchr(err, '\n') == NULL, "not one line: %s", err);
}

START_TEST(valid_config_loads_with_defaults)
{
    lc_config_t *cfg = NULL;
    const lc_line_cfg_t *l;
    char err[512] = "", want[700];

    write_ini("", LINE1);
    ck_assert_int_eq(config_load(ini, &cfg, err, sizeof err), LC_OK);
    ck_assert_uint_eq(cfg->nlines, 1);
    l = config_line(cfg, "1");
    ck_assert_ptr_nonnull(l);
    ck_assert_str_eq(l->name, "Enclosure A");
    ck_assert_int_eq(l->validity_days, 3650);
    ck_assert_ptr_null(l->subject_o);
    ck_assert_int_eq(cfg->not_before_skew_s, 300);
    snprintf(want, sizeof want, "%s/chain.pem", dir);
    ck_assert_str_eq(l->chain, want);
    snprintf(want, sizeof want, "%s/audit.db", dir);
    ck_assert_str_eq(cfg->audit_db, want);
    ck_assert_ptr_null(config_line(cfg, "2"));
    config_free(cfg);
}
END_TEST

START_TEST(unknown_key_names_file_line_key)
{
    char where[700];

    write_ini("", "[line.1]\nca_key = pkcs11:token=t;object=k\nchain = chain.pem\ncolour = red\n");
    /* [station] is 4 lines + blank line from station_extra, so colour is on line 9 */
    snprintf(where, sizeof where, "%s:9:", ini);
    expect_error(where, "[line.1] colour: unknown key");
}
END_TEST

START_TEST(unknown_station_key)
{
    write_ini("audit_dbx = x", LINE1);
    expect_error("[station] audit_dbx: unknown key", NULL);
}
END_TEST

START_TEST(missing_file)
{
    write_ini("", "[line.1]\nca_key = pkcs11:token=t;object=k\nchain = nowhere.pem\n");
    expect_error("[line.1] chain:", "No such file");
}
END_TEST

START_TEST(pin_file_readable_by_others)
{
    put("pin", "1234\n", 0644);
    write_ini("", LINE1);
    expect_error("[station] pin_file:", "readable by group/other");
}
END_TEST

START_TEST(bad_uri)
{
    write_ini("", "[line.1]\nca_key = file:///etc/key.pem\nchain = chain.pem\n");
    expect_error("[line.1] ca_key: not a PKCS#11 URI", NULL);
    write_ini("", "[line.1]\nca_key = pkcs11:object=line-1\nchain = chain.pem\n");
    expect_error("[line.1] ca_key:", "no token");
    write_ini("", "[line.1]\nca_key = pkcs11:token=lines\nchain = chain.pem\n");
    expect_error("[line.1] ca_key:", "no key");
}
END_TEST

START_TEST(missing_required_keys)
{
    write_ini("", "[line.1]\nchain = chain.pem\n");
    expect_error("[line.1]: missing required key ca_key", NULL);
    put("station.ini", "[line.1]\nca_key = pkcs11:token=t;object=k\nchain = chain.pem\n", 0644);
    expect_error("[station]: missing required key audit_db", NULL);
    write_ini("", "");
    expect_error("no [line.<id>] section", NULL);
}
END_TEST

START_TEST(bad_values)
{
    char lines[512];

    snprintf(lines, sizeof lines, "%svalidity_days = ten\n", LINE1);
    write_ini("", lines);
    expect_error("[line.1] validity_days:", "not a whole number");
    write_ini("pkcs11_module = /usr/lib/other.so", LINE1);
    expect_error("[station] pkcs11_module: given twice", NULL);
    put("station.ini", "[station]\npkcs11_module = relative.so\n", 0644);
    expect_error("[station] pkcs11_module: must be an absolute path", NULL);
    write_ini("", "[line.bad id]\nchain = chain.pem\n");
    expect_error("line id must be", NULL);
    write_ini("", "[plc]\nhost = x\n");
    expect_error("unknown section", NULL);
    write_ini("", "[line.1\nchain = chain.pem\n");
    expect_error("syntax error", NULL);
}
END_TEST

START_TEST(duplicates_empty_values_and_long_lines)
{
    char lines[1024], longv[400];

    snprintf(lines, sizeof lines, "%svalidity_days = 10\nvalidity_days = 20\n", LINE1);
    write_ini("", lines);
    expect_error("[line.1] validity_days: given twice", NULL);
    write_ini("", "[line.1]\nname =\nca_key = pkcs11:token=t;object=k\nchain = chain.pem\n");
    expect_error("[line.1] name: empty value", NULL);
    memset(longv, 'x', sizeof longv - 1);
    longv[sizeof longv - 1] = '\0';
    snprintf(lines, sizeof lines, "%sname = %s\n", LINE1, longv);
    write_ini("", lines);
    expect_error("line longer than", NULL);
}
END_TEST

START_TEST(missing_config_file)
{
    lc_config_t *cfg = NULL;
    char err[512];

    ck_assert_int_eq(config_load("/nonexistent/station.ini", &cfg, err, sizeof err), LC_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/station.ini"));
}
END_TEST

/* ---- what config_load() trusts: the file, the PKCS#11 module, the allow file ---- */

START_TEST(config_writable_by_group_is_refused)
{
    write_ini("", LINE1);
    chmod(ini, 0664);
    expect_error(ini, "is writable by group or others (mode 0664, owner uid");
    chmod(ini, 0646);
    expect_error("mode 0646", "chmod go-w");
    /* readable by everybody is fine: the file holds no secret */
    chmod(ini, 0644);
    expect_ok();
}
END_TEST

START_TEST(config_owned_by_another_user_is_refused)
{
    char want[100];

    /* as root: a file that uid 65534 could rewrite must not steer root's signer */
    write_ini("", LINE1);
    ck_assert_int_eq(chown(ini, 65534, 65534), 0);
    snprintf(want, sizeof want, "owner uid 65534); it must be owned by root or uid %u",
             (unsigned)geteuid());
    expect_error("is not owned by root or by the user loading it", want);
}
END_TEST

START_TEST(module_not_on_allow_list_is_refused)
{
    char want[800];

    put("pkcs11.allow", "# nothing allowed here\n", 0644);
    write_ini("", LINE1);
    /* the exact sentence, line number included (pkcs11_module is on line 3) */
    snprintf(want, sizeof want,
             "%s:3: [station] pkcs11_module: %s/module.so is not on the PKCS#11 module allow-list "
             "(see docs/config.md)",
             ini, dir);
    expect_error(want, NULL);
}
END_TEST

START_TEST(module_on_allow_list_is_stored_canonical)
{
    lc_config_t *cfg = NULL;
    char err[512] = "", want[700], text[700];

    /* comments, blank lines and spaces around the path are allowed */
    snprintf(text, sizeof text, "# site modules\n\n   %s/module.so  \n", dir);
    put("pkcs11.allow", text, 0644);
    write_ini("", LINE1);
    ck_assert_msg(config_load(ini, &cfg, err, sizeof err) == LC_OK, "%s", err);
    snprintf(want, sizeof want, "%s/module.so", dir);
    ck_assert_str_eq(cfg->pkcs11_module, want);
    config_free(cfg);
}
END_TEST

START_TEST(symlink_cannot_sneak_another_library_in)
{
    char link[700], text[1400];

    /* named like SoftHSM, but it is the unlisted module.so */
    put("pkcs11.allow", "", 0644);
    snprintf(link, sizeof link, "%s/libsofthsm2.so", dir);
    ck_assert_int_eq(symlink("module.so", link), 0);
    snprintf(text, sizeof text,
             "[station]\naudit_db = audit.db\npkcs11_module = %s\npin_file = pin\n\n%s", link,
             LINE1);
    put("station.ini", text, 0644);
    snprintf(text, sizeof text,
             "%s (which is %s/module.so) is not on the PKCS#11 module allow-list", link, dir);
    expect_error(text, NULL);
}
END_TEST

START_TEST(symlink_to_a_listed_module_is_accepted)
{
    lc_config_t *cfg = NULL;
    char link[700], text[1400], err[512] = "", real[4096];

    ck_assert_msg(realpath(SOFTHSM, real) != NULL, "%s: %s (package softhsm2)", SOFTHSM,
                  strerror(errno));
    put("pkcs11.allow", "", 0644);
    snprintf(link, sizeof link, "%s/hsm.so", dir);
    ck_assert_int_eq(symlink(SOFTHSM, link), 0);
    snprintf(text, sizeof text,
             "[station]\naudit_db = audit.db\npkcs11_module = %s\npin_file = pin\n\n%s", link,
             LINE1);
    put("station.ini", text, 0644);
    ck_assert_msg(config_load(ini, &cfg, err, sizeof err) == LC_OK, "%s", err);
    /* the signer gets the file that was checked, not the link */
    ck_assert_str_eq(cfg->pkcs11_module, real);
    config_free(cfg);
}
END_TEST

START_TEST(builtin_softhsm_needs_no_allow_file)
{
    lc_config_t *cfg = NULL;
    char text[1400], err[512] = "";

    unsetenv(CONFIG_PKCS11_ALLOW_ENV);
    snprintf(text, sizeof text,
             "[station]\naudit_db = audit.db\npkcs11_module = " SOFTHSM "\npin_file = pin\n\n%s",
             LINE1);
    put("station.ini", text, 0644);
    ck_assert_msg(config_load(ini, &cfg, err, sizeof err) == LC_OK, "%s", err);
    config_free(cfg);
}
END_TEST

START_TEST(module_writable_by_others_is_refused)
{
    put("module.so", "", 0666);
    write_ini("", LINE1);
    expect_error("[station] pkcs11_module:", "module.so is writable by group or others (mode 0666");
}
END_TEST

START_TEST(allow_file_must_be_trustworthy_and_well_formed)
{
    char text[700], want[800];

    snprintf(text, sizeof text, "%s/module.so\n", dir);
    put("pkcs11.allow", text, 0666);
    write_ini("", LINE1);
    expect_error("allow-list", "is writable by group or others");
    snprintf(text, sizeof text, "# ok\nlibsofthsm2.so\n%s/module.so\n", dir);
    put("pkcs11.allow", text, 0644);
    snprintf(want, sizeof want,
             "allow-list %s/pkcs11.allow:2: \"libsofthsm2.so\" is not an "
             "absolute path",
             dir);
    expect_error(want, NULL);
    /* named by the variable, it must exist: a typo must not silently mean "no allow file" */
    snprintf(text, sizeof text, "%s/nonexistent.allow", dir);
    setenv(CONFIG_PKCS11_ALLOW_ENV, text, 1);
    expect_error("nonexistent.allow (" CONFIG_PKCS11_ALLOW_ENV "): No such file", NULL);
}
END_TEST

START_TEST(checkpoint_every)
{
    lc_config_t *cfg = NULL;
    char err[512] = "";

    write_ini("", LINE1);
    ck_assert_int_eq(config_load(ini, &cfg, err, sizeof err), LC_OK);
    ck_assert_int_eq(cfg->checkpoint_every, 1000);
    config_free(cfg);
    write_ini("checkpoint_every = 1", LINE1);
    ck_assert_int_eq(config_load(ini, &cfg, err, sizeof err), LC_OK);
    ck_assert_int_eq(cfg->checkpoint_every, 1);
    config_free(cfg);
    write_ini("checkpoint_every = 0", LINE1);
    expect_error("[station] checkpoint_every: \"0\" is not a whole number from 1 to 1000000", NULL);
    write_ini("checkpoint_every = 1000001", LINE1);
    expect_error("[station] checkpoint_every:", "from 1 to 1000000");
}
END_TEST

START_TEST(role_groups)
{
    lc_config_t *cfg = NULL;
    char err[512] = "";

    write_ini("", LINE1);
    ck_assert_int_eq(config_load(ini, &cfg, err, sizeof err), LC_OK);
    /* the defaults need not exist: the daemon then logs that only root and itself hold the role */
    ck_assert_str_eq(cfg->operator_group, "linecert-operators");
    ck_assert_str_eq(cfg->security_group, "linecert-security");
    config_free(cfg);
    write_ini("operator_group = users\nsecurity_group = staff", LINE1);
    ck_assert_msg(config_load(ini, &cfg, err, sizeof err) == LC_OK, "%s", err);
    ck_assert_str_eq(cfg->operator_group, "users");
    ck_assert_str_eq(cfg->security_group, "staff");
    config_free(cfg);
    /* set explicitly, a group must exist: a typo would lock everybody out unnoticed */
    write_ini("security_group = linecert-securty", LINE1);
    expect_error("[station] security_group: group \"linecert-securty\" does not exist on this "
                 "system",
                 NULL);
}
END_TEST

/* ---- deploy/: the unit file and install.sh ---- */

static char *source_file(const char *rel)
{
    const char *src = getenv("LINECERT_SOURCE_DIR");
    char path[1024];
    char *text;

    ck_assert_msg(src != NULL, "LINECERT_SOURCE_DIR is not set (run through ctest)");
    snprintf(path, sizeof path, "%s/%s", src, rel);
    text = tu_slurp(path, NULL);
    ck_assert_msg(text != NULL, "%s: %s", path, strerror(errno));
    return text;
}

/* 1 if text has the line exactly (a directive, not a comment that mentions it). */
static int has_line(const char *text, const char *line)
{
    size_t n = strlen(line);

    for (const char *p = text; (p = strstr(p, line)) != NULL; p += n)
        if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
            return 1;
    return 0;
}

START_TEST(unit_file_has_the_hardening_directives)
{
    static const char *const want[] = {
        "User=linecert",
        "Group=linecert",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "ReadWritePaths=/var/lib/linecert",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "MemoryDenyWriteExecute=yes",
        "SystemCallFilter=@system-service",
        "CapabilityBoundingSet=",
        "LockPersonality=yes",
        "RestrictNamespaces=yes",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectKernelLogs=yes",
        "ProtectControlGroups=yes",
        "UMask=0077",
        "RuntimeDirectory=linecert",
        "StateDirectory=linecert",
        "LimitCORE=0",
    };
    char *unit = source_file("deploy/linecertd.service");

    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        ck_assert_msg(has_line(unit, want[i]), "deploy/linecertd.service lacks %s", want[i]);
    /* PrivateUsers= would map every peer to nobody and defeat the control socket's peer check */
    ck_assert_ptr_null(strstr(unit, "PrivateUsers="));
    free(unit);
}
END_TEST

START_TEST(unit_file_passes_systemd_analyze_verify)
{
    char *unit = source_file("deploy/linecertd.service"), *prog = tu_build_path("linecertd");
    char path[700], *out = NULL, *err = NULL, *p;
    FILE *f;
    int rc;

    if (tu_runf(NULL, NULL, "command -v systemd-analyze") != 0) {
        fprintf(stderr, "test_config: systemd-analyze not installed: unit not verified\n");
        free(unit);
        free(prog);
        return;
    }
    /* verify wants ExecStart to exist: point it at the built daemon */
    snprintf(path, sizeof path, "%s/linecertd.service", dir);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    p = strstr(unit, "ExecStart=/usr/sbin/linecertd");
    ck_assert_ptr_nonnull(p);
    fprintf(f, "%.*sExecStart=%s%s", (int)(p - unit), unit, prog,
            p + strlen("ExecStart=/usr/sbin/linecertd"));
    fclose(f);
    rc = tu_runf(&out, &err, "systemd-analyze verify '%s' 2>&1", path);
    ck_assert_msg(rc == 0 && *out == '\0', "systemd-analyze verify: exit %d: %s", rc, out);
    free(out);
    free(err);
    free(unit);
    free(prog);
}
END_TEST

START_TEST(install_sh_help)
{
    const char *src = getenv("LINECERT_SOURCE_DIR");
    char *out = NULL, *err = NULL;
    int rc;

    ck_assert_ptr_nonnull(src);
    rc = tu_runf(&out, &err, "bash '%s/deploy/install.sh' --help", src);
    ck_assert_int_eq(rc, 0);
    ck_assert_msg(strstr(out, "usage: deploy/install.sh") != NULL && strstr(out, "--root DIR"),
                  "%s", out);
    free(out);
    free(err);
    rc = tu_runf(&out, &err, "bash '%s/deploy/install.sh' --bogus", src);
    ck_assert_int_eq(rc, 2);
    ck_assert_msg(strstr(err, "unknown option: --bogus") != NULL, "%s", err);
    free(out);
    free(err);
}
END_TEST

static mode_t mode_of(const char *root, const char *rel)
{
    char path[1024];
    struct stat st;

    snprintf(path, sizeof path, "%s%s", root, rel);
    ck_assert_msg(stat(path, &st) == 0, "%s: %s", path, strerror(errno));
    return st.st_mode & 07777;
}

/* Runs install.sh --root into dir/root twice and checks the tree; needs root for chown. */
START_TEST(install_sh_into_a_root_folder_twice)
{
    const char *src = getenv("LINECERT_SOURCE_DIR"), *bld = getenv("LINECERT_BUILD_DIR");
    char root[700], path[1024], *out = NULL, *err = NULL, *passwd, *group, *unit;
    struct stat st;
    int rc;

    ck_assert_ptr_nonnull(src);
    ck_assert_ptr_nonnull(bld);
    snprintf(root, sizeof root, "%s/root", dir);
    /* an image's account files, with nothing but root in them */
    rc = tu_runf(NULL, &err,
                 "set -e; mkdir -p '%s/etc'; cd '%s/etc';"
                 " echo 'root:x:0:0:root:/root:/bin/bash' >passwd;"
                 " echo 'root:x:0:' >group; echo 'root:*:19000:0:99999:7:::' >shadow;"
                 " echo 'root:*::' >gshadow; chmod 0640 shadow gshadow",
                 root, root);
    ck_assert_msg(rc == 0, "%s", err);
    free(err);
    for (int run = 0; run < 2; run++) {
        rc =
            tu_runf(&out, &err, "bash '%s/deploy/install.sh' --root '%s' --build-dir '%s' --no-acl",
                    src, root, bld);
        ck_assert_msg(rc == 0, "run %d: exit %d: %s%s", run, rc, out, err);
        ck_assert_msg(strstr(out, "Nothing was started") != NULL, "%s", out);
        free(out);
        free(err);
    }
    /* the accounts, once each */
    snprintf(path, sizeof path, "%s/etc/passwd", root);
    passwd = tu_slurp(path, NULL);
    snprintf(path, sizeof path, "%s/etc/group", root);
    group = tu_slurp(path, NULL);
    ck_assert_ptr_nonnull(passwd);
    ck_assert_ptr_nonnull(group);
    ck_assert_msg(strstr(passwd, "\nlinecert:x:") != NULL &&
                      strstr(passwd, ":/var/lib/linecert:/usr/sbin/nologin\n") != NULL,
                  "%s", passwd);
    ck_assert_ptr_null(strstr(strstr(passwd, "\nlinecert:") + 1, "\nlinecert:"));
    ck_assert_ptr_nonnull(strstr(group, "\nlinecert-operators:x:"));
    ck_assert_ptr_nonnull(strstr(group, "\nlinecert-security:x:"));
    ck_assert_ptr_nonnull(strstr(group, "\nlinecert:x:"));
    ck_assert_ptr_null(strstr(strstr(group, "\nlinecert-operators:") + 1, "\nlinecert-operators:"));
    /* programs, unit (paths of the build's prefix), folders with their modes */
    snprintf(path, sizeof path, "%s/usr/local/sbin/linecertd", root);
    ck_assert_msg(access(path, X_OK) == 0, "%s missing", path);
    snprintf(path, sizeof path, "%s/usr/local/libexec/linecert/linecert-signer", root);
    ck_assert_msg(access(path, X_OK) == 0, "%s missing", path);
    snprintf(path, sizeof path, "%s/etc/systemd/system/linecertd.service", root);
    unit = tu_slurp(path, NULL);
    ck_assert_ptr_nonnull(unit);
    ck_assert(has_line(unit, "ExecStart=/usr/local/sbin/linecertd --config "
                             "/etc/linecert/station.ini --foreground"));
    ck_assert_uint_eq(mode_of(root, "/etc/systemd/system/linecertd.service"), 0644);
    ck_assert_uint_eq(mode_of(root, "/etc/linecert"), 0750);
    ck_assert_uint_eq(mode_of(root, "/etc/linecert/station.ini.example"), 0640);
    ck_assert_uint_eq(mode_of(root, "/var/lib/linecert"), 0700);
    snprintf(path, sizeof path, "%s/etc/linecert", root);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_uid, 0);
    snprintf(path, sizeof path, "%s/var/lib/linecert", root);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_ne(st.st_uid, 0); /* the linecert user of the image */
    snprintf(path, sizeof path, "%s/usr/local/share/doc/linecert/operations.md", root);
    ck_assert_msg(access(path, R_OK) == 0, "%s missing", path);
    free(unit);
    free(passwd);
    free(group);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("load");
    TCase *deploy = tcase_create("deploy");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, valid_config_loads_with_defaults);
    tcase_add_test(tc, unknown_key_names_file_line_key);
    tcase_add_test(tc, unknown_station_key);
    tcase_add_test(tc, missing_file);
    tcase_add_test(tc, pin_file_readable_by_others);
    tcase_add_test(tc, bad_uri);
    tcase_add_test(tc, missing_required_keys);
    tcase_add_test(tc, bad_values);
    tcase_add_test(tc, duplicates_empty_values_and_long_lines);
    tcase_add_test(tc, missing_config_file);
    tcase_add_test(tc, config_writable_by_group_is_refused);
    tcase_add_test(tc, module_not_on_allow_list_is_refused);
    tcase_add_test(tc, module_on_allow_list_is_stored_canonical);
    tcase_add_test(tc, symlink_cannot_sneak_another_library_in);
    tcase_add_test(tc, symlink_to_a_listed_module_is_accepted);
    tcase_add_test(tc, builtin_softhsm_needs_no_allow_file);
    tcase_add_test(tc, module_writable_by_others_is_refused);
    tcase_add_test(tc, allow_file_must_be_trustworthy_and_well_formed);
    tcase_add_test(tc, checkpoint_every);
    tcase_add_test(tc, role_groups);
    suite_add_tcase(s, tc);

    tcase_add_checked_fixture(deploy, setup, teardown);
    tcase_set_timeout(deploy, 120);
    tcase_add_test(deploy, unit_file_has_the_hardening_directives);
    tcase_add_test(deploy, unit_file_passes_systemd_analyze_verify);
    tcase_add_test(deploy, install_sh_help);
    suite_add_tcase(s, deploy);
    /* Changing a file's owner and creating accounts need root. */
    if (geteuid() == 0) {
        tcase_add_test(tc, config_owned_by_another_user_is_refused);
        tcase_add_test(deploy, install_sh_into_a_root_folder_twice);
    } else {
        fprintf(stderr, "test_config: not root: owner and install.sh --root tests skipped\n");
    }
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(config_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
