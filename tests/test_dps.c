/*
 * test_dps.c — `linecert dps-check`, run in-process (cmd_dps_check) against
 * PKIs made here with OpenSSL software keys (EC P-256): the examples of the
 * DPS documentation (five devices under two intermediates; the chain a
 * device must present), individual entries against groups, broken chains,
 * input errors; and once against a chain issued by the real product
 * (`linecert pki init` + `linecert issue`).
 */
#include "dps.h"
#include "testutil.h"

#include <check.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DAY (24L * 3600)

static char *dir; /* this test's PKI and files */

/* The five-device example: root -> A -> devices 1-3, root -> B -> devices 4-5. */
static EVP_PKEY *root_key, *a_key, *b_key, *dev_key[6];
static X509 *root, *ca_a, *ca_b, *dev[6];

static EVP_PKEY *new_key(void)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

    ck_assert_ptr_nonnull(k);
    return k;
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;

    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    ck_assert_msg(ext != NULL, "extension %d=%s", nid, value);
    ck_assert_int_eq(X509_add_ext(x, ext, -1), 1);
    X509_EXTENSION_free(ext);
}

/*
 * A certificate for key with subject CN=cn, naming issuer (NULL: itself) as
 * its issuer and signed with sign_key (normally the issuer's key), valid
 * from `from` to `to` days from now.
 */
static X509 *make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *sign_key, int ca,
                       long from, long to)
{
    static uint64_t serial = 1000;
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();

    ck_assert_ptr_nonnull(x);
    ck_assert_ptr_nonnull(name);
    ck_assert_int_eq(X509_set_version(x, X509_VERSION_3), 1);
    ck_assert_int_eq(ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), serial++), 1);
    ck_assert_int_eq(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                                                (const unsigned char *)"dps test", -1, -1, 0),
                     1);
    ck_assert_int_eq(
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0),
        1);
    ck_assert_int_eq(X509_set_subject_name(x, name), 1);
    ck_assert_int_eq(X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name), 1);
    ck_assert_ptr_nonnull(X509_time_adj_ex(X509_getm_notBefore(x), (int)from, 0, NULL));
    ck_assert_ptr_nonnull(X509_time_adj_ex(X509_getm_notAfter(x), (int)to, 0, NULL));
    ck_assert_int_eq(X509_set_pubkey(x, key), 1);
    add_ext(x, issuer ? issuer : x, NID_basic_constraints,
            ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    add_ext(x, issuer ? issuer : x, NID_key_usage,
            ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
    add_ext(x, x, NID_subject_key_identifier, "hash");
    if (issuer != NULL)
        add_ext(x, issuer, NID_authority_key_identifier, "keyid:always");
    ck_assert_int_gt(X509_sign(x, sign_key, EVP_sha256()), 0);
    X509_NAME_free(name);
    return x;
}

/* Writes the certificates (NULL-terminated list) as PEM to DIR/file. */
static void write_pem(const char *file, ...)
{
    char *path = NULL;
    FILE *f;
    va_list ap;
    X509 *x;

    ck_assert_int_ge(asprintf(&path, "%s/%s", dir, file), 0);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    va_start(ap, file);
    while ((x = va_arg(ap, X509 *)) != NULL)
        ck_assert_int_eq(PEM_write_X509(f, x), 1);
    va_end(ap);
    ck_assert_int_eq(fclose(f), 0);
    free(path);
}

static void write_text(const char *file, const char *text)
{
    char *path = NULL;
    FILE *f;

    ck_assert_int_ge(asprintf(&path, "%s/%s", dir, file), 0);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fputs(text, f) >= 0, 1);
    ck_assert_int_eq(fclose(f), 0);
    free(path);
}

static void setup_dir(void)
{
    dir = tu_mkdtemp("dps");
    ck_assert_ptr_nonnull(dir);
}

static void teardown_dir(void)
{
    tu_rmtree(dir);
    free(dir);
    dir = NULL;
}

