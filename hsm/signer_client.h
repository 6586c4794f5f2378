/*
 * signer_client.h — the station's side of linecert-signer.
 *
 * Spawns the signer (socketpair + fork + exec, the socket on the child's
 * fd 3, nothing else inherited), configures it, and sends it requests.  The
 * signer is exec'd, never just forked, so no PKCS#11 state ever crosses a
 * fork.  This library does not link libp11.
 */
#ifndef LINECERT_SIGNER_CLIENT_H
#define LINECERT_SIGNER_CLIENT_H

#include "proto.h"

#include <semaphore.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct signer_client signer_client_t;

/* One line as the signer needs it. */
typedef struct signer_line {
    const char *id;
    const char *key_uri;
    const unsigned char *ca_der; /* the line CA certificate */
    size_t ca_der_len;
    const char *o;  /* may be NULL */
    const char *ou; /* may be NULL */
    uint32_t max_days;
} signer_line_t;

typedef struct signer_conf {
    const char *module;
    const char *pin_file;
    const char *softhsm_conf; /* may be NULL */
    const signer_line_t *lines;
    size_t nlines;
} signer_conf_t;

/* The outcome of a request. */
typedef struct signer_result {
    int kind;           /* PROTO_CERT, PROTO_REFUSED or PROTO_ERROR */
    unsigned char *der; /* PROTO_CERT: malloc'd certificate, caller frees */
    size_t der_len;
    int reason;          /* PROTO_REFUSED: enum lc_reason */
    int err;             /* PROTO_ERROR: lc_err from the signer */
    char detail[256];    /* refusal detail or error message */
    uint64_t signatures; /* the signer's signature counter after this request */
    uint64_t sig_no;     /* PROTO_CERT: this signature's number among the line key's */
    char instance[17];   /* PROTO_CERT: the signer instance that numbered it */
} signer_result_t;

/*
 * Starts program (linecert-signer) with "--setup" when setup is non-zero,
 * else with `threads` signing threads.  The client is thread-safe: many
 * requests may be in flight at once (a reader thread matches replies to
 * callers by request id).  Returns LC_OK or LC_ERR_SIGNER with a message.
 * Free with signer_client_free().
 */
int signer_client_spawn(const char *program, int setup, int threads, signer_client_t **out,
                        char *err, size_t errlen);

/*
 * Called by the client's reader thread for every reply that reports line key
 * signatures (first..first+count-1 of instance's numbering for line), in the
 * order the signer sent them, before the caller waiting for the reply wakes.
 * The station's checkpoints rely on that order (docs/audit.md).
 */
typedef void (*signer_observer_fn)(void *ctx, const char *line, const char *instance,
                                   uint64_t first, uint64_t count);

/* Installs the observer; call it before the first request. */
void signer_client_observe(signer_client_t *c, signer_observer_fn fn, void *ctx);

/*
 * Called by the reader thread when it has handled every reply that has
 * arrived and is about to wait for more, after at most SIGNER_IDLE_EVERY
 * replies in a row when they keep coming, and once when the signer has
 * gone.  Hooks (signer_then_fn) that queue work without waking anyone rely
 * on it to get that work done.  Install it before the first request.
 */
typedef void (*signer_idle_fn)(void *ctx);
#define SIGNER_IDLE_EVERY 64
void signer_client_on_idle(signer_client_t *c, signer_idle_fn fn, void *ctx);

/* Closes the socket (the signer exits) and reaps the child.  NULL is a no-op. */
void signer_client_free(signer_client_t *c);

/* The child's pid (for the daemon's supervision). */
pid_t signer_client_pid(const signer_client_t *c);

/*
 * Sends CONFIGURE.  Returns LC_OK; the signer's error (LC_ERR_HSM,
 * LC_ERR_CONFIG...) with its message; or LC_ERR_SIGNER if it is gone.
 */
int signer_client_configure(signer_client_t *c, const signer_conf_t *conf, char *err,
                            size_t errlen);

/*
 * A hook for the caller's next step after the signer's reply, run by the
 * client's reader thread: res is the parsed reply (any kind).  It returns 0,
 * and the reader wakes the caller; or it hands the rest of the caller's work
 * to another thread and returns non-zero, having taken `done`, which that
 * thread must sem_post() when it has finished: the caller then wakes once,
 * not once per stage.  It runs on the one reader thread: it must not block.
 */
typedef int (*signer_then_fn)(void *ctx, signer_result_t *res, sem_t *done);

/*
 * Asks for a leaf certificate.  If then is not NULL, then(ctx, res, done) is
 * called on the reply before the caller is woken.  Returns, once the reply
 * is in *res and any work then took over is done, LC_OK with *res filled
 * (kind says CERT, REFUSED or ERROR), or LC_ERR_SIGNER if the signer is gone
 * or broke the protocol (then was not called).  Release res->der with free().
 */
int signer_client_issue(signer_client_t *c, const char *line, const unsigned char *csr,
                        size_t csr_len, const unsigned char serial[16], int64_t not_before,
                        int64_t not_after, signer_result_t *res, signer_then_fn then, void *ctx);

/*
 * Sends a prepared request m (its id is assigned here) and waits for the
 * reply into resp.  Safe to call from many threads at once.  Returns LC_OK
 * or LC_ERR_SIGNER (the signer is gone: the client stays dead).
 */
int signer_client_call(signer_client_t *c, proto_msg_t *m, proto_msg_t *resp, char *err,
                       size_t errlen);

/* Reads a CERT/REFUSED/ERROR reply into *res.  Returns LC_OK or LC_ERR_SIGNER. */
int signer_client_result(const proto_msg_t *resp, signer_result_t *res);

/* Asks for the signature counter and token state. */
int signer_client_status(signer_client_t *c, uint64_t *signatures, int *hsm_ok, char *err,
                         size_t errlen);

#endif
