/*
 * control.c — the daemon's control socket (server thread) and the client
 * side used by the CLI and the UI (docs/control.md).
 *
 * One thread serves every client with poll() rather than a thread per
 * client: requests are a line each, the handler must not block, and so a
 * silent or slow client costs one slot, never another client's answer.
 * Replies go out with non-blocking writes through a small per-client
 * buffer; a client that stops reading is dropped once that buffer is full,
 * so it can neither stall the loop nor make the daemon hoard memory.
 * Shutdown is an eventfd the thread polls alongside the sockets.
 */
#include "control.h"
#include "lcerr.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define CONTROL_MAX_LINE     1024      /* bytes of one request, not counting its '\n' */
#define CONTROL_MAX_CLIENTS  32        /* connected at once */
#define CONTROL_OUT_MAX      65536     /* unsent reply bytes a client may leave behind */
#define CONTROL_MAX_REPLY    (1 << 20) /* client side: longest reply line accepted */
#define CONTROL_IDLE_EVICT_S 5.0       /* a full table evicts a client silent this long */
#define CONTROL_MODE         0660      /* owner and group (operators) only */
/* One line per reply; paths stay readable ("/var/lib", not "\\/var\\/lib") for nc users. */
#define CONTROL_JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

struct client {
    int fd;                        /* -1: free slot */
    control_peer_t peer;           /* from SO_PEERCRED at accept */
    char in[CONTROL_MAX_LINE + 1]; /* one request and its '\n' */
    size_t in_len;
    char *out; /* replies not yet written */
    size_t out_len;
    size_t out_cap;
    int closing;        /* close as soon as out is written */
    double last_active; /* monotonic seconds of the last byte received */
};

struct control {
    char *path;
    int lfd;  /* listening socket, non-blocking */
    int wake; /* eventfd: control_free() asks the thread to stop */
    int bound;
    dev_t dev; /* the socket file we created, so that we never unlink another's */
    ino_t ino;
    control_handler_fn fn;
    void *user;
    pthread_t thread;
    int started;
    struct client clients[CONTROL_MAX_CLIENTS];
};

static double control_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Backs off after an error that would otherwise make poll() spin (EMFILE). */
static void control_pause_briefly(void)
{
    struct timespec ts = {0, 50 * 1000 * 1000};

    nanosleep(&ts, NULL);
}

static void client_drop(struct client *cl)
{
    if (cl->fd >= 0)
        close(cl->fd);
    free(cl->out);
    memset(cl, 0, sizeof *cl);
    cl->fd = -1;
}

/* Writes what the socket takes now.  Returns 0, or -1 if the client was dropped. */
static int client_flush(struct client *cl)
{
    while (cl->out_len > 0) {
        ssize_t n = send(cl->fd, cl->out, cl->out_len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            client_drop(cl);
            return -1;
        }
        memmove(cl->out, cl->out + n, cl->out_len - (size_t)n);
        cl->out_len -= (size_t)n;
    }
    if (cl->out_len == 0 && cl->closing) {
        client_drop(cl);
        return -1;
    }
    return 0;
}

/*
 * Appends one reply line and tries to send it.  A client that has left more
 * than CONTROL_OUT_MAX bytes unread is not reading: it is dropped instead.
 * Returns 0, or -1 if the client was dropped.
 */
static int client_queue(struct client *cl, const char *text, size_t len)
{
    size_t need = cl->out_len + len + 1;

    if (cl->out_len > CONTROL_OUT_MAX) {
        client_drop(cl);
        return -1;
    }
    if (need > cl->out_cap) {
        size_t cap = cl->out_cap ? cl->out_cap : 4096;
        char *nb;
        while (cap < need)
            cap *= 2;
        nb = realloc(cl->out, cap);
        if (nb == NULL) {
            client_drop(cl);
            return -1;
        }
        cl->out = nb;
        cl->out_cap = cap;
    }
    memcpy(cl->out + cl->out_len, text, len);
    cl->out[cl->out_len + len] = '\n';
    cl->out_len = need;
    return client_flush(cl);
}

