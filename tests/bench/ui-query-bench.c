/*
 * ui-query-bench.c — how long the operator UI's once-a-second refresh takes
 * on a large audit log.
 *
 *   ui-query-bench [--rows N] [--db PATH] [--iterations K]
 *
 * Builds an audit store of N rows (default 1,000,000) spread over 4 lines and
 * the last 24 hours, through the real write path (audit_append, batches of
 * 1000, so the hash chain and the schema-3 trigger run as in the station):
 * mostly issuances, 0.3% refusals and 0.1% faults on lines 1-3, none on line
 * 4.  Then runs the UI's refresh (stats_query: per-line shift/day counts, the
 * 60-minute chart, the last device per line, the chain head and the latest 50
 * refusals and faults) K times (default 200) and prints, one `name: value`
 * per line:
 *
 *   rows                     rows in the store
 *   generate_s, generate_rows_per_s   time to write them (only when generated)
 *   db_bytes                 database + WAL size
 *   fast_path                1 if the schema-3 aggregate and indexes were used
 *   first_refresh_ms         the first refresh of a fresh connection
 *   refresh_p50_ms / refresh_p99_ms / refresh_max_ms   the refresh, all lines' events
 *   refresh_cpu_p50_ms / refresh_cpu_p99_ms   CPU time of the refresh (this
 *                            thread): on a busy machine the wall time also
 *                            counts waiting for a core, this does not
 *   filtered_p50_ms / filtered_p99_ms   the refresh with the events filtered to
 *                            line 4 (which has no refusals or faults in a
 *                            generated store)
 *
 * With --db PATH and an existing store, the store is used as it is (nothing
 * is written: e.g. the 10-million-row store of tests/bench/large-log.sh);
 * without --db, a temporary store is made and removed.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench_rng.h"
#include "audit.h"
#include "lcerr.h"
#include "stats.h"

#define BATCH  1000
#define NLINES 4

static double clock_s(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now_s(void)
{
    return clock_s(CLOCK_MONOTONIC);
}

/* One batch's worth of row text (the rows point into it). */
struct row_text {
    char regid[40];
    char serial[40];
    char thumb[65];
    char csr[65];
};

