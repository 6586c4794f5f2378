/*
 * stats.c — read-only figures for the operator UI (see stats.h).
 *
 * Why it looks the way it does:
 *  - The UI asks every second, on a log that grows by millions of rows, so
 *    no query here may scan the log.  Per-line counts and the rate chart sum
 *    at most one row per (minute, kind) from `minute_counts`, the aggregate
 *    that the trigger of schema 3 maintains inside each append transaction;
 *    the latest device event walks the (line, ts_ms) index backwards; the
 *    events pane reads the partial indexes that hold only refusals and
 *    faults, so it costs the same whether they are 1% of the log or 0.001%.
 *  - A store of an older schema (the station has not migrated it yet) still
 *    works: the same figures come from GROUP BY queries on `audit` itself,
 *    which are slower but correct.  The choice is made per query, so the UI
 *    speeds up by itself once the station has migrated the store.
 *  - All queries of one refresh run in one read transaction: the numbers on
 *    the screen are from one snapshot, even while the station commits.
 *  - The connection is SQLITE_OPEN_READONLY: this code cannot change the
 *    store, whatever it is asked.
 */
#include "stats.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

#include <sqlite3.h>

#include "lcerr.h"

#define STATS_APPLICATION_ID 0x4c434155 /* "LCAU", as db/audit.c */
#define STATS_BUSY_MS        1000

enum stats_stmt {
    Q_BEGIN,
    Q_COMMIT,
    Q_SCHEMA,
    Q_HEAD,
    Q_MINUTES,
    Q_MINUTES_RAW,
    Q_LAST,
    Q_EVENTS_ALL,
    Q_EVENTS_LINE,
    Q_EVENTS_ALL_FAST,
    Q_EVENTS_LINE_FAST,
    Q__N
};

static const char *const stats_sql[Q__N] = {
    [Q_BEGIN] = "BEGIN",
    [Q_COMMIT] = "COMMIT",
    /* 3 when the store has the aggregate and both event indexes (schema >= 3) */
    [Q_SCHEMA] = "SELECT count(*) FROM sqlite_schema WHERE name IN"
                 " ('minute_counts', 'audit_events_ts', 'audit_events_line')",
    [Q_HEAD] = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
    /* primary key (line, minute, kind): one range of at most 1440 minutes */
    [Q_MINUTES] = "SELECT minute, kind, n FROM minute_counts"
                  " WHERE line = ?1 AND minute >= ?2 AND minute <= ?3",
    /* the same from the log itself, on the (line, ts_ms) index */
    [Q_MINUTES_RAW] = "SELECT ts_ms / 60000, kind, count(*) FROM audit"
                      " WHERE line = ?1 AND ts_ms >= ?2 AND ts_ms < ?3 GROUP BY 1, 2",
    /* backwards on (line, ts_ms); '+kind' keeps the planner off the kind index */
    [Q_LAST] = "SELECT ts_ms, kind, registration_id, serial, reason FROM audit"
               " INDEXED BY audit_line_ts"
               " WHERE line = ?1 AND +kind IN ('issued', 'reissued', 'refused', 'fault',"
               " 'redelivered') ORDER BY ts_ms DESC, seq DESC LIMIT 1",
    /* Before schema 3: (kind, ts_ms) for each kind, then a sort. */
    [Q_EVENTS_ALL] = "SELECT seq, ts_ms, line, kind, registration_id, serial, reason, detail"
                     " FROM audit WHERE kind IN ('refused', 'fault')"
                     " ORDER BY ts_ms DESC, seq DESC LIMIT ?1",
    [Q_EVENTS_LINE] = "SELECT seq, ts_ms, line, kind, registration_id, serial, reason, detail"
                      " FROM audit WHERE kind IN ('refused', 'fault') AND line = ?2"
                      " ORDER BY ts_ms DESC, seq DESC LIMIT ?1",
    /*
     * Schema 3: the partial indexes hold only these rows, in this order, so
     * the newest 50 are read directly.  INDEXED BY because the planner would
     * otherwise prefer (kind, ts_ms) and sort every refusal and fault.
     */
    [Q_EVENTS_ALL_FAST] = "SELECT seq, ts_ms, line, kind, registration_id, serial, reason,"
                          " detail FROM audit INDEXED BY audit_events_ts"
                          " WHERE kind IN ('refused', 'fault')"
                          " ORDER BY ts_ms DESC, seq DESC LIMIT ?1",
    [Q_EVENTS_LINE_FAST] = "SELECT seq, ts_ms, line, kind, registration_id, serial, reason,"
                           " detail FROM audit INDEXED BY audit_events_line"
                           " WHERE kind IN ('refused', 'fault') AND line = ?2"
                           " ORDER BY ts_ms DESC, seq DESC LIMIT ?1",
};

