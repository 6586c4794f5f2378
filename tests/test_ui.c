/*
 * test_ui.c — the operator UI (ui/) and its queries (db/stats.c).
 *
 * The UI tests start the real application window in-process, under Xvfb,
 * on an audit store made with the audit API and a fake linecertd: a thread
 * that serves canned `status` replies on a Unix socket in a temporary
 * folder.  They assert what the operator reads on the screen (the texts of
 * the labels that are mapped), not the internals.  The screenshot test
 * writes PNGs of the main window at 1280x800 and 1920x1080 in three
 * situations (normal, one line in fault, daemon down), plus a dark-theme
 * one and a four-line one at 1280x800, into <build>/ui-screenshots/.
 *
 * Every test sets TZ so that local time is around noon: the shift (06:00 to
 * 14:00) and the day then contain the last hour whatever the real time is,
 * and rows from 7 hours ago are today but in the previous shift.
 *
 * Check forks for every test; each test initialises GTK in its own process.
 */
#include "audit.h"
#include "lcerr.h"
#include "policy.h"
#include "stats.h"
#include "testutil.h"

#include "lc-application.h"
#include "lc-config.h"
#include "lc-events-pane.h"
#include "lc-line-card.h"
#include "lc-model.h"
#include "lc-reasons.h"
#include "lc-window.h"

#include <check.h>
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#define MIN_MS  60000LL
#define HOUR_MS (60 * MIN_MS)

/* ---- time zone: local noon --------------------------------------------- */

/* Sets TZ to a fixed offset that makes the local time now about 12:xx. */
static void tz_noon(void)
{
    time_t now = time(NULL);
    struct tm utc;
    char tz[32];
    int off;

    gmtime_r(&now, &utc);
    off = utc.tm_hour - 12; /* POSIX TZ "LCT+3" is UTC-3 */
    snprintf(tz, sizeof tz, "LCT%+d", off);
    setenv("TZ", tz, 1);
    tzset();
}

/* ---- the fake linecertd ---------------------------------------------- */

static struct fake {
    char path[512];
    int lfd;
    pthread_t thread;
    pthread_mutex_t mu;
    char *reply; /* the status reply, without the newline */
    atomic_int stop;
    atomic_int requests;
    atomic_int others; /* requests that were not "status" */
    int running;
} F = {.mu = PTHREAD_MUTEX_INITIALIZER, .lfd = -1};

static void fake_set_reply(const char *json)
{
    pthread_mutex_lock(&F.mu);
    free(F.reply);
    F.reply = strdup(json);
    pthread_mutex_unlock(&F.mu);
}

/* Serves one client until it goes away or the fake is stopped. */
static void fake_serve(int fd)
{
    char buf[4096];
    size_t len = 0;

    while (!atomic_load(&F.stop)) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ssize_t n;
        char *nl;

        if (poll(&p, 1, 50) <= 0)
            continue;
        n = read(fd, buf + len, sizeof buf - 1 - len);
        if (n <= 0)
            return;
        len += (size_t)n;
        buf[len] = '\0';
        while ((nl = strchr(buf, '\n')) != NULL) {
            char *out;
            size_t rest;
            *nl = '\0';
            pthread_mutex_lock(&F.mu);
            if (strcmp(buf, "status") == 0) {
                out = g_strdup_printf("%s\n", F.reply);
            } else {
                out = g_strdup("{\"ok\":false,\"error\":\"the UI may only ask for status\"}\n");
                atomic_fetch_add(&F.others, 1);
            }
            pthread_mutex_unlock(&F.mu);
            atomic_fetch_add(&F.requests, 1);
            if (write(fd, out, strlen(out)) < 0) {
                g_free(out);
                return;
            }
            g_free(out);
            rest = len - (size_t)(nl + 1 - buf);
            memmove(buf, nl + 1, rest);
            len = rest;
            buf[len] = '\0';
        }
    }
}

static void *fake_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&F.stop)) {
        struct pollfd p = {.fd = F.lfd, .events = POLLIN};
        int fd;
        if (poll(&p, 1, 50) <= 0)
            continue;
        if ((fd = accept(F.lfd, NULL, NULL)) < 0)
            continue;
        fake_serve(fd);
        close(fd);
    }
    return NULL;
}