static int generate(const char *path, int64_t rows, char *err, size_t errlen)
{
    static const char *const line_ids[NLINES] = {"1", "2", "3", "4"};
    static const char *const refusals[] = {"cn-mismatch", "cn-invalid", "bad-signature",
                                           "cn-duplicate"};
    static const char *const faults[] = {"jig-timeout", "hsm-unavailable", "jig-failed"};
    audit_entry_t *e = calloc(BATCH, sizeof *e);
    struct row_text *t = calloc(BATCH, sizeof *t);
    audit_t *a = NULL;
    uint64_t rng = 0x9E3779B97F4A7C15ULL;
    int64_t end = stats_now_ms(), start = end - 24LL * 3600 * 1000, done = 0;
    int ret = LC_ERR_NOMEM;

    if (e == NULL || t == NULL)
        goto out;
    if ((ret = audit_open(path, AUDIT_READWRITE, &a, err, errlen)) != LC_OK)
        goto out;
    while (done < rows) {
        size_t n = rows - done < BATCH ? (size_t)(rows - done) : BATCH;
        memset(e, 0, n * sizeof *e);
        for (size_t i = 0; i < n; i++) {
            int64_t k = done + (int64_t)i;
            size_t line = (size_t)(k % NLINES);
            unsigned roll = (unsigned)(rng_next(&rng) % 1000);
            audit_row_t *r = &e[i].row;

            r->ts_ms = start + (end - start) * k / rows;
            r->actor = "linecertd";
            r->line = line_ids[line];
            snprintf(t[i].regid, sizeof t[i].regid, "dev-%s-%08" PRId64, line_ids[line],
                     k / NLINES);
            r->registration_id = t[i].regid;
            rand_hex(&rng, t[i].csr, 64);
            r->csr_sha256 = t[i].csr;
            if (line < 3 && roll < 3) {
                r->kind = "refused";
                r->reason = refusals[roll % 4];
                r->detail = "CN \"dev-x\" does not match the device serial \"dev-y\"";
            } else if (line < 3 && roll < 4) {
                r->kind = "fault";
                r->reason = faults[rng_next(&rng) % 3];
                r->detail = "the jig program did not answer within 5000 ms";
            } else {
                r->kind = "issued";
                rand_hex(&rng, t[i].serial, 32);
                rand_hex(&rng, t[i].thumb, 64);
                r->serial = t[i].serial;
                r->thumbprint = t[i].thumb;
            }
        }
        if ((ret = audit_append(a, e, n, err, errlen)) != LC_OK)
            goto out;
        done += (int64_t)n;
    }
    ret = LC_OK;
out:
    if (ret == LC_ERR_NOMEM)
        snprintf(err, errlen, "out of memory");
    audit_free(a);
    free(t);
    free(e);
    return ret;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static double pct(const double *v, int n, double p)
{
    int i = (int)(p * (n - 1) + 0.5);
    return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

/*
 * Runs the refresh `iters` times; fills ms[] with the wall times and cpu[] (if
 * not NULL) with the CPU times, both sorted, and *first with the first wall
 * time.  Returns LC_OK or an error.
 */
static int measure(stats_t *s, const char *event_line, int iters, double *ms, double *cpu,
                   double *first, stats_result_t *res, char *err, size_t errlen)
{
    static const char *const line_ids[NLINES] = {"1", "2", "3", "4"};

    for (int i = 0; i < iters; i++) {
        stats_params_t p = {0};
        double t0 = now_s(), c0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
        int ret;

        /* Everything the UI does per refresh, including the shift arithmetic. */
        p.now_ms = stats_now_ms();
        stats_day_bounds("06:00,14:00,22:00", p.now_ms, &p.shift_start_ms, &p.day_start_ms);
        p.lines = line_ids;
        p.nlines = NLINES;
        p.event_line = event_line;
        p.max_events = STATS_MAX_EVENTS;
        if ((ret = stats_query(s, &p, res, err, errlen)) != LC_OK)
            return ret;
        ms[i] = (now_s() - t0) * 1e3;
        if (cpu != NULL)
            cpu[i] = (clock_s(CLOCK_THREAD_CPUTIME_ID) - c0) * 1e3;
        if (i == 0 && first != NULL)
            *first = ms[0];
    }
    qsort(ms, (size_t)iters, sizeof *ms, cmp_double);
    if (cpu != NULL)
        qsort(cpu, (size_t)iters, sizeof *cpu, cmp_double);
    return LC_OK;
}

static void usage(FILE *f)
{
    fputs("usage: ui-query-bench [--rows N] [--db PATH] [--iterations K]\n", f);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"rows", required_argument, NULL, 'r'},
                                         {"db", required_argument, NULL, 'd'},
                                         {"iterations", required_argument, NULL, 'i'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int64_t rows = 1000000;
    int iters = 200, c, ret = 1;
    const char *db = NULL;
    char tmpdir[] = "/tmp/ui-query-bench-XXXXXX", path[4200], err[512];
    double *ms = NULL, *ms2 = NULL, *cpu = NULL, first = 0;
    stats_result_t *res = NULL;
    stats_t *s = NULL;
    struct stat sb;
    int made_tmp = 0;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'r':
            rows = strtoll(optarg, NULL, 10);
            break;
        case 'd':
            db = optarg;
            break;
        case 'i':
            iters = atoi(optarg);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc || rows < 1 || iters < 1) {
        usage(stderr);
        return 2;
    }
    if (db == NULL) {
        if (mkdtemp(tmpdir) == NULL) {
            perror("ui-query-bench: mkdtemp");
            return 1;
        }
        made_tmp = 1;
        snprintf(path, sizeof path, "%s/audit.db", tmpdir);
    } else {
        snprintf(path, sizeof path, "%s", db);
    }
    if (stat(path, &sb) != 0) {
        double t0 = now_s(), dt;
        if (generate(path, rows, err, sizeof err) != LC_OK) {
            fprintf(stderr, "ui-query-bench: %s\n", err);
            goto out;
        }
        dt = now_s() - t0;
        printf("generate_s: %.1f\ngenerate_rows_per_s: %.0f\n", dt, (double)rows / dt);
    }
    ms = calloc((size_t)iters, sizeof *ms);
    ms2 = calloc((size_t)iters, sizeof *ms2);
    cpu = calloc((size_t)iters, sizeof *cpu);
    res = calloc(1, sizeof *res);
    if (ms == NULL || ms2 == NULL || cpu == NULL || res == NULL) {
        fputs("ui-query-bench: out of memory\n", stderr);
        goto out;
    }
    if (stats_open(path, &s, err, sizeof err) != LC_OK ||
        measure(s, NULL, iters, ms, cpu, &first, res, err, sizeof err) != LC_OK ||
        measure(s, "4", iters, ms2, NULL, NULL, res, err, sizeof err) != LC_OK) {
        fprintf(stderr, "ui-query-bench: %s\n", err);
        goto out;
    }
    printf("rows: %" PRId64 "\n", res->head_seq);
    printf("db_bytes: %" PRId64 "\n", res->size_bytes);
    printf("fast_path: %d\n", res->fast_path);
    printf("first_refresh_ms: %.2f\n", first);
    printf("refresh_p50_ms: %.2f\nrefresh_p99_ms: %.2f\nrefresh_max_ms: %.2f\n", pct(ms, iters, .5),
           pct(ms, iters, .99), ms[iters - 1]);
    printf("refresh_cpu_p50_ms: %.2f\nrefresh_cpu_p99_ms: %.2f\n", pct(cpu, iters, .5),
           pct(cpu, iters, .99));
    printf("filtered_p50_ms: %.2f\nfiltered_p99_ms: %.2f\n", pct(ms2, iters, .5),
           pct(ms2, iters, .99));
    ret = 0;
out:
    stats_free(s);
    free(res);
    free(cpu);
    free(ms2);
    free(ms);
    if (made_tmp) {
        static const char *const sfx[] = {"", "-wal", "-shm"};
        for (size_t i = 0; i < 3; i++) {
            char f[4300];
            snprintf(f, sizeof f, "%s%s", path, sfx[i]);
            unlink(f);
        }
        rmdir(tmpdir);
    }
    return ret;
}