/* Queues {"ok":false,"error":msg}; the literal fallback covers an allocation failure. */
static int client_queue_error(struct client *cl, const char *msg)
{
    json_object *o = json_object_new_object();
    const char *text;
    int ret;

    if (o == NULL || json_object_object_add(o, "ok", json_object_new_boolean(0)) != 0 ||
        json_object_object_add(o, "error", json_object_new_string(msg)) != 0) {
        static const char oom[] = "{\"ok\":false,\"error\":\"out of memory\"}";
        json_object_put(o);
        return client_queue(cl, oom, sizeof oom - 1);
    }
    text = json_object_to_json_string_ext(o, CONTROL_JSON_FLAGS);
    ret = client_queue(cl, text, strlen(text));
    json_object_put(o);
    return ret;
}

static int is_blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r';
}

/*
 * Handles one request line (len bytes, NUL-terminated in place): splits it
 * into the command word and the trimmed rest, asks the handler, queues the
 * reply.  Returns 0, or -1 if the client was dropped.
 */
static int client_request(control_t *c, struct client *cl, char *line, size_t len)
{
    char *cmd = line, *arg, *end = line + len;
    json_object *reply;
    const char *text;
    int ret;

    if (memchr(line, '\0', len) != NULL)
        return client_queue_error(cl, "request contains a NUL byte");
    while (end > line && is_blank(end[-1]))
        *--end = '\0';
    while (is_blank(*cmd))
        cmd++;
    if (*cmd == '\0')
        return client_queue_error(cl, "empty request");
    arg = cmd + strcspn(cmd, " \t\r");
    if (*arg != '\0') {
        *arg++ = '\0';
        while (is_blank(*arg))
            arg++;
    }
    reply = c->fn(c->user, cmd, arg, &cl->peer);
    if (reply == NULL)
        return client_queue_error(cl, "internal error: the daemon produced no reply");
    text = json_object_to_json_string_ext(reply, CONTROL_JSON_FLAGS);
    ret = text != NULL ? client_queue(cl, text, strlen(text))
                       : client_queue_error(cl, "internal error: reply not serialisable");
    json_object_put(reply);
    return ret;
}

/* Answers every complete line in the input buffer.  Returns 0, or -1 if dropped. */
static int client_process(control_t *c, struct client *cl)
{
    char *nl;

    while (!cl->closing && (nl = memchr(cl->in, '\n', cl->in_len)) != NULL) {
        size_t len = (size_t)(nl - cl->in), rest = cl->in_len - len - 1;
        *nl = '\0';
        if (client_request(c, cl, cl->in, len) != 0)
            return -1;
        memmove(cl->in, nl + 1, rest);
        cl->in_len = rest;
    }
    if (!cl->closing && cl->in_len == sizeof cl->in) {
        /* No '\n' in 1025 bytes: whatever follows cannot be framed reliably. */
        cl->closing = 1;
        cl->in_len = 0;
        return client_queue_error(cl, "request too long");
    }
    return 0;
}

