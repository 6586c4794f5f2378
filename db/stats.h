/*
 * stats.h — read-only figures from the audit store for the operator UI.
 *
 * The operator screen refreshes every second: per line, the certificates of
 * this shift and of today, refusals and faults this shift, certificates per
 * minute over the last hour and the last device; for the station, the head
 * of the hash chain and the size of the store; and the latest refusals and
 * faults.  stats_query() computes all of that in one read transaction (one
 * consistent snapshot) on a connection opened with SQLITE_OPEN_READONLY: this
 * module never writes, never migrates and never takes a write lock.
 *
 * It stays fast on a large log (measured: tests/bench/ui-query-bench.c)
 * because the counts come from the per-minute aggregate `minute_counts`,
 * which an SQL trigger keeps up to date as rows are appended (schema 3, see
 * db/audit.c), and the event list from partial indexes that hold only
 * refusals and faults.  On an older store without them it falls back to
 * slower queries on the `audit` table, with the same results.
 *
 * A handle is used by one thread at a time (the UI's worker thread).
 */
#ifndef LINECERT_STATS_H
#define LINECERT_STATS_H

#include <stddef.h>
#include <stdint.h>

#define STATS_MAX_LINES   64 /* as many as a configuration may have */
#define STATS_MINUTES     60 /* the rate chart: the last hour, one bar per minute */
#define STATS_MAX_EVENTS  50 /* the events pane */
#define STATS_MAX_SHIFTS  8  /* `shifts` in [station]: 1 to 8 start times */
#define STATS_LINE_ID_LEN 40 /* a line id is 1 to 32 characters */

typedef struct stats stats_t;

/* What to compute.  Times are UTC milliseconds since the epoch. */
typedef struct stats_params {
    int64_t now_ms;           /* "now"; 0 = the current time */
    int64_t shift_start_ms;   /* start of the current shift (stats_day_bounds) */
    int64_t day_start_ms;     /* local midnight today (stats_day_bounds) */
    const char *const *lines; /* the line ids to report, in display order */
    size_t nlines;            /* at most STATS_MAX_LINES */
    const char *event_line;   /* events of this line only; NULL = every line */
    size_t max_events;        /* at most STATS_MAX_EVENTS; 0 = none */
} stats_params_t;

/* The figures of one line. */
typedef struct stats_line {
    char id[STATS_LINE_ID_LEN];        /* the line id, as asked */
    int64_t issued_shift;              /* certificates (issued + reissued) this shift */
    int64_t issued_today;              /* certificates since local midnight */
    int64_t refused_shift;             /* refusals this shift */
    int64_t faults_shift;              /* faults this shift */
    int64_t per_minute[STATS_MINUTES]; /* certificates per minute; [STATS_MINUTES - 1] is
                                          the current (incomplete) minute */
    int has_last;                      /* the line has a device event at all */
    int64_t last_ts_ms;                /* time of its latest device event */
    char last_kind[16];                /* "issued", "reissued", "refused", "fault", "redelivered" */
    char last_regid[80];               /* its registration ID (the device), "" if none */
    char last_serial[80];              /* certificate serial (uppercase hex), "" if none */
    char last_reason[40];              /* reason code, "" if none */
} stats_line_t;

/* One refusal or fault, for the events pane. */
typedef struct stats_event {
    int64_t seq;                  /* audit row */
    int64_t ts_ms;                /* when */
    char line[STATS_LINE_ID_LEN]; /* line id; "" for a station-wide event */
    char kind[16];                /* "refused" or "fault" */
    char registration_id[80];     /* the device, "" if not known */
    char serial[80];              /* certificate or device serial, "" if none */
    char reason[40];              /* reason code ("cn-mismatch"), "" if none */
    char detail[256];             /* free text, truncated */
} stats_event_t;

/* Everything stats_query() found. */
typedef struct stats_result {
    int64_t now_ms;     /* the "now" the figures are for */
    int64_t head_seq;   /* last row of the hash chain (= rows), 0 if empty */
    char head_hash[65]; /* its hash, 64 lowercase hex; "" if empty */
    int64_t size_bytes; /* database + write-ahead log, -1 if unknown */
    int64_t free_bytes; /* free space for this user on its file system, -1 if unknown */
    int fast_path;      /* 1: minute_counts and the event indexes were used */
    size_t nlines;      /* = params->nlines */
    stats_line_t lines[STATS_MAX_LINES];
    size_t nevents; /* newest first */
    stats_event_t events[STATS_MAX_EVENTS];
} stats_result_t;

/*
 * Opens the audit store at path read-only (SQLITE_OPEN_READONLY) and checks
 * that it is a linecert audit store.  The file must exist; for a store in WAL
 * mode its -wal and -shm files must exist or the folder must be writable (see
 * docs/audit.md).  On failure *out is NULL and err holds a message naming the
 * path.  Returns LC_OK or LC_ERR_AUDIT.  Free with stats_free().
 */
int stats_open(const char *path, stats_t **out, char *err, size_t errlen);

/* Closes the handle.  stats_free(NULL) is a no-op. */
void stats_free(stats_t *s);

/*
 * Computes the figures that params asks for into *res (overwritten entirely;
 * the caller owns it — it is large, allocate it on the heap).  Runs in one
 * read transaction.  Returns LC_OK, or LC_ERR_AUDIT with a message in err
 * (e.g. the file was replaced by something that is not a store).
 */
int stats_query(stats_t *s, const stats_params_t *params, stats_result_t *res, char *err,
                size_t errlen);

/*
 * Parses a `shifts` value ("06:00,14:00,22:00": 1 to STATS_MAX_SHIFTS times
 * HH:MM, comma-separated, no spaces) and computes, for the instant now_ms, the
 * start of the current shift and local midnight of the current day, in UTC
 * ms, using the process's local time zone (daylight saving included).  The
 * shift that started before midnight is still current after it (a night
 * shift 22:00-06:00).  Either output may be NULL.  Returns LC_OK, or
 * LC_ERR_CONFIG if shifts is malformed (outputs then 0).
 */
int stats_day_bounds(const char *shifts, int64_t now_ms, int64_t *shift_start_ms,
                     int64_t *day_start_ms);

/* The current time in UTC milliseconds. */
int64_t stats_now_ms(void);

#endif