struct stats {
    sqlite3 *db;
    char *path;             /* for messages and the size of the files */
    sqlite3_stmt *st[Q__N]; /* prepared on first use */
};

int64_t stats_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int db_err(stats_t *s, char *err, size_t errlen, const char *what)
{
    return lc_seterr(LC_ERR_AUDIT, err, errlen, "audit store %s: %s: %s", s->path, what,
                     sqlite3_errmsg(s->db));
}

/* The cached statement, reset with cleared bindings; NULL with a message on failure. */
static sqlite3_stmt *stmt(stats_t *s, enum stats_stmt id, char *err, size_t errlen)
{
    if (s->st[id] == NULL) {
        if (sqlite3_prepare_v3(s->db, stats_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &s->st[id],
                               NULL) != SQLITE_OK) {
            db_err(s, err, errlen, "prepare");
            return NULL;
        }
    } else {
        sqlite3_reset(s->st[id]);
        sqlite3_clear_bindings(s->st[id]);
    }
    return s->st[id];
}

/* Runs a one-row integer query; *v = 0 when it returns no row. */
static int one_int(stats_t *s, enum stats_stmt id, int64_t *v, char *err, size_t errlen)
{
    sqlite3_stmt *st = stmt(s, id, err, errlen);
    int rc;

    *v = 0;
    if (st == NULL)
        return LC_ERR_AUDIT;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *v = sqlite3_column_int64(st, 0);
    else if (rc != SQLITE_DONE)
        return db_err(s, err, errlen, stats_sql[id]);
    sqlite3_reset(st);
    return LC_OK;
}

static void col_copy(sqlite3_stmt *st, int col, char *dst, size_t dstlen)
{
    const unsigned char *t = sqlite3_column_text(st, col);

    snprintf(dst, dstlen, "%s", t != NULL ? (const char *)t : "");
}

int stats_open(const char *path, stats_t **out, char *err, size_t errlen)
{
    stats_t *s = NULL;
    sqlite3_stmt *st = NULL;
    struct stat sb;
    int64_t appid = 0;
    int ret = LC_ERR_AUDIT, rc;

    if (out != NULL)
        *out = NULL;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (path == NULL || out == NULL) {
        ret = lc_seterr(LC_ERR_AUDIT, err, errlen, "stats_open: no path or no output");
        goto out;
    }
    /* SQLite says only "unable to open database file"; say why. */
    if (stat(path, &sb) != 0) {
        ret = lc_seterr(LC_ERR_AUDIT, err, errlen, "audit store %s: %s", path, strerror(errno));
        goto out;
    }
    if ((s = calloc(1, sizeof *s)) == NULL || (s->path = strdup(path)) == NULL) {
        ret = lc_seterr(LC_ERR_AUDIT, err, errlen, "audit store %s: out of memory", path);
        goto out;
    }
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        ret = lc_seterr(LC_ERR_AUDIT, err, errlen, "audit store %s: cannot open read-only: %s",
                        path, s->db != NULL ? sqlite3_errmsg(s->db) : "out of memory");
        goto out;
    }
    sqlite3_extended_result_codes(s->db, 1);
    /* A reader waits only for a WAL recovery by the writer, never for long. */
    sqlite3_busy_timeout(s->db, STATS_BUSY_MS);
    if (sqlite3_prepare_v2(s->db, "PRAGMA application_id", -1, &st, NULL) != SQLITE_OK ||
        (rc = sqlite3_step(st)) != SQLITE_ROW) {
        if (sqlite3_extended_errcode(s->db) == SQLITE_NOTADB)
            ret = lc_seterr(LC_ERR_AUDIT, err, errlen,
                            "audit store %s: not a linecert audit store (file is not a database)",
                            path);
        else
            ret = db_err(s, err, errlen, "read application_id");
        goto out;
    }
    appid = sqlite3_column_int64(st, 0);
    if (appid != STATS_APPLICATION_ID) {
        ret = lc_seterr(LC_ERR_AUDIT, err, errlen, "audit store %s: not a linecert audit store",
                        path);
        goto out;
    }
    *out = s;
    s = NULL;
    ret = LC_OK;
