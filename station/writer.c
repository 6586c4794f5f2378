/*
 * writer.c — group-commit writer thread (see writer.h).
 */
#include "writer.h"

#include "lcerr.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BATCH 2048 /* entries per transaction */

struct wjob {
    audit_entry_t *entries; /* the caller's */
    size_t n;
    char *serial_ack; /* an ack job: no entries */
    int ret;
    char err[256];
    writer_result_t *out; /* an append: where the outcome goes */
    /*
     * Posted once the outcome is in *out.  A semaphore, not a condition
     * variable under the queue's mutex: the woken caller does not then queue
     * up behind the writer for that mutex (one futex wake, nothing else).
     */
    sem_t *done;
    struct wjob *next;
};

struct writer {
    audit_t *a;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t work; /* the thread waits for jobs */
    struct wjob *head, *tail;
    int busy; /* a thread is committing (this one or a writer_flush() caller) */
    int stopping;
    _Atomic long long rows, txns; /* counted by whichever thread commits */
    audit_entry_t *batch;         /* the thread's scratch array */
};

static void commit_one(writer_t *w, struct wjob *j)
{
    j->ret = audit_append(w->a, j->entries, j->n, j->err, sizeof j->err);
    if (j->ret == LC_OK) {
        w->rows += (long long)j->n;
        w->txns++;
    }
}

/* Appends a run of jobs in one transaction; on failure, each on its own. */
static void commit_batch(writer_t *w, struct wjob *first, size_t njobs, size_t nentries)
{
    struct wjob *j;
    size_t k = 0;
    char err[256];
    int ret;

    if (njobs == 1) {
        commit_one(w, first);
        return;
    }
    for (j = first; k < nentries; j = j->next) {
        memcpy(w->batch + k, j->entries, j->n * sizeof *j->entries);
        k += j->n;
    }
    ret = audit_append(w->a, w->batch, nentries, err, sizeof err);
    if (ret != LC_OK) {
        /* Something in the batch is bad (or the store is): isolate it. */
        size_t i = 0;
        for (j = first; i < njobs; j = j->next, i++)
            commit_one(w, j);
        return;
    }
    w->rows += (long long)nentries;
    w->txns++;
    k = 0;
    for (j = first; k < nentries; j = j->next) {
        memcpy(j->entries, w->batch + k, j->n * sizeof *j->entries); /* seq, hashes, ts */
        j->ret = LC_OK;
        k += j->n;
    }
}

/* Commits a list taken off the queue, then hands every job back (posts its caller). */
static void run_jobs(writer_t *w, struct wjob *list)
{
    struct wjob *j, *next;

    /* Runs of append jobs, at most MAX_BATCH entries per transaction. */
    for (j = list; j != NULL;) {
        struct wjob *first = j;
        size_t njobs = 0, nentries = 0;
        if (j->serial_ack != NULL) {
            j->ret = audit_mark_acked(w->a, j->serial_ack, j->err, sizeof j->err);
            j = j->next;
            continue;
        }
        while (j != NULL && j->serial_ack == NULL && (njobs == 0 || nentries + j->n <= MAX_BATCH)) {
            nentries += j->n;
            njobs++;
            j = j->next;
        }
        commit_batch(w, first, njobs, nentries);
    }
    for (j = list; j != NULL; j = next) {
        next = j->next;
        if (j->out != NULL) {
            j->out->ret = j->ret;
            memcpy(j->out->err, j->err, sizeof j->out->err);
            sem_post(j->done); /* the entries belong to their caller again */
        }
        free(j->serial_ack); /* nobody waits for an ack */
        free(j);
    }
}

/*
 * Takes the queue and the store for the calling thread (under w->mu, which
 * it releases); returns with w->mu held again, the store released, and the
 * thread the work is left to (if any arrived meanwhile) signalled.
 */
static void commit_queued(writer_t *w)
{
    struct wjob *list = w->head;

    w->head = w->tail = NULL;
    w->busy = 1;
    pthread_mutex_unlock(&w->mu);
    run_jobs(w, list);
    pthread_mutex_lock(&w->mu);
    w->busy = 0;
    if (w->head != NULL || w->stopping)
        pthread_cond_signal(&w->work);
}

