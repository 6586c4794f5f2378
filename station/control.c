/*
 * control.c — the daemon's control socket (server thread), its access
 * policy, and the client side used by the CLI and the UI (docs/control.md).
 *
 * One thread serves every client with poll() rather than a thread per
 * client: requests are a line each, the handler must not block, and so a
 * silent or slow client costs one slot, never another client's answer.
 * Replies go out with non-blocking writes through a small per-client
 * buffer; a client that stops reading is dropped once that buffer is full,
 * so it can neither stall the loop nor make the daemon hoard memory.
 * Shutdown is an eventfd the thread polls alongside the sockets.
 *
 * Access: who the peer is comes from the kernel when it connects
 * (SO_PEERCRED, SO_PEERGROUPS), never from anything the client says, and
 * every request is checked against the role its command needs before the
 * daemon's handler sees it.  The decision is control_authorize(), a pure
 * function, so it can be tested without creating users.
 */
#include "control.h"
#include "lcerr.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/posix_acl.h>
#include <linux/posix_acl_xattr.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define CONTROL_MAX_LINE     1024      /* bytes of one request, not counting its '\n' */
#define CONTROL_MAX_CLIENTS  32        /* connected at once */
#define CONTROL_OUT_MAX      65536     /* unsent reply bytes a client may leave behind */
#define CONTROL_MAX_REPLY    (1 << 20) /* client side: longest reply line accepted */
#define CONTROL_IDLE_EVICT_S 5.0       /* a full table evicts a client silent this long */
#define CONTROL_MODE         0660      /* owner and group; the ACL adds the two role groups */
#define CONTROL_NSS_BUF_MAX  (1 << 20) /* getgrnam_r of a group with many members */
/* One line per reply; paths stay readable ("/var/lib", not "\\/var\\/lib") for nc users. */
#define CONTROL_JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

struct client {
    int fd;                        /* -1: free slot */
    control_peer_t peer;           /* from SO_PEERCRED at accept; peer.groups = groups */
    gid_t *groups;                 /* SO_PEERGROUPS at accept (malloc'd, may be NULL) */
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
    control_denied_fn denied;
    void *user;
    pthread_mutex_t mu;      /* guards policy and notice: control_set_policy() runs elsewhere */
    control_policy_t policy; /* who may do what */
    char notice[512];        /* for the daemon's log: missing groups, no ACLs */
    pthread_t thread;
    int started;
    struct client clients[CONTROL_MAX_CLIENTS];
};

/* ---- who may do what ---- */

/* The commands this module knows, and the role each needs (docs/control.md). */
static const struct {
    const char *cmd;
    control_role_t role;
} control_commands[] = {
    {"status", CONTROL_ROLE_READ},
    {"pause", CONTROL_ROLE_OPERATE},
    {"resume", CONTROL_ROLE_OPERATE},
    {"revoke", CONTROL_ROLE_SECURITY},
};

control_role_t control_command_role(const char *cmd)
{
    for (size_t i = 0; i < sizeof control_commands / sizeof control_commands[0]; i++)
        if (cmd != NULL && strcmp(cmd, control_commands[i].cmd) == 0)
            return control_commands[i].role;
    return CONTROL_ROLE_DAEMON;
}

static int in_group(gid_t want, gid_t gid, const gid_t *groups, size_t ngroups)
{
    if (gid == want)
        return 1;
    for (size_t i = 0; i < ngroups; i++)
        if (groups[i] == want)
            return 1;
    return 0;
}

int control_authorize(control_role_t need, uid_t uid, gid_t gid, const gid_t *groups,
                      size_t ngroups, const control_policy_t *pol)
{
    int op, sec;

    if (pol == NULL)
        return 0;
    if (uid == 0 || uid == pol->daemon_uid)
        return 1;
    if (groups == NULL)
        ngroups = 0;
    op = pol->operator_exists && in_group(pol->operator_gid, gid, groups, ngroups);
    sec = pol->security_exists && in_group(pol->security_gid, gid, groups, ngroups);
    switch (need) {
    case CONTROL_ROLE_READ:
        return op || sec;
    case CONTROL_ROLE_OPERATE:
        return op;
    case CONTROL_ROLE_SECURITY:
        return sec;
    case CONTROL_ROLE_DAEMON:
    default:
        return 0;
    }
}

