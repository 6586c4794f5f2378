/*
 * signer_client.c — spawning and calling linecert-signer (see signer_client.h).
 */
#include "signer_client.h"

#include "lcerr.h"
#include "policy.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* A caller waiting for the reply to its request. */
struct pending {
    uint32_t id;
    proto_msg_t *resp;
    signer_result_t *res; /* an issuance: the reader parses the reply into it */
    signer_then_fn then;  /* and may hand it on (see signer_client_issue) */
    void *then_ctx;
    int malformed; /* res could not be parsed from the reply */
    int failed;
    /*
     * Posted when the reply is in *resp (or failed is set), after the reader
     * has taken the entry off the list: the woken caller needs no lock, so it
     * does not queue up behind the reader for the client's mutex.
     */
    sem_t done;
    struct pending *next;
};

#define PENDING_BUCKETS 256 /* a reply finds its caller among a few, not among all in flight */

/*
 * Many threads may call at once: frames are written whole under send_mu;
 * one reader thread takes every reply and hands it to the caller waiting for
 * that request id.  If the signer dies, every waiter is released with
 * LC_ERR_SIGNER and the client stays dead (the owner starts a new one).
 */
struct signer_client {
    int fd;
    pid_t pid;
    pthread_mutex_t mu; /* pending, next_id, dead */
    pthread_mutex_t send_mu;
    struct pending *pending[PENDING_BUCKETS]; /* by request id: ids are consecutive */
    uint32_t next_id;
    int dead;
    pthread_t reader;
    int reader_started;
    proto_reader_t in;           /* the reader thread's */
    signer_observer_fn observer; /* set before the first request; read by the reader */
    void *observer_ctx;
    signer_idle_fn idle; /* likewise */
    void *idle_ctx;
};

/* Reports the signatures a reply names (T_LINE, T_INSTANCE, T_SIG_NO, T_COUNT) to the observer. */
static void observe(signer_client_t *c, const proto_msg_t *m)
{
    proto_field_t f, line = {0}, inst = {0};
    size_t pos = 0;
    int64_t first = 0;
    uint32_t count = 1;
    char lbuf[128], ibuf[17];
    signer_observer_fn fn;
    void *ctx;

    pthread_mutex_lock(&c->mu);
    fn = c->observer;
    ctx = c->observer_ctx;
    pthread_mutex_unlock(&c->mu);
    if (fn == NULL)
        return;
    while (proto_next(m, &pos, &f) == 1) {
        if (f.tag == T_LINE)
            line = f;
        else if (f.tag == T_INSTANCE)
            inst = f;
        else if (f.tag == T_SIG_NO && proto_get_i64(&f, &first) != 0)
            return;
        else if (f.tag == T_COUNT && proto_get_u32(&f, &count) != 0)
            return;
    }
    if (first <= 0 || count == 0 || line.val == NULL || line.len >= sizeof lbuf ||
        inst.len != sizeof ibuf - 1)
        return;
    memcpy(lbuf, line.val, line.len);
    lbuf[line.len] = '\0';
    memcpy(ibuf, inst.val, inst.len);
    ibuf[inst.len] = '\0';
    fn(ctx, lbuf, ibuf, (uint64_t)first, count);
}

void signer_client_observe(signer_client_t *c, signer_observer_fn fn, void *ctx)
{
    pthread_mutex_lock(&c->mu);
    c->observer = fn;
    c->observer_ctx = ctx;
    pthread_mutex_unlock(&c->mu);
}

void signer_client_on_idle(signer_client_t *c, signer_idle_fn fn, void *ctx)
{
    pthread_mutex_lock(&c->mu);
    c->idle = fn;
    c->idle_ctx = ctx;
    pthread_mutex_unlock(&c->mu);
}

/* Takes the entry for id off the pending lists; NULL if nobody waits for it. Under c->mu. */
static struct pending *take_pending(signer_client_t *c, uint32_t id)
{
    struct pending **pp, *p;

    for (pp = &c->pending[id % PENDING_BUCKETS]; *pp != NULL && (*pp)->id != id; pp = &(*pp)->next)
        ;
    if ((p = *pp) != NULL)
        *pp = p->next;
    return p;
}

