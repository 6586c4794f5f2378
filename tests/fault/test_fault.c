/*
 * test_fault.c — the fault-injection suite (tests/fault/README.md): linecertd
 * run against the plant simulators while its peers and its own processes
 * fail, checking after every fault what the product promises (docs/plc.md,
 * docs/operations.md, ARCHITECTURE invariants 1, 3 and 6):
 *
 *   - no certificate leaves the station without a committed audit row: every
 *     chain the jig received (linecert-jig-sim --log) has its certificate and
 *     its `issued` row;
 *   - the log stays valid: `linecert audit verify` and PRAGMA integrity_check;
 *   - one request, at most one certificate: no serial twice, no PLC REQ_SEQ
 *     with two certificates, no device with two;
 *   - faults are reported (RESULT/REASON, STATION_STATE) and the station
 *     recovers by itself, without a restart.
 *
 * Cases: kill -9 of the daemon and of the signer at random points during
 * issuance on 3 lines; the HSM token pulled (a PKCS#11 shim returning
 * CKR_DEVICE_REMOVED or CKR_SESSION_HANDLE_INVALID, and the SoftHSM2 token
 * folder moved away); the audit store's N-th write failing for every N over
 * an issuance (EIO and ENOSPC through an SQLite VFS shim) and a full disk;
 * a PLC that jumps and reuses sequence numbers, repeats devices, loses ACKs,
 * sends non-printable serials, scribbles over registers and drops its
 * connections; jig programs whose output is huge, garbage, slow or never
 * ends.
 *
 * Sizes come from the environment so that soak.sh runs the same code longer:
 * LC_FAULT_DAEMON_KILLS (default 100), LC_FAULT_SIGNER_KILLS (100),
 * LC_FAULT_PLC_REQUESTS (per line, 30), LC_FAULT_JIG_ROUNDS (2),
 * LC_FAULT_DISK_CYCLES (3), LC_FAULT_IO_BOTH (0), LC_FAULT_CHECK_EVERY (1:
 * the full store check after every kill; the jig log is checked after every
 * kill regardless), LC_FAULT_SEED (random; printed, reproduces the kill
 * points and the PLC's abuse), LC_FAULT_KEEP (keep the folders).  Each case
 * prints one "fault:" line with its figures.
 *
 * Processes: every child runs in its own process group and dies with the test
 * process (PR_SET_PDEATHSIG); the test process is a child subreaper, so the
 * signer and jig programs of a killed daemon are re-parented to it and
 * reaped; every wait is bounded.
 */
#include "testutil.h"
#include "testutil_modbus.h"
#include "testutil_proc.h"

#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Holding registers from a line's plc_base, and the codes (docs/plc.md: a contract). */
enum {
    REG_REQ_SEQ = 0,
    REG_SERIAL = 1,
    REG_ACK_SEQ = 32,
    REG_RESULT = 33,
    REG_REASON = 34,
    REG_STATION_STATE = 38,
    LINE_STRIDE = 64,
};
enum { RESULT_ISSUED = 2, RESULT_REFUSED = 3, RESULT_FAULT = 4 };
enum { STATE_OK = 0, STATE_HSM_FAULT = 2, STATE_AUDIT_FAULT = 3, STATE_JIG_FAULT = 4 };
enum {
    REASON_MALFORMED = 2,
    REASON_CN_DUPLICATE = 10,
    REASON_SERIAL_INVALID = 12,
    REASON_HSM_UNAVAILABLE = 20,
    REASON_SIGNER_UNAVAILABLE = 21,
    REASON_AUDIT_UNAVAILABLE = 22,
    REASON_JIG_TIMEOUT = 23,
    REASON_JIG_OUTPUT = 25,
    REASON_INSTALL_FAILED = 26,
};

#define JIG_TIMEOUT  1000 /* ms, the jig-abuse line */
#define INI_LINE_MAX 199
#define ACK_WAIT_S   20.0

static char *root; /* the test case's folder (unchecked fixture) */
static char dir[PATH_MAX];
static char pki[PATH_MAX + 8], ini[PATH_MAX + 32], db[PATH_MAX + 32], jigdir[PATH_MAX + 8],
    jiglog[PATH_MAX + 16], sock[PATH_MAX + 32], softhsm[PATH_MAX], jigsim[PATH_MAX + 8];
static char *bin_linecert, *bin_daemon, *bin_plc_sim, *bin_jig_sim;
static pid_t daemon_pid;
static int nspawned;
static uint64_t rng; /* xorshift64: kill points and delays, reproducible from LC_FAULT_SEED */
static uint64_t seed;