static void setup_five(void)
{
    char name[32];

    setup_dir();
    root_key = new_key();
    a_key = new_key();
    b_key = new_key();
    root = make_cert("Root CA", root_key, NULL, root_key, 1, -1, 3650);
    ca_a = make_cert("Intermediate A", a_key, root, root_key, 1, -1, 3650);
    ca_b = make_cert("Intermediate B", b_key, root, root_key, 1, -1, 3650);
    write_pem("root.pem", root, NULL);
    write_pem("a.pem", ca_a, NULL);
    write_pem("b.pem", ca_b, NULL);
    for (int i = 1; i <= 5; i++) {
        X509 *ca = i <= 3 ? ca_a : ca_b;
        dev_key[i] = new_key();
        snprintf(name, sizeof name, "device-%d", i);
        dev[i] = make_cert(name, dev_key[i], ca, i <= 3 ? a_key : b_key, 0, -1, 365);
        snprintf(name, sizeof name, "device-%d.pem", i);
        write_pem(name, dev[i], NULL);
        snprintf(name, sizeof name, "device-%d-chain.pem", i);
        write_pem(name, dev[i], ca, NULL);
    }
}

static void teardown_five(void)
{
    for (int i = 1; i <= 5; i++) {
        X509_free(dev[i]);
        EVP_PKEY_free(dev_key[i]);
        dev[i] = NULL;
        dev_key[i] = NULL;
    }
    X509_free(ca_b);
    X509_free(ca_a);
    X509_free(root);
    EVP_PKEY_free(b_key);
    EVP_PKEY_free(a_key);
    EVP_PKEY_free(root_key);
    ca_b = ca_a = root = NULL;
    b_key = a_key = root_key = NULL;
    teardown_dir();
}

/*
 * Runs cmd_dps_check in this process with stdout and stderr captured into
 * files; returns its exit code with the output in *out and *err (malloc'd).
 */