/*
 * Text from a client as it may appear in a sentence or an audit row:
 * printable ASCII ('?' for anything else, so no terminal escape reaches an
 * auditor's screen), at most max characters and len - 1 bytes.
 */
static void printable(const char *in, char *out, size_t len, size_t max)
{
    size_t n = 0;

    for (; in != NULL && *in != '\0' && n + 1 < len && n < max; in++)
        out[n++] = (*in >= 0x20 && *in < 0x7f) ? *in : '?';
    out[n] = '\0';
}

void control_denial_message(control_role_t need, const char *cmd, const control_peer_t *peer,
                            const control_policy_t *pol, char *buf, size_t len)
{
    char what[40], who[CONTROL_NAME_MAX + 32], groups[3 * CONTROL_NAME_MAX + 100];
    const char *daemon_user = pol->daemon_user[0] != '\0' ? pol->daemon_user : "the daemon's user";

    if (buf == NULL || len == 0)
        return;
    printable(cmd, what, sizeof what, 32);
    if (peer->user[0] != '\0')
        snprintf(who, sizeof who, "uid %u (%s)", (unsigned)peer->uid, peer->user);
    else
        snprintf(who, sizeof who, "uid %u", (unsigned)peer->uid);
    switch (need) {
    case CONTROL_ROLE_READ:
        if (!pol->operator_exists && !pol->security_exists)
            snprintf(groups, sizeof groups,
                     "group %s or %s, neither of which exists on this system (only root and %s "
                     "may use it)",
                     pol->operator_group, pol->security_group, daemon_user);
        else
            snprintf(groups, sizeof groups, "group %s or %s", pol->operator_group,
                     pol->security_group);
        break;
    case CONTROL_ROLE_OPERATE:
    case CONTROL_ROLE_SECURITY: {
        int op = need == CONTROL_ROLE_OPERATE;
        const char *g = op ? pol->operator_group : pol->security_group;
        if (op ? pol->operator_exists : pol->security_exists)
            snprintf(groups, sizeof groups, "group %s", g);
        else
            snprintf(groups, sizeof groups,
                     "group %s, which does not exist on this system (only root and %s may use it)",
                     g, daemon_user);
        break;
    }
    case CONTROL_ROLE_DAEMON:
    default:
        snprintf(buf, len,
                 "permission denied: \"%s\" is not a command for operators or security staff; "
                 "only root and %s may send it; you are %s",
                 what, daemon_user, who);
        return;
    }
    snprintf(buf, len, "permission denied: %s needs %s; you are %s", what, groups, who);
}

int control_group_lookup(const char *name, gid_t *gid)
{
    size_t cap = 16384;
    char *buf = NULL;
    int found = 0;

    for (;;) {
        struct group gr, *res = NULL;
        char *nb = realloc(buf, cap);
        int rc;
        if (nb == NULL)
            break;
        buf = nb;
        rc = getgrnam_r(name, &gr, buf, cap, &res);
        if (rc == ERANGE && cap < CONTROL_NSS_BUF_MAX) {
            cap *= 2;
            continue;
        }
        if (rc == 0 && res != NULL) {
            if (gid != NULL)
                *gid = res->gr_gid;
            found = 1;
        }
        break;
    }
    free(buf);
    return found;
}

/* The user name of uid into name ("" if it has none). */
static void user_name(uid_t uid, char *name, size_t len)
{
    struct passwd pw, *res = NULL;
    char buf[16384];

    name[0] = '\0';
    if (getpwuid_r(uid, &pw, buf, sizeof buf, &res) == 0 && res != NULL)
        snprintf(name, len, "%s", res->pw_name);
}

