/*
 * test_issue.c — integration: `linecert pki init` into a SoftHSM2 token in a
 * temporary directory, then `linecert issue` as a user would run it, with
 * the chains checked by OpenSSL and GnuTLS and the audit log by
 * `linecert audit verify` (and tampered with through the sqlite3 CLI).
 */
#include "testutil.h"

#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char *dir;      /* the PKI of this test case */
static char *linecert; /* path of the built CLI */

static void make_pki(const char *key_type)
{
    char *err = NULL;
    int rc;

    linecert = tu_build_path("linecert");
    dir = tu_mkdtemp("issue");
    ck_assert_ptr_nonnull(dir);
    rc = tu_runf(NULL, &err, "%s pki init --dir %s/pki --lines 2 --key-type %s", linecert, dir,
                 key_type);
    ck_assert_msg(rc == 0, "pki init failed (%d): %s", rc, err);
    free(err);
}

static void setup_ec(void)
{
    make_pki("ec-p256");
}

static void setup_p384(void)
{
    make_pki("ec-p384");
}

static void setup_rsa(void)
{
    make_pki("rsa-2048");
}

static void teardown(void)
{
    tu_rmtree(dir);
    free(dir);
    free(linecert);
    dir = NULL;
    linecert = NULL;
}

/* Makes a CSR with openssl into DIR/name.csr; keyspec like "ec:P-256" or "rsa:2048". */
static void make_csr(const char *name, const char *keyspec, const char *subject)
{
    char *err = NULL;
    int rc;

    if (strncmp(keyspec, "ec:", 3) == 0)
        rc = tu_runf(NULL, &err,
                     "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:%s -nodes -keyout "
                     "%s/%s.key -subj '%s' -out %s/%s.csr",
                     keyspec + 3, dir, name, subject, dir, name);
    else
        rc = tu_runf(
            NULL, &err,
            "openssl req -new -newkey %s -nodes -keyout %s/%s.key -subj '%s' -out %s/%s.csr",
            keyspec, dir, name, subject, dir, name);
    ck_assert_msg(rc == 0, "openssl req: %s", err);
    free(err);
}

static int issue(const char *name, const char *extra, char **out, char **err)
{
    return tu_runf(out, err, "%s issue --config %s/pki/station.ini --line 1 --csr %s/%s.csr %s",
                   linecert, dir, dir, name, extra ? extra : "");
}

static int count_certs(const char *pem)
{
    int n = 0;
    for (const char *p = pem; (p = strstr(p, "-----BEGIN CERTIFICATE-----")) != NULL; p++)
        n++;
    return n;
}

/* Issues name.csr to name.pem and checks the chain with OpenSSL and GnuTLS. */
static void issue_and_verify(const char *name, const char *keyspec, const char *cn)
{
    char *out = NULL, *err = NULL, subject[128];
    int rc;

    snprintf(subject, sizeof subject, "/CN=%s", cn);
    make_csr(name, keyspec, subject);
    rc = tu_runf(&out, &err,
                 "%s issue --config %s/pki/station.ini --line 1 --csr %s/%s.csr --out %s/%s.pem",
                 linecert, dir, dir, name, dir, name);
    ck_assert_msg(rc == 0, "issue failed (%d): %s", rc, err);
    ck_assert_str_eq(out, ""); /* --out: nothing on stdout */
    free(out);
    free(err);
    rc = tu_runf(&out, &err,
                 "openssl verify -x509_strict -purpose sslclient -CAfile %s/pki/root.pem "
                 "-untrusted %s/pki/factory.pem -untrusted %s/pki/line-1.pem %s/%s.pem",
                 dir, dir, dir, dir, name);
    ck_assert_msg(rc == 0, "openssl verify: %s %s", out, err);
    free(out);
    free(err);
    /* GnuTLS walks the chain as delivered (leaf first) up to the root. */
    rc = tu_runf(&out, &err,
                 "cat %s/%s.pem %s/pki/root.pem > %s/%s-full.pem && certtool --verify-chain "
                 "--infile %s/%s-full.pem",
                 dir, name, dir, dir, name, dir, name);
    ck_assert_msg(rc == 0, "certtool --verify-chain: %s %s", out, err);
    free(out);
    free(err);
    rc = tu_runf(&out, NULL, "openssl x509 -in %s/%s.pem -noout -subject", dir, name);
    ck_assert_int_eq(rc, 0);
    ck_assert_msg(strstr(out, cn) != NULL, "subject %s lacks CN %s", out, cn);
    free(out);
}

