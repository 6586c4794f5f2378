/*
 * test_writer.c — the audit store's group-commit writer (station/writer.c):
 * many callers' rows share one transaction, each caller is released only
 * once its rows have committed, and a bad entry fails its own caller alone.
 */
#include "audit.h"
#include "lcerr.h"
#include "testutil.h"
#include "testutil_proc.h"
#include "writer.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *dir;
static char path[4096];
static writer_t *w;

static void setup(void)
{
    audit_t *a = NULL;
    char err[256];

    dir = tu_mkdtemp("writer");
    ck_assert_ptr_nonnull(dir);
    snprintf(path, sizeof path, "%s/audit.db", dir);
    ck_assert_int_eq(audit_open(path, AUDIT_READWRITE, &a, err, sizeof err), LC_OK);
    ck_assert_int_eq(writer_start(a, &w, err, sizeof err), LC_OK);
}

static void teardown(void)
{
    writer_stop(w);
    w = NULL;
    tu_rmtree(dir);
    free(dir);
    dir = NULL;
}

static void event(audit_entry_t *e, const char *kind, const char *detail)
{
    memset(e, 0, sizeof *e);
    e->row.actor = "test";
    e->row.line = "1";
    e->row.kind = kind;
    e->row.detail = detail;
}

/* Rows in the store, and whether its hash chain verifies, read by a new handle. */
static int64_t committed_rows(int *chain_ok)
{
    audit_t *a = NULL;
    audit_verify_result_t vr;
    char err[256];
    int64_t n;

    ck_assert_int_eq(audit_open(path, AUDIT_READONLY, &a, err, sizeof err), LC_OK);
    n = audit_count(a);
    *chain_ok = audit_verify(a, &vr, err, sizeof err) == LC_OK && vr.first_bad_seq == 0;
    audit_free(a);
    return n;
}

struct appender {
    int id;
    int ret[25];
    int64_t seq[25];
};

static void *append_25(void *arg)
{
    struct appender *ap = arg;
    char detail[25][32], err[256];

    for (int i = 0; i < 25; i++) {
        audit_entry_t e;
        snprintf(detail[i], sizeof detail[i], "thread %d row %d", ap->id, i);
        event(&e, "test", detail[i]);
        ap->ret[i] = writer_append(w, &e, 1, err, sizeof err);
        ap->seq[i] = e.row.seq;
    }
    return NULL;
}

/* 8 threads append at once: every row commits once, in one hash chain, seqs 1..200. */
START_TEST(concurrent_appends_commit_every_row_once)
{
    struct appender ap[8];
    pthread_t th[8];
    char seen[201] = {0};
    long long rows, txns;
    int chain_ok;

    for (int t = 0; t < 8; t++) {
        ap[t].id = t;
        ck_assert_int_eq(pthread_create(&th[t], NULL, append_25, &ap[t]), 0);
    }
    for (int t = 0; t < 8; t++) {
        ck_assert_int_eq(pthread_join(th[t], NULL), 0);
        for (int i = 0; i < 25; i++) {
            ck_assert_int_eq(ap[t].ret[i], LC_OK);
            ck_assert(ap[t].seq[i] >= 1 && ap[t].seq[i] <= 200);
            ck_assert_msg(!seen[ap[t].seq[i]], "seq %lld twice", (long long)ap[t].seq[i]);
            seen[ap[t].seq[i]] = 1;
            if (i > 0) /* one caller's rows stay in its order */
                ck_assert_int_gt(ap[t].seq[i], ap[t].seq[i - 1]);
        }
    }
    writer_stats(w, &rows, &txns);
    ck_assert_int_eq(rows, 200);
    ck_assert(txns >= 1 && txns <= 200);
    ck_assert_int_eq(committed_rows(&chain_ok), 200);
    ck_assert(chain_ok);
}
END_TEST

/*
 * Takes the store's write lock on another connection, then submits `first`:
 * returns once the writer thread is inside that commit, waiting for the lock
 * (release it with release_store()).
 */