/* The sentence for the log when a role group does not exist; "" if both do. */
static void policy_notice(const control_policy_t *pol, char *buf, size_t len)
{
    const char *missing[2];
    size_t n = 0;

    if (buf == NULL || len == 0)
        return;
    buf[0] = '\0';
    if (!pol->operator_exists)
        missing[n++] = pol->operator_group;
    if (!pol->security_exists)
        missing[n++] = pol->security_group;
    if (n > 0)
        snprintf(buf, len, "control socket: group %s%s%s does not exist; only root and %s hold %s",
                 missing[0], n > 1 ? " and group " : "", n > 1 ? missing[1] : "",
                 pol->daemon_user[0] ? pol->daemon_user : "the daemon's user",
                 n > 1                   ? "the operator and security roles"
                 : !pol->operator_exists ? "the operator role"
                                         : "the security role");
}

int control_policy_init(control_policy_t *pol, const char *operator_group,
                        const char *security_group, char *notice, size_t noticelen)
{
    if (notice != NULL && noticelen > 0)
        notice[0] = '\0';
    memset(pol, 0, sizeof *pol);
    if (operator_group == NULL || *operator_group == '\0')
        operator_group = CONTROL_DEFAULT_OPERATOR_GROUP;
    if (security_group == NULL || *security_group == '\0')
        security_group = CONTROL_DEFAULT_SECURITY_GROUP;
    if (strlen(operator_group) >= sizeof pol->operator_group ||
        strlen(security_group) >= sizeof pol->security_group)
        return lc_seterr(LC_ERR_CONFIG, notice, noticelen,
                         "control socket: a group name is longer than %d bytes",
                         CONTROL_NAME_MAX - 1);
    pol->daemon_uid = geteuid();
    user_name(pol->daemon_uid, pol->daemon_user, sizeof pol->daemon_user);
    memcpy(pol->operator_group, operator_group, strlen(operator_group) + 1);
    memcpy(pol->security_group, security_group, strlen(security_group) + 1);
    pol->operator_exists = control_group_lookup(pol->operator_group, &pol->operator_gid);
    pol->security_exists = control_group_lookup(pol->security_group, &pol->security_gid);
    policy_notice(pol, notice, noticelen);
    return LC_OK;
}

static void acl_entry(struct posix_acl_xattr_entry *e, unsigned tag, unsigned perm, uint32_t id)
{
    e->e_tag = htole16((uint16_t)tag);
    e->e_perm = htole16((uint16_t)perm);
    e->e_id = htole32(id);
}

/*
 * Lets the role groups connect: an access ACL of owner rw, owning group rw,
 * one rw entry per existing role group, mask rw, others nothing.  Written as
 * the kernel's xattr format (linux/posix_acl_xattr.h) so that no ACL
 * library is needed.  A file system without ACLs is not an error: notice
 * says what that means.  Returns LC_OK or LC_ERR_IO.
 */
static int control_apply_acl(const char *path, const control_policy_t *pol, char *notice,
                             size_t nlen, char *err, size_t errlen)
{
    struct {
        struct posix_acl_xattr_header h;
        struct posix_acl_xattr_entry e[6];
    } acl;
    gid_t g[2];
    size_t ng = 0, n = 0;

    if (pol->operator_exists)
        g[ng++] = pol->operator_gid;
    if (pol->security_exists && !(ng == 1 && g[0] == pol->security_gid))
        g[ng++] = pol->security_gid;
    if (ng == 2 && g[1] < g[0]) { /* the kernel wants named entries in ascending id order */
        gid_t t = g[0];
        g[0] = g[1];
        g[1] = t;
    }
    memset(&acl, 0, sizeof acl);
    acl.h.a_version = htole32(POSIX_ACL_XATTR_VERSION);
    acl_entry(&acl.e[n++], ACL_USER_OBJ, ACL_READ | ACL_WRITE, (uint32_t)ACL_UNDEFINED_ID);
    acl_entry(&acl.e[n++], ACL_GROUP_OBJ, ACL_READ | ACL_WRITE, (uint32_t)ACL_UNDEFINED_ID);
    for (size_t i = 0; i < ng; i++)
        acl_entry(&acl.e[n++], ACL_GROUP, ACL_READ | ACL_WRITE, g[i]);
    if (ng > 0)
        acl_entry(&acl.e[n++], ACL_MASK, ACL_READ | ACL_WRITE, (uint32_t)ACL_UNDEFINED_ID);
    acl_entry(&acl.e[n++], ACL_OTHER, 0, (uint32_t)ACL_UNDEFINED_ID);
    if (lsetxattr(path, "system.posix_acl_access", &acl, sizeof acl.h + n * sizeof acl.e[0], 0) ==
        0)
        return LC_OK;
    if (errno == EOPNOTSUPP || errno == ENOTSUP) {
        if (ng > 0 && notice != NULL)
            snprintf(notice, nlen,
                     "control socket %s: the file system does not support ACLs, so only the "
                     "daemon's user and group can connect (members of %s and %s cannot)",
                     path, pol->operator_group, pol->security_group);
        return LC_OK;
    }
    return lc_seterr(LC_ERR_IO, err, errlen, "control socket %s: cannot set its ACL: %s", path,
                     strerror(errno));
}