static int run_cmd(int argc, char **argv, char **out, char **err)
{
    char *opath = NULL, *epath = NULL;
    int saved_out, saved_err, fo, fe, rc;

    ck_assert_int_ge(asprintf(&opath, "%s/stdout.txt", dir), 0);
    ck_assert_int_ge(asprintf(&epath, "%s/stderr.txt", dir), 0);
    fo = open(opath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    fe = open(epath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ck_assert_int_ge(fo, 0);
    ck_assert_int_ge(fe, 0);
    fflush(stdout);
    fflush(stderr);
    saved_out = dup(1);
    saved_err = dup(2);
    ck_assert_int_ge(saved_out, 0);
    ck_assert_int_ge(saved_err, 0);
    dup2(fo, 1);
    dup2(fe, 2);
    rc = cmd_dps_check(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(saved_out);
    close(saved_err);
    close(fo);
    close(fe);
    *out = tu_slurp(opath, NULL);
    *err = tu_slurp(epath, NULL);
    ck_assert_ptr_nonnull(*out);
    ck_assert_ptr_nonnull(*err);
    free(opath);
    free(epath);
    return rc;
}

/* `linecert dps-check --enrollments DIR/enrollments.txt --chain DIR/chain`. */
static int dps_check(const char *chain, char **out, char **err)
{
    char name[] = "dps-check", o1[] = "--enrollments", o2[] = "--chain";
    char *enrollments = NULL, *chain_path = NULL;
    int rc;

    ck_assert_int_ge(asprintf(&enrollments, "%s/enrollments.txt", dir), 0);
    ck_assert_int_ge(asprintf(&chain_path, "%s/%s", dir, chain), 0);
    {
        char *argv[] = {name, o1, enrollments, o2, chain_path, NULL};
        rc = run_cmd(5, argv, out, err);
    }
    free(enrollments);
    free(chain_path);
    return rc;
}

/* Asserts the decision for the device presenting chain: exit code and deciding entry. */
static void expect(const char *chain, int want_rc, const char *want_entry)
{
    char *out = NULL, *err = NULL, line[256];
    int rc = dps_check(chain, &out, &err);

    ck_assert_msg(rc == want_rc, "%s: exit %d, want %d\n%s%s", chain, rc, want_rc, out, err);
    ck_assert_msg(strncmp(out, want_rc == 0 ? "provisioned\n" : "not-provisioned\n",
                          want_rc == 0 ? 12 : 16) == 0,
                  "%s: %s", chain, out);
    snprintf(line, sizeof line, "\nentry: %s\n", want_entry);
    ck_assert_msg(strstr(out, line) != NULL, "%s: want entry %s in\n%s", chain, want_entry, out);
    ck_assert_str_eq(err, "");
    free(out);
    free(err);
}

/* Asserts not provisioned for reason, with a why line containing `why`. */
static void expect_refused(const char *chain, const char *reason, const char *why)
{
    char *out = NULL, *err = NULL, line[128];
    int rc = dps_check(chain, &out, &err);

    ck_assert_msg(rc == 1, "%s: exit %d, want 1\n%s%s", chain, rc, out, err);
    ck_assert_msg(strncmp(out, "not-provisioned\n", 16) == 0, "%s", out);
    snprintf(line, sizeof line, "\nreason: %s\n", reason);
    ck_assert_msg(strstr(out, line) != NULL, "want reason %s in\n%s", reason, out);
    ck_assert_msg(strstr(out, why) != NULL, "want \"%s\" in\n%s", why, out);
    free(out);
    free(err);
}

/* Asserts an input error: exit 2, nothing on stdout, stderr containing msg. */
static void expect_input_error(const char *chain, const char *msg)
{
    char *out = NULL, *err = NULL;
    int rc = dps_check(chain, &out, &err);

    ck_assert_msg(rc == 2, "exit %d, want 2\n%s%s", rc, out, err);
    ck_assert_str_eq(out, "");
    ck_assert_msg(strstr(err, msg) != NULL, "want \"%s\" in stderr:\n%s", msg, err);
    free(out);
    free(err);
}

static const char FIVE_ROOT_GROUP[] = "# DPS documentation example: one group on the root\n"
                                      "verified root.pem\n"
                                      "\n"
                                      "group enabled root.pem\n";

START_TEST(five_devices_group_on_root_provisions_all)
{
    char chain[32];

    write_text("enrollments.txt", FIVE_ROOT_GROUP);
    for (int i = 1; i <= 5; i++) {
        snprintf(chain, sizeof chain, "device-%d-chain.pem", i);
        expect(chain, 0, "group enabled root.pem (line 4)");
    }
}
END_TEST

START_TEST(output_format)
{
    char *out = NULL, *err = NULL;
    int rc;

    write_text("enrollments.txt", FIVE_ROOT_GROUP);
    rc = dps_check("device-1-chain.pem", &out, &err);
    ck_assert_int_eq(rc, 0);
    ck_assert_str_eq(out, "provisioned\n"
                          "entry: group enabled root.pem (line 4)\n"
                          "registration-id: device-1\n"
                          "why: chain device-1 -> Intermediate A -> Root CA (not presented; its "
                          "signature on Intermediate A checks); Root CA verified by proof of "
                          "possession; no individual enrollment for the leaf; first enrollment "
                          "group found up the chain is Root CA's, enabled\n"
                          "reason: enrolled\n");
    ck_assert_str_eq(err, "");
    free(out);
    free(err);
}
END_TEST

START_TEST(five_devices_group_b_disabled)
{
    char chain[32];

    write_text("enrollments.txt", "verified root.pem\n"
                                  "group enabled root.pem\n"
                                  "group disabled b.pem\n");
    for (int i = 1; i <= 5; i++) {
        snprintf(chain, sizeof chain, "device-%d-chain.pem", i);
        if (i <= 3)
            expect(chain, 0, "group enabled root.pem (line 2)");
        else
            expect(chain, 1, "group disabled b.pem (line 3)");
    }
}
END_TEST

START_TEST(five_devices_device_3_individual_disabled)
{
    char chain[32];

    write_text("enrollments.txt", "verified root.pem\n"
                                  "group enabled root.pem\n"
                                  "group disabled b.pem\n"
                                  "individual disabled device-3.pem\n");
    for (int i = 1; i <= 5; i++) {
        snprintf(chain, sizeof chain, "device-%d-chain.pem", i);
        if (i <= 2)
            expect(chain, 0, "group enabled root.pem (line 2)");
        else if (i == 3)
            expect(chain, 1, "individual disabled device-3.pem (line 4)");
        else
            expect(chain, 1, "group disabled b.pem (line 3)");
    }
}
END_TEST

/* The chain requirement: only the root verified, the group on intermediate A. */
static const char ROOT_VERIFIED_GROUP_A[] = "verified root.pem\n"
                                            "group enabled a.pem\n";

START_TEST(leaf_only_cannot_reach_verified_root)
{
    write_text("enrollments.txt", ROOT_VERIFIED_GROUP_A);
    expect_refused("device-1.pem", "chain-unverified", "why: chain does not lead to a verified CA");
}
END_TEST

START_TEST(leaf_and_intermediate_reach_unpresented_root)
{
    write_text("enrollments.txt", ROOT_VERIFIED_GROUP_A);
    expect("device-1-chain.pem", 0, "group enabled a.pem (line 2)");
}
END_TEST

START_TEST(full_chain_with_root_presented)
{
    char *out = NULL, *err = NULL;

    write_pem("full.pem", dev[1], ca_a, root, NULL);
    write_text("enrollments.txt", ROOT_VERIFIED_GROUP_A);
    expect("full.pem", 0, "group enabled a.pem (line 2)");
    ck_assert_int_eq(dps_check("full.pem", &out, &err), 0);
    ck_assert_msg(strstr(out, "why: chain device-1 -> Intermediate A -> Root CA; Root CA "
                              "verified") != NULL,
                  "%s", out);
    free(out);
    free(err);
}
END_TEST

START_TEST(group_above_a_verified_intermediate_is_found)
{
    /* A verified, the root presented and holding the group: the lookup goes on up. */
    write_pem("full.pem", dev[1], ca_a, root, NULL);
    write_text("enrollments.txt", "verified a.pem\n"
                                  "group enabled root.pem\n");
    expect("full.pem", 0, "group enabled root.pem (line 2)");
}
END_TEST

START_TEST(individual_disabled_overrides_enabled_group)
{
    write_text("enrollments.txt", "verified root.pem\n"
                                  "group enabled a.pem\n"
                                  "individual disabled device-1.pem\n");
    expect("device-1-chain.pem", 1, "individual disabled device-1.pem (line 3)");
    expect("device-2-chain.pem", 0, "group enabled a.pem (line 2)");
}
END_TEST

START_TEST(individual_enabled_overrides_disabled_group)
{
    write_text("enrollments.txt", "verified root.pem\n"
                                  "group disabled a.pem\n"
                                  "individual enabled device-2.pem\n");
    expect("device-2-chain.pem", 0, "individual enabled device-2.pem (line 3)");
    expect("device-1-chain.pem", 1, "group disabled a.pem (line 2)");
}
END_TEST

START_TEST(no_enrollment_not_provisioned)
{
    write_text("enrollments.txt", "verified root.pem\n");
    expect("device-1-chain.pem", 1, "none");
    expect_refused("device-1-chain.pem", "no-enrollment",
                   "no individual enrollment for the leaf and no enrollment group");
}
END_TEST

START_TEST(leaf_signed_by_another_key_fails)
{
    /* It names Intermediate A as its issuer, but A's key did not sign it. */
    EVP_PKEY *k = new_key(), *forger = new_key();
    X509 *x = make_cert("device-9", k, ca_a, forger, 0, -1, 365);

    write_pem("forged.pem", x, ca_a, NULL);
    write_text("enrollments.txt", FIVE_ROOT_GROUP);
    expect_refused("forged.pem", "chain-unverified", "the signature does not verify");
    X509_free(x);
    EVP_PKEY_free(forger);
    EVP_PKEY_free(k);
}
END_TEST

START_TEST(chain_with_gap_fails)
{
    /* Intermediate A left out: the root did not issue the leaf. */
    write_pem("gap.pem", dev[1], root, NULL);
    write_text("enrollments.txt", FIVE_ROOT_GROUP);
    expect_refused("gap.pem", "chain-unverified", "did not issue it");
}
END_TEST

START_TEST(expired_intermediate_fails)
{
    EVP_PKEY *k = new_key(), *leaf_key = new_key();
    X509 *old = make_cert("Old Intermediate", k, root, root_key, 1, -800, -30);
    X509 *leaf = make_cert("device-7", leaf_key, old, k, 0, -700, 365);

    write_pem("old.pem", leaf, old, NULL);
    write_text("enrollments.txt", FIVE_ROOT_GROUP);
    expect_refused("old.pem", "certificate-expired", "Old Intermediate expired on");
    X509_free(leaf);
    X509_free(old);
    EVP_PKEY_free(leaf_key);
    EVP_PKEY_free(k);
}
END_TEST

START_TEST(issuer_that_is_not_a_ca_fails)
{
    EVP_PKEY *leaf_key = new_key();
    /* Device 1 (CA:FALSE) signing another device's certificate. */
    X509 *leaf = make_cert("device-8", leaf_key, dev[1], dev_key[1], 0, -1, 365);

    write_pem("sub.pem", leaf, dev[1], ca_a, NULL);
    write_text("enrollments.txt", FIVE_ROOT_GROUP);
    expect_refused("sub.pem", "issuer-not-ca", "device-1 issued device-8 but is not a CA");
    X509_free(leaf);
    EVP_PKEY_free(leaf_key);
}
END_TEST

START_TEST(invalid_registration_id_not_provisioned)
{
    EVP_PKEY *k = new_key();
    X509 *x = make_cert("device 1!", k, ca_a, a_key, 0, -1, 365);

    write_pem("badcn.pem", x, ca_a, NULL);
    write_text("enrollments.txt", FIVE_ROOT_GROUP);
    expect_refused("badcn.pem", "registration-id-invalid",
                   "the leaf's CN \"device 1!\" is not a valid registration ID");
    expect("badcn.pem", 1, "none");
    X509_free(x);
    EVP_PKEY_free(k);
}
END_TEST

START_TEST(duplicate_certificate_is_input_error)
{
    /* The same certificate in two files is the same certificate. */
    write_pem("a-copy.pem", ca_a, NULL);
    write_text("enrollments.txt", "verified root.pem\n"
                                  "group enabled a.pem\n"
                                  "group disabled a-copy.pem\n");
    expect_input_error("device-1-chain.pem",
                       "enrollments.txt:3: a-copy.pem: this certificate is already in an "
                       "enrollment on line 2");
}
END_TEST

START_TEST(individual_and_group_same_certificate_is_input_error)
{
    write_text("enrollments.txt", "verified root.pem\n"
                                  "group enabled a.pem\n"
                                  "individual enabled a.pem\n");
    expect_input_error("device-1-chain.pem", "enrollments.txt:3: a.pem: this certificate is "
                                             "already in an enrollment on line 2");
}
END_TEST

START_TEST(unknown_keyword_is_input_error)
{
    write_text("enrollments.txt", "verified root.pem\n"
                                  "enrolment enabled a.pem\n");
    expect_input_error("device-1-chain.pem", "enrollments.txt:2: unknown keyword \"enrolment\"");
}
END_TEST

START_TEST(bad_status_is_input_error)
{
    write_text("enrollments.txt", "verified root.pem\n"
                                  "group on a.pem\n");
    expect_input_error("device-1-chain.pem",
                       "enrollments.txt:2: group: status \"on\" must be enabled or disabled");
}
END_TEST

START_TEST(missing_enrollments_file_is_input_error)
{
    expect_input_error("device-1-chain.pem", "enrollments.txt: No such file or directory");
}
END_TEST

START_TEST(missing_certificate_file_is_input_error)
{
    write_text("enrollments.txt", "verified root.pem\n"
                                  "\n"
                                  "group enabled line-9.pem\n");
    expect_input_error("device-1-chain.pem",
                       "enrollments.txt:3: line-9.pem: No such file or directory");
}
END_TEST

START_TEST(unreadable_pem_is_input_error)
{
    write_text("broken.pem", "-----BEGIN CERTIFICATE-----\nnot base64 at all\n"
                             "-----END CERTIFICATE-----\n");
    write_text("enrollments.txt", "verified broken.pem\n");
    expect_input_error("device-1-chain.pem",
                       "enrollments.txt:1: broken.pem: the PEM certificate cannot be read");
}
END_TEST

START_TEST(empty_chain_is_input_error)
{
    write_text("enrollments.txt", FIVE_ROOT_GROUP);
    write_text("empty.pem", "no certificate here\n");
    expect_input_error("empty.pem", "empty.pem: holds no PEM certificate");
}
END_TEST

START_TEST(missing_chain_file_is_input_error)
{
    write_text("enrollments.txt", FIVE_ROOT_GROUP);
    expect_input_error("nothing.pem", "nothing.pem: No such file or directory");
}
END_TEST

START_TEST(group_on_a_leaf_is_input_error)
{
    write_text("enrollments.txt", "verified root.pem\n"
                                  "group enabled device-1.pem\n");
    expect_input_error("device-1-chain.pem", "enrollments.txt:2: device-1.pem: a group "
                                             "certificate must be a CA");
}
END_TEST

START_TEST(missing_option_is_usage_error)
{
    char name[] = "dps-check", opt[] = "--chain", *chain = NULL, *out = NULL, *err = NULL;
    int rc;

    ck_assert_int_ge(asprintf(&chain, "%s/device-1-chain.pem", dir), 0);
    {
        char *argv[] = {name, opt, chain, NULL};
        rc = run_cmd(3, argv, &out, &err);
    }
    ck_assert_int_eq(rc, 2);
    ck_assert_str_eq(out, "");
    ck_assert_msg(strstr(err, "--enrollments FILE and --chain CHAIN.pem are required") != NULL,
                  "%s", err);
    free(chain);
    free(out);
    free(err);
}
END_TEST

/* Runs a shell command; exit code, with stderr kept for the failure message. */
static int sh(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int sh(char **err, const char *fmt, ...)
{
    char *cmd = NULL;
    va_list ap;
    int rc;

    va_start(ap, fmt);
    if (vasprintf(&cmd, fmt, ap) < 0)
        cmd = NULL;
    va_end(ap);
    ck_assert_ptr_nonnull(cmd);
    rc = tu_run(cmd, NULL, 0, NULL, err);
    free(cmd);
    return rc;
}

START_TEST(chain_issued_by_linecert_is_provisioned)
{
    char *linecert = tu_build_path("linecert"), *err = NULL, *out = NULL;
    int rc;

    rc = sh(&err, "%s pki init --dir %s/pki --lines 1", linecert, dir);
    ck_assert_msg(rc == 0, "pki init (%d): %s", rc, err);
    free(err);
    rc = sh(&err,
            "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "
            "%s/dev.key -subj /CN=interop-device-1 -out %s/dev.csr",
            dir, dir);
    ck_assert_msg(rc == 0, "openssl req (%d): %s", rc, err);
    free(err);
    rc = sh(&err, "%s issue --config %s/pki/station.ini --line 1 --csr %s/dev.csr --out %s/%s",
            linecert, dir, dir, dir, "leaf-chain.pem");
    ck_assert_msg(rc == 0, "issue (%d): %s", rc, err);
    free(err);
    write_text("enrollments.txt", "verified pki/root.pem\n"
                                  "group enabled pki/line-1.pem\n");
    rc = dps_check("leaf-chain.pem", &out, &err);
    ck_assert_msg(rc == 0, "dps-check (%d):\n%s%s", rc, out, err);
    ck_assert_msg(strstr(out, "\nentry: group enabled pki/line-1.pem (line 2)\n"
                              "registration-id: interop-device-1\n"
                              "why: chain interop-device-1 -> linecert Line 1 CA -> linecert "
                              "Demo Factory CA -> linecert Demo Root CA (not presented") != NULL,
                  "%s", out);
    free(out);
    free(err);
    free(linecert);
}
END_TEST

static Suite *dps_suite(void)
{
    Suite *s = suite_create("dps");
    TCase *five = tcase_create("five-devices");
    TCase *input = tcase_create("input");
    TCase *interop = tcase_create("interop");

    tcase_add_checked_fixture(five, setup_five, teardown_five);
    tcase_add_test(five, five_devices_group_on_root_provisions_all);
    tcase_add_test(five, output_format);
    tcase_add_test(five, five_devices_group_b_disabled);
    tcase_add_test(five, five_devices_device_3_individual_disabled);
    tcase_add_test(five, leaf_only_cannot_reach_verified_root);
    tcase_add_test(five, leaf_and_intermediate_reach_unpresented_root);
    tcase_add_test(five, full_chain_with_root_presented);
    tcase_add_test(five, group_above_a_verified_intermediate_is_found);
    tcase_add_test(five, individual_disabled_overrides_enabled_group);
    tcase_add_test(five, individual_enabled_overrides_disabled_group);
    tcase_add_test(five, no_enrollment_not_provisioned);
    tcase_add_test(five, leaf_signed_by_another_key_fails);
    tcase_add_test(five, chain_with_gap_fails);
    tcase_add_test(five, expired_intermediate_fails);
    tcase_add_test(five, issuer_that_is_not_a_ca_fails);
    tcase_add_test(five, invalid_registration_id_not_provisioned);
    suite_add_tcase(s, five);

    tcase_add_checked_fixture(input, setup_five, teardown_five);
    tcase_add_test(input, duplicate_certificate_is_input_error);
    tcase_add_test(input, individual_and_group_same_certificate_is_input_error);
    tcase_add_test(input, unknown_keyword_is_input_error);
    tcase_add_test(input, bad_status_is_input_error);
    tcase_add_test(input, missing_enrollments_file_is_input_error);
    tcase_add_test(input, missing_certificate_file_is_input_error);
    tcase_add_test(input, unreadable_pem_is_input_error);
    tcase_add_test(input, empty_chain_is_input_error);
    tcase_add_test(input, missing_chain_file_is_input_error);
    tcase_add_test(input, group_on_a_leaf_is_input_error);
    tcase_add_test(input, missing_option_is_usage_error);
    suite_add_tcase(s, input);

    tcase_add_checked_fixture(interop, setup_dir, teardown_dir);
    tcase_add_test(interop, chain_issued_by_linecert_is_provisioned);
    suite_add_tcase(s, interop);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(dps_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