out:
    sqlite3_finalize(st);
    stats_free(s);
    return ret;
}

void stats_free(stats_t *s)
{
    if (s == NULL)
        return;
    for (int i = 0; i < Q__N; i++)
        sqlite3_finalize(s->st[i]);
    sqlite3_close(s->db);
    free(s->path);
    free(s);
}

/* Size of the database and its WAL, and the free space beside them. */
static void file_sizes(const stats_t *s, stats_result_t *res)
{
    struct stat sb;
    struct statvfs vfs;
    char buf[4200];
    char *slash;

    res->size_bytes = -1;
    res->free_bytes = -1;
    if (stat(s->path, &sb) == 0)
        res->size_bytes = (int64_t)sb.st_size;
    snprintf(buf, sizeof buf, "%s-wal", s->path);
    if (res->size_bytes >= 0 && stat(buf, &sb) == 0)
        res->size_bytes += (int64_t)sb.st_size;
    snprintf(buf, sizeof buf, "%s", s->path);
    if ((slash = strrchr(buf, '/')) == NULL)
        snprintf(buf, sizeof buf, ".");
    else if (slash == buf)
        buf[1] = '\0';
    else
        *slash = '\0';
    if (statvfs(buf, &vfs) == 0)
        res->free_bytes = (int64_t)vfs.f_bavail * (int64_t)vfs.f_frsize;
}

static int is_cert_kind(const char *k)
{
    return strcmp(k, "issued") == 0 || strcmp(k, "reissued") == 0;
}

/* Counts and the chart of one line. */
/* sum += n, saturating: the counts come from a table anyone with write access can edit. */
static void add_count(int64_t *sum, int64_t n)
{
    if (n > 0 && __builtin_add_overflow(*sum, n, sum))
        *sum = INT64_MAX;
}

static int line_minutes(stats_t *s, int fast, const stats_params_t *p, int64_t now_ms,
                        stats_line_t *l, char *err, size_t errlen)
{
    int64_t now_min = now_ms / 60000, chart0 = now_min - (STATS_MINUTES - 1);
    int64_t from_ms = p->shift_start_ms, from_min;
    sqlite3_stmt *st;
    int rc;

    if (p->day_start_ms < from_ms)
        from_ms = p->day_start_ms;
    if (chart0 * 60000 < from_ms)
        from_ms = chart0 * 60000;
    from_min = from_ms / 60000;
    if ((st = stmt(s, fast ? Q_MINUTES : Q_MINUTES_RAW, err, errlen)) == NULL)
        return LC_ERR_AUDIT;
    sqlite3_bind_text(st, 1, l->id, -1, SQLITE_STATIC);
    if (fast) {
        sqlite3_bind_int64(st, 2, from_min);
        sqlite3_bind_int64(st, 3, now_min);
    } else {
        sqlite3_bind_int64(st, 2, from_min * 60000);
        sqlite3_bind_int64(st, 3, (now_min + 1) * 60000);
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t minute = sqlite3_column_int64(st, 0), n = sqlite3_column_int64(st, 2);
        const char *kind = (const char *)sqlite3_column_text(st, 1);
        int in_shift;

        /* minute_counts is a display aid outside the hash chain: never trust its numbers. */
        if (kind == NULL || minute > now_min || minute < 0 || minute > INT64_MAX / 60000)
            continue;
        in_shift = minute * 60000 >= p->shift_start_ms;
        if (is_cert_kind(kind)) {
            if (minute * 60000 >= p->day_start_ms)
                add_count(&l->issued_today, n);
            if (in_shift)
                add_count(&l->issued_shift, n);
            if (minute >= chart0)
                add_count(&l->per_minute[minute - chart0], n);
        } else if (in_shift && strcmp(kind, "refused") == 0) {
            add_count(&l->refused_shift, n);
        } else if (in_shift && strcmp(kind, "fault") == 0) {
            add_count(&l->faults_shift, n);
        }
    }
    if (rc != SQLITE_DONE)
        return db_err(s, err, errlen, "per-minute counts");
    sqlite3_reset(st);
    return LC_OK;
}