static void *reader_main(void *arg)
{
    signer_client_t *c = arg;
    proto_msg_t m = {0};
    struct pending *p, *next;
    signer_idle_fn idle = NULL; /* installed before the first request: read with each reply */
    void *idle_ctx = NULL;
    unsigned run = 0;

    proto_reader_init(&c->in, c->fd);
    for (;;) {
        if (idle != NULL && (run >= SIGNER_IDLE_EVERY || proto_reader_idle(&c->in))) {
            idle(idle_ctx);
            run = 0;
        }
        if (proto_read(&c->in, &m) != LC_OK)
            break;
        run++;
        observe(c, &m);
        pthread_mutex_lock(&c->mu);
        p = take_pending(c, m.id);
        idle = c->idle;
        idle_ctx = c->idle_ctx;
        pthread_mutex_unlock(&c->mu);
        if (p != NULL) { /* hand the buffer over: no copy */
            proto_msg_t tmp = *p->resp;
            *p->resp = m;
            m = tmp;
            if (p->res != NULL && signer_client_result(p->resp, p->res) != LC_OK)
                p->malformed = 1;
            else if (p->then != NULL && p->then(p->then_ctx, p->res, &p->done))
                continue;       /* p is the hook's now: it posts done, we touch nothing */
            sem_post(&p->done); /* p belongs to its caller again */
        }
    }
    if (idle != NULL)
        idle(idle_ctx);
    /* The signer closed its end: it has exited or is exiting; reap it now, not at shutdown. */
    while (c->pid > 0 && waitpid(c->pid, NULL, 0) < 0 && errno == EINTR)
        ;
    pthread_mutex_lock(&c->mu);
    c->pid = -1;
    c->dead = 1;
    for (size_t b = 0; b < PENDING_BUCKETS; b++) {
        for (p = c->pending[b]; p != NULL; p = next) {
            next = p->next; /* a posted entry belongs to its caller again */
            p->failed = 1;
            sem_post(&p->done);
        }
        c->pending[b] = NULL;
    }
    pthread_mutex_unlock(&c->mu);
    proto_free(&m);
    return NULL;
}

extern char **environ;

/*
 * Starts the signer with fd on 3 and nothing else above 2 open, every signal
 * unblocked and at its default disposition.  posix_spawn rather than fork: the
 * daemon is multithreaded (a forked child could only make async-signal-safe
 * calls) and blocks SIGTERM, SIGINT and SIGHUP in every thread, which a plain
 * fork + exec would pass on to the signer.
 */
static int spawn_signer(const char *program, char *const argv[], int fd, pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, dfl;
    int rc;

    sigemptyset(&none);
    sigfillset(&dfl);
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    posix_spawn_file_actions_adddup2(&fa, fd, 3);
    posix_spawn_file_actions_addclosefrom_np(&fa, 4);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &dfl);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    rc = posix_spawn(pid, program, &fa, &at, argv, environ);
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    return rc;
}

int signer_client_spawn(const char *program, int setup, int threads, signer_client_t **out,
                        char *err, size_t errlen)
{
    char nthreads[16];
    char *argv[] = {"linecert-signer", setup ? "--setup" : "--threads", setup ? NULL : nthreads,
                    NULL};
    signer_client_t *c;
    int sv[2], rc;
    pid_t pid;

    *out = NULL;
    if (access(program, X_OK) != 0)
        return lc_seterr(LC_ERR_SIGNER, err, errlen, "signer program %s: %s", program,
                         strerror(errno));
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return lc_seterr(LC_ERR_SIGNER, err, errlen, "socketpair: %s", strerror(errno));
    c = calloc(1, sizeof *c);
    if (c == NULL) {
        close(sv[0]);
        close(sv[1]);
        return lc_seterr(LC_ERR_NOMEM, err, errlen, "out of memory");
    }
    snprintf(nthreads, sizeof nthreads, "%d", threads > 0 ? threads : 1);
    if ((rc = spawn_signer(program, argv, sv[1], &pid)) != 0) {
        close(sv[0]);
        close(sv[1]);
        free(c);
        return lc_seterr(LC_ERR_SIGNER, err, errlen, "cannot start %s: %s", program, strerror(rc));
    }
    close(sv[1]);
    c->fd = sv[0];
    c->pid = pid;
    c->next_id = 1;
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->send_mu, NULL);
    if (pthread_create(&c->reader, NULL, reader_main, c) != 0) {
        signer_client_free(c);
        return lc_seterr(LC_ERR_SIGNER, err, errlen, "cannot start the signer reader thread");
    }
    c->reader_started = 1;
    *out = c;
    return LC_OK;
}