static void fake_start(const char *path, const char *json)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};

    snprintf(F.path, sizeof F.path, "%s", path);
    fake_set_reply(json);
    ck_assert_uint_lt(strlen(path), sizeof sa.sun_path);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    F.lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    ck_assert_int_ge(F.lfd, 0);
    ck_assert_int_eq(bind(F.lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(listen(F.lfd, 8), 0);
    atomic_store(&F.stop, 0);
    ck_assert_int_eq(pthread_create(&F.thread, NULL, fake_main, NULL), 0);
    F.running = 1;
}

/* The daemon goes away: connections closed, socket file removed. */
static void fake_stop(void)
{
    if (!F.running)
        return;
    atomic_store(&F.stop, 1);
    pthread_join(F.thread, NULL);
    close(F.lfd);
    F.lfd = -1;
    unlink(F.path);
    F.running = 0;
}

/* ---- status replies -------------------------------------------------- */

/* A status reply; lines is the JSON of the "lines" array's elements. */
static char *status_json(const char *state, int hsm_ok, const char *lines)
{
    return g_strdup_printf(
        "{\"ok\":true,\"version\":\"0.1.0\",\"uptime_s\":7380,\"state\":\"%s\","
        "\"signer\":{\"running\":true,\"pid\":4242,\"hsm_ok\":%s,\"signatures\":1234,"
        "\"restarts\":0,\"error\":\"%s\"},"
        "\"audit\":{\"path\":\"x\",\"ok\":true,\"size_bytes\":1234567,"
        "\"free_bytes\":48000000000,\"rows\":1240,\"error\":\"\"},\"lines\":[%s]}",
        state, hsm_ok ? "true" : "false", hsm_ok ? "" : "token not present", lines);
}

static char *line_json(const char *id, const char *name, const char *state, const char *reason,
                       const char *reason_text, int rate, const char *last_serial,
                       const char *last_result, double age)
{
    return g_strdup_printf(
        "{\"id\":\"%s\",\"name\":\"%s\",\"state\":\"%s\",\"reason\":%s%s%s,"
        "\"reason_text\":\"%s\",\"plc\":{\"address\":\"10.0.0.5:502\",\"connected\":true,"
        "\"error\":\"\"},\"jig\":{\"ok\":true,\"error\":\"\"},\"issued\":412,\"refused\":1,"
        "\"faults\":0,\"issued_total\":9120,\"rate_last_min\":%d,\"rate_last_hour\":9.5,"
        "\"last\":{\"serial\":\"%s\",\"result\":\"%s\",\"reason\":\"none\",\"age_s\":%.1f},"
        "\"latency_ms\":{\"p50\":3.1,\"p99\":7.2,\"max\":9.9,\"samples\":10}}",
        id, name, state, reason ? "\"" : "", reason ? reason : "null", reason ? "\"" : "",
        reason_text, rate, last_serial, last_result, age);
}

/* Line 1 issuing, line 2 in fault (reason, text as given). */
static char *status_two_lines(const char *fault_reason, const char *fault_text)
{
    g_autofree char *l1 =
        line_json("1", "Line 1", "issuing", NULL, "", 11, "SN1-000412", "issued", 2.1);
    g_autofree char *l2 =
        line_json("2", "Line 2", "fault", fault_reason, fault_text, 0, "SN2-000233", "fault", 41);
    g_autofree char *lines = g_strdup_printf("%s,%s", l1, l2);
    return status_json("ok", 1, lines);
}

/* ---- the audit store ------------------------------------------------- */

struct row {
    const char *line;
    const char *kind;
    int64_t ago_ms;
    const char *regid;
    const char *reason;
    const char *detail;
};

static void store_rows(const char *path, int64_t now, const struct row *rows, size_t n)
{
    audit_t *a = NULL;
    char err[256];
    audit_entry_t *e = calloc(n, sizeof *e);

    ck_assert_ptr_nonnull(e);
    ck_assert_msg(audit_open(path, AUDIT_READWRITE, &a, err, sizeof err) == LC_OK, "%s", err);
    for (size_t i = 0; i < n; i++) {
        e[i].row.ts_ms = now - rows[i].ago_ms;
        e[i].row.actor = "linecertd";
        e[i].row.line = rows[i].line;
        e[i].row.kind = rows[i].kind;
        e[i].row.registration_id = rows[i].regid;
        e[i].row.reason = rows[i].reason;
        e[i].row.detail = rows[i].detail;
    }
    ck_assert_msg(audit_append(a, e, n, err, sizeof err) == LC_OK, "%s", err);
    audit_free(a);
    free(e);
}

/* n issued rows on line, spread evenly over [from_ago, to_ago). */
static void store_issued(const char *path, int64_t now, const char *line, int n, int64_t from_ago,
                         int64_t to_ago)
{
    struct row *rows = calloc((size_t)n, sizeof *rows);

    for (int i = 0; i < n; i++)
        rows[i] =
            (struct row){line, "issued", from_ago - (from_ago - to_ago) * i / n, "dev", NULL, NULL};
    store_rows(path, now, rows, (size_t)n);
    free(rows);
}

/*
 * The suite's store: line 1 has 3 certificates yesterday (14-15 h ago), 5
 * this morning in the previous shift (7-8 h ago: 04:xx-05:xx), 12 in the last hour, a refusal 30
 * min ago and its last issuance 20 s ago; line 2 has 4 in the last hour and a fault 41 s ago. Local
 * time is ~12:xx (tz_noon), so line 1: 13 this shift, 18 today.
 */
static void make_store(const char *path, int64_t now)
{
    static const struct row events[] = {
        {"1", "refused", 30 * MIN_MS, "SN1-000099", "cn-mismatch",
         "CN \"x\" is not \"SN1-000099\""},
        {"1", "issued", 20000, "SN1-000412", NULL, NULL},
        {"2", "fault", 41000, "SN2-000233", "jig-timeout", "no answer within 5000 ms"},
    };

    store_issued(path, now, "1", 3, 15 * HOUR_MS, 14 * HOUR_MS);
    store_issued(path, now, "1", 5, 8 * HOUR_MS, 7 * HOUR_MS);
    store_issued(path, now, "1", 12, 50 * MIN_MS, 2 * MIN_MS);
    store_issued(path, now, "2", 4, 40 * MIN_MS, 5 * MIN_MS);
    store_rows(path, now, events, 3);
}

/* ---- the application under test ------------------------------------- */

static char *tdir;
static char tcfg[512], tdb[512], tsock[512];

static void write_config(const char *extra_lines)
{
    FILE *f = fopen(tcfg, "w");

    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "; written by test_ui\n"
            "[station]\n"
            "audit_db = audit.db\n"
            "pkcs11_module = /usr/lib/softhsm/libsofthsm2.so\n"
            "pin_file = pin\n"
            "control_socket: ctl.sock ; the fake daemon\n"
            "\n"
            "[line.1]\n"
            "name = Line 1\n"
            "plc = modbus-tcp://10.0.0.5:502\n"
            "jig = exec:/bin/true\n"
            "[line.2]\n"
            "name = Line 2\n"
            "plc = modbus-tcp://10.0.0.6:502\n"
            "jig = exec:/bin/true\n"
            "%s",
            extra_lines);
    fclose(f);
}

static void setup(void)
{
    tz_noon();
    tdir = tu_mkdtemp("ui");
    ck_assert_ptr_nonnull(tdir);
    snprintf(tcfg, sizeof tcfg, "%s/station.ini", tdir);
    snprintf(tdb, sizeof tdb, "%s/audit.db", tdir);
    snprintf(tsock, sizeof tsock, "%s/ctl.sock", tdir);
    write_config("");
}

