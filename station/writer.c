/*
 * writer.c — group-commit writer thread (see writer.h).
 */
#include "writer.h"

#include "lcerr.h"

#include <errno.h>
#include <pthread.h>
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
    int stopping;
    long long rows, txns;
    audit_entry_t *batch; /* the thread's scratch array */
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

static void *writer_main(void *arg)
{
    writer_t *w = arg;

    pthread_mutex_lock(&w->mu);
    for (;;) {
        struct wjob *list, *j, *next;
        while (w->head == NULL && !w->stopping)
            pthread_cond_wait(&w->work, &w->mu);
        if (w->head == NULL)
            break;
        list = w->head;
        w->head = w->tail = NULL;
        pthread_mutex_unlock(&w->mu);

        /* Runs of append jobs, at most MAX_BATCH entries per transaction. */
        for (j = list; j != NULL;) {
            struct wjob *first = j;
            size_t njobs = 0, nentries = 0;
            if (j->serial_ack != NULL) {
                j->ret = audit_mark_acked(w->a, j->serial_ack, j->err, sizeof j->err);
                j = j->next;
                continue;
            }
            while (j != NULL && j->serial_ack == NULL &&
                   (njobs == 0 || nentries + j->n <= MAX_BATCH)) {
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
        pthread_mutex_lock(&w->mu);
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

static void enqueue(writer_t *w, struct wjob *j)
{
    if (w->tail != NULL)
        w->tail->next = j;
    else
        w->head = j;
    w->tail = j;
    pthread_cond_signal(&w->work);
}

int writer_submit(writer_t *w, audit_entry_t *entries, size_t n, writer_result_t *out, sem_t *done)
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
    enqueue(w, j);
    pthread_mutex_unlock(&w->mu);
    return LC_OK;
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
    enqueue(w, j);
    pthread_mutex_unlock(&w->mu);
}

void writer_stats(writer_t *w, long long *rows, long long *transactions)
{
    pthread_mutex_lock(&w->mu);
    *rows = w->rows;
    *transactions = w->txns;
    pthread_mutex_unlock(&w->mu);
}
