/*
 * test_jig.c — the exec jig adapter keeps a misbehaving jig program within
 * bounds (time, output size) and reports each failure distinctly; and the
 * PLC serial codec of plcmap.h.
 */
#include "jig.h"
#include "lcerr.h"
#include "plcmap.h"
#include "testutil.h"

#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static char *dir;
static char prog[600];

/* Writes a jig program (a shell script, unless body has its own #!) and makes a jig for it. */
static jig_t *script(const char *body, int timeout_ms)
{
    FILE *f;
    jig_t *j = NULL;
    char spec[700], err[300];

    snprintf(prog, sizeof prog, "%s/jig.sh", dir);
    f = fopen(prog, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "%s%s\n", strncmp(body, "#!", 2) == 0 ? "" : "#!/bin/sh\n", body);
    fclose(f);
    chmod(prog, 0755);
    snprintf(spec, sizeof spec, "exec:%s --flag value", prog);
    ck_assert_int_eq(jig_new(spec, "7", timeout_ms, &j, err, sizeof err), LC_OK);
    return j;
}

static void setup(void)
{
    dir = tu_mkdtemp("jig");
}

static void teardown(void)
{
    tu_rmtree(dir);
    free(dir);
}

START_TEST(csr_passes_args_env_and_output)
{
    jig_t *j = script("echo \"$1 $2 $3 $4 line=$LINECERT_LINE serial=$LINECERT_SERIAL\"", 2000);
    unsigned char *out = NULL;
    size_t len = 0;
    double ms = -1;
    char err[300];

    ck_assert_int_eq(jig_get_csr(j, "SN-1", &out, &len, &ms, err, sizeof err), LC_OK);
    ck_assert_str_eq((char *)out, "--flag value csr SN-1 line=7 serial=SN-1\n");
    ck_assert_uint_eq(len, strlen((char *)out));
    ck_assert(ms >= 0);
    free(out);
    jig_free(j);
}
END_TEST

START_TEST(install_feeds_chain_on_stdin)
{
    char path[700], *got;
    char cmd[800];
    jig_t *j;
    double ms;
    char err[300];

    snprintf(path, sizeof path, "%s/got", dir);
    snprintf(cmd, sizeof cmd, "test \"$3\" = install && cat > %s", path);
    j = script(cmd, 2000);
    ck_assert_int_eq(jig_install(j, "SN-2", "CHAIN\n", 6, &ms, err, sizeof err), LC_OK);
    got = tu_slurp(path, NULL);
    ck_assert_str_eq(got, "CHAIN\n");
    free(got);
    jig_free(j);
}
END_TEST

START_TEST(hanging_jig_times_out_and_is_killed)
{
    jig_t *j = script("sleep 30 & sleep 30", 300);
    unsigned char *out = NULL;
    size_t len;
    double ms;
    char err[300];
    struct timespec t0, t1;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    ck_assert_int_eq(jig_get_csr(j, "SN", &out, &len, &ms, err, sizeof err), LC_ERR_TIMEOUT);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ck_assert_ptr_null(out);
    ck_assert_msg(strstr(err, "300 ms") != NULL, "%s", err);
    /* bounded: well under the 30 s the program wanted, even with its child */
    ck_assert(t1.tv_sec - t0.tv_sec < 5);
    jig_free(j);
}
END_TEST

START_TEST(huge_output_is_cut_off)
{
    jig_t *j = script("head -c 200000 /dev/zero; sleep 10", 5000);
    unsigned char *out = NULL;
    size_t len;
    double ms;
    char err[300];

    ck_assert_int_eq(jig_get_csr(j, "SN", &out, &len, &ms, err, sizeof err), LC_ERR_PROTOCOL);
    ck_assert_ptr_null(out);
    ck_assert_msg(strstr(err, "larger than") != NULL, "%s", err);
    ck_assert(ms < 4000);
    jig_free(j);
}
END_TEST

START_TEST(nonzero_exit_reports_last_stderr_line)
{
    jig_t *j = script("echo first >&2; echo 'probe not seated' >&2; exit 3", 2000);
    unsigned char *out = NULL;
    size_t len;
    double ms;
    char err[300];

    ck_assert_int_eq(jig_get_csr(j, "SN", &out, &len, &ms, err, sizeof err), LC_ERR_IO);
    ck_assert_msg(strstr(err, "exited 3: probe not seated") != NULL, "%s", err);
    jig_free(j);
}
END_TEST