/* The latest device event of one line. */
static int line_last(stats_t *s, stats_line_t *l, char *err, size_t errlen)
{
    sqlite3_stmt *st = stmt(s, Q_LAST, err, errlen);
    int rc;

    if (st == NULL)
        return LC_ERR_AUDIT;
    sqlite3_bind_text(st, 1, l->id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        l->has_last = 1;
        l->last_ts_ms = sqlite3_column_int64(st, 0);
        col_copy(st, 1, l->last_kind, sizeof l->last_kind);
        col_copy(st, 2, l->last_regid, sizeof l->last_regid);
        col_copy(st, 3, l->last_serial, sizeof l->last_serial);
        col_copy(st, 4, l->last_reason, sizeof l->last_reason);
    } else if (rc != SQLITE_DONE) {
        return db_err(s, err, errlen, "last event");
    }
    sqlite3_reset(st);
    return LC_OK;
}

static int events(stats_t *s, int fast, const stats_params_t *p, stats_result_t *res, char *err,
                  size_t errlen)
{
    size_t max = p->max_events < STATS_MAX_EVENTS ? p->max_events : STATS_MAX_EVENTS;
    enum stats_stmt id = p->event_line != NULL ? (fast ? Q_EVENTS_LINE_FAST : Q_EVENTS_LINE)
                                               : (fast ? Q_EVENTS_ALL_FAST : Q_EVENTS_ALL);
    sqlite3_stmt *st;
    int rc;

    if (max == 0)
        return LC_OK;
    if ((st = stmt(s, id, err, errlen)) == NULL)
        return LC_ERR_AUDIT;
    sqlite3_bind_int64(st, 1, (int64_t)max);
    if (p->event_line != NULL)
        sqlite3_bind_text(st, 2, p->event_line, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && res->nevents < max) {
        stats_event_t *e = &res->events[res->nevents++];
        e->seq = sqlite3_column_int64(st, 0);
        e->ts_ms = sqlite3_column_int64(st, 1);
        col_copy(st, 2, e->line, sizeof e->line);
        col_copy(st, 3, e->kind, sizeof e->kind);
        col_copy(st, 4, e->registration_id, sizeof e->registration_id);
        col_copy(st, 5, e->serial, sizeof e->serial);
        col_copy(st, 6, e->reason, sizeof e->reason);
        col_copy(st, 7, e->detail, sizeof e->detail);
    }
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return db_err(s, err, errlen, "events");
    sqlite3_reset(st);
    return LC_OK;
}