START_TEST(issue_ec_p256)
{
    issue_and_verify("p256", "ec:P-256", "dev-p256-0001");
}
END_TEST

START_TEST(issue_ec_p384)
{
    issue_and_verify("p384", "ec:P-384", "dev-p384-0001");
}
END_TEST

START_TEST(issue_rsa_2048)
{
    issue_and_verify("rsa", "rsa:2048", "dev-rsa-0001");
}
END_TEST

START_TEST(chain_to_stdout_has_leaf_line_factory)
{
    char *out = NULL;
    int rc;

    make_csr("s", "ec:P-256", "/CN=stdout-device");
    rc = issue("s", NULL, &out, NULL);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(count_certs(out), 3);
    free(out);
    make_csr("r", "ec:P-256", "/CN=root-device");
    rc = issue("r", "--with-root", &out, NULL);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(count_certs(out), 4);
    free(out);
}
END_TEST

START_TEST(line_key_type_sets_signature)
{
    char *out = NULL;
    const char *want = _i == 0 ? "ecdsa-with-SHA384" : "sha256WithRSAEncryption";

    issue_and_verify("k", "ec:P-256", "keytype-device");
    ck_assert_int_eq(tu_runf(&out, NULL, "openssl x509 -in %s/k.pem -noout -text", dir), 0);
    ck_assert_msg(strstr(out, want) != NULL, "expected %s", want);
    free(out);
}
END_TEST

/* Asserts a refusal: exit 3, one stderr line with the reason code, empty stdout. */
static void expect_refused(const char *name, const char *reason)
{
    char *out = NULL, *err = NULL, prefix[96];
    int rc = issue(name, NULL, &out, &err);

    ck_assert_msg(rc == 3, "expected exit 3, got %d: %s", rc, err);
    ck_assert_str_eq(out, "");
    snprintf(prefix, sizeof prefix, "linecert: refused: %s: ", reason);
    ck_assert_msg(strncmp(err, prefix, strlen(prefix)) == 0, "stderr: %s", err);
    ck_assert_msg(strchr(err, '\n') == err + strlen(err) - 1, "more than one line: %s", err);
    free(out);
    free(err);
}

/* The last audit row as "kind|reason" via the sqlite3 CLI. */
/* The newest event row (each CLI run ends with its signer's checkpoint, docs/audit.md). */
static char *last_row(void)
{
    char *out = NULL;
    ck_assert_int_eq(tu_runf(&out, NULL,
                             "sqlite3 %s/pki/audit.db \"SELECT kind||'|'||ifnull(reason,'') FROM "
                             "audit WHERE kind != 'checkpoint' ORDER BY seq DESC LIMIT 1\"",
                             dir),
                     0);
    out[strcspn(out, "\n")] = '\0';
    return out;
}

START_TEST(refusals_are_audited)
{
    char *row;

    make_csr("bad", "ec:P-256", "/CN=bad device!");
    expect_refused("bad", "cn-invalid");
    row = last_row();
    ck_assert_str_eq(row, "refused|cn-invalid");
    free(row);
    make_csr("nocn", "ec:P-256", "/O=nobody");
    expect_refused("nocn", "cn-missing");
    make_csr("small", "rsa:1024", "/CN=small-key");
    expect_refused("small", "key-type");
    make_csr("k521", "ec:P-521", "/CN=p521-key");
    expect_refused("k521", "key-type");
    ck_assert_int_eq(tu_runf(NULL, NULL, "head -c 20000 /dev/zero > %s/big.csr", dir), 0);
    expect_refused("big", "too-large");
    ck_assert_int_eq(tu_runf(NULL, NULL, "echo 'not a csr' > %s/junk.csr", dir), 0);
    expect_refused("junk", "malformed");
    row = last_row();
    ck_assert_str_eq(row, "refused|malformed");
    free(row);
}
END_TEST