/* Joins two notices with "; " into c->notice. */
static void control_set_notice(control_t *c, const char *a, const char *b)
{
    snprintf(c->notice, sizeof c->notice, "%s%s%s", a, *a && *b ? "; " : "", b);
}

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
    free(cl->groups);
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

/*
 * Queues {"ok":false,"error":msg} plus "reason" when not NULL; the literal
 * fallback covers an allocation failure.
 */
static int client_queue_refusal(struct client *cl, const char *msg, const char *reason)
{
    json_object *o = json_object_new_object();
    const char *text;
    int ret;

    if (o == NULL || json_object_object_add(o, "ok", json_object_new_boolean(0)) != 0 ||
        json_object_object_add(o, "error", json_object_new_string(msg)) != 0 ||
        (reason != NULL &&
         json_object_object_add(o, "reason", json_object_new_string(reason)) != 0)) {
        static const char oom[] = "{\"ok\":false,\"error\":\"out of memory\"}";
        json_object_put(o);
        return client_queue(cl, oom, sizeof oom - 1);
    }
    text = json_object_to_json_string_ext(o, CONTROL_JSON_FLAGS);
    ret = client_queue(cl, text, strlen(text));
    json_object_put(o);
    return ret;
}

static int client_queue_error(struct client *cl, const char *msg)
{
    return client_queue_refusal(cl, msg, NULL);
}

static int is_blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r';
}

/*
 * Handles one request line (len bytes, NUL-terminated in place): splits it
 * into the command word and the trimmed rest, checks that the peer holds
 * the role the command needs, asks the handler (or, if refused, tells the
 * denial hook), queues the reply.  Returns 0, or -1 if the client was dropped.
 */
static int client_request(control_t *c, struct client *cl, char *line, size_t len)
{
    char *cmd = line, *arg, *end = line + len, msg[512], pcmd[40], parg[140];
    control_policy_t pol;
    control_role_t need;
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
    need = control_command_role(cmd);
    pthread_mutex_lock(&c->mu);
    pol = c->policy;
    pthread_mutex_unlock(&c->mu);
    if (!control_authorize(need, cl->peer.uid, cl->peer.gid, cl->peer.groups, cl->peer.ngroups,
                           &pol)) {
        control_denial_message(need, cmd, &cl->peer, &pol, msg, sizeof msg);
        /* Audited before the client learns of it: a refusal is evidence too. */
        printable(cmd, pcmd, sizeof pcmd, 32);
        printable(arg, parg, sizeof parg, 128);
        if (c->denied != NULL)
            c->denied(c->user, pcmd, parg, &cl->peer, msg);
        return client_queue_refusal(cl, msg, "permission-denied");
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

/*
 * The peer's supplementary groups at connect time (SO_PEERGROUPS, Linux
 * 4.13).  They are the kernel's record, so a group membership granted or
 * taken away later takes effect at the next connection, as for a login.
 * Returns 0 (groups may be NULL with n 0 when the peer has none), or -1.
 */
static int peer_groups(int fd, gid_t **groups, size_t *n)
{
    socklen_t len = 64 * sizeof(gid_t);
    gid_t *buf = NULL;
    int saved = ENOMEM;

    *groups = NULL;
    *n = 0;
    for (int tries = 0; tries < 4; tries++) {
        gid_t *nb = realloc(buf, len > 0 ? len : sizeof(gid_t));
        if (nb == NULL)
            break;
        buf = nb;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, buf, &len) == 0) {
            *groups = buf;
            *n = len / sizeof(gid_t);
            return 0;
        }
        if (errno != ERANGE) /* ENOPROTOOPT, an older kernel: the primary group is all we know */
            break;
    }
    saved = errno;
    free(buf);
    return saved == ENOPROTOOPT ? 0 : -1;
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
        /* The groups decide the role: without them the request could not be judged. */
        if (peer_groups(fd, &cl->groups, &cl->peer.ngroups) != 0) {
            close(fd);
            continue;
        }
        cl->fd = fd;
        cl->peer.pid = cred.pid;
        cl->peer.uid = cred.uid;
        cl->peer.gid = cred.gid;
        cl->peer.groups = cl->groups;
        user_name(cred.uid, cl->peer.user, sizeof cl->peer.user);
        if (cl->peer.user[0] != '\0')
            snprintf(cl->peer.actor, sizeof cl->peer.actor, "uid=%u(%s)", (unsigned)cred.uid,
                     cl->peer.user);
        else
            snprintf(cl->peer.actor, sizeof cl->peer.actor, "uid=%u", (unsigned)cred.uid);
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
    pthread_mutex_destroy(&c->mu);
    free(c->path);
    free(c);
}