void signer_client_free(signer_client_t *c)
{
    int status;

    if (c == NULL)
        return;
    if (c->fd >= 0)
        shutdown(c->fd, SHUT_WR); /* the signer finishes what it has, then closes: EOF */
    if (c->reader_started)
        pthread_join(c->reader, NULL);
    if (c->fd >= 0)
        close(c->fd);
    while (c->pid > 0 && waitpid(c->pid, &status, 0) < 0 && errno == EINTR)
        ;
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->send_mu);
    free(c);
}

pid_t signer_client_pid(const signer_client_t *c)
{
    return c->pid;
}

/* signer_client_call(), with the reply parsed into res (and handed to then) when res is set. */
static int call(signer_client_t *c, proto_msg_t *m, proto_msg_t *resp, signer_result_t *res,
                signer_then_fn then, void *then_ctx, char *err, size_t errlen)
{
    struct pending p;
    int ret, queued;

    memset(&p, 0, sizeof p);
    p.resp = resp;
    p.res = res;
    p.then = then;
    p.then_ctx = then_ctx;
    sem_init(&p.done, 0, 0);
    pthread_mutex_lock(&c->mu);
    if (c->dead) {
        pthread_mutex_unlock(&c->mu);
        sem_destroy(&p.done);
        return lc_seterr(LC_ERR_SIGNER, err, errlen, "signer exited or crashed");
    }
    p.id = m->id = c->next_id++;
    if (c->next_id == 0)
        c->next_id = 1;
    p.next = c->pending[p.id % PENDING_BUCKETS];
    c->pending[p.id % PENDING_BUCKETS] = &p;
    pthread_mutex_unlock(&c->mu);

    pthread_mutex_lock(&c->send_mu);
    ret = proto_send(c->fd, m);
    pthread_mutex_unlock(&c->send_mu);

    if (ret != LC_OK) {
        /* Nothing will answer: withdraw, unless the reader has already released us. */
        pthread_mutex_lock(&c->mu);
        queued = take_pending(c, p.id) == &p;
        pthread_mutex_unlock(&c->mu);
        if (queued)
            p.failed = 1;
    }
    if (ret == LC_OK || !queued)
        while (sem_wait(&p.done) != 0 && errno == EINTR)
            ;
    sem_destroy(&p.done);
    if (ret == LC_ERR_NOMEM)
        return lc_seterr(LC_ERR_SIGNER, err, errlen, "request too large or out of memory");
    if (p.failed || ret != LC_OK)
        return lc_seterr(LC_ERR_SIGNER, err, errlen, "signer exited or crashed");
    if (p.malformed)
        return lc_seterr(LC_ERR_SIGNER, err, errlen, "malformed reply from the signer");
    return LC_OK;
}

int signer_client_call(signer_client_t *c, proto_msg_t *m, proto_msg_t *resp, char *err,
                       size_t errlen)
{
    return call(c, m, resp, NULL, NULL, NULL, err, errlen);
}

int signer_client_result(const proto_msg_t *resp, signer_result_t *res)
{
    proto_field_t f;
    size_t pos = 0;
    int rc;

    memset(res, 0, sizeof *res);
    res->kind = resp->type;
    if (resp->type != PROTO_CERT && resp->type != PROTO_REFUSED && resp->type != PROTO_ERROR)
        return LC_ERR_SIGNER;
    while ((rc = proto_next(resp, &pos, &f)) == 1) {
        uint32_t v;
        int64_t s;
        switch (f.tag) {
        case T_CERT:
            free(res->der);
            res->der = malloc(f.len ? f.len : 1);
            if (res->der == NULL)
                return LC_ERR_NOMEM;
            memcpy(res->der, f.val, f.len);
            res->der_len = f.len;
            break;
        case T_REASON:
            if (proto_get_u32(&f, &v) == 0)
                res->reason = (int)v;
            break;
        case T_ERROR:
            if (proto_get_u32(&f, &v) == 0)
                res->err = (int)(int32_t)v;
            break;
        case T_DETAIL: {
            size_t n = f.len < sizeof res->detail - 1 ? f.len : sizeof res->detail - 1;
            memcpy(res->detail, f.val, n);
            res->detail[n] = '\0';
            break;
        }
        case T_SIGNATURES:
            if (proto_get_i64(&f, &s) == 0)
                res->signatures = (uint64_t)s;
            break;
        case T_SIG_NO:
            if (proto_get_i64(&f, &s) == 0 && s > 0)
                res->sig_no = (uint64_t)s;
            break;
        case T_INSTANCE:
            if (f.len == sizeof res->instance - 1) {
                memcpy(res->instance, f.val, f.len);
                res->instance[f.len] = '\0';
            }
            break;
        default:
            break;
        }
    }
    if (rc != 0 || (res->kind == PROTO_CERT && res->der == NULL)) {
        free(res->der);
        res->der = NULL;
        return LC_ERR_SIGNER;
    }
    if (res->kind == PROTO_ERROR && res->err == 0)
        res->err = LC_ERR_SIGNER;
    return LC_OK;
}