/* ---- small things -------------------------------------------------------- */

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* A size from the environment (soak.sh), or the CI default. */
static int env_int(const char *name, int def)
{
    const char *v = getenv(name);
    return v != NULL && atoi(v) > 0 ? atoi(v) : def;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* p50 and max of v[0..n) in ms (sorts v). */
static void p50_max(double *v, int n, double *p50, double *max)
{
    *p50 = *max = 0;
    if (n == 0)
        return;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    *p50 = v[n / 2];
    *max = v[n - 1];
}

static void touch(const char *path, const char *text)
{
    char tmp[PATH_MAX + 64];
    FILE *f;

    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    f = fopen(tmp, "w");
    ck_assert_msg(f != NULL, "%s: %s", tmp, strerror(errno));
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_msg(rename(tmp, path) == 0, "%s: %s", path, strerror(errno));
}

/* The tail of the daemon's log, for failure messages (malloc'd). */
static char *daemon_log_tail(void)
{
    char path[PATH_MAX + 32];
    size_t len = 0;
    char *text, *tail;

    snprintf(path, sizeof path, "%s/linecertd.log", dir);
    text = tu_slurp(path, &len);
    if (text == NULL)
        return strdup("(no log)");
    tail = strdup(len > 2000 ? text + len - 2000 : text);
    free(text);
    return tail;
}

/* ---- processes ----------------------------------------------------------- */

/*
 * Starts a program (no shell: a preloaded library must reach the program and
 * nothing else) in its own process group, with the words of the formatted
 * command line as its arguments, stdout and stderr appended to files, stdin
 * from /dev/null and the NULL-terminated "K=V" list env added to its
 * environment.  It dies with the test process.  Returns its pid.
 */
static pid_t spawn(const char *out, const char *err, char *const *env, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static pid_t spawn(const char *out, const char *err, char *const *env, const char *fmt, ...)
{
    va_list ap;
    char *cmd = NULL, *argv[64], *save = NULL;
    int argc = 0;
    pid_t pid;

    va_start(ap, fmt);
    if (vasprintf(&cmd, fmt, ap) < 0)
        cmd = NULL;
    va_end(ap);
    ck_assert_ptr_nonnull(cmd);
    for (char *t = strtok_r(cmd, " ", &save); t != NULL && argc < 63;
         t = strtok_r(NULL, " ", &save))
        argv[argc++] = t;
    argv[argc] = NULL;
    ck_assert_int_gt(argc, 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int flags = O_WRONLY | O_CREAT | O_APPEND;
        int fo = open(out, flags, 0644);
        int fe = strcmp(out, err) == 0 ? fo : open(err, flags, 0644);
        int fi = open("/dev/null", O_RDONLY);

        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (fo < 0 || fe < 0 || fi < 0)
            _exit(126);
        for (int i = 0; env != NULL && env[i] != NULL; i++)
            putenv(env[i]);
        dup2(fi, 0);
        dup2(fo, 1);
        dup2(fe, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    setpgid(pid, pid);
    free(cmd);
    tu_track(pid);
    return pid;
}

/* The daemon's signer (child named linecert-signer), or 0. */
static pid_t signer_of(pid_t daemon)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    pid_t found = 0;

    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL && found == 0) {
        pid_t pid = (pid_t)atoi(e->d_name), ppid = 0;
        char state = 0, comm[32];
        if (pid > 0 && tu_proc_stat(pid, &ppid, &state, comm) && ppid == daemon && state != 'Z' &&
            strcmp(comm, "linecert-signer") == 0)
            found = pid;
    }
    closedir(d);
    return found;
}

/* ---- the audit store, read in-process ------------------------------------ */

static sqlite3 *store_open(void)
{
    sqlite3 *h = NULL;

    /*
     * Read-write (never created): after a kill -9 the WAL may need recovery,
     * which a read-only connection cannot do ("attempt to write a readonly
     * database") until the next daemon has opened the store.  The test only reads.
     */
    ck_assert_msg(sqlite3_open_v2(db, &h, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK,
                  "cannot open %s: %s", db, h ? sqlite3_errmsg(h) : "?");
    sqlite3_busy_timeout(h, 5000);
    return h;
}

/* One integer from a query (0 if no row); fmt is sqlite3_mprintf's (%q quotes). */
static long long q_int(const char *fmt, ...);

static long long q_int(const char *fmt, ...)
{
    va_list ap;
    char *q;
    sqlite3 *h;
    sqlite3_stmt *st = NULL;
    long long v = 0;
    int rc;

    if (access(db, F_OK) != 0)
        return 0; /* the daemon has not created the store yet */
    h = store_open();
    va_start(ap, fmt);
    q = sqlite3_vmprintf(fmt, ap);
    va_end(ap);
    ck_assert_msg(sqlite3_prepare_v2(h, q, -1, &st, NULL) == SQLITE_OK, "%s: %s", q,
                  sqlite3_errmsg(h));
    rc = sqlite3_step(st);
    ck_assert_msg(rc == SQLITE_ROW || rc == SQLITE_DONE, "%s: %s", q, sqlite3_errmsg(h));
    if (rc == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
    sqlite3_free(q);
    return v;
}

/* PRAGMA integrity_check says "ok". */
static void assert_integrity(void)
{
    sqlite3 *h = store_open();
    sqlite3_stmt *st = NULL;
    const unsigned char *t;

    ck_assert_int_eq(sqlite3_prepare_v2(h, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    t = sqlite3_column_text(st, 0);
    ck_assert_msg(t != NULL && strcmp((const char *)t, "ok") == 0, "integrity_check: %s",
                  t ? (const char *)t : "(null)");
    sqlite3_finalize(st);
    sqlite3_close(h);
}

/* `linecert audit verify` passes (a warning about signatures in flight at a crash is allowed). */
static void assert_audit_verifies(const char *when)
{
    char *out = NULL, *err = NULL;
    int rc = tu_runf(&out, &err, "%s audit verify --config %s", bin_linecert, ini);

    ck_assert_msg(rc == 0 && strncmp(out, "ok: ", 4) == 0, "audit verify %s: exit %d: %s%s", when,
                  rc, out, err);
    free(out);
    free(err);
}

/*
 * The store-wide invariants: integrity, a verifying chain, no serial issued
 * twice, no device with two certificates, every certificate with the audit
 * row that issued it; with check_seq, no PLC REQ_SEQ of a line with two
 * certificates (the daemon's issued rows say "PLC seq N"; only for runs where
 * the PLC never reuses a sequence number).  Cheap enough for every restart.
 */
static void assert_store(const char *when, int check_seq)
{
    assert_integrity();
    assert_audit_verifies(when);
    ck_assert_msg(q_int("SELECT COUNT(*) FROM (SELECT serial FROM audit WHERE kind IN "
                        "('issued','reissued') GROUP BY serial HAVING COUNT(*) > 1)") == 0,
                  "%s: a certificate serial was issued twice", when);
    ck_assert_msg(q_int("SELECT COUNT(*) FROM (SELECT regid_fold FROM certificates GROUP BY "
                        "regid_fold HAVING COUNT(*) > 1)") == 0,
                  "%s: a device holds two certificates", when);
    ck_assert_msg(q_int("SELECT COUNT(*) FROM certificates c WHERE NOT EXISTS (SELECT 1 FROM "
                        "audit a WHERE a.seq = c.audit_seq AND a.serial = c.serial AND a.kind "
                        "IN ('issued','reissued'))") == 0,
                  "%s: a certificate without its issued row", when);
    if (check_seq) {
        static const char q[] =
            "FROM (SELECT line, CAST(substr(detail, instr(detail, 'PLC seq ') "
            "+ 8) AS INTEGER) AS s FROM audit WHERE kind = 'issued' AND "
            "instr(detail, 'PLC seq ') > 0) GROUP BY line, s HAVING COUNT(*) > 1";
        long long line = q_int("SELECT line %s LIMIT 1", q), seq = q_int("SELECT s %s LIMIT 1", q);
        ck_assert_msg(line == 0, "%s: line %lld: PLC REQ_SEQ %lld produced two certificates", when,
                      line, seq);
    }
}

/*
 * Every chain in the jig's log after *offset (advanced) has its certificate
 * (same device, same thumbprint) and an issued row: nothing was released
 * without a committed audit row.  A chain whose leaf does not even parse
 * ("-") is allowed only where a daemon was killed while writing it to the
 * jig; *truncated (may be NULL: none allowed) counts them.  Returns the
 * number of chains checked.
 */
static int assert_jig_log(long *offset, const char *when, int *truncated)
{
    size_t len = 0;
    char *text = tu_slurp(jiglog, &len), *p, *nl;
    int n = 0;

    if (text == NULL)
        return 0;
    for (p = text + *offset; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
        char serial[80], tp[80];
        *nl = '\0';
        ck_assert_msg(sscanf(p, "install %79s %79s", serial, tp) == 2, "jig log line: %s", p);
        if (strcmp(tp, "-") == 0) {
            ck_assert_msg(truncated != NULL, "%s: device %s received a chain without a certificate",
                          when, serial);
            (*truncated)++;
            continue;
        }
        ck_assert_msg(q_int("SELECT COUNT(*) FROM certificates c JOIN audit a ON a.seq = "
                            "c.audit_seq WHERE c.thumbprint = '%q' AND c.registration_id = '%q' "
                            "AND a.kind IN ('issued','reissued')",
                            tp, serial) == 1,
                      "%s: device %s received certificate %s, which has no issued row", when,
                      serial, tp);
        n++;
    }
    *offset = p - text;
    free(text);
    return n;
}

/* Chains the jig log shows for one device. */
static int jig_received(const char *serial)
{
    char *text = tu_slurp(jiglog, NULL), key[120];
    int n = 0;

    snprintf(key, sizeof key, "install %s ", serial);
    for (char *p = text; p != NULL && (p = strstr(p, key)) != NULL; p++)
        n++;
    free(text);
    return n;
}

/* ---- fixture ------------------------------------------------------------- */

static char *build_bin(const char *name)
{
    char *p = tu_build_path(name), *abs = realpath(p, NULL);

    ck_assert_msg(abs != NULL, "%s is not built", p);
    free(p);
    return abs;
}

/*
 * Short names throughout (lcf-XXXXXX/XXXXXX/p, /j, /jl): a line of
 * station.ini holds at most 199 characters, and the jig's line carries four
 * paths.
 */
static void root_setup(void)
{
    const char *tmp = getenv("TMPDIR");

    prctl(PR_SET_CHILD_SUBREAPER, 1);
    ck_assert_int_ge(asprintf(&root, "%s/lcf-XXXXXX", tmp && *tmp ? tmp : "/tmp"), 0);
    ck_assert_msg(mkdtemp(root) != NULL, "%s: %s", root, strerror(errno));
}

static void root_teardown(void)
{
    tu_reap_orphans(1);
    if (getenv("LC_FAULT_KEEP") != NULL)
        printf("fault: LC_FAULT_KEEP: kept %s\n", root);
    else
        tu_rmtree(root);
    free(root);
    root = NULL;
}

/* Reads "pkcs11_module = X" from station.ini (the module pki init used). */
static void read_module(void)
{
    char *text = tu_slurp(ini, NULL), *p;

    ck_assert_ptr_nonnull(text);
    p = strstr(text, "pkcs11_module = ");
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(sscanf(p, "pkcs11_module = %4095s", softhsm), 1);
    free(text);
}

static void setup_case(int nlines)
{
    char *err = NULL, *tmpl = NULL;
    int rc;

    prctl(PR_SET_CHILD_SUBREAPER, 1);
    tu_forget_tracked();
    daemon_pid = 0;
    bin_linecert = build_bin("linecert");
    bin_daemon = build_bin("linecertd");
    bin_plc_sim = build_bin("linecert-plc-sim");
    bin_jig_sim = build_bin("linecert-jig-sim");
    ck_assert_int_ge(asprintf(&tmpl, "%s/XXXXXX", root), 0);
    ck_assert_ptr_nonnull(mkdtemp(tmpl));
    snprintf(dir, sizeof dir, "%s", tmpl);
    free(tmpl);
    snprintf(pki, sizeof pki, "%s/p", dir);
    snprintf(ini, sizeof ini, "%s/station.ini", pki);
    snprintf(db, sizeof db, "%s/audit.db", pki);
    snprintf(sock, sizeof sock, "%s/linecertd.sock", pki);
    snprintf(jigdir, sizeof jigdir, "%s/j", dir);
    snprintf(jiglog, sizeof jiglog, "%s/jl", dir);
    ck_assert_int_eq(mkdir(jigdir, 0700), 0);
    /*
     * The jig runs as DIR/js, a link to the built simulator: a `jig =` line
     * must fit in 199 characters (docs/config.md), whatever the checkout's path.
     */
    snprintf(jigsim, sizeof jigsim, "%s/js", dir);
    ck_assert_int_eq(symlink(bin_jig_sim, jigsim), 0);
    rc = tu_runf(NULL, &err, "%s pki init --dir %s --lines %d", bin_linecert, pki, nlines);
    ck_assert_msg(rc == 0, "pki init failed (%d): %s", rc, err);
    free(err);
    read_module();
}

static void setup1(void)
{
    setup_case(1);
}

static void setup3(void)
{
    setup_case(3);
}

static void teardown(void)
{
    tu_kill_tracked();
    tu_reap_orphans(1);
    if (getenv("LC_FAULT_KEEP") == NULL)
        tu_rmtree(dir);
    free(bin_linecert);
    free(bin_daemon);
    free(bin_plc_sim);
    free(bin_jig_sim);
    bin_linecert = bin_daemon = bin_plc_sim = bin_jig_sim = NULL;
    daemon_pid = 0;
}

/* Appends line n's daemon keys: the PLC at port, linecert-jig-sim (logging) plus options. */
static void add_line(int n, int port, const char *jig_opts, int jig_timeout_ms)
{
    FILE *f = fopen(ini, "a");
    char *jig = NULL;

    ck_assert_ptr_nonnull(f);
    ck_assert_int_ge(asprintf(&jig, "exec:%s --dir %s --ca %s/root.pem --log %s%s", jigsim, jigdir,
                              pki, jiglog, jig_opts),
                     0);
    ck_assert_msg(strlen("jig = ") + strlen(jig) <= INI_LINE_MAX,
                  "jig line too long for station.ini (TMPDIR too long?): %s", jig);
    fprintf(f, "\n[line.%d]\nplc = modbus-tcp://127.0.0.1:%d\nplc_base = %d\npoll_ms = 10\n", n,
            port, (n - 1) * LINE_STRIDE);
    fprintf(f, "jig = %s\njig_timeout_ms = %d\n", jig, jig_timeout_ms);
    ck_assert_int_eq(fclose(f), 0);
    free(jig);
}

/* Replaces station.ini's pkcs11_module (and allows it: LINECERT_PKCS11_ALLOW_FILE). */
static void set_module(const char *module)
{
    char *text = tu_slurp(ini, NULL), *p, *eol, allow[PATH_MAX + 32];
    FILE *f;

    ck_assert_ptr_nonnull(text);
    p = strstr(text, "pkcs11_module = ");
    ck_assert_ptr_nonnull(p);
    eol = strchr(p, '\n');
    ck_assert_ptr_nonnull(eol);
    f = fopen(ini, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "%.*spkcs11_module = %s%s", (int)(p - text), text, module, eol);
    ck_assert_int_eq(fclose(f), 0);
    free(text);
    snprintf(allow, sizeof allow, "%s/pkcs11-allow", dir);
    f = fopen(allow, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "%s\n%s\n", module, softhsm);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(chmod(allow, 0644), 0);
    setenv("LINECERT_PKCS11_ALLOW_FILE", allow, 1);
}

/* ---- the daemon ---------------------------------------------------------- */

/* Whether the control socket accepts a connection (the daemon is ready). */
static int control_up(void)
{
    struct sockaddr_un a;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), ok;

    if (fd < 0)
        return 0;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    ck_assert_msg(strlen(sock) < sizeof a.sun_path, "control socket path too long: %s", sock);
    memcpy(a.sun_path, sock, strlen(sock));
    ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

/* Starts linecertd with env added; waits for its control socket unless no_wait. */
static void daemon_spawn(char *const *env, int no_wait)
{
    char log[PATH_MAX + 32];
    double until = tu_now_s() + 30;
    int status;

    snprintf(log, sizeof log, "%s/linecertd.log", dir);
    daemon_pid = spawn(log, log, env, "%s --config %s", bin_daemon, ini);
    while (!no_wait && !control_up()) {
        if (waitpid(daemon_pid, &status, WNOHANG) == daemon_pid) {
            tu_untrack(daemon_pid);
            daemon_pid = 0;
            ck_abort_msg("linecertd exited at start (status 0x%x): %s", (unsigned)status,
                         daemon_log_tail());
        }
        ck_assert_msg(tu_now_s() < until, "linecertd not ready after 30 s: %s", daemon_log_tail());
        tu_sleep_ms(5);
    }
}

static void daemon_start(char *const *env)
{
    daemon_spawn(env, 0);
}

/*
 * kill -9 of the daemon process alone, as a crash: its signer must notice and
 * exit by itself (it is re-parented to us and reaped here); jig programs in
 * flight finish or are reaped later.
 */
static void daemon_crash(void)
{
    pid_t left[8];
    double until;

    ck_assert_int_gt(daemon_pid, 0);
    kill(daemon_pid, SIGKILL);
    while (waitpid(daemon_pid, NULL, 0) < 0 && errno == EINTR)
        ;
    tu_untrack(daemon_pid);
    daemon_pid = 0;
    until = tu_now_s() + 5;
    while (tu_orphans(left, 8, 1, "linecert-signer") > 0 && tu_now_s() < until)
        tu_sleep_ms(5);
    ck_assert_msg(tu_orphans(left, 8, 1, "linecert-signer") == 0,
                  "the signer (pid %d) still runs 5 s after its daemon was killed", (int)left[0]);
    tu_reap_orphans(0);
}

static void daemon_stop_clean(void)
{
    int st = 0;

    ck_assert_int_gt(daemon_pid, 0);
    kill(daemon_pid, SIGTERM);
    ck_assert_msg(tu_wait_exit(daemon_pid, 20, &st), "linecertd did not exit within 20 s: %s",
                  daemon_log_tail());
    daemon_pid = 0;
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "linecertd ended with status 0x%x: %s",
                  (unsigned)st, daemon_log_tail());
}

/* `linecert status --json` (malloc'd). */
static char *status_json(void)
{
    char *out = NULL, *err = NULL;
    int rc = tu_runf(&out, &err, "%s status --config %s --json", bin_linecert, ini);

    ck_assert_msg(rc == 0, "status exit %d: %s", rc, err);
    free(err);
    return out;
}

/* A number or bare word after "key": in the "signer" / "audit" object of the status reply. */
static void status_field(const char *st, const char *object, const char *key, char *out, size_t n)
{
    char pat[64];
    const char *o = strstr(st, object), *p;
    size_t i = 0;

    snprintf(pat, sizeof pat, "\"%s\"", key);
    ck_assert_msg(o != NULL && (p = strstr(o, pat)) != NULL, "no %s.%s in %s", object, key, st);
    for (p += strlen(pat); *p == ' ' || *p == ':'; p++)
        ;
    while (*p != '\0' && strchr(",} \n", *p) == NULL && i + 1 < n)
        out[i++] = *p++;
    out[i] = '\0';
}

/*
 * The signer's count of its signatures, as the daemon last probed it (once a
 * second): waits out a probe first so that the figure is current, and checks
 * that it is still the signer *pid (0: any), whose count it is.
 */
static long long signer_signatures(pid_t *pid)
{
    char *st, v[32];

    tu_sleep_ms(1100);
    st = status_json();
    status_field(st, "\"signer\"", "pid", v, sizeof v);
    if (*pid == 0)
        *pid = (pid_t)atoi(v);
    ck_assert_msg(*pid == (pid_t)atoi(v), "the signer was restarted (pid %d, was %d)", atoi(v),
                  (int)*pid);
    status_field(st, "\"signer\"", "signatures", v, sizeof v);
    free(st);
    return atoll(v);
}

/* ---- the PLC: simulator and a minimal Modbus TCP client ------------------- */

struct sim {
    pid_t pid;
    int port;
    char out[PATH_MAX + 32], err[PATH_MAX + 32], json[PATH_MAX + 32];
    char *summary;
};

static void sim_start(struct sim *s, int port, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void sim_start(struct sim *s, int port, const char *fmt, ...)
{
    va_list ap;
    char *opts = NULL;
    double until = tu_now_s() + 10;
    int k = ++nspawned;

    va_start(ap, fmt);
    if (vasprintf(&opts, fmt, ap) < 0)
        opts = NULL;
    va_end(ap);
    ck_assert_ptr_nonnull(opts);
    memset(s, 0, sizeof *s);
    snprintf(s->out, sizeof s->out, "%s/sim%d.out", dir, k);
    snprintf(s->err, sizeof s->err, "%s/sim%d.err", dir, k);
    snprintf(s->json, sizeof s->json, "%s/sim%d.json", dir, k);
    for (;;) {
        int status = 0, exited = 0;
        s->pid = spawn(s->out, s->err, NULL, "%s --listen 127.0.0.1:%d --summary-json %s %s",
                       bin_plc_sim, port, s->json, opts);
        while (s->port == 0 && !exited && tu_now_s() < until) {
            char *text = tu_slurp(s->out, NULL);
            if (text != NULL && sscanf(text, "listening on 127.0.0.1:%d", &s->port) != 1)
                s->port = 0;
            free(text);
            exited = s->port == 0 && tu_wait_exit(s->pid, 0, &status);
            if (s->port == 0 && !exited)
                tu_sleep_ms(10);
        }
        if (s->port != 0)
            break;
        if (!exited)
            tu_kill_group(s->pid);
        ck_assert_msg(tu_now_s() < until, "plc sim did not start");
        unlink(s->out);
        tu_sleep_ms(100);
    }
    free(opts);
}

static void sim_finish(struct sim *s, double timeout_s)
{
    int st = 0;

    ck_assert_msg(tu_wait_exit(s->pid, timeout_s, &st), "plc sim not done after %.0f s: %s",
                  timeout_s, daemon_log_tail());
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "plc sim ended with status 0x%x",
                  (unsigned)st);
    s->summary = tu_slurp(s->out, NULL);
    ck_assert_ptr_nonnull(s->summary);
}

static void sim_stop(struct sim *s)
{
    kill(s->pid, SIGTERM);
    sim_finish(s, 10);
}

/* One finished request from the simulator's JSON summary. */
struct rec {
    int line;
    unsigned seq;
    char serial[40];
    char outcome[16];
    char abuse[24];
    int result, reason;
    double latency_ms;
};

/* The records of a finished simulator (malloc'd). */
static int sim_records(const struct sim *s, struct rec **out)
{
    char *text = tu_slurp(s->json, NULL), v[64];
    const char *p;
    int n = 0, cap = 0;

    ck_assert_msg(text != NULL, "no JSON summary %s", s->json);
    *out = NULL;
    p = strstr(text, "\"records\"");
    ck_assert_ptr_nonnull(p);
    for (p = strchr(p, '['); p != NULL && *p != '\0' && *p != ']'; p++) {
        const char *e;
        struct rec *r;
        if (*p != '{')
            continue;
        e = strchr(p, '}');
        ck_assert_ptr_nonnull(e);
        if (n == cap) {
            cap = cap ? 2 * cap : 256;
            *out = realloc(*out, (size_t)cap * sizeof **out);
            ck_assert_ptr_nonnull(*out);
        }
        r = &(*out)[n++];
        memset(r, 0, sizeof *r);
        ck_assert(tu_jget(p, e, "line", v, sizeof v) == 0);
        r->line = atoi(v);
        ck_assert(tu_jget(p, e, "seq", v, sizeof v) == 0);
        r->seq = (unsigned)atoi(v);
        ck_assert(tu_jget(p, e, "serial", r->serial, sizeof r->serial) == 0);
        ck_assert(tu_jget(p, e, "outcome", r->outcome, sizeof r->outcome) == 0);
        ck_assert(tu_jget(p, e, "result", v, sizeof v) == 0);
        r->result = atoi(v);
        ck_assert(tu_jget(p, e, "reason", v, sizeof v) == 0);
        r->reason = atoi(v);
        ck_assert(tu_jget(p, e, "latency_ms", v, sizeof v) == 0);
        r->latency_ms = strtod(v, NULL);
        if (tu_jget(p, e, "abuse", r->abuse, sizeof r->abuse) != 0)
            r->abuse[0] = '\0';
        p = e;
    }
    free(text);
    return n;
}

static uint16_t mb_reg(int port, int reg)
{
    uint16_t v = 0;

    tu_mb_read(port, reg, 1, &v);
    return v;
}

/* Polls a register of line 1 until it equals want; returns the seconds it took, or -1. */
static double wait_reg(int port, int reg, uint16_t want, double timeout_s)
{
    double t0 = tu_now_s();

    while (mb_reg(port, reg) != want) {
        if (tu_now_s() - t0 > timeout_s)
            return -1;
        tu_sleep_ms(10);
    }
    return tu_now_s() - t0;
}

/* Plays line 1's PLC: one request, bounded wait for its ACK; returns the seconds it took. */
static double plc_request(int port, const char *serial, uint16_t seq, int *result, int *reason)
{
    uint16_t regs[16], ack[3] = {0, 0, 0};
    double t0 = tu_now_s();

    tu_plc_serial_regs(serial, regs);
    tu_mb_write(port, REG_SERIAL, 16, regs);
    tu_mb_write(port, REG_REQ_SEQ, 1, &seq);
    do {
        tu_sleep_ms(5);
        tu_mb_read(port, REG_ACK_SEQ, 3, ack);
    } while (ack[0] != seq && tu_now_s() - t0 < ACK_WAIT_S);
    ck_assert_msg(ack[0] == seq, "no ACK for seq %u (%s) within %.0f s: %s", seq, serial,
                  ACK_WAIT_S, daemon_log_tail());
    *result = ack[1];
    *reason = ack[2];
    return tu_now_s() - t0;
}

/* ===== 1. kill -9 of the daemon at random points ========================== */

/*
 * Rows that mean a line answered a device: issued or re-delivered.  0 while
 * the store has no schema yet: a daemon killed during its first start-up may
 * leave the file without its tables (the next start creates them).
 */
static long long answered_rows(void)
{
    if (q_int("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'audit'") == 0)
        return 0;
    return q_int("SELECT COUNT(*) FROM audit WHERE kind IN ('issued', 'redelivered')");
}

/*
 * 3 lines issue back to back; the daemon is killed at a random point and
 * restarted, over and over.  One kill in five lands during start-up (0-120
 * ms after the exec: migrations, signer start, key lookup); the others a
 * random 0-700 ms after the control socket is up, which spreads them over the
 * whole request (jig, signing, commit, install, ACK) of the requests left
 * pending by the previous kill and of new ones.  At least every fifth restart
 * waits until the lines have answered something again: the loop cannot
 * degrade into kills of a station that no longer issues.  After each restart:
 * `audit verify`, integrity_check and the jig log against the store; at the
 * end, every store-wide invariant and every line resuming.
 */
START_TEST(daemon_kill9_loop)
{
    int kills = env_int("LC_FAULT_DAEMON_KILLS", 100), startup_kills = 0, chains = 0, nr;
    int check_every = env_int("LC_FAULT_CHECK_EVERY", 1);
    double *resume = calloc((size_t)kills + 1, sizeof(double)), p50, max, t_start = tu_now_s();
    struct sim s;
    struct rec *r;
    long off = 0;
    int nresume = 0, issued = 0, redelivered_answers = 0, idle = 0, truncated = 0;

    ck_assert_ptr_nonnull(resume);
    sim_start(&s, 0, "--lines 3 --takt-ms 0 --timeout-s 120");
    for (int n = 1; n <= 3; n++)
        add_line(n, s.port, "", 5000);
    for (int k = 0; k < kills; k++) {
        long long before = answered_rows();
        double t0 = tu_now_s();
        if (rnd() % 5 == 0) {
            /* a crash during start-up */
            daemon_spawn(NULL, 1);
            tu_sleep_ms((int)(rnd() % 120));
            daemon_crash();
            startup_kills++;
            continue;
        }
        daemon_start(NULL);
        if (k % check_every == 0)
            assert_store("after a restart", 1);
        chains += assert_jig_log(&off, "after a restart", &truncated);
        {
            /* kill at a random moment; note when the lines first answered after the restart */
            double kill_at = tu_now_s() + (double)(rnd() % 700) / 1e3, first = 0;
            while (tu_now_s() < kill_at || (idle >= 4 && first == 0)) {
                if (first == 0 && answered_rows() > before)
                    first = tu_now_s();
                ck_assert_msg(tu_now_s() - t0 < 30,
                              "kill %d: no line answered within 30 s of the restart: %s", k,
                              daemon_log_tail());
                tu_sleep_ms(10);
            }
            if (first > 0)
                resume[nresume++] = (first - t0) * 1e3;
            idle = first > 0 ? 0 : idle + 1;
        }
        daemon_crash();
    }

    /* the last restart: every line resumes and answers new devices */
    daemon_start(NULL);
    {
        long long base[4];
        double until = tu_now_s() + 60;
        for (int n = 1; n <= 3; n++)
            base[n] = q_int("SELECT COUNT(*) FROM audit WHERE line = '%d' AND kind = 'issued'", n);
        for (int n = 1; n <= 3; n++)
            while (q_int("SELECT COUNT(*) FROM audit WHERE line = '%d' AND kind = 'issued'", n) <
                   base[n] + 3) {
                ck_assert_msg(tu_now_s() < until,
                              "line %d did not resume after the last restart: %s", n,
                              daemon_log_tail());
                tu_sleep_ms(20);
            }
    }
    sim_stop(&s);
    daemon_stop_clean();
    tu_reap_orphans(0);
    chains += assert_jig_log(&off, "at the end", &truncated);
    ck_assert_msg(chains > 0, "the jig logged no chain: is --log working?");
    assert_store("after the kill loop", 1);

    /* what the PLC saw: every answer is an issuance, every issued device holds its certificate */
    nr = sim_records(&s, &r);
    for (int i = 0; i < nr; i++) {
        char chain[PATH_MAX + 64];
        ck_assert_msg(strcmp(r[i].outcome, "issued") == 0, "%s (line %d): %s %d/%d after kills",
                      r[i].serial, r[i].line, r[i].outcome, r[i].result, r[i].reason);
        ck_assert_msg(q_int("SELECT COUNT(*) FROM certificates WHERE line = '%d' AND "
                            "registration_id = '%q'",
                            r[i].line, r[i].serial) == 1,
                      "%s was answered issued but has no certificate", r[i].serial);
        snprintf(chain, sizeof chain, "%s/%s.chain.pem", jigdir, r[i].serial);
        ck_assert_msg(access(chain, R_OK) == 0, "%s was answered issued but holds no chain",
                      r[i].serial);
        issued++;
    }
    redelivered_answers = (int)q_int("SELECT COUNT(*) FROM audit WHERE kind = 'redelivered'");
    p50_max(resume, nresume, &p50, &max);
    printf("fault: daemon kill -9: %d kills (%d during start-up), %d devices answered issued, "
           "%lld certificates, %d re-deliveries, %d chains checked against the log (%d cut short "
           "by the kill), lost 0; restart to first answer p50 %.0f ms max %.0f ms (%d restarts); "
           "%.0f s\n",
           kills, startup_kills, issued, q_int("SELECT COUNT(*) FROM certificates"),
           redelivered_answers, chains, truncated, p50, max, nresume, tu_now_s() - t_start);
    fflush(stdout);
    free(r);
    free(resume);
    free(s.summary);
}
END_TEST

/* ===== 2. kill -9 of the signer at random points ========================== */

/*
 * SoftHSM2 2.6.1's file store rewrites a token's token.object in place
 * (ftruncate to 0, then write) at every C_Login, and the signer logs in each
 * time it starts or reloads the module.  A kill -9 between the two leaves an
 * empty token.object: the token is gone for good ("no token matches") until
 * the file is restored.  That is SoftHSM2, not linecert (a real HSM keeps its
 * state itself), so the kill loop keeps a copy of every token.object,
 * restores it when a kill destroyed it, counts it, and then expects the
 * station to recover by itself as from any HSM loss.  tests/fault/README.md
 * has the details and the mitigation.
 */
struct token_file {
    char path[PATH_MAX + 400];
    char *data;
    size_t len;
};

static int token_files(struct token_file *tf, int cap)
{
    char tokens[PATH_MAX + 16];
    DIR *d;
    struct dirent *e;
    int n = 0;

    snprintf(tokens, sizeof tokens, "%s/tokens", pki);
    d = opendir(tokens);
    ck_assert_msg(d != NULL, "%s: %s", tokens, strerror(errno));
    while ((e = readdir(d)) != NULL && n < cap) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(tf[n].path, sizeof tf[n].path, "%s/%s/token.object", tokens, e->d_name);
        tf[n].data = tu_slurp(tf[n].path, &tf[n].len);
        if (tf[n].data != NULL && tf[n].len > 0)
            n++;
    }
    closedir(d);
    return n;
}

/* Restores every token.object a kill emptied or cut short; returns how many. */
static int token_files_repair(const struct token_file *tf, int n)
{
    int repaired = 0;

    for (int i = 0; i < n; i++) {
        struct stat st;
        char *tmp = NULL;
        FILE *f;
        if (stat(tf[i].path, &st) != 0)
            st.st_size = 0;
        else if ((size_t)st.st_size >= tf[i].len)
            continue;
        ck_assert_int_ge(asprintf(&tmp, "%s.restore", tf[i].path), 0);
        f = fopen(tmp, "w");
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(fwrite(tf[i].data, 1, tf[i].len, f), tf[i].len);
        ck_assert_int_eq(fclose(f), 0);
        ck_assert_int_eq(rename(tmp, tf[i].path), 0);
        free(tmp);
        printf("fault: SoftHSM2 token file %s was %lld bytes after a signer kill: restored\n",
               tf[i].path, (long long)st.st_size);
        fflush(stdout);
        repaired++;
    }
    return repaired;
}

/*
 * 3 lines issue back to back; the signer is killed a random 0-250 ms after
 * the daemon started a new one (so also while it loads the module, logs in
 * and looks up the keys); at least every fifth kill waits until the new
 * signer has signed something.  The daemon must start a new signer by
 * itself; a request in flight may be answered RESULT 4 signer-unavailable,
 * nothing else may go wrong.
 */
START_TEST(signer_kill9_loop)
{
    int kills = env_int("LC_FAULT_SIGNER_KILLS", 100), chains = 0, nr, faults = 0, issued = 0;
    int check_every = env_int("LC_FAULT_CHECK_EVERY", 1);
    double *back = calloc((size_t)kills + 1, sizeof(double)), p50, max, t_start = tu_now_s();
    double *restart = calloc((size_t)kills + 1, sizeof(double)), rp50, rmax;
    struct sim s;
    struct rec *r;
    long off = 0;
    pid_t last = 0;
    int nback = 0, nrestart = 0, idle = 0, ntf, destroyed = 0;
    long long at_kill = 0;
    struct token_file tf[8];

    ck_assert(back != NULL && restart != NULL);
    ntf = token_files(tf, 8);
    ck_assert_int_gt(ntf, 0);
    sim_start(&s, 0, "--lines 3 --takt-ms 0 --timeout-s 60");
    for (int n = 1; n <= 3; n++)
        add_line(n, s.port, "", 5000);
    daemon_start(NULL);
    for (int k = 0; k < kills; k++) {
        double t0 = tu_now_s(), kill_at, first = 0;
        pid_t sig;
        while ((sig = signer_of(daemon_pid)) == 0 || sig == last) {
            ck_assert_msg(tu_now_s() - t0 < 20, "kill %d: no new signer within 20 s: %s", k,
                          daemon_log_tail());
            tu_sleep_ms(2);
        }
        if (k > 0)
            restart[nrestart++] = (tu_now_s() - t0) * 1e3;
        /* kill at a random moment; note when something was signed again */
        kill_at = tu_now_s() + (double)(rnd() % 250) / 1e3;
        while (tu_now_s() < kill_at || (idle >= 4 && first == 0)) {
            if (first == 0 && answered_rows() > at_kill)
                first = tu_now_s();
            ck_assert_msg(tu_now_s() - t0 < 20, "kill %d: nothing issued within 20 s: %s", k,
                          daemon_log_tail());
            tu_sleep_ms(5);
        }
        if (first > 0 && k > 0)
            back[nback++] = (first - t0) * 1e3;
        idle = first > 0 ? 0 : idle + 1;
        ck_assert_int_eq(kill(sig, SIGKILL), 0);
        last = sig;
        {
            pid_t pp;
            char state = 0;
            while (tu_proc_stat(sig, &pp, &state, NULL) && state != 'Z')
                tu_sleep_ms(1); /* dead before its token file is looked at */
        }
        destroyed += token_files_repair(tf, ntf);
        at_kill = answered_rows();
        chains += assert_jig_log(&off, "after a signer kill", NULL);
        if (k % check_every == 0)
            assert_store("after a signer kill", 1);
    }
    sim_stop(&s);
    daemon_stop_clean();
    tu_reap_orphans(0);
    chains += assert_jig_log(&off, "at the end", NULL);
    ck_assert_msg(chains > 0, "the jig logged no chain: is --log working?");
    assert_store("after the signer kill loop", 1);
    nr = sim_records(&s, &r);
    for (int i = 0; i < nr; i++) {
        if (strcmp(r[i].outcome, "issued") == 0) {
            issued++;
            ck_assert_msg(q_int("SELECT COUNT(*) FROM certificates WHERE registration_id = '%q'",
                                r[i].serial) == 1,
                          "%s answered issued without a certificate", r[i].serial);
            continue;
        }
        /* hsm-unavailable only while a destroyed SoftHSM2 token file was being restored */
        ck_assert_msg(r[i].result == RESULT_FAULT &&
                          (r[i].reason == REASON_SIGNER_UNAVAILABLE ||
                           (destroyed > 0 && r[i].reason == REASON_HSM_UNAVAILABLE)),
                      "%s (line %d): %s RESULT %d REASON %d", r[i].serial, r[i].line, r[i].outcome,
                      r[i].result, r[i].reason);
        ck_assert_msg(q_int("SELECT COUNT(*) FROM certificates WHERE registration_id = '%q'",
                            r[i].serial) == 0,
                      "%s answered fault but a certificate exists", r[i].serial);
        faults++;
    }
    p50_max(back, nback, &p50, &max);
    p50_max(restart, nrestart, &rp50, &rmax);
    printf("fault: signer kill -9: %d kills, %d issued, %d answered signer-unavailable or "
           "hsm-unavailable, %d chains checked, lost 0; SoftHSM2 token file destroyed by a kill "
           "(restored) %d times; kill to new signer p50 %.0f ms max %.0f ms, to the next answer "
           "p50 %.0f ms max %.0f ms; %.0f s\n",
           kills, issued, faults, chains, destroyed, rp50, rmax, p50, max, tu_now_s() - t_start);
    for (int i = 0; i < ntf; i++)
        free(tf[i].data);
    fflush(stdout);
    free(r);
    free(back);
    free(restart);
    free(s.summary);
}
END_TEST

/* ===== 3. the HSM token goes away and comes back ========================== */

/*
 * One line, the PLC played here.  A request is issued; the token goes away
 * (pull() and put_back() say how); the very next request must be RESULT 4
 * hsm-unavailable with STATION_STATE 2, and a second one too, with nothing
 * signed (the signer's counter does not move, no chain reaches the jig).
 * The token comes back: without any restart, a request is issued within
 * seconds.  Returns the seconds from the token's return to an issuance.
 */
static double hsm_loss(void (*pull)(void), void (*put_back)(void), const char *what)
{
    struct sim s;
    int result, reason, tries = 0;
    long long sigs;
    double t_back, took;
    char serial[40];
    uint16_t seq = 1;
    pid_t signer = 0;

    sim_start(&s, 0, "--lines 1 --hold");
    add_line(1, s.port, "", 5000);
    daemon_start(NULL);
    plc_request(s.port, "HSM-000001", seq++, &result, &reason);
    ck_assert_msg(result == RESULT_ISSUED, "before the fault: RESULT %d REASON %d", result, reason);
    sigs = signer_signatures(&signer);

    pull();
    for (int i = 2; i <= 3; i++) {
        snprintf(serial, sizeof serial, "HSM-%06d", i);
        plc_request(s.port, serial, seq++, &result, &reason);
        ck_assert_msg(result == RESULT_FAULT && reason == REASON_HSM_UNAVAILABLE,
                      "%s: request %d while the token is gone: RESULT %d REASON %d: %s", what, i,
                      result, reason, daemon_log_tail());
        ck_assert_msg(wait_reg(s.port, REG_STATION_STATE, STATE_HSM_FAULT, 2.0) >= 0,
                      "%s: STATION_STATE is %u, not 2, after RESULT 4/20", what,
                      mb_reg(s.port, REG_STATION_STATE));
        ck_assert_int_eq(jig_received(serial), 0);
    }
    {
        long long now_sigs = signer_signatures(&signer);
        ck_assert_msg(now_sigs == sigs,
                      "%s: the signer signed while the token was gone (%lld signatures, %lld "
                      "before): %s",
                      what, now_sigs, sigs, daemon_log_tail());
    }
    ck_assert_int_eq(q_int("SELECT COUNT(*) FROM certificates"), 1);
    ck_assert_int_eq(q_int("SELECT COUNT(*) FROM audit WHERE kind = 'fault' AND reason = "
                           "'hsm-unavailable' AND registration_id LIKE 'HSM-%%'"),
                     2);

    put_back();
    t_back = tu_now_s();
    for (;;) {
        snprintf(serial, sizeof serial, "HSM-%06d", 10 + tries++);
        plc_request(s.port, serial, seq++, &result, &reason);
        if (result == RESULT_ISSUED)
            break;
        ck_assert_msg(result == RESULT_FAULT && reason == REASON_HSM_UNAVAILABLE,
                      "%s: after the token's return: RESULT %d REASON %d", what, result, reason);
        ck_assert_msg(tu_now_s() - t_back < 10,
                      "%s: nothing issued within 10 s of the token's return", what);
        tu_sleep_ms(100);
    }
    took = tu_now_s() - t_back;
    ck_assert_msg(took < 5, "%s: issuance resumed only after %.1f s", what, took);
    ck_assert_msg(wait_reg(s.port, REG_STATION_STATE, STATE_OK, 2.0) >= 0,
                  "%s: STATION_STATE %u after recovery", what, mb_reg(s.port, REG_STATION_STATE));
    ck_assert_msg(daemon_pid > 0 && kill(daemon_pid, 0) == 0, "the daemon is gone");
    sim_stop(&s);
    daemon_stop_clean();
    assert_store(what, 1);
    printf("fault: HSM loss (%s): 2 requests answered 4/20 with STATION_STATE 2, 0 signatures "
           "while gone, issuance back %.2f s after the token (%d request(s)), no restart\n",
           what, took, tries);
    fflush(stdout);
    free(s.summary);
    return took;
}

static char p11_ctl[PATH_MAX + 16];

static void shim_pull(void)
{
    touch(p11_ctl, getenv("LC_FAULT_P11_MODE"));
}

static void shim_put_back(void)
{
    ck_assert_int_eq(unlink(p11_ctl), 0);
}

static void use_p11_shim(const char *mode)
{
    snprintf(p11_ctl, sizeof p11_ctl, "%s/token-gone", dir);
    setenv("LC_FAULT_P11_REAL", softhsm, 1);
    setenv("LC_FAULT_P11_CTL", p11_ctl, 1);
    setenv("LC_FAULT_P11_MODE", mode, 1);
    set_module(LC_FAULT_P11_SHIM);
}

START_TEST(hsm_shim_device_removed)
{
    use_p11_shim("device-removed\n");
    hsm_loss(shim_pull, shim_put_back, "PKCS#11 shim, CKR_DEVICE_REMOVED");
}
END_TEST

START_TEST(hsm_shim_session_handle_invalid)
{
    use_p11_shim("session-invalid\n");
    hsm_loss(shim_pull, shim_put_back, "PKCS#11 shim, CKR_SESSION_HANDLE_INVALID");
}
END_TEST

static void tokens_away(void)
{
    char tokens[PATH_MAX + 64], away[PATH_MAX + 64];

    snprintf(tokens, sizeof tokens, "%s/tokens", pki);
    snprintf(away, sizeof away, "%s/tokens.away", pki);
    ck_assert_int_eq(rename(tokens, away), 0);
}

static void tokens_back(void)
{
    char tokens[PATH_MAX + 64], away[PATH_MAX + 64];

    snprintf(tokens, sizeof tokens, "%s/tokens", pki);
    snprintf(away, sizeof away, "%s/tokens.away", pki);
    ck_assert_int_eq(rename(away, tokens), 0);
}

START_TEST(hsm_token_directory_moved)
{
    hsm_loss(tokens_away, tokens_back, "SoftHSM2 token folder moved away");
}
END_TEST

/* ===== 4. the audit store cannot be written ================================ */

static char vfs_ctl[PATH_MAX + 16], vfs_full[PATH_MAX + 16], vfs_log[PATH_MAX + 16];
static char env_preload[PATH_MAX + 32], env_db[PATH_MAX + 64], env_ctl[PATH_MAX + 64],
    env_full[PATH_MAX + 64], env_log[PATH_MAX + 64], env_asan[1024];

/* The daemon's environment with the VFS shim preloaded. */
static char **vfs_env(void)
{
    static char *env[8];
    const char *asan = getenv("ASAN_OPTIONS");

    snprintf(vfs_ctl, sizeof vfs_ctl, "%s/vfs.ctl", dir);
    snprintf(vfs_full, sizeof vfs_full, "%s/disk-full", dir);
    snprintf(vfs_log, sizeof vfs_log, "%s/vfs.log", dir);
    snprintf(env_preload, sizeof env_preload, "LD_PRELOAD=%s", LC_FAULT_VFS_SHIM);
    snprintf(env_db, sizeof env_db, "LC_FAULT_VFS_DB=%s", db);
    snprintf(env_ctl, sizeof env_ctl, "LC_FAULT_VFS_CTL=%s", vfs_ctl);
    snprintf(env_full, sizeof env_full, "LC_FAULT_VFS_FULL=%s", vfs_full);
    snprintf(env_log, sizeof env_log, "LC_FAULT_VFS_LOG=%s", vfs_log);
    /* the shim comes before the sanitizer runtime in the preload order: tell ASan that is fine */
    snprintf(env_asan, sizeof env_asan, "ASAN_OPTIONS=%s%sverify_asan_link_order=0",
             asan ? asan : "", asan && *asan ? ":" : "");
    env[0] = env_preload;
    env[1] = env_db;
    env[2] = env_ctl;
    env[3] = env_full;
    env[4] = env_log;
    env[5] = env_asan;
    env[6] = NULL;
    return env;
}

/* One counted call of the shim's log. */
struct vcall {
    char op[16], file[16], result[16];
};

/* The calls logged since *off (advanced); *out malloc'd. */
static int vfs_calls(long *off, struct vcall **out)
{
    size_t len = 0;
    char *text = tu_slurp(vfs_log, &len), *p, *nl;
    int n = 0, cap = 0;

    *out = NULL;
    if (text == NULL)
        return 0;
    for (p = text + *off; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
        struct vcall c;
        unsigned long k;
        *nl = '\0';
        if (sscanf(p, "%lu %15s %15s %15s", &k, c.op, c.file, c.result) != 4)
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            *out = realloc(*out, (size_t)cap * sizeof **out);
            ck_assert_ptr_nonnull(*out);
        }
        (*out)[n++] = c;
    }
    *off = p - text;
    free(text);
    return n;
}

/* Waits until the shim's log has been quiet for 150 ms (the ACK row is written after the ACK). */
static void vfs_settle(void)
{
    struct stat st;
    off_t last = -1;
    double quiet = tu_now_s();

    while (tu_now_s() - quiet < 0.15) {
        if (stat(vfs_log, &st) == 0 && st.st_size != last) {
            last = st.st_size;
            quiet = tu_now_s();
        }
        tu_sleep_ms(10);
    }
}

/* Waits for the daemon to write the row that closes an audit-store fault; returns seconds. */
static double wait_audit_recovered(long long gaps_before, const char *what)
{
    double t0 = tu_now_s();

    while (q_int("SELECT COUNT(*) FROM audit WHERE kind = 'fault' AND reason = "
                 "'audit-unavailable' AND detail LIKE 'audit store writable again%%'") <=
           gaps_before) {
        ck_assert_msg(tu_now_s() - t0 < 10, "%s: the audit store fault did not clear in 10 s: %s",
                      what, daemon_log_tail());
        tu_sleep_ms(10);
    }
    return tu_now_s() - t0;
}

static long long gap_rows(void)
{
    return q_int("SELECT COUNT(*) FROM audit WHERE kind = 'fault' AND reason = "
                 "'audit-unavailable' AND detail LIKE 'audit store writable again%%'");
}

/*
 * The SQLite way: count the counted calls (xWrite, xSync, xTruncate on the
 * store's files) one issuance makes, then for N = 1..that count run one
 * issuance with its N-th call failing: EIO for odd N and ENOSPC for even N,
 * or both for every N with LC_FAULT_IO_BOTH (soak.sh).  A call that fails
 * before the commit's WAL sync succeeded must give RESULT 4 audit-unavailable
 * and release nothing; one after it (the ACK row) changes nothing for the
 * device.  Each time the log must stay valid and the station recover by
 * itself (the row recording the gap, then the next issuance).
 */
START_TEST(audit_nth_write_fails)
{
    static const char *const modes[] = {"eio", "enospc"};
    struct sim s;
    struct vcall *c = NULL;
    int result, reason, ncalls, counter = 1, both = env_int("LC_FAULT_IO_BOTH", 0);
    int runs = 0, failed_runs = 0, fired_after = 0, unfired = 0;
    double rec[128], p50, max, t_start = tu_now_s();
    int nrec = 0;
    long off = 0;
    uint16_t seq = 1;
    char serial[40], ops[512] = "";

    sim_start(&s, 0, "--lines 1 --hold");
    add_line(1, s.port, "", 5000);
    daemon_start(vfs_env());
    snprintf(serial, sizeof serial, "IO-%06d", counter++);
    plc_request(s.port, serial, seq++, &result, &reason);
    ck_assert_int_eq(result, RESULT_ISSUED);
    vfs_settle();

    /* the calls of one issuance, from the trigger to the ACK row */
    touch(vfs_ctl, "0 count\n");
    vfs_calls(&off, &c);
    free(c);
    snprintf(serial, sizeof serial, "IO-%06d", counter++);
    plc_request(s.port, serial, seq++, &result, &reason);
    ck_assert_int_eq(result, RESULT_ISSUED);
    vfs_settle();
    ncalls = vfs_calls(&off, &c);
    ck_assert_msg(ncalls >= 2, "only %d counted calls in an issuance: is the shim loaded?", ncalls);
    ck_assert_msg(ncalls < 100, "%d counted calls in one issuance", ncalls);
    for (int i = 0; i < ncalls; i++)
        snprintf(ops + strlen(ops), sizeof ops - strlen(ops), "%s%s:%s", i ? " " : "", c[i].op,
                 c[i].file);
    free(c);

    for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
        for (int n = 1; n <= ncalls; n++) {
            /* CI: EIO for odd N, ENOSPC for even N; soak.sh (LC_FAULT_IO_BOTH): both for every N */
            if (!both && (size_t)(n % 2 == 0) != m)
                continue;
            char arm[64];
            int fired = -1, synced = -1, nc;
            char seen[2048];
            long long gaps = gap_rows(), certs = q_int("SELECT COUNT(*) FROM certificates");
            /* the calls before this run (the row that closed the last fault) are not its calls */
            vfs_settle();
            vfs_calls(&off, &c);
            free(c);
            snprintf(arm, sizeof arm, "%d %s\n", n, modes[m]);
            touch(vfs_ctl, arm);
            snprintf(serial, sizeof serial, "IO-%06d", counter++);
            plc_request(s.port, serial, seq++, &result, &reason);
            vfs_settle();
            nc = vfs_calls(&off, &c);
            seen[0] = '\0';
            for (int i = 0; i < nc; i++)
                snprintf(seen + strlen(seen), sizeof seen - strlen(seen), " %s:%s:%s", c[i].op,
                         c[i].file, c[i].result);
            for (int i = 0; i < nc; i++) {
                if (strcmp(c[i].result, "ok") != 0 && fired < 0)
                    fired = i;
                if (strcmp(c[i].op, "xSync") == 0 && strcmp(c[i].file, "wal") == 0 &&
                    strcmp(c[i].result, "ok") == 0 && synced < 0)
                    synced = i;
            }
            free(c);
            runs++;
            if (fired >= 0 && (synced < 0 || synced > fired)) {
                /* the commit failed: nothing may reach the device, the PLC gets the fault */
                ck_assert_msg(
                    result == RESULT_FAULT && reason == REASON_AUDIT_UNAVAILABLE,
                    "call %d (%s) failing before the commit: RESULT %d REASON %d; calls%s: "
                    "%s",
                    n, modes[m], result, reason, seen, daemon_log_tail());
                ck_assert_msg(jig_received(serial) == 0,
                              "call %d (%s) failed but the device received a chain", n, modes[m]);
                ck_assert_int_eq(q_int("SELECT COUNT(*) FROM certificates"), certs);
                rec[nrec < 128 ? nrec++ : 127] = wait_audit_recovered(gaps, arm);
                failed_runs++;
            } else {
                /* the fault hit the ACK row or nothing: the device got its certificate */
                ck_assert_msg(
                    result == RESULT_ISSUED,
                    "call %d (%s) failing after the commit: RESULT %d REASON %d; calls%s: "
                    "%s",
                    n, modes[m], result, reason, seen, daemon_log_tail());
                ck_assert_int_eq(jig_received(serial), 1);
                if (fired >= 0)
                    fired_after++;
                else
                    unfired++; /* the issuance made fewer calls this time */
            }
            unlink(vfs_ctl);
            assert_integrity();
            assert_audit_verifies(arm);
        }
    }
    /* no fault armed: the next device is issued as usual */
    snprintf(serial, sizeof serial, "IO-%06d", counter++);
    plc_request(s.port, serial, seq++, &result, &reason);
    ck_assert_int_eq(result, RESULT_ISSUED);
    sim_stop(&s);
    daemon_stop_clean();
    {
        long jo = 0;
        assert_jig_log(&jo, "after the audit I/O faults", NULL);
    }
    assert_store("after the audit I/O faults", 1);
    p50_max(rec, nrec, &p50, &max);
    printf(
        "fault: audit store N-th call fails: %d calls per issuance (%s); %d runs (N = 1..%d, %s): "
        "%d refused to release (RESULT 4/22), %d failed after the commit (issued), %d did not "
        "fire, lost 0; recovery p50 %.2f s max %.2f s; %.0f s\n",
        ncalls, ops, runs, ncalls, both ? "EIO and ENOSPC each" : "EIO odd, ENOSPC even",
        failed_runs, fired_after, unfired, p50, max, tu_now_s() - t_start);
    fflush(stdout);
    free(s.summary);
}
END_TEST

/*
 * The disk fills up: the next request is RESULT 4 audit-unavailable, the
 * station shows STATION_STATE 3 and signs nothing more; space comes back:
 * the gap is recorded and issuance resumes, without a restart.
 */
START_TEST(audit_disk_full_single)
{
    struct sim s;
    int result, reason;
    long long sigs;
    double t_back, took, t_full;
    char *st, v[16];
    pid_t signer = 0;

    sim_start(&s, 0, "--lines 1 --hold");
    add_line(1, s.port, "", 5000);
    daemon_start(vfs_env());
    plc_request(s.port, "FULL-000001", 1, &result, &reason);
    ck_assert_int_eq(result, RESULT_ISSUED);

    touch(vfs_full, "");
    t_full = tu_now_s();
    plc_request(s.port, "FULL-000002", 2, &result, &reason);
    ck_assert_msg(result == RESULT_FAULT && reason == REASON_AUDIT_UNAVAILABLE,
                  "disk full: RESULT %d REASON %d", result, reason);
    ck_assert_msg(wait_reg(s.port, REG_STATION_STATE, STATE_AUDIT_FAULT, 2.0) >= 0,
                  "disk full: STATION_STATE %u", mb_reg(s.port, REG_STATION_STATE));
    st = status_json();
    status_field(st, "\"audit\"", "ok", v, sizeof v);
    ck_assert_str_eq(v, "false");
    free(st);
    sigs = signer_signatures(&signer);
    plc_request(s.port, "FULL-000003", 3, &result, &reason);
    ck_assert_msg(result == RESULT_FAULT && reason == REASON_AUDIT_UNAVAILABLE,
                  "disk still full: RESULT %d REASON %d", result, reason);
    ck_assert_msg(signer_signatures(&signer) == sigs, "the signer signed while the store was full");
    ck_assert_int_eq(jig_received("FULL-000002") + jig_received("FULL-000003"), 0);
    ck_assert_int_eq(q_int("SELECT COUNT(*) FROM certificates"), 1);
    tu_sleep_ms(600); /* more failing probes: STATION_STATE must stay 3 */
    ck_assert_int_eq(mb_reg(s.port, REG_STATION_STATE), STATE_AUDIT_FAULT);

    ck_assert_int_eq(unlink(vfs_full), 0);
    t_back = tu_now_s();
    ck_assert_msg(wait_reg(s.port, REG_STATION_STATE, STATE_OK, 5.0) >= 0,
                  "STATION_STATE %u 5 s after space came back", mb_reg(s.port, REG_STATION_STATE));
    took = tu_now_s() - t_back;
    ck_assert_int_eq(gap_rows(), 1);
    plc_request(s.port, "FULL-000004", 4, &result, &reason);
    ck_assert_int_eq(result, RESULT_ISSUED);
    sim_stop(&s);
    daemon_stop_clean();
    assert_store("after a full disk", 1);
    printf(
        "fault: disk full (one line): 2 requests answered 4/22, STATION_STATE 3 while full (%.1f "
        "s), 0 signatures while full, lost 0; STATION_STATE 0 %.2f s after space returned\n",
        t_back - t_full, took);
    fflush(stdout);
    free(s.summary);
}
END_TEST

/*
 * The disk fills up and empties again, several times, while 3 lines issue
 * back to back: every answer is issued or 4/22, every chain the devices got
 * has its row, and issuance resumes after each time.
 */
START_TEST(audit_disk_full_under_load)
{
    int cycles = env_int("LC_FAULT_DISK_CYCLES", 3), nr, issued = 0, faults = 0, chains;
    double took[64], p50, max;
    struct sim s;
    struct rec *r;
    long off = 0;

    sim_start(&s, 0, "--lines 3 --takt-ms 0 --timeout-s 60");
    for (int n = 1; n <= 3; n++)
        add_line(n, s.port, "", 5000);
    daemon_start(vfs_env());
    for (int k = 0; k < cycles && k < 64; k++) {
        long long before = answered_rows(), gaps = gap_rows();
        double t0 = tu_now_s();
        while (answered_rows() < before + 5) {
            ck_assert_msg(tu_now_s() - t0 < 20, "cycle %d: issuance did not resume: %s", k,
                          daemon_log_tail());
            tu_sleep_ms(10);
        }
        touch(vfs_full, "");
        tu_sleep_ms(600 + (int)(rnd() % 600));
        ck_assert_int_eq(unlink(vfs_full), 0);
        took[k] = wait_audit_recovered(gaps, "disk full under load");
    }
    {
        long long before = answered_rows();
        double t0 = tu_now_s();
        while (answered_rows() < before + 5) {
            ck_assert_msg(tu_now_s() - t0 < 20, "issuance did not resume: %s", daemon_log_tail());
            tu_sleep_ms(10);
        }
    }
    sim_stop(&s);
    daemon_stop_clean();
    tu_reap_orphans(0);
    chains = assert_jig_log(&off, "after full disks", NULL);
    assert_store("after full disks under load", 1);
    nr = sim_records(&s, &r);
    for (int i = 0; i < nr; i++) {
        if (r[i].result == RESULT_ISSUED) {
            issued++;
            continue;
        }
        ck_assert_msg(r[i].result == RESULT_FAULT && r[i].reason == REASON_AUDIT_UNAVAILABLE,
                      "%s: %s RESULT %d REASON %d", r[i].serial, r[i].outcome, r[i].result,
                      r[i].reason);
        ck_assert_int_eq(jig_received(r[i].serial), 0);
        faults++;
    }
    ck_assert_msg(faults > 0, "no request met the full disk");
    p50_max(took, cycles, &p50, &max);
    printf("fault: disk full under load (3 lines): %d fill/free cycles, %d issued, %d answered "
           "4/22, %d chains checked, lost 0; gap row written p50 %.2f s max %.2f s after space "
           "returned\n",
           cycles, issued, faults, chains, p50, max);
    fflush(stdout);
    free(r);
    free(s.summary);
}
END_TEST

/* ===== 5. a PLC that breaks the rules ====================================== */

/*
 * Three lines, every request with probability 0.3 abused: sequence jumps and
 * reuse, the previous device presented again, a lost ACK, a non-printable
 * serial; and scribbles over the station's registers and dropped connections
 * in between.  Every request is answered in bounded time with what the
 * abuse deserves, no device gets two certificates, nothing is released
 * unaudited; then a well-behaved PLC on the same port is served normally.
 */
START_TEST(plc_abuse)
{
    int per_line = env_int("LC_FAULT_PLC_REQUESTS", 30), nr, counts[8] = {0}, chains;
    struct sim s, clean;
    struct rec *r;
    long off = 0;
    double maxlat = 0, t_start = tu_now_s();
    char opts[200];

    snprintf(opts, sizeof opts,
             "--lines 3 --takt-ms 0 --count %d --timeout-s 20 --verbose --abuse seq-jump,seq-reuse,"
             "serial-repeat,ack-loss,bad-serial,random-writes,drop --abuse-rate 0.3 --seed %llu",
             per_line, (unsigned long long)seed);
    sim_start(&s, 0, "%s", opts);
    for (int n = 1; n <= 3; n++)
        add_line(n, s.port, "", 5000);
    daemon_start(NULL);
    sim_finish(&s, 60 + per_line * 3.0);
    nr = sim_records(&s, &r);
    ck_assert_int_eq(nr, 3 * per_line);
    for (int i = 0; i < nr; i++) {
        const char *a = r[i].abuse;
        ck_assert_msg(strcmp(r[i].outcome, "timeout") != 0 && strcmp(r[i].outcome, "invalid") != 0,
                      "%s (line %d, abuse '%s'): %s", r[i].serial, r[i].line, a, r[i].outcome);
        if (r[i].latency_ms > maxlat)
            maxlat = r[i].latency_ms;
        if (strcmp(a, "bad-serial") == 0) {
            ck_assert_msg(r[i].result == RESULT_REFUSED && r[i].reason == REASON_SERIAL_INVALID,
                          "bad serial on line %d seq %u: RESULT %d REASON %d", r[i].line, r[i].seq,
                          r[i].result, r[i].reason);
            counts[0]++;
        } else if (strcmp(a, "serial-repeat") == 0) {
            /* the device already holds its certificate: refused as a duplicate, or re-delivered */
            ck_assert_msg(r[i].result == RESULT_ISSUED ||
                              (r[i].result == RESULT_REFUSED && r[i].reason == REASON_CN_DUPLICATE),
                          "%s presented again: RESULT %d REASON %d", r[i].serial, r[i].result,
                          r[i].reason);
            counts[1]++;
        } else {
            ck_assert_msg(r[i].result == RESULT_ISSUED,
                          "%s (line %d, abuse '%s'): RESULT %d "
                          "REASON %d",
                          r[i].serial, r[i].line, a, r[i].result, r[i].reason);
            counts[2] += a[0] != '\0';
        }
        if (r[i].result == RESULT_ISSUED)
            ck_assert_msg(q_int("SELECT COUNT(*) FROM certificates WHERE line = '%d' AND "
                                "registration_id = '%q'",
                                r[i].line, r[i].serial) == 1,
                          "%s answered issued: no certificate", r[i].serial);
    }
    ck_assert_msg(maxlat < 15000, "a request took %.0f ms", maxlat);
    /* each bad serial refused once, and audited as a refusal with its reason */
    ck_assert_int_eq(q_int("SELECT COUNT(*) FROM audit WHERE kind = 'refused' AND reason = "
                           "'serial-invalid' AND detail LIKE 'DEVICE_SERIAL%%'"),
                     counts[0]);
    /* as many certificates as distinct devices answered issued */
    for (int n = 1; n <= 3; n++) {
        int distinct = 0;
        for (int i = 0; i < nr; i++) {
            int dup = 0;
            if (r[i].line != n || r[i].result != RESULT_ISSUED)
                continue;
            for (int j = 0; j < i && !dup; j++)
                dup = r[j].line == n && r[j].result == RESULT_ISSUED &&
                      strcmp(r[j].serial, r[i].serial) == 0;
            distinct += !dup;
        }
        ck_assert_int_eq(q_int("SELECT COUNT(*) FROM certificates WHERE line = '%d'", n), distinct);
    }
    {
        char *err = tu_slurp(s.err, NULL);
        const char *p = err;
        while (p != NULL && (p = strstr(p, "abuse random-writes")) != NULL) {
            counts[3]++;
            p++;
        }
        for (p = err; p != NULL && (p = strstr(p, "abuse drop")) != NULL; p++)
            counts[4]++;
        free(err);
    }

    /* a well-behaved PLC on the same port: served as usual */
    sim_start(&clean, s.port,
              "--lines 3 --takt-ms 0 --count 5 --first-counter 900000 "
              "--timeout-s 20");
    sim_finish(&clean, 60);
    {
        struct rec *cr;
        int cn = sim_records(&clean, &cr);
        ck_assert_int_eq(cn, 15);
        for (int i = 0; i < cn; i++)
            ck_assert_msg(cr[i].result == RESULT_ISSUED, "after the abuse: %s RESULT %d REASON %d",
                          cr[i].serial, cr[i].result, cr[i].reason);
        free(cr);
    }
    daemon_stop_clean();
    tu_reap_orphans(0);
    chains = assert_jig_log(&off, "after PLC abuse", NULL);
    ck_assert_msg(chains > 0, "the jig logged no chain: is --log working?");
    assert_store("after PLC abuse", 0);
    printf("fault: PLC abuse: %d requests on 3 lines (seed %llu): %d bad serials refused 3/12, "
           "%d repeated devices (no second certificate), %d other abused requests issued, "
           "%d register scribbles, %d connection drops; max latency %.0f ms, %d chains checked, "
           "lost 0; %.0f s\n",
           nr, (unsigned long long)seed, counts[0], counts[1], counts[2], counts[3], counts[4],
           maxlat, chains, tu_now_s() - t_start);
    fflush(stdout);
    free(r);
    free(s.summary);
    free(clean.summary);
}
END_TEST

/* ===== 6. a jig that misbehaves ============================================ */

/* One jig behaviour, through --mode-file, and what the PLC must be told. */
struct jig_case {
    const char *name;
    const char *options; /* the mode file's contents; NULL: none */
    int result, reason;
    const char *reason_name; /* of the audit row, docs/policy.md */
    int certificate;         /* whether a certificate exists afterwards */
};

static const struct jig_case JIG_CASES[] = {
    {"normal", NULL, RESULT_ISSUED, 0, NULL, 1},
    {"huge (8 MiB)", "--huge", RESULT_FAULT, REASON_JIG_OUTPUT, "jig-output", 0},
    {"garbage (100 KiB)", "--garbage", RESULT_FAULT, REASON_JIG_OUTPUT, "jig-output", 0},
    {"garbage (2 KB)", "--garbage --garbage-bytes 2000", RESULT_REFUSED, REASON_MALFORMED,
     "malformed", 0},
    {"never-ending output", "--endless", RESULT_FAULT, REASON_JIG_OUTPUT, "jig-output", 0},
    {"slow (1 byte / 20 ms)", "--slow", RESULT_FAULT, REASON_JIG_TIMEOUT, "jig-timeout", 0},
    {"answer, stdout never closes", "--linger", RESULT_FAULT, REASON_JIG_TIMEOUT, "jig-timeout", 0},
    {"hang", "--hang", RESULT_FAULT, REASON_JIG_TIMEOUT, "jig-timeout", 0},
    {"install fails", "--fail-install", RESULT_FAULT, REASON_INSTALL_FAILED, "install-failed", 1},
    {"normal again", NULL, RESULT_ISSUED, 0, NULL, 1},
};

/*
 * Each behaviour in turn, on one line with jig_timeout_ms 1000: the PLC is
 * answered within the timeout plus a margin with the right reason, no jig
 * process is left behind, a certificate exists only where the table says
 * (and then it was audited), and the line goes on with the next device.
 */
START_TEST(jig_abuse)
{
    int rounds = env_int("LC_FAULT_JIG_ROUNDS", 2), result, reason, k = 0;
    char mode[PATH_MAX + 16], opts[PATH_MAX + 32], serial[40];
    double worst[sizeof JIG_CASES / sizeof JIG_CASES[0]] = {0};
    struct sim s;
    uint16_t seq = 1;
    long off = 0;

    snprintf(mode, sizeof mode, "%s/jm", dir);
    snprintf(opts, sizeof opts, " --mode-file %s", mode);
    sim_start(&s, 0, "--lines 1 --hold");
    add_line(1, s.port, opts, JIG_TIMEOUT);
    daemon_start(NULL);
    for (int round = 0; round < rounds; round++) {
        for (size_t i = 0; i < sizeof JIG_CASES / sizeof JIG_CASES[0]; i++) {
            const struct jig_case *jc = &JIG_CASES[i];
            double took, until;
            if (jc->options != NULL)
                touch(mode, jc->options);
            else
                unlink(mode);
            snprintf(serial, sizeof serial, "JIG-%06d", ++k);
            took = plc_request(s.port, serial, seq++, &result, &reason);
            ck_assert_msg(result == jc->result && reason == jc->reason,
                          "jig %s: RESULT %d REASON %d, expected %d/%d: %s", jc->name, result,
                          reason, jc->result, jc->reason, daemon_log_tail());
            ck_assert_msg(took < JIG_TIMEOUT / 1000.0 * 2 + 2.0, "jig %s: answered after %.1f s",
                          jc->name, took);
            if (took > worst[i])
                worst[i] = took;
            ck_assert_int_eq(
                q_int("SELECT COUNT(*) FROM certificates WHERE registration_id = '%q'", serial),
                jc->certificate);
            /* the reason in the log too, with a detail that says what went wrong */
            if (jc->reason_name != NULL && result == RESULT_FAULT)
                ck_assert_msg(q_int("SELECT COUNT(*) FROM audit WHERE kind = 'fault' AND "
                                    "registration_id = '%q' AND reason = '%q' AND "
                                    "length(detail) > 10",
                                    serial, jc->reason_name) == 1,
                              "jig %s: no fault row %s for %s", jc->name, jc->reason_name, serial);
            if (jc->reason_name != NULL && result == RESULT_REFUSED)
                ck_assert_msg(q_int("SELECT COUNT(*) FROM audit WHERE kind = 'refused' AND "
                                    "reason = '%q' AND seq = (SELECT MAX(seq) FROM audit)",
                                    jc->reason_name) == 1,
                              "jig %s: the last row is not a refusal %s", jc->name,
                              jc->reason_name);
            if (result == RESULT_FAULT)
                ck_assert_msg(wait_reg(s.port, REG_STATION_STATE, STATE_JIG_FAULT, 2.0) >= 0,
                              "jig %s: STATION_STATE %u", jc->name,
                              mb_reg(s.port, REG_STATION_STATE));
            /* the jig program and anything it started are gone */
            until = tu_now_s() + 2;
            while (tu_count_procs_with(jigdir, serial) > 0 && tu_now_s() < until)
                tu_sleep_ms(10);
            ck_assert_msg(tu_count_procs_with(jigdir, serial) == 0,
                          "jig %s: a jig process for %s outlived its request", jc->name, serial);
        }
    }
    sim_stop(&s);
    daemon_stop_clean();
    tu_reap_orphans(0);
    assert_jig_log(&off, "after jig abuse", NULL);
    assert_store("after jig abuse", 1);
    printf("fault: jig abuse: %d rounds x %zu behaviours, lost 0; slowest answer per behaviour:",
           rounds, sizeof JIG_CASES / sizeof JIG_CASES[0]);
    for (size_t i = 0; i < sizeof JIG_CASES / sizeof JIG_CASES[0]; i++)
        printf("%s %s %.2f s", i ? ";" : "", JIG_CASES[i].name, worst[i]);
    printf("\n");
    fflush(stdout);
    free(s.summary);
}
END_TEST

/* ---- the suite ----------------------------------------------------------- */

static Suite *fault_suite(void)
{
    Suite *s = suite_create("fault");
    TCase *kills = tcase_create("kill -9 loops");
    TCase *hsm = tcase_create("HSM loss");
    TCase *audit = tcase_create("audit store failure");
    TCase *abuse = tcase_create("PLC and jig abuse");
    int kill_timeout =
        120 + 3 * (env_int("LC_FAULT_DAEMON_KILLS", 100) + env_int("LC_FAULT_SIGNER_KILLS", 100));

    tcase_add_unchecked_fixture(kills, root_setup, root_teardown);
    tcase_add_checked_fixture(kills, setup3, teardown);
    tcase_set_timeout(kills, kill_timeout);
    tcase_add_test(kills, daemon_kill9_loop);
    tcase_add_test(kills, signer_kill9_loop);
    suite_add_tcase(s, kills);

    tcase_add_unchecked_fixture(hsm, root_setup, root_teardown);
    tcase_add_checked_fixture(hsm, setup1, teardown);
    tcase_set_timeout(hsm, 120);
    tcase_add_test(hsm, hsm_shim_device_removed);
    tcase_add_test(hsm, hsm_shim_session_handle_invalid);
    tcase_add_test(hsm, hsm_token_directory_moved);
    suite_add_tcase(s, hsm);

    tcase_add_unchecked_fixture(audit, root_setup, root_teardown);
    tcase_add_checked_fixture(audit, setup3, teardown);
    tcase_set_timeout(audit, 300 + 10 * env_int("LC_FAULT_DISK_CYCLES", 3));
    tcase_add_test(audit, audit_nth_write_fails);
    tcase_add_test(audit, audit_disk_full_single);
    tcase_add_test(audit, audit_disk_full_under_load);
    suite_add_tcase(s, audit);

    tcase_add_unchecked_fixture(abuse, root_setup, root_teardown);
    tcase_add_checked_fixture(abuse, setup3, teardown);
    tcase_set_timeout(abuse, 180 + 3 * env_int("LC_FAULT_PLC_REQUESTS", 30) +
                                 30 * env_int("LC_FAULT_JIG_ROUNDS", 2));
    tcase_add_test(abuse, plc_abuse);
    tcase_add_test(abuse, jig_abuse);
    suite_add_tcase(s, abuse);
    return s;
}

/*
 * The programs this suite starts get ASan's fast unwinder: the slow one makes
 * every OpenSSL allocation in the daemon, the signer and the jig programs
 * unwind through DWARF, which makes them several times slower and the kill
 * loops far too long for CI.  Leak checking stays on, with suppressions that
 * fit the shorter stacks (tests/fault/lsan.supp says why).  This process
 * keeps the options it was started with.
 */
static void child_sanitizer_options(void)
{
    const char *cur = getenv("ASAN_OPTIONS"), *src = getenv("LINECERT_SOURCE_DIR");
    char buf[1024], *p;

    if (cur == NULL || (p = strstr(cur, "fast_unwind_on_malloc=0")) == NULL || src == NULL)
        return;
    snprintf(buf, sizeof buf, "%.*sfast_unwind_on_malloc=1%s", (int)(p - cur), cur,
             p + strlen("fast_unwind_on_malloc=0"));
    setenv("ASAN_OPTIONS", buf, 1);
    snprintf(buf, sizeof buf, "suppressions=%s/tests/fault/lsan.supp:print_suppressions=0", src);
    setenv("LSAN_OPTIONS", buf, 1);
}

int main(void)
{
    SRunner *sr = srunner_create(fault_suite());
    const char *env_seed = getenv("LC_FAULT_SEED");
    int failed;

    seed = env_seed != NULL ? strtoull(env_seed, NULL, 10)
                            : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
    if (seed == 0)
        seed = 1;
    rng = seed;
    printf("fault: seed %llu (LC_FAULT_SEED=%llu reproduces the kill points and the PLC abuse)\n",
           (unsigned long long)seed, (unsigned long long)seed);
    fflush(stdout);
    child_sanitizer_options();
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
