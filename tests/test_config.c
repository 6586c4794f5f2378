/*
 * test_config.c — the configuration file: every error names file, line and
 * key; valid files load with defaults and relative paths resolved.
 */
#include "config.h"
#include "lcerr.h"
#include "testutil.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("load");

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
    suite_add_tcase(s, tc);
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