int signer_client_configure(signer_client_t *c, const signer_conf_t *conf, char *err, size_t errlen)
{
    proto_msg_t m = {0}, r = {0};
    signer_result_t res;
    int ret;

    proto_init(&m, PROTO_CONFIGURE, 0);
    proto_put_u32(&m, T_VERSION, PROTO_VERSION);
    proto_put_str(&m, T_MODULE, conf->module);
    proto_put_str(&m, T_PIN_FILE, conf->pin_file);
    proto_put_str(&m, T_SOFTHSM_CONF, conf->softhsm_conf);
    for (size_t i = 0; i < conf->nlines; i++) {
        const signer_line_t *l = &conf->lines[i];
        proto_put_str(&m, T_LINE, l->id);
        proto_put_str(&m, T_KEY_URI, l->key_uri);
        proto_put(&m, T_ISSUER_CERT, l->ca_der, l->ca_der_len);
        proto_put_str(&m, T_SUBJECT_O, l->o);
        proto_put_str(&m, T_SUBJECT_OU, l->ou);
        proto_put_u32(&m, T_MAX_DAYS, l->max_days);
    }
    ret = signer_client_call(c, &m, &r, err, errlen);
    if (ret == LC_OK && r.type != PROTO_OK) {
        if (r.type == PROTO_ERROR && signer_client_result(&r, &res) == LC_OK)
            ret = lc_seterr(res.err, err, errlen, "%s", res.detail);
        else
            ret = lc_seterr(LC_ERR_SIGNER, err, errlen, "unexpected reply to CONFIGURE");
    }
    proto_free(&m);
    proto_free(&r);
    return ret;
}

int signer_client_issue(signer_client_t *c, const char *line, const unsigned char *csr,
                        size_t csr_len, const unsigned char serial[16], int64_t not_before,
                        int64_t not_after, signer_result_t *res, signer_then_fn then, void *ctx)
{
    proto_msg_t m = {0}, r = {0};
    char err[sizeof res->detail];
    int ret;

    memset(res, 0, sizeof *res);
    proto_init(&m, PROTO_ISSUE, 0);
    proto_put_str(&m, T_LINE, line);
    proto_put(&m, T_CSR, csr, csr_len);
    proto_put(&m, T_SERIAL, serial, 16);
    proto_put_i64(&m, T_NOT_BEFORE, not_before);
    proto_put_i64(&m, T_NOT_AFTER, not_after);
    ret = call(c, &m, &r, res, then, ctx, err, sizeof err);
    if (ret != LC_OK) {
        free(res->der);
        memset(res, 0, sizeof *res);
        res->kind = PROTO_ERROR;
        res->err = LC_ERR_SIGNER;
        snprintf(res->detail, sizeof res->detail, "%s", err);
    }
    proto_free(&m);
    proto_free(&r);
    return ret;
}

int signer_client_status(signer_client_t *c, uint64_t *signatures, int *hsm_ok, char *err,
                         size_t errlen)
{
    proto_msg_t m = {0}, r = {0};
    proto_field_t f;
    size_t pos = 0;
    int ret;

    *signatures = 0;
    *hsm_ok = 0;
    proto_init(&m, PROTO_STATUS, 0);
    ret = signer_client_call(c, &m, &r, err, errlen);
    if (ret == LC_OK && r.type != PROTO_STATUS_REPLY)
        ret = lc_seterr(LC_ERR_SIGNER, err, errlen, "unexpected reply to STATUS");
    while (ret == LC_OK && proto_next(&r, &pos, &f) == 1) {
        int64_t s;
        uint32_t v;
        if (f.tag == T_SIGNATURES && proto_get_i64(&f, &s) == 0)
            *signatures = (uint64_t)s;
        else if (f.tag == T_HSM_OK && proto_get_u32(&f, &v) == 0)
            *hsm_ok = (int)v;
    }
    proto_free(&m);
    proto_free(&r);
    return ret;
}