START_TEST(empty_output_is_an_error)
{
    jig_t *j = script("exit 0", 2000);
    unsigned char *out = NULL;
    size_t len;
    double ms;
    char err[300];

    ck_assert_int_eq(jig_get_csr(j, "SN", &out, &len, &ms, err, sizeof err), LC_ERR_PROTOCOL);
    jig_free(j);
}
END_TEST

START_TEST(missing_program_reported)
{
    jig_t *j = NULL;
    unsigned char *out = NULL;
    size_t len;
    double ms;
    char err[300];

    ck_assert_int_eq(jig_new("exec:/nonexistent/jig --x", "1", 2000, &j, err, sizeof err), LC_OK);
    ck_assert_int_eq(jig_get_csr(j, "SN", &out, &len, &ms, err, sizeof err), LC_ERR_IO);
    ck_assert_ptr_null(out);
    ck_assert_msg(strstr(err, "cannot run /nonexistent/jig: No such file") != NULL, "%s", err);
    jig_free(j);
}
END_TEST

/*
 * The program gets one LINECERT_SERIAL (this run's, not a stale one from the
 * daemon's environment), no blocked signals and SIGPIPE at its default, even
 * when the calling thread blocks signals and ignores SIGPIPE as the daemon's do.
 */
START_TEST(program_environment_and_signals_are_clean)
{
    jig_t *j;
    unsigned char *out = NULL;
    size_t len;
    double ms;
    char err[300];
    sigset_t block, old;
    struct sigaction ign = {.sa_handler = SIG_IGN}, oldpipe;

    setenv("LINECERT_SERIAL", "STALE", 1);
    setenv("LINECERT_LINE", "99", 1);
    /* perl, not sh: dash clears the signal mask it was started with */
    j = script("#!/usr/bin/perl\n"
               "print scalar(grep { /^LINECERT_(LINE|SERIAL)$/ } keys %ENV), \"\\n\";\n"
               "print \"$ENV{LINECERT_LINE} $ENV{LINECERT_SERIAL}\\n\";\n"
               "open(my $f, '<', '/proc/self/status') or die;\n"
               "while (<$f>) {\n"
               "  print if /^SigBlk/;\n"
               "  printf \"pipe-ignored=%d\\n\", hex($1) & 0x1000 if /^SigIgn:\\s*(\\S+)/;\n"
               "}",
               2000);
    unsetenv("LINECERT_SERIAL");
    unsetenv("LINECERT_LINE");
    sigfillset(&block);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    sigaction(SIGPIPE, &ign, &oldpipe);
    ck_assert_int_eq(jig_get_csr(j, "SN-9", &out, &len, &ms, err, sizeof err), LC_OK);
    sigaction(SIGPIPE, &oldpipe, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    ck_assert_str_eq((char *)out, "2\n7 SN-9\nSigBlk:\t0000000000000000\npipe-ignored=0\n");
    free(out);
    jig_free(j);
}
END_TEST

/*
 * Lines run their jigs from their own threads while others allocate: every
 * run answers.  (A forked child that allocated before exec could deadlock on
 * an allocator lock held by another thread at the fork.)
 */
struct churn {
    jig_t *jig;
    int ok;
    volatile int *stop;
};

static void *run_many(void *arg)
{
    struct churn *c = arg;
    char err[300];

    for (int i = 0; i < 25; i++) {
        unsigned char *out = NULL;
        size_t len;
        double ms;
        if (jig_get_csr(c->jig, "SN", &out, &len, &ms, err, sizeof err) == LC_OK)
            c->ok++;
        free(out);
    }
    return NULL;
}

static void *allocate_until_stopped(void *arg)
{
    struct churn *c = arg;

    while (!*c->stop) {
        void *p[64];
        for (int i = 0; i < 64; i++)
            p[i] = malloc((size_t)(16 << (i % 12)));
        for (int i = 0; i < 64; i++)
            free(p[i]);
    }
    return NULL;
}

START_TEST(concurrent_runs_from_threads_all_answer)
{
    enum { RUNNERS = 4, CHURNERS = 2 };
    pthread_t t[RUNNERS + CHURNERS];
    struct churn c[RUNNERS + CHURNERS];
    volatile int stop = 0;
    char spec[700], err[300];

    jig_free(script("echo ok", 5000)); /* writes the program; each runner gets its own jig */
    for (int i = 0; i < RUNNERS + CHURNERS; i++) {
        c[i] = (struct churn){NULL, 0, &stop};
        if (i < RUNNERS) {
            snprintf(spec, sizeof spec, "exec:%s", prog);
            ck_assert_int_eq(jig_new(spec, "1", 5000, &c[i].jig, err, sizeof err), LC_OK);
        }
    }
    for (int i = 0; i < RUNNERS + CHURNERS; i++)
        pthread_create(&t[i], NULL, i < RUNNERS ? run_many : allocate_until_stopped, &c[i]);
    for (int i = 0; i < RUNNERS; i++)
        pthread_join(t[i], NULL);
    stop = 1;
    for (int i = RUNNERS; i < RUNNERS + CHURNERS; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < RUNNERS; i++) {
        ck_assert_int_eq(c[i].ok, 25);
        jig_free(c[i].jig);
    }
}
END_TEST

START_TEST(bad_specs_refused)
{
    jig_t *j = NULL;
    char err[300];

    ck_assert_int_eq(jig_new("tcp://1.2.3.4:5", "1", 100, &j, err, sizeof err), LC_ERR_CONFIG);
    ck_assert_int_eq(jig_new("exec:relative/prog", "1", 100, &j, err, sizeof err), LC_ERR_CONFIG);
    ck_assert_int_eq(jig_new("exec:", "1", 100, &j, err, sizeof err), LC_ERR_CONFIG);
    ck_assert_ptr_null(j);
}
END_TEST

START_TEST(serial_codec_round_trip)
{
    uint16_t regs[PLC_SERIAL_REGS];
    char out[PLC_SERIAL_MAX + 1];

    plc_encode_serial("SN1-000042", regs);
    ck_assert_uint_eq(regs[0], 0x534e); /* 'S' 'N' high byte first */
    ck_assert_uint_eq(regs[5], 0);
    ck_assert_int_eq(plc_decode_serial(regs, out), 10);
    ck_assert_str_eq(out, "SN1-000042");
    plc_encode_serial("ABC", regs); /* odd length: NUL low byte */
    ck_assert_uint_eq(regs[1], 0x4300);
    ck_assert_int_eq(plc_decode_serial(regs, out), 3);
    plc_encode_serial("0123456789abcdef0123456789ABCDEFxx", regs); /* 34: cut at 32 */
    ck_assert_int_eq(plc_decode_serial(regs, out), 32);
}
END_TEST

START_TEST(serial_codec_rejects_garbage)
{
    uint16_t regs[PLC_SERIAL_REGS] = {0};
    char out[PLC_SERIAL_MAX + 1];

    ck_assert_int_eq(plc_decode_serial(regs, out), 0); /* empty */
    regs[0] = 0x4120;                                  /* space */
    ck_assert_int_eq(plc_decode_serial(regs, out), -1);
    regs[0] = 0x4101; /* control byte */
    ck_assert_int_eq(plc_decode_serial(regs, out), -1);
    regs[0] = 0x41c3; /* non-ASCII */
    ck_assert_int_eq(plc_decode_serial(regs, out), -1);
    regs[0] = 0x4100; /* "A", NUL, then more text: not NUL-padded */
    regs[1] = 0x4242;
    ck_assert_int_eq(plc_decode_serial(regs, out), -1);
}
END_TEST

static Suite *jig_suite(void)
{
    Suite *s = suite_create("jig");
    TCase *tc = tcase_create("exec");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, csr_passes_args_env_and_output);
    tcase_add_test(tc, install_feeds_chain_on_stdin);
    tcase_add_test(tc, hanging_jig_times_out_and_is_killed);
    tcase_add_test(tc, huge_output_is_cut_off);
    tcase_add_test(tc, nonzero_exit_reports_last_stderr_line);
    tcase_add_test(tc, empty_output_is_an_error);
    tcase_add_test(tc, missing_program_reported);
    tcase_add_test(tc, program_environment_and_signals_are_clean);
    tcase_add_test(tc, concurrent_runs_from_threads_all_answer);
    tcase_add_test(tc, bad_specs_refused);
    tcase_add_test(tc, serial_codec_round_trip);
    tcase_add_test(tc, serial_codec_rejects_garbage);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(jig_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