int stats_query(stats_t *s, const stats_params_t *p, stats_result_t *res, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    int64_t schema = 0;
    int ret = LC_ERR_AUDIT, fast, in_txn = 0, rc;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (res != NULL)
        memset(res, 0, sizeof *res);
    if (s == NULL || p == NULL || res == NULL || p->nlines > STATS_MAX_LINES ||
        (p->nlines > 0 && p->lines == NULL)) {
        ret = lc_seterr(LC_ERR_AUDIT, err, errlen, "stats_query: bad arguments");
        goto out;
    }
    res->now_ms = p->now_ms != 0 ? p->now_ms : stats_now_ms();
    file_sizes(s, res);
    if ((st = stmt(s, Q_BEGIN, err, errlen)) == NULL)
        goto out;
    if (sqlite3_step(st) != SQLITE_DONE) {
        ret = db_err(s, err, errlen, "begin read");
        goto out;
    }
    in_txn = 1;
    if ((ret = one_int(s, Q_SCHEMA, &schema, err, errlen)) != LC_OK)
        goto out;
    fast = schema == 3;
    res->fast_path = fast;
    ret = LC_ERR_AUDIT;
    if ((st = stmt(s, Q_HEAD, err, errlen)) == NULL)
        goto out;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        res->head_seq = sqlite3_column_int64(st, 0);
        col_copy(st, 1, res->head_hash, sizeof res->head_hash);
    } else if (rc != SQLITE_DONE) {
        ret = db_err(s, err, errlen, "chain head");
        goto out;
    }
    sqlite3_reset(st);
    res->nlines = p->nlines;
    for (size_t i = 0; i < p->nlines; i++) {
        stats_line_t *l = &res->lines[i];
        snprintf(l->id, sizeof l->id, "%s", p->lines[i] != NULL ? p->lines[i] : "");
        if ((ret = line_minutes(s, fast, p, res->now_ms, l, err, errlen)) != LC_OK ||
            (ret = line_last(s, l, err, errlen)) != LC_OK)
            goto out;
    }
    if ((ret = events(s, fast, p, res, err, errlen)) != LC_OK)
        goto out;
    ret = LC_OK;
out:
    if (in_txn && (st = stmt(s, Q_COMMIT, NULL, 0)) != NULL) {
        /* Reset whatever an error left running, so that the read transaction ends here. */
        for (int i = 0; i < Q__N; i++)
            if (s->st[i] != NULL && i != Q_COMMIT)
                sqlite3_reset(s->st[i]);
        sqlite3_step(st);
        sqlite3_reset(st);
    }
    return ret;
}

/* Parses "HH:MM[,HH:MM...]" into minutes of the day. Returns the count, or 0 if malformed. */
static size_t parse_shifts(const char *v, int minutes[STATS_MAX_SHIFTS])
{
    size_t n = 0;
    const char *p = v;

    if (v == NULL)
        return 0;
    for (;;) {
        int h, m;
        if (n == STATS_MAX_SHIFTS || p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9' ||
            p[2] != ':' || p[3] < '0' || p[3] > '9' || p[4] < '0' || p[4] > '9')
            return 0;
        h = (p[0] - '0') * 10 + (p[1] - '0');
        m = (p[3] - '0') * 10 + (p[4] - '0');
        if (h > 23 || m > 59)
            return 0;
        minutes[n++] = h * 60 + m;
        p += 5;
        if (*p == '\0')
            return n;
        if (*p != ',')
            return 0;
        p++;
    }
}

/* Local time of day h:m on the day of *base, offset by dday days, as UTC ms. */
static int64_t local_at(const struct tm *base, int dday, int minute_of_day)
{
    struct tm t = *base;

    t.tm_mday += dday;
    t.tm_hour = minute_of_day / 60;
    t.tm_min = minute_of_day % 60;
    t.tm_sec = 0;
    t.tm_isdst = -1; /* let mktime decide: the day may cross a DST change */
    return (int64_t)mktime(&t) * 1000;
}

int stats_day_bounds(const char *shifts, int64_t now_ms, int64_t *shift_start_ms,
                     int64_t *day_start_ms)
{
    int minutes[STATS_MAX_SHIFTS];
    size_t n = parse_shifts(shifts, minutes);
    time_t now_s = (time_t)(now_ms / 1000);
    int64_t best = INT64_MIN;
    struct tm tm;

    if (shift_start_ms != NULL)
        *shift_start_ms = 0;
    if (day_start_ms != NULL)
        *day_start_ms = 0;
    if (n == 0 || localtime_r(&now_s, &tm) == NULL)
        return LC_ERR_CONFIG;
    if (day_start_ms != NULL)
        *day_start_ms = local_at(&tm, 0, 0);
    /* The latest shift start at or before now, today or else yesterday. */
    for (int dday = 0; dday >= -1 && best == INT64_MIN; dday--)
        for (size_t i = 0; i < n; i++) {
            int64_t t = local_at(&tm, dday, minutes[i]);
            if (t <= now_ms && t > best)
                best = t;
        }
    if (shift_start_ms != NULL)
        *shift_start_ms = best;
    return LC_OK;
}