static void teardown(void)
{
    fake_stop();
    tu_rmtree(tdir);
    free(tdir);
    tdir = NULL;
}

static LcApplication *app;
static LcWindow *win;

static void iterate(int ms)
{
    gint64 end = g_get_monotonic_time() + ms * 1000;

    while (g_get_monotonic_time() < end) {
        while (g_main_context_iteration(NULL, FALSE))
            ;
        g_usleep(2000);
    }
}

typedef gboolean (*cond_fn)(void *arg);

/* Runs the main loop until cond holds, for at most timeout_ms.  Returns cond's value. */
static gboolean wait_for(cond_fn cond, void *arg, int timeout_ms)
{
    gint64 end = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

    while (!cond(arg) && g_get_monotonic_time() < end) {
        while (g_main_context_iteration(NULL, FALSE))
            ;
        g_usleep(2000);
    }
    return cond(arg);
}

static void collect_text(GtkWidget *w, GString *out)
{
    if (!gtk_widget_get_mapped(w))
        return;
    if (GTK_IS_LABEL(w)) {
        g_string_append(out, gtk_label_get_text(GTK_LABEL(w)));
        g_string_append_c(out, '\n');
    }
    for (GtkWidget *c = gtk_widget_get_first_child(w); c != NULL;
         c = gtk_widget_get_next_sibling(c))
        collect_text(c, out);
}

/* Everything the operator can read in w now (labels that are on screen). */
static char *screen_text(gpointer w)
{
    GString *s = g_string_new(NULL);

    collect_text(GTK_WIDGET(w), s);
    return g_string_free(s, FALSE);
}

static gboolean text_has(gpointer w, const char *needle)
{
    g_autofree char *t = screen_text(w);
    return strstr(t, needle) != NULL;
}

struct has_arg {
    gpointer widget;
    const char *needle;
};

static gboolean cond_has(void *arg)
{
    struct has_arg *h = arg;
    return text_has(h->widget, h->needle);
}

/* Waits until widget shows needle; fails the test with what it shows if it does not. */
static void expect_text(gpointer widget, const char *needle, int timeout_ms)
{
    struct has_arg h = {widget, needle};
    g_autofree char *t = NULL;

    if (wait_for(cond_has, &h, timeout_ms))
        return;
    t = screen_text(widget);
    ck_abort_msg("expected \"%s\" on screen, it shows:\n%s", needle, t);
}

static gboolean cond_data(void *arg)
{
    LcModel *m = lc_window_get_model(arg);
    return gtk_widget_get_mapped(GTK_WIDGET(arg)) && lc_model_get_status_rounds(m) > 0 &&
           lc_model_get_store_rounds(m) > 0;
}

static void gtk_up(void)
{
    g_autoptr(GError) error = NULL;

    ck_assert_msg(gtk_init_check(), "no display: run under xvfb-run");
    app = lc_application_new();
    ck_assert_msg(g_application_register(G_APPLICATION(app), NULL, &error), "%s",
                  error ? error->message : "");
}

/* Opens the operator window on the suite's config and waits for data from both sources. */
static void open_window(void)
{
    g_autoptr(GError) error = NULL;

    gtk_up();
    win = lc_application_open(app, tcfg, FALSE, &error);
    ck_assert_msg(win != NULL, "%s", error ? error->message : "");
    ck_assert_msg(wait_for(cond_data, win, 10000), "no data within 10 s");
    iterate(100); /* one frame: list rows are created at layout */
}

static void close_window(void)
{
    if (win != NULL)
        gtk_window_destroy(GTK_WINDOW(win));
    win = NULL;
    iterate(50);
    g_clear_object(&app);
}

/* ---- stats (no display needed) --------------------------------------- */

static stats_result_t *query(const char *path, const char *event_line, int64_t now)
{
    static const char *const ids[] = {"1", "2"};
    stats_params_t p = {0};
    stats_result_t *res = calloc(1, sizeof *res);
    stats_t *s = NULL;
    char err[256];

    ck_assert_ptr_nonnull(res);
    ck_assert_msg(stats_open(path, &s, err, sizeof err) == LC_OK, "%s", err);
    p.now_ms = now;
    ck_assert_int_eq(stats_day_bounds("06:00,14:00,22:00", now, &p.shift_start_ms, &p.day_start_ms),
                     LC_OK);
    p.lines = ids;
    p.nlines = 2;
    p.event_line = event_line;
    p.max_events = STATS_MAX_EVENTS;
    ck_assert_msg(stats_query(s, &p, res, err, sizeof err) == LC_OK, "%s", err);
    stats_free(s);
    return res;
}

START_TEST(test_stats_counts_shift_and_day)
{
    int64_t now = stats_now_ms();
    stats_result_t *r;
    int64_t chart = 0;

    make_store(tdb, now);
    r = query(tdb, NULL, now);
    ck_assert_int_eq(r->fast_path, 1);
    ck_assert_int_eq(r->head_seq, 27);
    ck_assert_int_eq(strlen(r->head_hash), 64);
    ck_assert_str_eq(r->lines[0].id, "1");
    ck_assert_int_eq(r->lines[0].issued_shift, 13);
    ck_assert_int_eq(r->lines[0].issued_today, 18);
    ck_assert_int_eq(r->lines[0].refused_shift, 1);
    ck_assert_int_eq(r->lines[0].faults_shift, 0);
    ck_assert_int_eq(r->lines[1].issued_shift, 4);
    ck_assert_int_eq(r->lines[1].faults_shift, 1);
    for (int i = 0; i < STATS_MINUTES; i++)
        chart += r->lines[0].per_minute[i];
    ck_assert_int_eq(chart, 13); /* the last hour: 12 + the one 20 s ago */
    ck_assert_int_eq(r->lines[1].has_last, 1);
    ck_assert_str_eq(r->lines[1].last_kind, "fault");
    ck_assert_str_eq(r->lines[1].last_regid, "SN2-000233");
    ck_assert_str_eq(r->lines[1].last_reason, "jig-timeout");
    ck_assert_str_eq(r->lines[0].last_regid, "SN1-000412");
    ck_assert_int_eq(r->nevents, 2);
    ck_assert_str_eq(r->events[0].kind, "fault"); /* newest first */
    ck_assert_str_eq(r->events[1].reason, "cn-mismatch");
    ck_assert_int_ge(r->size_bytes, 4096);
    ck_assert_int_gt(r->free_bytes, 0);
    free(r);
    r = query(tdb, "1", now);
    ck_assert_int_eq(r->nevents, 1);
    ck_assert_str_eq(r->events[0].line, "1");
    free(r);
}
END_TEST