/* Reads what the client sent.  Returns 0, or -1 if the client was dropped. */
static int client_read(control_t *c, struct client *cl)
{
    ssize_t n;

    if (cl->closing)
        return 0;
    n = recv(cl->fd, cl->in + cl->in_len, sizeof cl->in - cl->in_len, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return 0;
    if (n < 0) {
        client_drop(cl);
        return -1;
    }
    if (n == 0) {
        /* EOF: a last request without '\n' (printf status | nc -U) still gets its answer. */
        if (client_process(c, cl) != 0)
            return -1;
        if (!cl->closing && cl->in_len > 0) {
            cl->in[cl->in_len] = '\0';
            if (client_request(c, cl, cl->in, cl->in_len) != 0)
                return -1;
        }
        cl->in_len = 0;
        cl->closing = 1;
        return client_flush(cl);
    }
    cl->in_len += (size_t)n;
    cl->last_active = control_now();
    return client_process(c, cl);
}

/*
 * A free slot for a new client.  When all are taken, the client that has
 * been silent longest is evicted if it has been silent for a while (a hung
 * UI must not lock the CLI out); otherwise NULL.
 */
static struct client *control_free_slot(control_t *c)
{
    struct client *idle = NULL;
    double now = control_now();

    for (int i = 0; i < CONTROL_MAX_CLIENTS; i++) {
        struct client *cl = &c->clients[i];
        if (cl->fd < 0)
            return cl;
        if (cl->out_len == 0 && (idle == NULL || cl->last_active < idle->last_active))
            idle = cl;
    }
    if (idle != NULL && now - idle->last_active >= CONTROL_IDLE_EVICT_S) {
        client_drop(idle);
        return idle;
    }
    return NULL;
}

/* Accepts every pending connection. */
static void control_accept(control_t *c)
{
    static const char busy[] = "{\"ok\":false,\"error\":\"too many clients\"}\n";

    for (;;) {
        struct ucred cred;
        socklen_t len = sizeof cred;
        struct client *cl;
        int fd = accept4(c->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                control_pause_briefly();
            return;
        }
        /* Without credentials the daemon cannot check or audit who asks: refuse. */
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof cred) {
            close(fd);
            continue;
        }
        cl = control_free_slot(c);
        if (cl == NULL) {
            if (send(fd, busy, sizeof busy - 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
                /* nothing to do: the client sees the connection close */
            }
            close(fd);
            continue;
        }
        cl->fd = fd;
        cl->peer.pid = cred.pid;
        cl->peer.uid = cred.uid;
        cl->peer.gid = cred.gid;
        cl->last_active = control_now();
    }
}

static void *control_main(void *arg)
{
    control_t *c = arg;
    struct pollfd pfd[2 + CONTROL_MAX_CLIENTS];
    int slot[2 + CONTROL_MAX_CLIENTS];

    for (;;) {
        nfds_t n = 0;

        pfd[n++] = (struct pollfd){c->wake, POLLIN, 0};
        pfd[n++] = (struct pollfd){c->lfd, POLLIN, 0};
        for (int i = 0; i < CONTROL_MAX_CLIENTS; i++) {
            struct client *cl = &c->clients[i];
            if (cl->fd < 0)
                continue;
            slot[n] = i;
            pfd[n++] = (struct pollfd){
                cl->fd, (short)((cl->closing ? 0 : POLLIN) | (cl->out_len > 0 ? POLLOUT : 0)), 0};
        }
        if (poll(pfd, n, -1) < 0) {
            if (errno != EINTR)
                control_pause_briefly();
            continue;
        }
        if (pfd[0].revents != 0)
            break;
        for (nfds_t k = 2; k < n; k++) {
            struct client *cl = &c->clients[slot[k]];
            short ev = pfd[k].revents;
            if (ev == 0 || cl->fd != pfd[k].fd)
                continue;
            if ((ev & POLLOUT) && client_flush(cl) != 0)
                continue;
            if ((ev & (POLLIN | POLLHUP | POLLERR)) && !cl->closing && client_read(c, cl) != 0)
                continue;
            /* Hung up while we still owe it output: nobody is left to read it. */
            if ((ev & (POLLHUP | POLLERR)) && cl->closing)
                client_drop(cl);
        }
        if (pfd[1].revents & POLLIN)
            control_accept(c);
    }
    return NULL;
}

/*
 * Makes path free for bind(): nothing there, or a stale socket file that
 * nobody answers on (a daemon that crashed), which is removed.  A live
 * daemon, or a file that is not a socket, is left alone and is an error.
 */
static int control_claim_path(const char *path, const struct sockaddr_un *sa, char *err,
                              size_t errlen)
{
    struct stat st;
    int fd = -1, ret = LC_ERR_IO;

    if (lstat(path, &st) != 0) {
        if (errno == ENOENT)
            ret = LC_OK;
        else
            lc_seterr(ret, err, errlen, "control socket %s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISSOCK(st.st_mode)) {
        lc_seterr(ret, err, errlen,
                  "control socket %s: exists and is not a socket; not replacing it", path);
        goto out;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        lc_seterr(ret, err, errlen, "socket: %s", strerror(errno));
        goto out;
    }
    /* EAGAIN: a live daemon whose backlog is full; still somebody answering. */
    if (connect(fd, (const struct sockaddr *)sa, sizeof *sa) == 0 || errno == EAGAIN) {
        lc_seterr(ret, err, errlen, "another linecertd is running on %s", path);
        goto out;
    }
    if (errno != ECONNREFUSED) {
        lc_seterr(ret, err, errlen, "control socket %s: cannot check whether it is in use: %s",
                  path, strerror(errno));
        goto out;
    }
    if (unlink(path) != 0 && errno != ENOENT) {
        lc_seterr(ret, err, errlen, "control socket %s: cannot remove the stale socket: %s", path,
                  strerror(errno));
        goto out;
    }
    ret = LC_OK;
out:
    if (fd >= 0)
        close(fd);
    return ret;
}

/* Stops the thread if it runs and releases everything; shared by open's failure path. */
static void control_close(control_t *c)
{
    struct stat st;
    uint64_t one = 1;

    if (c->started) {
        while (write(c->wake, &one, sizeof one) < 0 && errno == EINTR)
            ;
        pthread_join(c->thread, NULL);
    }
    for (int i = 0; i < CONTROL_MAX_CLIENTS; i++)
        if (c->clients[i].fd >= 0)
            client_drop(&c->clients[i]);
    if (c->lfd >= 0)
        close(c->lfd);
    /* Only our own socket file: a successor may already have replaced it. */
    if (c->bound && lstat(c->path, &st) == 0 && st.st_dev == c->dev && st.st_ino == c->ino)
        unlink(c->path);
    if (c->wake >= 0)
        close(c->wake);
    free(c->path);
    free(c);
}

int control_open(const char *path, control_handler_fn fn, void *user, control_t **out, char *err,
                 size_t errlen)
{
    struct sockaddr_un sa;
    control_t *c = NULL;
    struct stat st;
    sigset_t all, old;
    int ret = LC_ERR_IO, rc;

    if (out != NULL)
        *out = NULL;
    if (path == NULL || fn == NULL || out == NULL) {
        ret = lc_seterr(LC_ERR_INTERNAL, err, errlen, "control_open: missing argument");
        goto out;
    }
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (*path == '\0' || strlen(path) >= sizeof sa.sun_path) {
        lc_seterr(ret, err, errlen, "control socket path \"%s\": must be 1 to %zu bytes", path,
                  sizeof sa.sun_path - 1);
        goto out;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    c = calloc(1, sizeof *c);
    if (c == NULL || (c->path = strdup(path)) == NULL) {
        ret = lc_seterr(LC_ERR_NOMEM, err, errlen, "out of memory");
        goto out;
    }
    c->lfd = c->wake = -1;
    c->fn = fn;
    c->user = user;
    for (int i = 0; i < CONTROL_MAX_CLIENTS; i++)
        c->clients[i].fd = -1;
    if ((ret = control_claim_path(path, &sa, err, errlen)) != LC_OK)
        goto out;
    ret = LC_ERR_IO;
    c->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (c->lfd < 0) {
        lc_seterr(ret, err, errlen, "socket: %s", strerror(errno));
        goto out;
    }
    /*
     * On Linux the socket file takes the socket inode's mode (minus the
     * umask), so it is never more open than 0660, not even between bind()
     * and the chmod() that then sets exactly 0660 despite the umask.
     */
    (void)fchmod(c->lfd, CONTROL_MODE);
    if (bind(c->lfd, (const struct sockaddr *)&sa, sizeof sa) != 0) {
        if (errno == EADDRINUSE)
            lc_seterr(ret, err, errlen, "another linecertd is running on %s", path);
        else
            lc_seterr(ret, err, errlen, "control socket %s: bind: %s", path, strerror(errno));
        goto out;
    }
    if (lstat(path, &st) != 0) {
        lc_seterr(ret, err, errlen, "control socket %s: %s", path, strerror(errno));
        goto out;
    }
    c->bound = 1;
    c->dev = st.st_dev;
    c->ino = st.st_ino;
    if (chmod(path, CONTROL_MODE) != 0) {
        lc_seterr(ret, err, errlen, "control socket %s: chmod 0660: %s", path, strerror(errno));
        goto out;
    }
    if (listen(c->lfd, CONTROL_MAX_CLIENTS) != 0) {
        lc_seterr(ret, err, errlen, "control socket %s: listen: %s", path, strerror(errno));
        goto out;
    }
    c->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (c->wake < 0) {
        lc_seterr(ret, err, errlen, "eventfd: %s", strerror(errno));
        goto out;
    }
    /* Signals are the main thread's business; this thread must never take one. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&c->thread, NULL, control_main, c);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        lc_seterr(ret, err, errlen, "control thread: %s", strerror(rc));
        goto out;
    }
    c->started = 1;
    *out = c;
    c = NULL;
    ret = LC_OK;
out:
    if (c != NULL)
        control_close(c);
    return ret;
}

void control_free(control_t *c)
{
    if (c != NULL)
        control_close(c);
}

/* Milliseconds left until deadline (monotonic seconds), or -1 for no deadline. */
static int control_remaining_ms(double deadline)
{
    double left;

    if (deadline <= 0)
        return -1;
    left = (deadline - control_now()) * 1000.0;
    return left <= 0 ? 0 : (int)left + 1;
}

/* Waits for events on fd until deadline.  Returns LC_OK, LC_ERR_TIMEOUT or LC_ERR_IO. */
static int control_wait(int fd, short events, double deadline)
{
    struct pollfd p = {fd, events, 0};
    int n;

    do {
        int ms = control_remaining_ms(deadline);
        if (ms == 0)
            return LC_ERR_TIMEOUT;
        n = poll(&p, 1, ms);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return LC_ERR_IO;
    return n == 0 ? LC_ERR_TIMEOUT : LC_OK;
}

/*
 * timeout_ms <= 0 waits without limit.  Requests containing a line break
 * (which would smuggle in a second request) or longer than the server
 * accepts are refused here with LC_ERR_USAGE, before anything is sent.
 */
int control_request(const char *path, const char *cmd, const char *arg, int timeout_ms,
                    json_object **reply, char *err, size_t errlen)
{
    struct sockaddr_un sa;
    struct timeval tv;
    char req[CONTROL_MAX_LINE + 2], *buf = NULL, *nl = NULL;
    size_t req_len, sent = 0, len = 0, cap = 0;
    double deadline = timeout_ms > 0 ? control_now() + timeout_ms / 1000.0 : 0;
    json_object *obj = NULL;
    int fd = -1, ret = LC_ERR_IO, n;

    if (reply != NULL)
        *reply = NULL;
    if (path == NULL || cmd == NULL || *cmd == '\0' || reply == NULL) {
        ret = lc_seterr(LC_ERR_INTERNAL, err, errlen, "control_request: missing argument");
        goto out;
    }
    if (arg == NULL)
        arg = "";
    if (strpbrk(cmd, " \t\r\n") != NULL || strpbrk(arg, "\r\n") != NULL) {
        ret = lc_seterr(LC_ERR_USAGE, err, errlen, "a control request must be one line");
        goto out;
    }
    n = snprintf(req, sizeof req, *arg ? "%s %s\n" : "%s%s\n", cmd, arg);
    if (n < 0 || (size_t)n > CONTROL_MAX_LINE + 1) {
        ret = lc_seterr(LC_ERR_USAGE, err, errlen, "control request longer than %d bytes",
                        CONTROL_MAX_LINE);
        goto out;
    }
    req_len = (size_t)n;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sa.sun_path) {
        lc_seterr(ret, err, errlen, "control socket path too long: %s", path);
        goto out;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        lc_seterr(ret, err, errlen, "socket: %s", strerror(errno));
        goto out;
    }
    /* connect() on a Unix socket waits while the backlog is full; bound that wait. */
    if (timeout_ms > 0) {
        tv.tv_sec = timeout_ms / 1000;
        tv.tv_usec = (timeout_ms % 1000) * 1000;
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
    while ((n = connect(fd, (const struct sockaddr *)&sa, sizeof sa)) != 0 && errno == EINTR)
        ;
    if (n != 0) {
        if (errno == ENOENT || errno == ECONNREFUSED)
            lc_seterr(ret, err, errlen, "linecertd is not running (no control socket at %s)", path);
        else if (errno == EAGAIN || errno == EINPROGRESS || errno == ETIMEDOUT)
            ret = lc_seterr(LC_ERR_TIMEOUT, err, errlen,
                            "linecertd did not accept a connection on %s in time", path);
        else
            lc_seterr(ret, err, errlen, "cannot connect to linecertd at %s: %s", path,
                      strerror(errno));
        goto out;
    }
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
        lc_seterr(ret, err, errlen, "fcntl: %s", strerror(errno));
        goto out;
    }
    while (sent < req_len) {
        ssize_t w = send(fd, req + sent, req_len - sent, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if ((ret = control_wait(fd, POLLOUT, deadline)) != LC_OK) {
                lc_seterr(ret, err, errlen, "sending to linecertd at %s: %s", path,
                          ret == LC_ERR_TIMEOUT ? "timed out" : strerror(errno));
                goto out;
            }
            ret = LC_ERR_IO;
            continue;
        }
        /* The daemon may have answered and hung up ("too many clients"): read why. */
        if (w < 0 && (errno == EPIPE || errno == ECONNRESET))
            break;
        if (w < 0) {
            lc_seterr(ret, err, errlen, "sending to linecertd at %s: %s", path, strerror(errno));
            goto out;
        }
        sent += (size_t)w;
    }
    while (nl == NULL) {
        ssize_t r;
        if (len + 4096 + 1 > cap) {
            char *nb;
            if (cap >= CONTROL_MAX_REPLY) {
                ret = lc_seterr(LC_ERR_PROTOCOL, err, errlen,
                                "linecertd's reply is longer than %d bytes", CONTROL_MAX_REPLY);
                goto out;
            }
            nb = realloc(buf, cap ? cap * 2 : 8192);
            if (nb == NULL) {
                ret = lc_seterr(LC_ERR_NOMEM, err, errlen, "out of memory");
                goto out;
            }
            buf = nb;
            cap = cap ? cap * 2 : 8192;
        }
        r = recv(fd, buf + len, cap - len - 1, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if ((ret = control_wait(fd, POLLIN, deadline)) != LC_OK) {
                lc_seterr(ret, err, errlen, "waiting for linecertd at %s: %s", path,
                          ret == LC_ERR_TIMEOUT ? "no reply in time" : strerror(errno));
                goto out;
            }
            ret = LC_ERR_IO;
            continue;
        }
        if (r < 0 && errno != ECONNRESET) {
            lc_seterr(ret, err, errlen, "reading from linecertd at %s: %s", path, strerror(errno));
            goto out;
        }
        if (r <= 0) {
            ret = lc_seterr(LC_ERR_PROTOCOL, err, errlen,
                            "linecertd at %s closed the connection without a reply", path);
            goto out;
        }
        nl = memchr(buf + len, '\n', (size_t)r);
        len += (size_t)r;
    }
    *nl = '\0';
    obj = json_tokener_parse(buf);
    if (obj == NULL || !json_object_is_type(obj, json_type_object)) {
        ret = lc_seterr(LC_ERR_PROTOCOL, err, errlen,
                        "linecertd at %s sent a reply that is not a JSON object", path);
        goto out;
    }
    *reply = obj;
    obj = NULL;
    ret = LC_OK;
out:
    json_object_put(obj);
    free(buf);
    if (fd >= 0)
        close(fd);
    return ret;
}