static sqlite3 *hold_writer_in_commit(audit_entry_t *first, writer_result_t *r0, sem_t *d0)
{
    sqlite3 *blocker = NULL;

    ck_assert_int_eq(sqlite3_open(path, &blocker), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(blocker, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    event(first, "test", "first");
    sem_init(d0, 0, 0);
    ck_assert_int_eq(writer_submit(w, first, 1, r0, d0), LC_OK);
    usleep(100 * 1000);
    return blocker;
}

static void release_store(sqlite3 *blocker)
{
    ck_assert_int_eq(sqlite3_exec(blocker, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(blocker);
}

/*
 * writer_submit() returns before the commit and posts `done` after it.  The
 * store is held locked by another connection so that the commit cannot
 * happen yet; the three jobs queued meanwhile then go in one transaction, and
 * the bad one in the middle fails alone.
 */
START_TEST(submit_posts_after_commit_and_isolates_a_bad_entry)
{
    audit_entry_t first, e[3];
    writer_result_t r0, r[3];
    sem_t d0, d[3];
    sqlite3 *blocker = hold_writer_in_commit(&first, &r0, &d0);
    long long rows, txns;
    int chain_ok;

    event(&e[0], "test", "good 1");
    event(&e[1], NULL, "bad: no kind");
    event(&e[2], "test", "good 2");
    for (int i = 0; i < 3; i++) {
        sem_init(&d[i], 0, 0);
        ck_assert_int_eq(writer_submit(w, &e[i], 1, &r[i], &d[i]), LC_OK);
    }
    usleep(100 * 1000);
    errno = 0;
    ck_assert_int_eq(sem_trywait(&d0), -1); /* nothing committed: nobody released */
    ck_assert_int_eq(errno, EAGAIN);
    ck_assert_int_eq(committed_rows(&chain_ok), 0);

    release_store(blocker);
    ck_assert_int_eq(sem_wait(&d0), 0);
    ck_assert_int_eq(r0.ret, LC_OK);
    ck_assert_int_eq(first.row.seq, 1);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(sem_wait(&d[i]), 0);
    ck_assert_int_eq(r[0].ret, LC_OK);
    ck_assert_int_eq(r[2].ret, LC_OK);
    ck_assert_int_eq(r[1].ret, LC_ERR_AUDIT);
    ck_assert_msg(strstr(r[1].err, "kind") != NULL, "%s", r[1].err);
    ck_assert_int_eq(e[0].row.seq, 2);
    ck_assert_int_eq(e[2].row.seq, 3);
    ck_assert_int_eq(e[1].row.seq, 0);
    writer_stats(w, &rows, &txns);
    ck_assert_int_eq(rows, 3);
    ck_assert_int_eq(committed_rows(&chain_ok), 3);
    ck_assert(chain_ok);
    sem_destroy(&d0);
    for (int i = 0; i < 3; i++)
        sem_destroy(&d[i]);
}
END_TEST

/*
 * writer_queue() wakes nobody: what it queues waits for writer_flush(),
 * which commits it on the calling thread (in one transaction) and posts each
 * caller before it returns.  (The writer thread would take it too if it
 * were awake: first it is given one row and time to go back to sleep.)
 */
START_TEST(queue_waits_for_flush_which_commits_on_the_caller)
{
    audit_entry_t e[5], warm;
    writer_result_t r[5];
    sem_t d[5];
    long long rows, txns;
    char err[256];
    int chain_ok;

    event(&warm, "test", "the writer thread's last row before it sleeps");
    ck_assert_int_eq(writer_append(w, &warm, 1, err, sizeof err), LC_OK);
    usleep(50 * 1000);
    for (int i = 0; i < 5; i++) {
        event(&e[i], "test", "queued");
        sem_init(&d[i], 0, 0);
        ck_assert_int_eq(writer_queue(w, &e[i], 1, &r[i], &d[i]), LC_OK);
    }
    usleep(150 * 1000); /* the writer thread was not woken: nothing commits */
    errno = 0;
    ck_assert_int_eq(sem_trywait(&d[0]), -1);
    ck_assert_int_eq(errno, EAGAIN);
    ck_assert_int_eq(committed_rows(&chain_ok), 1);
    writer_flush(w);
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(sem_trywait(&d[i]), 0); /* posted before writer_flush() returned */
        ck_assert_int_eq(r[i].ret, LC_OK);
        ck_assert_int_eq(e[i].row.seq, i + 2);
        sem_destroy(&d[i]);
    }
    writer_stats(w, &rows, &txns);
    ck_assert_int_eq(rows, 6);
    ck_assert_int_eq(txns, 2);
    ck_assert_int_eq(committed_rows(&chain_ok), 6);
    ck_assert(chain_ok);
    writer_flush(w); /* nothing queued: nothing happens */
    writer_stats(w, &rows, &txns);
    ck_assert_int_eq(txns, 2);
}
END_TEST

struct flusher {
    double took;
};

static void *flush_now(void *arg)
{
    struct flusher *f = arg;
    double t0 = tu_now_s();

    writer_flush(w);
    f->took = tu_now_s() - t0;
    return NULL;
}

/*
 * While the writer thread is committing (held up by a lock on the store),
 * writer_flush() returns at once and leaves what is queued to that thread,
 * which commits it next: one committer at a time, nothing stranded.
 */
START_TEST(flush_during_a_commit_leaves_the_queue_to_the_committer)
{
    audit_entry_t first, later;
    writer_result_t r0, r1;
    sem_t d0, d1;
    sqlite3 *blocker = hold_writer_in_commit(&first, &r0, &d0);
    struct flusher f = {0};
    pthread_t th;
    int chain_ok;

    event(&later, "test", "later");
    sem_init(&d1, 0, 0);
    ck_assert_int_eq(writer_queue(w, &later, 1, &r1, &d1), LC_OK);
    ck_assert_int_eq(pthread_create(&th, NULL, flush_now, &f), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_double_lt(f.took, 0.05);
    errno = 0;
    ck_assert_int_eq(sem_trywait(&d1), -1);
    ck_assert_int_eq(errno, EAGAIN);

    release_store(blocker);
    ck_assert_int_eq(sem_wait(&d0), 0);
    ck_assert_int_eq(sem_wait(&d1), 0);
    ck_assert_int_eq(r0.ret, LC_OK);
    ck_assert_int_eq(r1.ret, LC_OK);
    ck_assert_int_eq(first.row.seq, 1);
    ck_assert_int_eq(later.row.seq, 2);
    ck_assert_int_eq(committed_rows(&chain_ok), 2);
    ck_assert(chain_ok);
    sem_destroy(&d0);
    sem_destroy(&d1);
}
END_TEST

/* Queued but never flushed: writer_stop() still commits it and posts its caller. */
START_TEST(stop_commits_what_was_queued)
{
    audit_entry_t e;
    writer_result_t r;
    sem_t d;
    int chain_ok;

    event(&e, "test", "queued at shutdown");
    sem_init(&d, 0, 0);
    ck_assert_int_eq(writer_queue(w, &e, 1, &r, &d), LC_OK);
    writer_stop(w);
    w = NULL;
    ck_assert_int_eq(sem_trywait(&d), 0);
    ck_assert_int_eq(r.ret, LC_OK);
    ck_assert_int_eq(committed_rows(&chain_ok), 1);
    ck_assert(chain_ok);
    sem_destroy(&d);
}
END_TEST

START_TEST(nothing_and_too_much_are_refused)
{
    static audit_entry_t many[2049];
    writer_result_t r;
    sem_t d;
    char err[256];

    sem_init(&d, 0, 0);
    ck_assert_int_eq(writer_append(w, many, 0, err, sizeof err), LC_OK); /* nothing to do */
    ck_assert_int_eq(writer_submit(w, many, 0, &r, &d), LC_ERR_AUDIT);
    ck_assert_int_eq(r.ret, LC_ERR_AUDIT);
    ck_assert_int_eq(writer_submit(w, many, 2049, &r, &d), LC_ERR_AUDIT);
    ck_assert_msg(strstr(r.err, "2049 entries") != NULL, "%s", r.err);
    ck_assert_int_eq(writer_append(w, many, 2049, err, sizeof err), LC_ERR_AUDIT);
    sem_destroy(&d);
}
END_TEST

static Suite *writer_suite(void)
{
    Suite *s = suite_create("writer");
    TCase *tc = tcase_create("group commit");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, concurrent_appends_commit_every_row_once);
    tcase_add_test(tc, submit_posts_after_commit_and_isolates_a_bad_entry);
    tcase_add_test(tc, nothing_and_too_much_are_refused);
    tcase_add_test(tc, queue_waits_for_flush_which_commits_on_the_caller);
    tcase_add_test(tc, flush_during_a_commit_leaves_the_queue_to_the_committer);
    tcase_add_test(tc, stop_commits_what_was_queued);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(writer_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
