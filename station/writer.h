/*
 * writer.h — the audit store's single writer, with group commit.
 *
 * SQLite with synchronous=FULL commits about 2,000 transactions a second
 * here; one certificate per transaction would cap durable issuance far
 * below the HSM.  So every write of the station goes through one queue:
 * whoever commits takes everything queued, appends it in ONE transaction,
 * and only then releases each caller.  The durability of each row is
 * unchanged (no caller returns before its row has committed); the fsync is
 * shared.  One store handle, one committer at a time: the writer thread,
 * or a thread that queued work without waking it (writer_queue) and
 * commits it itself (writer_flush) — the signer client's reader, which
 * would otherwise hand every burst of certificates to the writer thread.
 */
#ifndef LINECERT_WRITER_H
#define LINECERT_WRITER_H

#include "audit.h"

#include <semaphore.h>
#include <stddef.h>

typedef struct writer writer_t;

/*
 * Starts the writer thread on a read-write store handle, which it owns from
 * now on (closed by writer_stop()).  Returns LC_OK or LC_ERR_INTERNAL.
 */
int writer_start(audit_t *a, writer_t **out, char *err, size_t errlen);

/* Commits what is queued, stops the thread, closes the store.  NULL is a no-op. */
void writer_stop(writer_t *w);

/*
 * Appends entries (in order, contiguous seqs) and waits until their
 * transaction has committed; fills each row's outputs.  Thread-safe.  Returns
 * audit_append()'s result for these entries alone: a failure of another
 * caller's entries in the same batch never fails these.
 */
int writer_append(writer_t *w, audit_entry_t *entries, size_t n, char *err, size_t errlen);

/* The outcome of a writer_submit(). */
typedef struct writer_result {
    int ret;       /* writer_append()'s return value */
    char err[256]; /* its message when ret is not LC_OK */
} writer_result_t;

/*
 * writer_append() without the wait: queues entries (which must stay valid
 * and untouched until then) and returns at once; when their transaction has
 * committed (or failed), fills *out and sem_post()s done.  Returns LC_OK, or
 * LC_ERR_AUDIT with out->err set if nothing was queued (done is not posted).
 */
int writer_submit(writer_t *w, audit_entry_t *entries, size_t n, writer_result_t *out, sem_t *done);

/*
 * writer_submit() without waking the writer thread: the caller promises a
 * writer_flush() soon after (the signer client's reader thread queues each
 * certificate it receives and flushes when it has no more replies to read,
 * so a burst of replies commits in one transaction on that thread, with no
 * hand-over to another).
 */
int writer_queue(writer_t *w, audit_entry_t *entries, size_t n, writer_result_t *out, sem_t *done);

/*
 * Commits everything queued on the calling thread and posts its callers.
 * If a commit is running on another thread, returns at once: that thread
 * takes what is queued next.
 */
void writer_flush(writer_t *w);

/* Queues "the PLC acknowledged serial" (audit_mark_acked); does not wait. */
void writer_ack(writer_t *w, const char *serial);

/* Rows committed and transactions used so far (for the benchmark). */
void writer_stats(writer_t *w, long long *rows, long long *transactions);

#endif