int control_open_opts(const char *path, const control_opts_t *opts, control_t **out, char *err,
                      size_t errlen)
{
    struct sockaddr_un sa;
    control_t *c = NULL;
    struct stat st;
    sigset_t all, old;
    char acl_notice[300] = "", pol_notice[200];
    int ret = LC_ERR_IO, rc;

    if (out != NULL)
        *out = NULL;
    if (path == NULL || opts == NULL || opts->handler == NULL || out == NULL) {
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
    if (c == NULL) {
        ret = lc_seterr(LC_ERR_NOMEM, err, errlen, "out of memory");
        goto out;
    }
    pthread_mutex_init(&c->mu, NULL);
    c->lfd = c->wake = -1;
    if ((c->path = strdup(path)) == NULL) {
        ret = lc_seterr(LC_ERR_NOMEM, err, errlen, "out of memory");
        goto out;
    }
    c->fn = opts->handler;
    c->denied = opts->denied;
    c->user = opts->user;
    c->policy = opts->policy;
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
    if ((ret = control_apply_acl(path, &c->policy, acl_notice, sizeof acl_notice, err, errlen)) !=
        LC_OK)
        goto out;
    ret = LC_ERR_IO;
    policy_notice(&c->policy, pol_notice, sizeof pol_notice);
    control_set_notice(c, pol_notice, acl_notice);
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

int control_open(const char *path, control_handler_fn fn, void *user, control_t **out, char *err,
                 size_t errlen)
{
    control_opts_t opts = {fn, NULL, user, {0}};
    int ret;

    if (out != NULL)
        *out = NULL;
    if ((ret = control_policy_init(&opts.policy, NULL, NULL, NULL, 0)) != LC_OK)
        return lc_seterr(ret, err, errlen, "control socket: cannot build the default policy");
    return control_open_opts(path, &opts, out, err, errlen);
}

const char *control_notice(const control_t *c)
{
    return c != NULL ? c->notice : "";
}

int control_set_policy(control_t *c, const control_policy_t *pol, char *err, size_t errlen)
{
    char acl_notice[300] = "", pol_notice[200];
    int ret;

    if (c == NULL || pol == NULL)
        return lc_seterr(LC_ERR_INTERNAL, err, errlen, "control_set_policy: missing argument");
    ret = control_apply_acl(c->path, pol, acl_notice, sizeof acl_notice, err, errlen);
    if (ret != LC_OK)
        return ret;
    policy_notice(pol, pol_notice, sizeof pol_notice);
    pthread_mutex_lock(&c->mu);
    c->policy = *pol;
    control_set_notice(c, pol_notice, acl_notice);
    pthread_mutex_unlock(&c->mu);
    return LC_OK;
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
        else if (errno == EACCES)
            lc_seterr(ret, err, errlen,
                      "cannot connect to linecertd at %s: Permission denied (the operator and "
                      "security groups may connect; see docs/control.md)",
                      path);
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