/* A store the station has not migrated yet gives the same figures, more slowly. */
START_TEST(test_stats_old_schema_same_figures)
{
    int64_t now = stats_now_ms();
    stats_result_t *fast, *slow;
    sqlite3 *db = NULL;

    make_store(tdb, now);
    fast = query(tdb, NULL, now);
    ck_assert_int_eq(sqlite3_open(tdb, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db,
                                  "DROP TRIGGER audit_minute_counts; DROP TABLE minute_counts;"
                                  "DROP INDEX audit_events_ts; DROP INDEX audit_events_line;"
                                  "PRAGMA user_version = 2",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    slow = query(tdb, NULL, now);
    ck_assert_int_eq(slow->fast_path, 0);
    fast->fast_path = 0;
    ck_assert_int_eq(memcmp(fast->lines, slow->lines, sizeof fast->lines), 0);
    ck_assert_int_eq(memcmp(fast->events, slow->events, sizeof fast->events), 0);
    ck_assert_int_eq(fast->nevents, slow->nevents);
    free(fast);
    free(slow);
}
END_TEST

/* Migration 2 -> 3 backfills the per-minute counts from the rows already there. */
START_TEST(test_migration_backfills_minute_counts)
{
    int64_t now = stats_now_ms();
    stats_result_t *before, *after;
    audit_t *a = NULL;
    sqlite3 *db = NULL;
    char err[256];

    make_store(tdb, now);
    before = query(tdb, NULL, now);
    ck_assert_int_eq(sqlite3_open(tdb, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db,
                                  "DROP TRIGGER audit_minute_counts; DROP TABLE minute_counts;"
                                  "DROP INDEX audit_events_ts; DROP INDEX audit_events_line;"
                                  "PRAGMA user_version = 2",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    ck_assert_msg(audit_open(tdb, AUDIT_READWRITE, &a, err, sizeof err) == LC_OK, "%s", err);
    audit_free(a);
    after = query(tdb, NULL, now);
    ck_assert_int_eq(after->fast_path, 1);
    ck_assert_int_eq(memcmp(before->lines, after->lines, sizeof before->lines), 0);
    free(before);
    free(after);
}
END_TEST

START_TEST(test_stats_refuses_foreign_file)
{
    stats_t *s = NULL;
    char err[256];
    FILE *f = fopen(tdb, "w");

    fputs("not a database at all, just text that is long enough to be read", f);
    fclose(f);
    ck_assert_int_eq(stats_open(tdb, &s, err, sizeof err), LC_ERR_AUDIT);
    ck_assert_ptr_null(s);
    ck_assert_ptr_nonnull(strstr(err, "not a linecert audit store"));
    ck_assert_int_eq(stats_open("/nonexistent/audit.db", &s, err, sizeof err), LC_ERR_AUDIT);
    ck_assert_ptr_nonnull(strstr(err, "No such file"));
}
END_TEST

/* The night shift that started yesterday at 22:00 is still the current one at 03:00. */
START_TEST(test_shift_bounds)
{
    struct tm tm = {0};
    int64_t t, shift, day;

    setenv("TZ", "UTC0", 1);
    tzset();
    tm.tm_year = 126;
    tm.tm_mon = 10;
    tm.tm_mday = 23;
    tm.tm_hour = 3;
    tm.tm_isdst = -1;
    t = (int64_t)mktime(&tm) * 1000;
    ck_assert_int_eq(stats_day_bounds("06:00,14:00,22:00", t, &shift, &day), LC_OK);
    ck_assert_int_eq(day, t - 3 * HOUR_MS);
    ck_assert_int_eq(shift, t - 5 * HOUR_MS);
    ck_assert_int_eq(stats_day_bounds("06:00,14:00,22:00", t + 3 * HOUR_MS, &shift, NULL), LC_OK);
    ck_assert_int_eq(shift, t + 3 * HOUR_MS); /* 06:00 exactly: the new shift */
    ck_assert_int_eq(stats_day_bounds("07:30", t, &shift, NULL), LC_OK);
    ck_assert_int_eq(shift, t - 3 * HOUR_MS - 16 * HOUR_MS - 30 * MIN_MS);
    ck_assert_int_eq(stats_day_bounds("6:00", t, &shift, NULL), LC_ERR_CONFIG);
    ck_assert_int_eq(stats_day_bounds("06:00, 14:00", t, &shift, NULL), LC_ERR_CONFIG);
    ck_assert_int_eq(stats_day_bounds("24:00", t, &shift, NULL), LC_ERR_CONFIG);
    ck_assert_int_eq(stats_day_bounds("", t, &shift, NULL), LC_ERR_CONFIG);
}
END_TEST

/* ---- configuration and reasons --------------------------------------- */

START_TEST(test_config_reads_station_ini)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(LcConfig) c = NULL;
    g_autofree char *sock = g_strdup_printf("%s/ctl.sock", tdir);
    g_autofree char *db = g_strdup_printf("%s/audit.db", tdir);
    const LcLineConfig *l;

    write_config("[line.3]\nregistration_id = acme-%s\n[station]\nshifts = 06:00,18:00 ; two\n");
    c = lc_config_load(tcfg, &error);
    ck_assert_msg(c != NULL, "%s", error ? error->message : "");
    ck_assert_str_eq(c->audit_db, db);
    ck_assert_str_eq(c->control_socket, sock);
    ck_assert_str_eq(c->shifts, "06:00,18:00");
    ck_assert_int_eq(c->lines->len, 3);
    l = lc_config_find_line(c, "3");
    ck_assert_ptr_nonnull(l);
    ck_assert_str_eq(l->name, "Line 3");
    ck_assert_int_eq(l->driven, 0);
    ck_assert_int_eq(lc_config_find_line(c, "1")->driven, 1);
}
END_TEST

START_TEST(test_config_errors)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(LcConfig) c = NULL;
    FILE *f;

    write_config("[station]\nshifts = 6:00\n");
    c = lc_config_load(tcfg, &error);
    ck_assert_ptr_null(c);
    ck_assert_ptr_nonnull(strstr(error->message, "shifts"));
    g_clear_error(&error);
    f = fopen(tcfg, "w");
    fputs("[station]\naudit_db = /x/audit.db\n", f);
    fclose(f);
    c = lc_config_load(tcfg, &error);
    ck_assert_ptr_null(c);
    ck_assert_ptr_nonnull(strstr(error->message, "no [line.<id>] section"));
    g_clear_error(&error);
    c = lc_config_load("/nonexistent/station.ini", &error);
    ck_assert_ptr_null(c);
    ck_assert_ptr_nonnull(error);
}
END_TEST

/* The UI's copy of the reason sentences says exactly what hsm/policy.c says. */
START_TEST(test_reason_table_matches_policy)
{
    int known = 0;

    for (int code = 0; code < 100; code++) {
        const char *name = policy_reason_name(code);
        if (strcmp(name, "unknown") == 0)
            continue;
        known++;
        ck_assert_msg(lc_reason_text(name) != NULL, "no sentence for %s", name);
        ck_assert_str_eq(lc_reason_text(name), policy_reason_text(code));
    }
    ck_assert_int_ge(known, 20);
    for (const char *const *c = lc_reason_codes(); *c != NULL; c++)
        ck_assert_msg(policy_reason_from_name(*c) >= 0 || strcmp(*c, "plc-unreachable") == 0,
                      "%s is not a policy reason", *c);
}
END_TEST

/* ---- the operator window --------------------------------------------- */

START_TEST(test_cards_show_state_counts_and_fault)
{
    g_autofree char *json =
        status_two_lines("plc-unreachable", "PLC 10.0.0.5:502 not answering: Connection refused");
    LcLineCard *c1, *c2;

    make_store(tdb, stats_now_ms());
    fake_start(tsock, json);
    open_window();
    c1 = lc_window_get_card(win, 0);
    c2 = lc_window_get_card(win, 1);
    expect_text(c1, "ISSUING", 3000);
    ck_assert_str_eq(lc_line_card_get_state_word(c1), "ISSUING");
    expect_text(c1, "13\n", 3000); /* this shift */
    expect_text(c1, "18\n", 3000); /* today */
    ck_assert(text_has(c1, "this shift"));
    ck_assert(text_has(c1, "Refused 1   Faults 0"));
    ck_assert(text_has(c1, "SN1-000412 · issued"));
    ck_assert(text_has(c1, "11\n")); /* per minute, from the daemon */
    ck_assert_str_eq(lc_line_card_get_state_word(c2), "FAULT");
    ck_assert(text_has(c2, "PLC 10.0.0.5:502 not answering"));
    ck_assert(text_has(c2, "Check the PLC"));
    ck_assert(text_has(c2, "Faults 1"));
    ck_assert(gtk_widget_has_css_class(GTK_WIDGET(c2), "fault"));
    ck_assert(!gtk_widget_get_visible(lc_window_get_banner(win)));
    /* header: station, HSM, audit head */
    ck_assert(text_has(win, "Station OK"));
    ck_assert(text_has(win, "HSM ready"));
    ck_assert(text_has(win, "head #27 "));
    ck_assert(text_has(win, "Shift since 06:00"));
    close_window();
}
END_TEST

/* A fault without the daemon's own text gets the sentence for its reason code. */
START_TEST(test_fault_reason_from_code)
{
    g_autofree char *json = status_two_lines("hsm-unavailable", "");

    make_store(tdb, stats_now_ms());
    fake_start(tsock, json);
    open_window();
    expect_text(lc_window_get_card(win, 1), "HSM token not reachable", 3000);
    close_window();
}
END_TEST

/* A new issuance in the store shows within about a second. */
START_TEST(test_new_issuance_shows_within_a_second)
{
    g_autofree char *json = status_two_lines("jig-timeout", "");
    LcLineCard *c2;
    gint64 t0;

    make_store(tdb, stats_now_ms());
    fake_start(tsock, json);
    open_window();
    c2 = lc_window_get_card(win, 1);
    expect_text(c2, "4\n", 3000);
    store_issued(tdb, stats_now_ms(), "2", 1, 0, 0);
    t0 = g_get_monotonic_time();
    expect_text(c2, "5\n", 2000);
    ck_assert_int_lt(g_get_monotonic_time() - t0, 1500 * 1000);
    close_window();
}
END_TEST

static gboolean cond_word_issuing(void *arg)
{
    return strcmp(lc_line_card_get_state_word(arg), "ISSUING") == 0;
}

/* linecertd goes away: a banner says so, the cards grey out and keep their numbers. */
START_TEST(test_daemon_down_banner_keeps_numbers)
{
    g_autofree char *json = status_two_lines("jig-timeout", "");
    GtkWidget *banner;
    LcLineCard *c1;

    make_store(tdb, stats_now_ms());
    fake_start(tsock, json);
    open_window();
    c1 = lc_window_get_card(win, 0);
    expect_text(c1, "ISSUING", 3000);
    expect_text(c1, "13\n", 3000);
    banner = lc_window_get_banner(win);
    ck_assert(!gtk_widget_get_visible(banner));
    fake_stop();
    expect_text(win, "linecertd not reachable — cards show the last known numbers as of ", 5000);
    ck_assert(gtk_widget_get_mapped(banner));
    ck_assert(gtk_widget_has_css_class(GTK_WIDGET(c1), "stale"));
    ck_assert_str_eq(lc_line_card_get_state_word(c1), "NO DATA");
    ck_assert(text_has(c1, "Last known: ISSUING at "));
    ck_assert(text_has(c1, "13\n"));
    ck_assert(text_has(c1, "18\n"));
    ck_assert(text_has(c1, "11\n")); /* the last rate it had */
    ck_assert(text_has(win, "Station OFFLINE"));
    /* and back */
    fake_start(tsock, json);
    ck_assert(wait_for(cond_word_issuing, c1, 5000));
    ck_assert(!gtk_widget_get_visible(banner));
    ck_assert(!gtk_widget_has_css_class(GTK_WIDGET(c1), "stale"));
    close_window();
}
END_TEST

/* No daemon at all from the start: the banner, and the counts from the store. */
START_TEST(test_no_daemon_from_start)
{
    make_store(tdb, stats_now_ms());
    open_window();
    expect_text(win, "linecertd not reachable — line states unknown", 3000);
    expect_text(win, "no control socket at", 3000);
    expect_text(lc_window_get_card(win, 0), "13\n", 3000);
    ck_assert_str_eq(lc_line_card_get_state_word(lc_window_get_card(win, 0)), "NO DATA");
    close_window();
}
END_TEST

static gboolean cond_events(void *arg)
{
    LcModel *m = lc_window_get_model(arg);
    return g_list_model_get_n_items(lc_model_get_events(m)) ==
           GPOINTER_TO_UINT(g_object_get_data(arg, "n"));
}

/* Refusals and faults with the reason in words; the line filter. */
START_TEST(test_events_pane_and_filter)
{
    g_autofree char *json = status_two_lines("jig-timeout", "");
    LcEventsPane *pane;
    GtkDropDown *filter;
    GtkWidget *button;
    g_autofree char *t = NULL;

    make_store(tdb, stats_now_ms());
    fake_start(tsock, json);
    open_window();
    pane = lc_window_get_events_pane(win);
    expect_text(pane, "The jig program did not answer in time.", 3000);
    expect_text(pane, "The CSR's common name does not match the device serial from the PLC.", 3000);
    t = screen_text(pane);
    ck_assert_ptr_nonnull(strstr(t, "SN2-000233"));
    ck_assert_ptr_nonnull(strstr(t, "SN1-000099"));
    ck_assert_ptr_nonnull(strstr(t, "FAULT"));
    ck_assert_ptr_nonnull(strstr(t, "REFUSED"));
    ck_assert_ptr_nonnull(strstr(t, "All lines"));
    /* newest first: the fault (41 s ago) above the refusal (30 min ago) */
    ck_assert(strstr(t, "SN2-000233") < strstr(t, "SN1-000099"));
    /* issuances are not events */
    ck_assert_ptr_null(strstr(t, "SN1-000412"));
    /* touch targets */
    filter = lc_events_pane_get_filter(pane);
    ck_assert_int_ge(gtk_widget_get_height(GTK_WIDGET(filter)), 48);

    gtk_drop_down_set_selected(filter, 2); /* "Line 2" */
    g_object_set_data(G_OBJECT(win), "n", GUINT_TO_POINTER(1));
    ck_assert(wait_for(cond_events, win, 3000));
    iterate(100);
    g_free(t);
    t = screen_text(pane);
    ck_assert_ptr_nonnull(strstr(t, "SN2-000233"));
    ck_assert_ptr_null(strstr(t, "SN1-000099"));
    gtk_drop_down_set_selected(filter, 1); /* "Line 1" */
    expect_text(pane, "SN1-000099", 3000);
    g_free(t);
    t = screen_text(pane);
    ck_assert_ptr_null(strstr(t, "SN2-000233"));
    gtk_drop_down_set_selected(filter, 0);
    g_object_set_data(G_OBJECT(win), "n", GUINT_TO_POINTER(2));
    ck_assert(wait_for(cond_events, win, 3000));
    /* the full-screen button is a real touch target too */
    button = gtk_widget_get_last_child(gtk_widget_get_first_child(
        gtk_window_get_child(GTK_WINDOW(win)))); /* header's last child */
    ck_assert_int_ge(gtk_widget_get_height(button), 48);
    close_window();
}
END_TEST

/* The UI only ever asks for status: nothing it does reaches pause/resume. */
START_TEST(test_only_status_is_sent)
{
    g_autofree char *json = status_two_lines("jig-timeout", "");

    make_store(tdb, stats_now_ms());
    fake_start(tsock, json);
    open_window();
    iterate(2500);
    ck_assert_int_ge(atomic_load(&F.requests), 2);
    ck_assert_int_eq(atomic_load(&F.others), 0);
    close_window();
}
END_TEST

/* ---- screenshots ------------------------------------------------------ */

static char *shot_dir(void)
{
    const char *b = getenv("LINECERT_BUILD_DIR");
    char *d = g_build_filename(b != NULL ? b : ".", "ui-screenshots", NULL);

    g_mkdir_with_parents(d, 0755);
    return d;
}

/* A realistic hour on three lines, like the sketch in UI.md. */
static void make_demo_store(const char *path, int64_t now)
{
    static const char *const lines[] = {"1", "2", "3"};
    static const char *const regid_fmt[] = {"SN1-%06d", "SN2-%06d", "SN3-%06d"};
    GArray *rows = g_array_new(FALSE, TRUE, sizeof(struct row));
    GPtrArray *strings = g_ptr_array_new_with_free_func(g_free);
    int serial[3] = {0, 0, 0};

    /* 06:00 to now: line 1 ~10/min, line 2 ~4/min and stopped 8 min ago, line 3 a few */
    for (int64_t ago = 6 * HOUR_MS; ago > 0; ago -= 6000) {
        int64_t minute = ago / MIN_MS;
        for (int l = 0; l < 3; l++) {
            double rate = l == 0   ? 9.5 + 3 * sin((double)minute / 7.0)
                          : l == 1 ? (minute < 8 ? 0 : 4 + 2 * sin((double)minute / 5.0))
                                   : (minute % 53 == 24 ? 2 : 0);
            char *regid;
            if (g_random_double() * 10.0 >= rate)
                continue;
            regid = g_strdup_printf(regid_fmt[l], ++serial[l]);
            g_ptr_array_add(strings, regid);
            g_array_append_val(rows, ((struct row){lines[l], "issued", ago, regid, NULL, NULL}));
        }
    }
    {
        static const struct row ev[] = {
            {"2", "fault", 8 * MIN_MS + 3000, "SN2-000233", "jig-timeout",
             "no answer within 5000 ms"},
            {"2", "fault", 9 * MIN_MS, "SN2-000232", "jig-failed", "jig program exit status 3"},
            {"1", "refused", 19 * MIN_MS, "SN1-000397", "cn-mismatch",
             "CN \"SN1-000379\" is not the device serial \"SN1-000397\""},
            {"3", "refused", 47 * MIN_MS, "SN3-000012", "key-type", "RSA 1024 bits"},
            {"1", "refused", 95 * MIN_MS, "SN1-000301", "bad-signature", ""},
            {"", "fault", 160 * MIN_MS, NULL, "hsm-unavailable",
             "token removed; recovered after 12 s"},
        };
        for (size_t i = 0; i < G_N_ELEMENTS(ev); i++)
            g_array_append_val(rows, ev[i]);
    }
    /* audit rows must be appended in time order */
    for (guint i = 0; i < rows->len; i++)
        for (guint j = i + 1; j < rows->len; j++) {
            struct row *a = &g_array_index(rows, struct row, i);
            struct row *b = &g_array_index(rows, struct row, j);
            if (b->ago_ms > a->ago_ms) {
                struct row t = *a;
                *a = *b;
                *b = t;
            }
        }
    store_rows(path, now, (struct row *)(void *)rows->data, rows->len);
    g_array_unref(rows);
    g_ptr_array_unref(strings);
}

static char *demo_status(int fault)
{
    g_autofree char *l1 =
        line_json("1", "Line 1 — Enclosure A", "issuing", NULL, "", 11, "SN1-000412", "issued", 2);
    g_autofree char *l2 = fault ? line_json("2", "Line 2 — Enclosure B", "fault", "plc-unreachable",
                                            "PLC 10.0.0.6:502 not answering: Connection timed out",
                                            0, "SN2-000233", "fault", 488)
                                : line_json("2", "Line 2 — Enclosure B", "idle", NULL, "", 0,
                                            "SN2-000233", "issued", 488);
    g_autofree char *l3 =
        line_json("3", "Line 3 — Gate", "idle", NULL, "", 0, "SN3-000014", "issued", 1390);
    g_autofree char *lines = g_strdup_printf("%s,%s,%s", l1, l2, l3);
    return status_json("ok", 1, lines);
}

static void write_demo_config(void)
{
    FILE *f = fopen(tcfg, "w");

    fputs("[station]\naudit_db = audit.db\ncontrol_socket = ctl.sock\n"
          "[line.1]\nname = Line 1 — Enclosure A\nplc = modbus-tcp://10.0.0.5:502\n"
          "jig = exec:/bin/true\n"
          "[line.2]\nname = Line 2 — Enclosure B\nplc = modbus-tcp://10.0.0.6:502\n"
          "jig = exec:/bin/true\n"
          "[line.3]\nname = Line 3 — Gate\nplc = modbus-tcp://10.0.0.7:502\n"
          "jig = exec:/bin/true\n",
          f);
    fclose(f);
}

struct size_arg {
    GtkWidget *w;
    int width, height;
};

static gboolean cond_size(void *arg)
{
    struct size_arg *s = arg;
    return gtk_widget_get_mapped(s->w) && gtk_widget_get_width(s->w) == s->width &&
           gtk_widget_get_height(s->w) == s->height;
}

/* Renders the window (as GTK draws it) into dir/name-WxH.png. */
static void save_png(LcWindow *w, const char *dir, const char *name, int width, int height)
{
    g_autoptr(GdkPaintable) paintable = gtk_widget_paintable_new(GTK_WIDGET(w));
    GtkSnapshot *snapshot = gtk_snapshot_new();
    g_autoptr(GskRenderNode) node = NULL;
    g_autoptr(GdkTexture) texture = NULL;
    g_autofree char *file = g_strdup_printf("%s/%s-%dx%d.png", dir, name, width, height);

    gdk_paintable_snapshot(paintable, snapshot, width, height);
    node = gtk_snapshot_free_to_node(snapshot);
    ck_assert_ptr_nonnull(node);
    texture = gsk_renderer_render_texture(gtk_native_get_renderer(GTK_NATIVE(w)), node,
                                          &GRAPHENE_RECT_INIT(0, 0, (float)width, (float)height));
    ck_assert_ptr_nonnull(texture);
    ck_assert_msg(gdk_texture_save_to_png(texture, file), "cannot write %s", file);
}

/* One window of the given size on a fresh model; waits for data and layout. */
static LcWindow *shot_window(int width, int height, LcModel **model_out)
{
    g_autoptr(GError) error = NULL;
    LcConfig *config = lc_config_load(tcfg, &error);
    LcModel *model;
    LcWindow *w;
    struct size_arg s;

    ck_assert_msg(config != NULL, "%s", error ? error->message : "");
    model = lc_model_new(config);
    w = lc_window_new(GTK_APPLICATION(app), model);
    gtk_window_set_default_size(GTK_WINDOW(w), width, height);
    gtk_window_present(GTK_WINDOW(w));
    lc_model_start(model);
    s = (struct size_arg){GTK_WIDGET(w), width, height};
    ck_assert_msg(wait_for(cond_size, &s, 5000), "window is %dx%d, not %dx%d",
                  gtk_widget_get_width(GTK_WIDGET(w)), gtk_widget_get_height(GTK_WIDGET(w)), width,
                  height);
    ck_assert(wait_for(cond_data, w, 10000));
    iterate(400); /* size classes of the cards, list rows, a frame */
    *model_out = model;
    return w;
}

START_TEST(test_screenshots)
{
    static const int sizes[][2] = {{1280, 800}, {1920, 1080}};
    g_autofree char *dir = shot_dir();
    g_autofree char *normal = demo_status(0), *fault = demo_status(1);

    write_demo_config();
    make_demo_store(tdb, stats_now_ms());
    fake_start(tsock, normal);
    gtk_up();
    for (size_t i = 0; i < G_N_ELEMENTS(sizes); i++) {
        int w = sizes[i][0], h = sizes[i][1];
        LcModel *model;
        LcWindow *win1;

        fake_set_reply(normal);
        win1 = shot_window(w, h, &model);
        expect_text(lc_window_get_card(win1, 0), "ISSUING", 3000);
        save_png(win1, dir, "normal", w, h);

        fake_set_reply(fault);
        expect_text(lc_window_get_card(win1, 1), "FAULT", 3000);
        iterate(300);
        save_png(win1, dir, "fault", w, h);

        fake_stop();
        expect_text(win1, "linecertd not reachable", 5000);
        iterate(300);
        save_png(win1, dir, "daemon-down", w, h);
        fake_start(tsock, normal);

        gtk_window_destroy(GTK_WINDOW(win1));
        g_object_unref(model);
        iterate(50);
    }
    /* the dark variant, as on a desktop that prefers dark */
    {
        LcModel *model;
        LcWindow *win1;
        g_object_set(gtk_settings_get_default(), "gtk-application-prefer-dark-theme", TRUE, NULL);
        fake_set_reply(fault);
        win1 = shot_window(1280, 800, &model);
        expect_text(lc_window_get_card(win1, 1), "FAULT", 3000);
        iterate(300);
        save_png(win1, dir, "fault-dark", 1280, 800);
        gtk_window_destroy(GTK_WINDOW(win1));
        g_object_unref(model);
    }
    g_object_set(gtk_settings_get_default(), "gtk-application-prefer-dark-theme", FALSE, NULL);
    /* four lines on a 1280 px panel: the narrow cards must fit, not grow the window */
    {
        LcModel *model;
        LcWindow *win1;
        g_autofree char *l1 = line_json("1", "Line 1 — Enclosure A", "issuing", NULL, "", 11,
                                        "SN1-000412", "issued", 2);
        g_autofree char *l2 = line_json("2", "Line 2 — Enclosure B", "fault", "hsm-unavailable",
                                        "HSM token not reachable: check the HSM cable/service.", 0,
                                        "SN2-000233", "fault", 40);
        g_autofree char *l3 =
            line_json("3", "Line 3 — Gate", "paused", "paused",
                      "The line is paused by an operator.", 0, "SN3-000014", "issued", 1390);
        g_autofree char *l4 = line_json("4", "Line 4 — Sensor head", "idle", NULL, "", 0,
                                        "SN4-000002", "issued", 3600);
        g_autofree char *lines = g_strdup_printf("%s,%s,%s,%s", l1, l2, l3, l4);
        g_autofree char *json = status_json("hsm-fault", 0, lines);
        FILE *f = fopen(tcfg, "a");
        fputs("[line.4]\nname = Line 4 — Sensor head\nplc = modbus-tcp://10.0.0.8:502\n"
              "jig = exec:/bin/true\n",
              f);
        fclose(f);
        fake_set_reply(json);
        win1 = shot_window(1280, 800, &model);
        expect_text(lc_window_get_card(win1, 2), "PAUSED", 3000);
        iterate(300);
        save_png(win1, dir, "four-lines", 1280, 800);
        gtk_window_destroy(GTK_WINDOW(win1));
        g_object_unref(model);
        iterate(50);
    }
    g_clear_object(&app);
}
END_TEST

static Suite *ui_suite(void)
{
    Suite *s = suite_create("ui");
    TCase *stats = tcase_create("stats");
    TCase *config = tcase_create("config");
    TCase *window = tcase_create("window");
    TCase *shots = tcase_create("screenshots");

    tcase_add_checked_fixture(stats, setup, teardown);
    tcase_add_test(stats, test_stats_counts_shift_and_day);
    tcase_add_test(stats, test_stats_old_schema_same_figures);
    tcase_add_test(stats, test_migration_backfills_minute_counts);
    tcase_add_test(stats, test_stats_refuses_foreign_file);
    tcase_add_test(stats, test_shift_bounds);
    suite_add_tcase(s, stats);

    tcase_add_checked_fixture(config, setup, teardown);
    tcase_add_test(config, test_config_reads_station_ini);
    tcase_add_test(config, test_config_errors);
    tcase_add_test(config, test_reason_table_matches_policy);
    suite_add_tcase(s, config);

    tcase_add_checked_fixture(window, setup, teardown);
    tcase_set_timeout(window, 60);
    tcase_add_test(window, test_cards_show_state_counts_and_fault);
    tcase_add_test(window, test_fault_reason_from_code);
    tcase_add_test(window, test_new_issuance_shows_within_a_second);
    tcase_add_test(window, test_daemon_down_banner_keeps_numbers);
    tcase_add_test(window, test_no_daemon_from_start);
    tcase_add_test(window, test_events_pane_and_filter);
    tcase_add_test(window, test_only_status_is_sent);
    suite_add_tcase(s, window);

    tcase_add_checked_fixture(shots, setup, teardown);
    tcase_set_timeout(shots, 120);
    tcase_add_test(shots, test_screenshots);
    suite_add_tcase(s, shots);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(ui_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