START_TEST(bad_signature_refused_by_signer)
{
    char *row;

    make_csr("sig", "ec:P-256", "/CN=sig-device");
    {
        /* corrupt the last byte of the DER signature, keep the structure */
        char path[512], *der;
        size_t len = 0;
        FILE *f;

        ck_assert_int_eq(tu_runf(NULL, NULL,
                                 "openssl req -in %s/sig.csr -outform DER -out %s/sig.der", dir,
                                 dir),
                         0);
        snprintf(path, sizeof path, "%s/sig.der", dir);
        der = tu_slurp(path, &len);
        ck_assert_ptr_nonnull(der);
        der[len - 1] ^= 1;
        snprintf(path, sizeof path, "%s/sig.csr", dir);
        f = fopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(der, 1, len, f), len);
        fclose(f);
        free(der);
    }
    expect_refused("sig", "bad-signature");
    row = last_row();
    ck_assert_str_eq(row, "refused|bad-signature");
    free(row);
}
END_TEST

START_TEST(duplicate_cn_case_insensitive_and_reissue)
{
    char *out = NULL, *err = NULL;

    make_csr("a", "ec:P-256", "/CN=Device-Dup-1");
    ck_assert_int_eq(issue("a", "--out /dev/null", NULL, NULL), 0);
    make_csr("b", "ec:P-256", "/CN=device-dup-1");
    expect_refused("b", "cn-duplicate");
    /* --reissue needs --reason */
    ck_assert_int_eq(issue("b", "--reissue", NULL, NULL), 2);
    ck_assert_int_eq(issue("b", "--reissue --reason 'board replaced' --out /dev/null", NULL, &err),
                     0);
    free(err);
    ck_assert_int_eq(tu_runf(&out, NULL,
                             "sqlite3 %s/pki/audit.db \"SELECT status FROM certificates ORDER BY "
                             "audit_seq\"",
                             dir),
                     0);
    ck_assert_str_eq(out, "superseded\nvalid\n");
    free(out);
    out = last_row();
    ck_assert_str_eq(out, "reissued|");
    free(out);
}
END_TEST

START_TEST(audit_verify_detects_edit)
{
    char *out = NULL, *err = NULL;

    make_csr("v1", "ec:P-256", "/CN=verify-1");
    make_csr("v2", "ec:P-256", "/CN=verify-2");
    ck_assert_int_eq(issue("v1", "--out /dev/null", NULL, NULL), 0);
    ck_assert_int_eq(issue("v2", "--out /dev/null", NULL, NULL), 0);
    ck_assert_int_eq(
        tu_runf(&out, NULL, "%s audit verify --config %s/pki/station.ini", linecert, dir), 0);
    /* Two issued rows, each followed by its signer's final checkpoint. */
    ck_assert_msg(strncmp(out, "ok: 4 rows, head ", 17) == 0, "%s", out);
    ck_assert_msg(strstr(out, "checkpoints: 2 verified; signatures accounted for: 4") != NULL, "%s",
                  out);
    free(out);
    ck_assert_int_eq(tu_runf(NULL, NULL,
                             "sqlite3 %s/pki/audit.db \"UPDATE audit SET registration_id='forged' "
                             "WHERE seq=1\"",
                             dir),
                     0);
    ck_assert_int_eq(
        tu_runf(&out, &err, "%s audit verify --config %s/pki/station.ini", linecert, dir), 1);
    ck_assert_msg(strstr(out, "row 1") != NULL, "%s", out);
    free(out);
    free(err);
}
END_TEST

START_TEST(token_gone_is_signer_failure)
{
    char *out = NULL, *err = NULL;
    int rc;

    make_csr("t", "ec:P-256", "/CN=token-gone");
    ck_assert_int_eq(tu_runf(NULL, NULL, "mv %s/pki/tokens %s/pki/tokens.away", dir, dir), 0);
    rc = issue("t", NULL, &out, &err);
    ck_assert_msg(rc == 4, "expected 4, got %d: %s", rc, err);
    ck_assert_str_eq(out, "");
    free(out);
    free(err);
    ck_assert_int_eq(tu_runf(NULL, NULL, "mv %s/pki/tokens.away %s/pki/tokens", dir, dir), 0);
    ck_assert_int_eq(issue("t", "--out /dev/null", NULL, NULL), 0);
}
END_TEST

START_TEST(audit_store_failure_releases_nothing)
{
    char *out = NULL, *err = NULL;
    int rc;

    make_csr("d", "ec:P-256", "/CN=no-audit");
    /* a directory where the database should be: SQLite cannot open it */
    ck_assert_int_eq(tu_runf(NULL, NULL, "mkdir %s/pki/audit.db", dir), 0);
    rc = issue("d", NULL, &out, &err);
    ck_assert_msg(rc == 5, "expected 5, got %d: %s", rc, err);
    ck_assert_str_eq(out, "");
    free(out);
    free(err);
}
END_TEST