static void *writer_main(void *arg)
{
    writer_t *w = arg;

    pthread_mutex_lock(&w->mu);
    for (;;) {
        /* Waits for work while another thread (writer_flush) has the store. */
        while (w->busy || (w->head == NULL && !w->stopping))
            pthread_cond_wait(&w->work, &w->mu);
        if (w->head == NULL)
            break;
        commit_queued(w);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int writer_start(audit_t *a, writer_t **out, char *err, size_t errlen)
{
    writer_t *w = calloc(1, sizeof *w);

    *out = NULL;
    if (w == NULL || (w->batch = calloc(MAX_BATCH, sizeof *w->batch)) == NULL) {
        free(w);
        return lc_seterr(LC_ERR_INTERNAL, err, errlen, "out of memory");
    }
    w->a = a;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->work, NULL);
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        free(w->batch);
        free(w);
        return lc_seterr(LC_ERR_INTERNAL, err, errlen, "cannot start the audit writer");
    }
    *out = w;
    return LC_OK;
}

void writer_stop(writer_t *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    w->stopping = 1;
    pthread_cond_signal(&w->work);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    audit_free(w->a);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->work);
    free(w->batch);
    free(w);
}

static void enqueue(writer_t *w, struct wjob *j, int wake)
{
    if (w->tail != NULL)
        w->tail->next = j;
    else
        w->head = j;
    w->tail = j;
    if (wake)
        pthread_cond_signal(&w->work);
}

static int submit(writer_t *w, audit_entry_t *entries, size_t n, writer_result_t *out, sem_t *done,
                  int wake)
{
    struct wjob *j;

    if (n == 0 || n > MAX_BATCH)
        return out->ret = lc_seterr(LC_ERR_AUDIT, out->err, sizeof out->err,
                                    "%zu entries at once (1 to %d)", n, MAX_BATCH);
    if ((j = calloc(1, sizeof *j)) == NULL)
        return out->ret = lc_seterr(LC_ERR_AUDIT, out->err, sizeof out->err,
                                    "audit writer: out of memory");
    j->entries = entries;
    j->n = n;
    j->out = out;
    j->done = done;
    pthread_mutex_lock(&w->mu);
    enqueue(w, j, wake);
    pthread_mutex_unlock(&w->mu);
    return LC_OK;
}

int writer_submit(writer_t *w, audit_entry_t *entries, size_t n, writer_result_t *out, sem_t *done)
{
    return submit(w, entries, n, out, done, 1);
}

int writer_queue(writer_t *w, audit_entry_t *entries, size_t n, writer_result_t *out, sem_t *done)
{
    return submit(w, entries, n, out, done, 0);
}

void writer_flush(writer_t *w)
{
    pthread_mutex_lock(&w->mu);
    if (!w->busy && w->head != NULL)
        commit_queued(w);
    pthread_mutex_unlock(&w->mu);
}

int writer_append(writer_t *w, audit_entry_t *entries, size_t n, char *err, size_t errlen)
{
    writer_result_t r;
    sem_t done;

    if (n == 0)
        return LC_OK;
    sem_init(&done, 0, 0);
    if (writer_submit(w, entries, n, &r, &done) == LC_OK)
        while (sem_wait(&done) != 0 && errno == EINTR)
            ;
    sem_destroy(&done);
    if (r.ret != LC_OK)
        lc_seterr(r.ret, err, errlen, "%s", r.err);
    return r.ret;
}

void writer_ack(writer_t *w, const char *serial)
{
    struct wjob *j = calloc(1, sizeof *j);

    if (j == NULL || (j->serial_ack = strdup(serial)) == NULL) {
        free(j); /* the ack only saves a re-delivery later: losing it is safe */
        return;
    }
    pthread_mutex_lock(&w->mu);
    enqueue(w, j, 1);
    pthread_mutex_unlock(&w->mu);
}

void writer_stats(writer_t *w, long long *rows, long long *transactions)
{
    *rows = atomic_load(&w->rows);
    *transactions = atomic_load(&w->txns);
}