START_TEST(pki_init_refuses_overwrite)
{
    char *err = NULL;

    ck_assert_int_eq(tu_runf(NULL, &err, "%s pki init --dir %s/pki", linecert, dir), 2);
    ck_assert_msg(strstr(err, "--force") != NULL, "%s", err);
    free(err);
    ck_assert_int_eq(
        tu_runf(NULL, NULL, "%s pki init --dir %s/pki --lines 1 --force", linecert, dir), 0);
    ck_assert_int_eq(
        tu_runf(NULL, NULL, "grep -c '^\\[line\\.' %s/pki/station.ini | grep -qx 1", dir), 0);
}
END_TEST

START_TEST(pki_init_files_and_ca_profile)
{
    char *out = NULL;
    struct stat st;
    char path[512];

    snprintf(path, sizeof path, "%s/pki/pin", dir);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    ck_assert_int_eq(tu_runf(&out, NULL, "openssl x509 -in %s/pki/line-2.pem -noout -text", dir),
                     0);
    ck_assert_ptr_nonnull(strstr(out, "CA:TRUE, pathlen:0"));
    ck_assert_ptr_nonnull(strstr(out, "Certificate Sign, CRL Sign"));
    ck_assert_ptr_nonnull(strstr(out, "X509v3 Subject Key Identifier"));
    ck_assert_ptr_nonnull(strstr(out, "X509v3 Authority Key Identifier"));
    free(out);
    ck_assert_int_eq(tu_runf(&out, NULL, "openssl x509 -in %s/pki/factory.pem -noout -text", dir),
                     0);
    ck_assert_ptr_nonnull(strstr(out, "CA:TRUE, pathlen:1"));
    free(out);
    ck_assert_int_eq(tu_runf(&out, NULL, "openssl x509 -in %s/pki/root.pem -noout -text", dir), 0);
    ck_assert_ptr_nonnull(strstr(out, "CA:TRUE\n"));
    free(out);
    ck_assert_int_eq(tu_runf(&out, NULL,
                             "openssl verify -x509_strict -CAfile %s/pki/root.pem -untrusted "
                             "%s/pki/factory.pem %s/pki/line-2.pem",
                             dir, dir, dir),
                     0);
    free(out);
    ck_assert_int_eq(tu_runf(NULL, NULL, "grep -c BEGIN %s/pki/line-2-chain.pem | grep -qx 3", dir),
                     0);
    /* The private keys never left the token: no key material in DIR. */
    ck_assert_int_eq(tu_runf(NULL, NULL, "grep -rl 'PRIVATE KEY' %s/pki", dir), 1);
}
END_TEST

static Suite *issue_suite(void)
{
    Suite *s = suite_create("issue");
    TCase *ec = tcase_create("ec-p256 line CA");
    TCase *p384 = tcase_create("ec-p384 line CA");
    TCase *rsa = tcase_create("rsa-2048 line CA");

    tcase_add_checked_fixture(ec, setup_ec, teardown);
    tcase_set_timeout(ec, 120);
    tcase_add_test(ec, issue_ec_p256);
    tcase_add_test(ec, issue_ec_p384);
    tcase_add_test(ec, issue_rsa_2048);
    tcase_add_test(ec, chain_to_stdout_has_leaf_line_factory);
    tcase_add_test(ec, refusals_are_audited);
    tcase_add_test(ec, bad_signature_refused_by_signer);
    tcase_add_test(ec, duplicate_cn_case_insensitive_and_reissue);
    tcase_add_test(ec, audit_verify_detects_edit);
    tcase_add_test(ec, token_gone_is_signer_failure);
    tcase_add_test(ec, audit_store_failure_releases_nothing);
    tcase_add_test(ec, pki_init_refuses_overwrite);
    tcase_add_test(ec, pki_init_files_and_ca_profile);
    suite_add_tcase(s, ec);

    tcase_add_checked_fixture(p384, setup_p384, teardown);
    tcase_set_timeout(p384, 120);
    tcase_add_loop_test(p384, line_key_type_sets_signature, 0, 1);
    suite_add_tcase(s, p384);

    tcase_add_checked_fixture(rsa, setup_rsa, teardown);
    tcase_set_timeout(rsa, 120);
    tcase_add_loop_test(rsa, line_key_type_sets_signature, 1, 2);
    suite_add_tcase(s, rsa);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(issue_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
