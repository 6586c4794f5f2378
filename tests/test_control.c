/*
 * test_control.c — the control socket: requests and replies, peer
 * credentials, who may do what (the pure permission decision with crafted
 * identities, and, when the suite runs as root, real unprivileged clients
 * in forked children), many and misbehaving clients, socket file handling,
 * and the `linecert status|pause|resume` commands against an in-process
 * server.
 */
#include "audit.h"
#include "config.h"
#include "control.h"
#include "lcerr.h"
#include "testutil.h"

#include <check.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/posix_acl.h>
#include <linux/posix_acl_xattr.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

/* The example from the product issue: line 1 issuing, line 2 in fault. */
static const char *STATUS_JSON =
    "{\"ok\": true, \"version\": \"0.1.0\", \"uptime_s\": 7380, \"state\": \"ok\","
    " \"signer\": {\"running\": true, \"pid\": 4242, \"hsm_ok\": true, \"signatures\": 1234,"
    "  \"restarts\": 0, \"error\": \"\"},"
    " \"audit\": {\"path\": \"/x/audit.db\", \"ok\": true, \"size_bytes\": 1234567,"
    "  \"free_bytes\": 48000000000, \"rows\": 1240, \"error\": \"\"},"
    " \"lines\": ["
    "  {\"id\": \"1\", \"name\": \"Line 1\", \"state\": \"issuing\", \"reason\": null,"
    "   \"reason_text\": \"\","
    "   \"plc\": {\"address\": \"127.0.0.1:1502\", \"connected\": true, \"error\": \"\"},"
    "   \"jig\": {\"ok\": true, \"error\": \"\"}, \"issued\": 412, \"refused\": 1, \"faults\": 0,"
    "   \"rate_last_min\": 11, \"rate_last_hour\": 9.5,"
    "   \"last\": {\"serial\": \"SN1-000412\", \"result\": \"issued\", \"reason\": \"none\","
    "    \"age_s\": 2.1},"
    "   \"latency_ms\": {\"p50\": 3.1, \"p99\": 7.2, \"max\": 9.9, \"jig_p50\": 40.2,"
    "    \"samples\": 10}},"
    "  {\"id\": \"2\", \"name\": \"Line 2\", \"state\": \"fault\","
    "   \"reason\": \"plc-unreachable\","
    "   \"reason_text\": \"PLC 127.0.0.1:1502 not answering: Connection refused\","
    "   \"plc\": {\"address\": \"127.0.0.1:1502\", \"connected\": false,"
    "    \"error\": \"Connection refused\"},"
    "   \"jig\": {\"ok\": true, \"error\": \"\"}, \"issued\": 233, \"refused\": 0, \"faults\": 3,"
    "   \"rate_last_min\": 0, \"rate_last_hour\": 4.1,"
    "   \"last\": {\"serial\": \"SN2-000233\", \"result\": \"fault\", \"reason\": \"none\","
    "    \"age_s\": 41}}"
    " ]}";

/* What the handler saw last; the server thread writes, the test reads. */
static struct {
    pthread_mutex_t mu;
    int calls;
    char cmd[64];
    char arg[1100];
    control_peer_t peer; /* peer.groups is not valid after the call: see groups */
    gid_t groups[64];
    size_t ngroups;
    const char *status; /* the reply to "status" */
} seen = {.mu = PTHREAD_MUTEX_INITIALIZER};

static char *dir;
static char sock[600];
static control_t *ctl;

static json_object *reply_ok(const char *key, const char *value)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "ok", json_object_new_boolean(1));
    if (key != NULL)
        json_object_object_add(o, key, json_object_new_string(value));
    return o;
}

static json_object *reply_err(const char *msg)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "ok", json_object_new_boolean(0));
    json_object_object_add(o, "error", json_object_new_string(msg));
    return o;
}

/* Canned replies; "echo" returns its argument, "slow" sleeps, "null" returns NULL. */
static json_object *test_handler(void *user, const char *cmd, const char *arg,
                                 const control_peer_t *peer)
{
    (void)user;
    pthread_mutex_lock(&seen.mu);
    seen.calls++;
    snprintf(seen.cmd, sizeof seen.cmd, "%s", cmd);
    snprintf(seen.arg, sizeof seen.arg, "%s", arg);
    seen.peer = *peer;
    seen.ngroups = peer->ngroups < 64 ? peer->ngroups : 64;
    memcpy(seen.groups, peer->groups, seen.ngroups * sizeof(gid_t));
    seen.peer.groups = NULL;
    pthread_mutex_unlock(&seen.mu);
    if (strcmp(cmd, "status") == 0)
        return json_tokener_parse(seen.status != NULL ? seen.status : STATUS_JSON);
    if (strcmp(cmd, "echo") == 0)
        return reply_ok("arg", arg);
    if (strcmp(cmd, "slow") == 0) {
        usleep(1500 * 1000);
        return reply_ok(NULL, NULL);
    }
    if (strcmp(cmd, "null") == 0)
        return NULL;
    if (strcmp(cmd, "pause") == 0 || strcmp(cmd, "resume") == 0) {
        json_object *o;
        if (strcmp(arg, "2") == 0)
            return reply_err("line 2 is busy; try again");
        o = reply_ok("line", arg);
        json_object_object_add(
            o, "state", json_object_new_string(strcmp(cmd, "pause") == 0 ? "paused" : "idle"));
        return o;
    }
    return reply_err("unknown command");
}

static int seen_calls(void)
{
    int n;

    pthread_mutex_lock(&seen.mu);
    n = seen.calls;
    pthread_mutex_unlock(&seen.mu);
    return n;
}

static void setup_dir(void)
{
    dir = tu_mkdtemp("control");
    ck_assert_ptr_nonnull(dir);
    snprintf(sock, sizeof sock, "%s/ctl.sock", dir);
    seen.calls = 0;
    seen.status = NULL;
    ctl = NULL;
}

static void setup_server(void)
{
    char err[256] = "";

    setup_dir();
    ck_assert_msg(control_open(sock, test_handler, NULL, &ctl, err, sizeof err) == LC_OK, "%s",
                  err);
}

static void teardown(void)
{
    control_free(ctl);
    ctl = NULL;
    tu_rmtree(dir);
    free(dir);
}

static void sun_set(struct sockaddr_un *sa, const char *path)
{
    ck_assert_uint_lt(strlen(path), sizeof sa->sun_path);
    memcpy(sa->sun_path, path, strlen(path) + 1);
}

/* A raw client connection, for what control_request() does not do. */
static int raw_connect(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    ck_assert_int_ge(fd, 0);
    sun_set(&sa, path);
    ck_assert_msg(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0, "connect: %s",
                  strerror(errno));
    return fd;
}

static void raw_send(int fd, const char *text, size_t len)
{
    ck_assert_int_eq(send(fd, text, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* Reads one reply line (at most 3 s); returns it parsed, or NULL on EOF. */
static json_object *raw_reply(int fd)
{
    static char buf[65536];
    size_t len = 0;

    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        ssize_t n;
        ck_assert_msg(poll(&p, 1, 3000) == 1, "no reply within 3 s");
        n = recv(fd, buf + len, 1, 0); /* byte by byte: never eat the next reply */
        if (n <= 0)
            return NULL;
        if (buf[len] == '\n') {
            buf[len] = '\0';
            return json_tokener_parse(buf);
        }
        ck_assert_uint_lt(++len, sizeof buf - 1);
    }
}

static int json_ok(json_object *o)
{
    json_object *v;

    return o != NULL && json_object_object_get_ex(o, "ok", &v) && json_object_get_boolean(v);
}

static const char *json_str(json_object *o, const char *key)
{
    json_object *v;

    if (o == NULL || !json_object_object_get_ex(o, key, &v))
        return NULL;
    return json_object_get_string(v);
}

START_TEST(status_round_trip)
{
    json_object *r = NULL, *lines;
    char err[256] = "";

    ck_assert_msg(control_request(sock, "status", NULL, 3000, &r, err, sizeof err) == LC_OK, "%s",
                  err);
    ck_assert(json_ok(r));
    ck_assert_str_eq(json_str(r, "version"), "0.1.0");
    ck_assert(json_object_object_get_ex(r, "lines", &lines));
    ck_assert_uint_eq(json_object_array_length(lines), 2);
    ck_assert_str_eq(seen.cmd, "status");
    ck_assert_str_eq(seen.arg, "");
    json_object_put(r);
}
END_TEST

START_TEST(pause_passes_its_argument)
{
    json_object *r = NULL;
    char err[256] = "";

    ck_assert_int_eq(control_request(sock, "pause", "1", 3000, &r, err, sizeof err), LC_OK);
    ck_assert(json_ok(r));
    ck_assert_str_eq(json_str(r, "state"), "paused");
    ck_assert_str_eq(seen.cmd, "pause");
    ck_assert_str_eq(seen.arg, "1");
    json_object_put(r);
}
END_TEST

START_TEST(request_split_into_command_and_trimmed_argument)
{
    int fd = raw_connect(sock);
    json_object *r;

    raw_send(fd, "  echo \t line 7  \r\n", 19);
    r = raw_reply(fd);
    ck_assert(json_ok(r));
    ck_assert_str_eq(seen.cmd, "echo");
    ck_assert_str_eq(json_str(r, "arg"), "line 7");
    json_object_put(r);
    close(fd);
}
END_TEST

START_TEST(peer_credentials_are_the_callers)
{
    json_object *r = NULL;
    gid_t mine[64];
    int n = getgroups(64, mine);
    char actor[100];

    ck_assert_int_eq(control_request(sock, "status", "", 3000, &r, NULL, 0), LC_OK);
    ck_assert_uint_eq(seen.peer.uid, getuid());
    ck_assert_uint_eq(seen.peer.gid, getgid());
    ck_assert_int_eq(seen.peer.pid, getpid());
    /* the supplementary groups are the kernel's list for this process */
    ck_assert_int_ge(n, 0);
    ck_assert_uint_eq(seen.ngroups, (size_t)n);
    for (int i = 0; i < n; i++) {
        size_t j = 0;
        while (j < seen.ngroups && seen.groups[j] != mine[i])
            j++;
        ck_assert_msg(j < seen.ngroups, "group %u missing", (unsigned)mine[i]);
    }
    /* the actor names uid and user, as id(1) does */
    if (seen.peer.user[0] != '\0')
        snprintf(actor, sizeof actor, "uid=%u(%s)", (unsigned)getuid(), seen.peer.user);
    else
        snprintf(actor, sizeof actor, "uid=%u", (unsigned)getuid());
    ck_assert_str_eq(seen.peer.actor, actor);
    if (getuid() == 0)
        ck_assert_str_eq(seen.peer.actor, "uid=0(root)");
    json_object_put(r);
}
END_TEST

START_TEST(several_requests_on_one_connection)
{
    static const char req[] = "echo a\npause 1\necho b\n";
    int fd = raw_connect(sock);
    json_object *r;

    /* One write, three requests: each gets its own reply, in order. */
    raw_send(fd, req, sizeof req - 1);
    r = raw_reply(fd);
    ck_assert_str_eq(json_str(r, "arg"), "a");
    json_object_put(r);
    r = raw_reply(fd);
    ck_assert_str_eq(json_str(r, "state"), "paused");
    json_object_put(r);
    r = raw_reply(fd);
    ck_assert_str_eq(json_str(r, "arg"), "b");
    json_object_put(r);
    /* and the connection is still usable afterwards */
    raw_send(fd, "echo c\n", 7);
    r = raw_reply(fd);
    ck_assert_str_eq(json_str(r, "arg"), "c");
    json_object_put(r);
    ck_assert_int_eq(seen_calls(), 4);
    close(fd);
}
END_TEST

#define NCONC 20

struct conc {
    pthread_barrier_t *start;
    int id;
    int ret;
    char got[32];
};

static void *conc_client(void *arg)
{
    struct conc *c = arg;
    json_object *r = NULL;
    char want[16];

    snprintf(want, sizeof want, "%d", c->id);
    pthread_barrier_wait(c->start);
    c->ret = control_request(sock, "echo", want, 10000, &r, NULL, 0);
    if (c->ret == LC_OK && json_str(r, "arg") != NULL)
        snprintf(c->got, sizeof c->got, "%s", json_str(r, "arg"));
    json_object_put(r);
    return NULL;
}

START_TEST(twenty_concurrent_clients)
{
    pthread_barrier_t start;
    struct conc c[NCONC];
    pthread_t t[NCONC];

    pthread_barrier_init(&start, NULL, NCONC);
    for (int i = 0; i < NCONC; i++) {
        c[i] = (struct conc){&start, i, -99, ""};
        ck_assert_int_eq(pthread_create(&t[i], NULL, conc_client, &c[i]), 0);
    }
    for (int i = 0; i < NCONC; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&start);
    for (int i = 0; i < NCONC; i++) {
        char want[16];
        snprintf(want, sizeof want, "%d", i);
        ck_assert_msg(c[i].ret == LC_OK, "client %d: %d", i, c[i].ret);
        ck_assert_str_eq(c[i].got, want);
    }
    ck_assert_int_eq(seen_calls(), NCONC);
}
END_TEST

START_TEST(request_longer_than_1024_bytes_is_rejected)
{
    char big[2001];
    int fd = raw_connect(sock);
    json_object *r;

    memset(big, 'a', sizeof big - 1);
    memcpy(big, "echo ", 5);
    big[sizeof big - 1] = '\n';
    raw_send(fd, big, sizeof big);
    r = raw_reply(fd);
    ck_assert(r != NULL && !json_ok(r));
    ck_assert_str_eq(json_str(r, "error"), "request too long");
    json_object_put(r);
    /* then the server hangs up: nothing after the oversized line is trusted */
    ck_assert_ptr_null(raw_reply(fd));
    ck_assert_int_eq(seen_calls(), 0);
    close(fd);
}
END_TEST

START_TEST(request_of_exactly_1024_bytes_is_accepted)
{
    char line[1026];
    int fd = raw_connect(sock);
    json_object *r;

    memset(line, 'x', sizeof line);
    memcpy(line, "echo ", 5);
    line[1024] = '\n';
    raw_send(fd, line, 1025);
    r = raw_reply(fd);
    ck_assert(json_ok(r));
    ck_assert_uint_eq(strlen(json_str(r, "arg")), 1019);
    json_object_put(r);
    close(fd);
}
END_TEST

START_TEST(empty_request_gets_an_error_reply)
{
    int fd = raw_connect(sock);
    json_object *r;

    raw_send(fd, "  \n", 3);
    r = raw_reply(fd);
    ck_assert(r != NULL && !json_ok(r));
    ck_assert_str_eq(json_str(r, "error"), "empty request");
    ck_assert_int_eq(seen_calls(), 0);
    json_object_put(r);
    close(fd);
}
END_TEST

START_TEST(handler_without_reply_gives_an_error_reply)
{
    json_object *r = NULL;

    ck_assert_int_eq(control_request(sock, "null", "", 3000, &r, NULL, 0), LC_OK);
    ck_assert(!json_ok(r));
    ck_assert_ptr_nonnull(strstr(json_str(r, "error"), "internal error"));
    json_object_put(r);
}
END_TEST

START_TEST(last_request_without_newline_is_answered_at_eof)
{
    int fd = raw_connect(sock);
    json_object *r;

    raw_send(fd, "echo tail", 9);
    ck_assert_int_eq(shutdown(fd, SHUT_WR), 0);
    r = raw_reply(fd);
    ck_assert_str_eq(json_str(r, "arg"), "tail");
    json_object_put(r);
    close(fd);
}
END_TEST

START_TEST(socket_file_is_mode_0660)
{
    struct stat st;

    ck_assert_int_eq(lstat(sock, &st), 0);
    ck_assert(S_ISSOCK(st.st_mode));
    ck_assert_uint_eq(st.st_mode & 07777, 0660);
}
END_TEST

START_TEST(stale_socket_file_is_replaced)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    json_object *r = NULL;
    char err[256] = "";
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    /* what a crashed daemon leaves behind: a socket file nobody listens on */
    sun_set(&sa, sock);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    close(fd);
    ck_assert_int_eq(access(sock, F_OK), 0);
    ck_assert_msg(control_open(sock, test_handler, NULL, &ctl, err, sizeof err) == LC_OK, "%s",
                  err);
    ck_assert_int_eq(control_request(sock, "echo", "x", 3000, &r, NULL, 0), LC_OK);
    json_object_put(r);
}
END_TEST

START_TEST(file_that_is_not_a_socket_is_not_replaced)
{
    char err[256] = "", *text;
    FILE *f = fopen(sock, "w");

    ck_assert_ptr_nonnull(f);
    fputs("precious\n", f);
    fclose(f);
    ck_assert_int_eq(control_open(sock, test_handler, NULL, &ctl, err, sizeof err), LC_ERR_IO);
    ck_assert_ptr_null(ctl);
    ck_assert_msg(strstr(err, "not a socket") != NULL, "%s", err);
    text = tu_slurp(sock, NULL);
    ck_assert_str_eq(text, "precious\n");
    free(text);
}
END_TEST

START_TEST(second_open_on_live_path_fails)
{
    control_t *second = NULL;
    json_object *r = NULL;
    char err[256] = "";

    ck_assert_int_eq(control_open(sock, test_handler, NULL, &second, err, sizeof err), LC_ERR_IO);
    ck_assert_ptr_null(second);
    ck_assert_msg(strstr(err, "another linecertd is running on") != NULL, "%s", err);
    ck_assert_ptr_nonnull(strstr(err, sock));
    /* the running server was left alone */
    ck_assert_int_eq(control_request(sock, "echo", "still", 3000, &r, NULL, 0), LC_OK);
    ck_assert_str_eq(json_str(r, "arg"), "still");
    json_object_put(r);
}
END_TEST

START_TEST(request_to_missing_socket_says_not_running)
{
    json_object *r = (json_object *)1;
    char err[256] = "", path[700];

    snprintf(path, sizeof path, "%s/nobody.sock", dir);
    ck_assert_int_eq(control_request(path, "status", "", 1000, &r, err, sizeof err), LC_ERR_IO);
    ck_assert_ptr_null(r);
    ck_assert_msg(strstr(err, "not running") != NULL, "%s", err);
    ck_assert_ptr_nonnull(strstr(err, path));
}
END_TEST

START_TEST(request_with_line_break_is_refused_unsent)
{
    json_object *r = NULL;
    char err[256] = "";

    ck_assert_int_eq(control_request(sock, "pause", "1\nresume 2", 3000, &r, err, sizeof err),
                     LC_ERR_USAGE);
    ck_assert_ptr_null(r);
    usleep(100 * 1000);
    ck_assert_int_eq(seen_calls(), 0);
}
END_TEST

START_TEST(slow_reply_times_out)
{
    json_object *r = NULL;
    char err[256] = "";

    ck_assert_int_eq(control_request(sock, "slow", "", 200, &r, err, sizeof err), LC_ERR_TIMEOUT);
    ck_assert_ptr_null(r);
}
END_TEST

START_TEST(free_removes_socket_file)
{
    ck_assert_int_eq(access(sock, F_OK), 0);
    control_free(ctl);
    ctl = NULL;
    ck_assert_int_eq(access(sock, F_OK), -1);
    ck_assert_int_eq(errno, ENOENT);
    control_free(NULL);
}
END_TEST

START_TEST(silent_client_does_not_block_others)
{
    int silent = raw_connect(sock), partial = raw_connect(sock);
    json_object *r = NULL;
    char err[256] = "";

    raw_send(partial, "sta", 3);
    ck_assert_msg(control_request(sock, "echo", "ok", 2000, &r, err, sizeof err) == LC_OK, "%s",
                  err);
    ck_assert_str_eq(json_str(r, "arg"), "ok");
    json_object_put(r);
    close(silent);
    close(partial);
}
END_TEST

START_TEST(client_that_never_reads_is_dropped)
{
    static const char req[] = "status\n";
    int fd = raw_connect(sock), dropped = 0;
    struct timespec t0, now;
    json_object *r = NULL;

    /* Keep asking, never read: the replies pile up until the server gives up. */
    fcntl(fd, F_SETFL, O_NONBLOCK);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        ssize_t n = send(fd, req, sizeof req - 1, MSG_NOSIGNAL);
        if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
            dropped = 1;
        else if (n < 0 && errno == EAGAIN)
            poll(&(struct pollfd){fd, POLLOUT, 0}, 1, 100);
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while (!dropped && now.tv_sec - t0.tv_sec < 20);
    ck_assert_msg(dropped, "a client that never reads was not dropped");
    close(fd);
    ck_assert_int_eq(control_request(sock, "echo", "next", 3000, &r, NULL, 0), LC_OK);
    json_object_put(r);
}
END_TEST

START_TEST(full_table_refuses_then_evicts_idle_client)
{
    int fds[32];
    json_object *r = NULL;

    for (int i = 0; i < 32; i++)
        fds[i] = raw_connect(sock);
    usleep(200 * 1000);
    ck_assert_int_eq(control_request(sock, "echo", "x", 3000, &r, NULL, 0), LC_OK);
    ck_assert(!json_ok(r));
    ck_assert_str_eq(json_str(r, "error"), "too many clients");
    json_object_put(r);
    /* after a few seconds of silence the oldest idle client makes room */
    sleep(6);
    ck_assert_int_eq(control_request(sock, "echo", "x", 3000, &r, NULL, 0), LC_OK);
    ck_assert(json_ok(r));
    json_object_put(r);
    for (int i = 0; i < 32; i++)
        close(fds[i]);
}
END_TEST

/* ---- who may do what: the pure decision ---- */

/* A crafted policy: daemon uid 998 (linecert), operators gid 2001, security gid 2002. */
static control_policy_t crafted_policy(void)
{
    control_policy_t p;

    memset(&p, 0, sizeof p);
    p.daemon_uid = 998;
    snprintf(p.daemon_user, sizeof p.daemon_user, "linecert");
    snprintf(p.operator_group, sizeof p.operator_group, "linecert-operators");
    p.operator_gid = 2001;
    p.operator_exists = 1;
    snprintf(p.security_group, sizeof p.security_group, "linecert-security");
    p.security_gid = 2002;
    p.security_exists = 1;
    return p;
}

static const control_role_t ALL_ROLES[] = {CONTROL_ROLE_READ, CONTROL_ROLE_OPERATE,
                                           CONTROL_ROLE_SECURITY, CONTROL_ROLE_DAEMON};

START_TEST(authorize_root_and_daemon_user_may_do_everything)
{
    control_policy_t p = crafted_policy();

    for (size_t i = 0; i < sizeof ALL_ROLES / sizeof ALL_ROLES[0]; i++) {
        ck_assert_int_eq(control_authorize(ALL_ROLES[i], 0, 0, NULL, 0, &p), 1);
        ck_assert_int_eq(control_authorize(ALL_ROLES[i], 998, 998, NULL, 0, &p), 1);
    }
    /* without a policy nobody is allowed anything, not even root */
    ck_assert_int_eq(control_authorize(CONTROL_ROLE_READ, 0, 0, NULL, 0, NULL), 0);
}
END_TEST

START_TEST(authorize_status_needs_operator_or_security_group)
{
    control_policy_t p = crafted_policy();
    const gid_t op[] = {27, 2001}, sec[] = {2002}, other[] = {27, 100, 2003};

    ck_assert_int_eq(control_authorize(CONTROL_ROLE_READ, 1001, 1001, NULL, 0, &p), 0);
    ck_assert_int_eq(control_authorize(CONTROL_ROLE_READ, 1001, 1001, other, 3, &p), 0);
    ck_assert_int_eq(control_authorize(CONTROL_ROLE_READ, 1001, 1001, op, 2, &p), 1);
    ck_assert_int_eq(control_authorize(CONTROL_ROLE_READ, 1001, 1001, sec, 1, &p), 1);
    /* the primary group counts as much as a supplementary one */
    ck_assert_int_eq(control_authorize(CONTROL_ROLE_READ, 1001, 2002, NULL, 0, &p), 1);
}
END_TEST

START_TEST(authorize_pause_needs_operator_group)
{
    control_policy_t p = crafted_policy();
    const gid_t op[] = {2001}, sec[] = {5, 2002, 7};

    ck_assert_int_eq(control_authorize(CONTROL_ROLE_OPERATE, 1001, 1001, op, 1, &p), 1);
    ck_assert_int_eq(control_authorize(CONTROL_ROLE_OPERATE, 1001, 2001, NULL, 0, &p), 1);
    ck_assert_int_eq(control_authorize(CONTROL_ROLE_OPERATE, 1001, 1001, sec, 3, &p), 0);
    ck_assert_int_eq(control_authorize(CONTROL_ROLE_OPERATE, 1001, 1001, NULL, 0, &p), 0);
}
END_TEST

START_TEST(authorize_revoke_needs_security_group)
{
    control_policy_t p = crafted_policy();
    const gid_t op[] = {2001}, sec[] = {2002}, both[] = {2001, 2002};

    ck_assert_int_eq(control_authorize(CONTROL_ROLE_SECURITY, 1001, 1001, sec, 1, &p), 1);
    ck_assert_int_eq(control_authorize(CONTROL_ROLE_SECURITY, 1001, 1001, both, 2, &p), 1);
    ck_assert_int_eq(control_authorize(CONTROL_ROLE_SECURITY, 1001, 1001, op, 1, &p), 0);
    ck_assert_int_eq(control_authorize(CONTROL_ROLE_SECURITY, 1001, 2001, NULL, 0, &p), 0);
}
END_TEST

START_TEST(authorize_unknown_command_only_for_root_and_daemon_user)
{
    control_policy_t p = crafted_policy();
    const gid_t both[] = {2001, 2002};

    ck_assert_int_eq(control_authorize(CONTROL_ROLE_DAEMON, 1001, 2001, both, 2, &p), 0);
    ck_assert_int_eq(control_authorize(CONTROL_ROLE_DAEMON, 998, 998, NULL, 0, &p), 1);
}
END_TEST

START_TEST(authorize_missing_group_matches_nobody)
{
    control_policy_t p = crafted_policy();
    const gid_t zero[] = {0};

    /* a group that does not exist has no gid: gid 0 in the struct must not match gid 0 */
    p.operator_exists = 0;
    p.operator_gid = 0;
    ck_assert_int_eq(control_authorize(CONTROL_ROLE_OPERATE, 1001, 0, zero, 1, &p), 0);
    ck_assert_int_eq(control_authorize(CONTROL_ROLE_READ, 1001, 0, zero, 1, &p), 0);
    /* the other role is unaffected */
    ck_assert_int_eq(control_authorize(CONTROL_ROLE_READ, 1001, 2002, NULL, 0, &p), 1);
    /* a count without a list is no list */
    ck_assert_int_eq(control_authorize(CONTROL_ROLE_SECURITY, 1001, 1001, NULL, 5, &p), 0);
}
END_TEST

START_TEST(command_roles)
{
    ck_assert_int_eq(control_command_role("status"), CONTROL_ROLE_READ);
    ck_assert_int_eq(control_command_role("pause"), CONTROL_ROLE_OPERATE);
    ck_assert_int_eq(control_command_role("resume"), CONTROL_ROLE_OPERATE);
    ck_assert_int_eq(control_command_role("revoke"), CONTROL_ROLE_SECURITY);
    /* closed by default: case matters, and anything unknown is the daemon's */
    ck_assert_int_eq(control_command_role("Status"), CONTROL_ROLE_DAEMON);
    ck_assert_int_eq(control_command_role("shutdown"), CONTROL_ROLE_DAEMON);
    ck_assert_int_eq(control_command_role(""), CONTROL_ROLE_DAEMON);
    ck_assert_int_eq(control_command_role(NULL), CONTROL_ROLE_DAEMON);
}
END_TEST

START_TEST(denial_messages_name_the_group_and_the_caller)
{
    control_policy_t p = crafted_policy();
    control_peer_t alice = {.pid = 4242, .uid = 1001, .gid = 1001, .user = "alice"};
    control_peer_t anon = {.pid = 7, .uid = 1002, .gid = 1002};
    char msg[512];

    control_denial_message(CONTROL_ROLE_SECURITY, "revoke", &alice, &p, msg, sizeof msg);
    ck_assert_str_eq(msg, "permission denied: revoke needs group linecert-security; "
                          "you are uid 1001 (alice)");
    control_denial_message(CONTROL_ROLE_READ, "status", &alice, &p, msg, sizeof msg);
    ck_assert_str_eq(msg, "permission denied: status needs group linecert-operators or "
                          "linecert-security; you are uid 1001 (alice)");
    control_denial_message(CONTROL_ROLE_OPERATE, "pause", &anon, &p, msg, sizeof msg);
    ck_assert_str_eq(msg,
                     "permission denied: pause needs group linecert-operators; you are uid 1002");
    control_denial_message(CONTROL_ROLE_DAEMON, "shut\001down", &anon, &p, msg, sizeof msg);
    ck_assert_str_eq(msg, "permission denied: \"shut?down\" is not a command for operators or "
                          "security staff; only root and linecert may send it; you are uid 1002");
    p.operator_exists = 0;
    control_denial_message(CONTROL_ROLE_OPERATE, "resume", &alice, &p, msg, sizeof msg);
    ck_assert_str_eq(msg, "permission denied: resume needs group linecert-operators, which does "
                          "not exist on this system (only root and linecert may use it); you are "
                          "uid 1001 (alice)");
    /* a short buffer is cut, never overrun */
    control_denial_message(CONTROL_ROLE_SECURITY, "revoke", &alice, &p, msg, 10);
    ck_assert_str_eq(msg, "permissio");
}
END_TEST

START_TEST(policy_init_looks_groups_up_and_says_which_are_missing)
{
    control_policy_t p;
    char notice[300], longname[80];

    ck_assert_int_eq(
        control_policy_init(&p, "root", "linecert-test-no-such-group", notice, sizeof notice),
        LC_OK);
    ck_assert_uint_eq(p.daemon_uid, geteuid());
    ck_assert_str_eq(p.operator_group, "root");
    ck_assert_int_eq(p.operator_exists, 1);
    ck_assert_uint_eq(p.operator_gid, 0);
    ck_assert_int_eq(p.security_exists, 0);
    ck_assert_msg(strstr(notice, "group linecert-test-no-such-group does not exist") != NULL &&
                      strstr(notice, "the security role") != NULL,
                  "%s", notice);
    /* NULL and "" mean the defaults */
    ck_assert_int_eq(control_policy_init(&p, NULL, "", notice, sizeof notice), LC_OK);
    ck_assert_str_eq(p.operator_group, CONTROL_DEFAULT_OPERATOR_GROUP);
    ck_assert_str_eq(p.security_group, CONTROL_DEFAULT_SECURITY_GROUP);
    ck_assert_int_eq(p.operator_exists, getgrnam(CONTROL_DEFAULT_OPERATOR_GROUP) != NULL);
    memset(longname, 'g', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    ck_assert_int_eq(control_policy_init(&p, longname, NULL, notice, sizeof notice), LC_ERR_CONFIG);
}
END_TEST

/* ---- who may do what: over the real socket ---- */

/*
 * The role groups here are two that every Debian system has: users (100)
 * for operators and staff (50) for security.  Nobody (65534) is the
 * unprivileged caller; the children that act as it are forked only when
 * the suite runs as root.
 */
#define OP_GROUP  "users"
#define SEC_GROUP "staff"
#define NOBODY    65534

static audit_t *store;
static int denials;

/* The daemon's denial hook as docs/control.md asks for it: one audit row per refusal. */
static void test_denied(void *user, const char *cmd, const char *arg, const control_peer_t *peer,
                        const char *message)
{
    audit_entry_t e;
    char detail[1600], err[256];

    (void)user;
    memset(&e, 0, sizeof e);
    snprintf(detail, sizeof detail, "refused \"%.40s%s%.80s\": %s; pid=%d", cmd, *arg ? " " : "",
             arg, message, (int)peer->pid);
    e.row.actor = peer->actor;
    e.row.line = "";
    e.row.kind = "control";
    e.row.reason = "permission-denied";
    e.row.detail = detail;
    if (audit_append(store, &e, 1, err, sizeof err) != LC_OK)
        fprintf(stderr, "test_denied: %s\n", err);
    pthread_mutex_lock(&seen.mu);
    denials++;
    pthread_mutex_unlock(&seen.mu);
}

static void setup_roles(void)
{
    control_opts_t opts = {test_handler, test_denied, NULL, {0}};
    char err[256] = "", notice[300], db[700];

    setup_dir();
    denials = 0;
    ck_assert_msg(getgrnam(OP_GROUP) != NULL && getgrnam(SEC_GROUP) != NULL,
                  "this suite needs groups " OP_GROUP " and " SEC_GROUP);
    /* the children act as nobody: let them reach the socket in the 0700 temp dir */
    ck_assert_int_eq(chmod(dir, 0711), 0);
    snprintf(db, sizeof db, "%s/audit.db", dir);
    ck_assert_int_eq(audit_open(db, AUDIT_READWRITE, &store, err, sizeof err), LC_OK);
    ck_assert_int_eq(control_policy_init(&opts.policy, OP_GROUP, SEC_GROUP, notice, sizeof notice),
                     LC_OK);
    ck_assert_str_eq(notice, "");
    ck_assert_msg(control_open_opts(sock, &opts, &ctl, err, sizeof err) == LC_OK, "%s", err);
    ck_assert_str_eq(control_notice(ctl), "");
}

static void teardown_roles(void)
{
    control_free(ctl);
    ctl = NULL;
    audit_free(store);
    store = NULL;
    tu_rmtree(dir);
    free(dir);
}

/* The socket's access ACL as (tag, id, perm) triples; returns how many. */
static int read_acl(const char *path, unsigned out[][3], int max)
{
    unsigned char buf[512];
    ssize_t len = lgetxattr(path, "system.posix_acl_access", buf, sizeof buf);
    int n = 0;

    ck_assert_msg(len >= (ssize_t)sizeof(struct posix_acl_xattr_header), "getxattr: %s",
                  strerror(errno));
    for (size_t off = sizeof(struct posix_acl_xattr_header);
         off + sizeof(struct posix_acl_xattr_entry) <= (size_t)len && n < max;
         off += sizeof(struct posix_acl_xattr_entry), n++) {
        struct posix_acl_xattr_entry e;
        memcpy(&e, buf + off, sizeof e);
        out[n][0] = le16toh(e.e_tag);
        out[n][1] = le32toh(e.e_id);
        out[n][2] = le16toh(e.e_perm);
    }
    return n;
}

/* The perm of the entry (tag, id), or -1 if there is none. */
static int acl_perm(unsigned acl[][3], int n, unsigned tag, unsigned id)
{
    for (int i = 0; i < n; i++)
        if (acl[i][0] == tag && (tag != ACL_GROUP || acl[i][1] == id))
            return (int)acl[i][2];
    return -1;
}

START_TEST(socket_acl_lets_the_role_groups_connect)
{
    unsigned acl[8][3];
    int n = read_acl(sock, acl, 8);
    struct stat st;

    ck_assert_int_eq(acl_perm(acl, n, ACL_GROUP, getgrnam(OP_GROUP)->gr_gid), 6);
    ck_assert_int_eq(acl_perm(acl, n, ACL_GROUP, getgrnam(SEC_GROUP)->gr_gid), 6);
    ck_assert_int_eq(acl_perm(acl, n, ACL_USER_OBJ, 0), 6);
    ck_assert_int_eq(acl_perm(acl, n, ACL_MASK, 0), 6);
    ck_assert_int_eq(acl_perm(acl, n, ACL_OTHER, 0), 0);
    ck_assert_int_eq(lstat(sock, &st), 0);
    ck_assert_uint_eq(st.st_mode & 07777, 0660);
}
END_TEST

START_TEST(set_policy_replaces_groups_and_acl)
{
    control_policy_t p;
    unsigned acl[8][3];
    char notice[300], err[256] = "";
    json_object *r = NULL;
    int n;

    ck_assert_int_eq(
        control_policy_init(&p, OP_GROUP, "linecert-test-no-such-group", notice, sizeof notice),
        LC_OK);
    ck_assert_msg(control_set_policy(ctl, &p, err, sizeof err) == LC_OK, "%s", err);
    n = read_acl(sock, acl, 8);
    ck_assert_int_eq(acl_perm(acl, n, ACL_GROUP, getgrnam(OP_GROUP)->gr_gid), 6);
    ck_assert_int_eq(acl_perm(acl, n, ACL_GROUP, getgrnam(SEC_GROUP)->gr_gid), -1);
    ck_assert_msg(strstr(control_notice(ctl), "linecert-test-no-such-group does not exist") != NULL,
                  "%s", control_notice(ctl));
    /* the server goes on answering */
    ck_assert_int_eq(control_request(sock, "status", "", 3000, &r, NULL, 0), LC_OK);
    ck_assert(json_ok(r));
    json_object_put(r);
}
END_TEST

/* Collects the audit rows of the test store. */
struct rows {
    int n;
    char actor[4][100], kind[4][32], reason[4][32], detail[4][1600];
};

static int collect_row(void *ctx, const audit_row_t *row, char *problem, size_t plen)
{
    struct rows *rs = ctx;

    (void)problem;
    (void)plen;
    if (rs->n < 4) {
        snprintf(rs->actor[rs->n], sizeof rs->actor[0], "%s", row->actor);
        snprintf(rs->kind[rs->n], sizeof rs->kind[0], "%s", row->kind);
        snprintf(rs->reason[rs->n], sizeof rs->reason[0], "%s", row->reason ? row->reason : "");
        snprintf(rs->detail[rs->n], sizeof rs->detail[0], "%s", row->detail ? row->detail : "");
    }
    rs->n++;
    return 0;
}

static void audit_rows(struct rows *rs)
{
    audit_verify_result_t res;
    char err[256] = "";

    memset(rs, 0, sizeof *rs);
    ck_assert_msg(audit_verify_rows(store, &res, collect_row, rs, err, sizeof err) == LC_OK, "%s",
                  err);
}

/*
 * Forks a child that drops to uid/gid nobody with the given supplementary
 * groups (none if n is 0) and sends each request on its own connection.
 * Each outcome comes back as one line: "OK <reply JSON>" or "ERR <message>".
 * Returns the child's pid; the lines go to out.
 */
static pid_t as_nobody(const gid_t *groups, size_t n, const char *const reqs[][2], size_t nreq,
                       char *out, size_t outlen)
{
    int pfd[2], status = 0;
    size_t used = 0;
    ssize_t r;
    pid_t pid;

    ck_assert_int_eq(pipe(pfd), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        FILE *f = fdopen(pfd[1], "w");
        close(pfd[0]);
        if (f == NULL || setgroups(n, groups) != 0 || setgid(NOBODY) != 0 || setuid(NOBODY) != 0)
            _exit(3);
        for (size_t i = 0; i < nreq; i++) {
            json_object *reply = NULL;
            char err[512] = "";
            if (control_request(sock, reqs[i][0], reqs[i][1], 3000, &reply, err, sizeof err) ==
                LC_OK)
                fprintf(f, "OK %s\n",
                        json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PLAIN |
                                                                  JSON_C_TO_STRING_NOSLASHESCAPE));
            else
                fprintf(f, "ERR %s\n", err);
            json_object_put(reply);
        }
        fclose(f);
        _exit(0);
    }
    close(pfd[1]);
    while ((r = read(pfd[0], out + used, outlen - 1 - used)) > 0)
        used += (size_t)r;
    out[used] = '\0';
    close(pfd[0]);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed: %d", status);
    return pid;
}

/* The reply of line i (0-based) of as_nobody()'s output, parsed; NULL if it was an error. */
static json_object *reply_of(const char *out, int i, char *errline, size_t errlen)
{
    const char *l = out;
    const char *nl;

    for (; i > 0 && l != NULL; i--)
        l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL;
    ck_assert_ptr_nonnull(l);
    nl = strchr(l, '\n');
    ck_assert_ptr_nonnull(nl);
    snprintf(errline, errlen, "%.*s", (int)(nl - l), l);
    if (strncmp(l, "OK ", 3) != 0)
        return NULL;
    errline[0] = '\0';
    {
        char buf[4096];
        snprintf(buf, sizeof buf, "%.*s", (int)(nl - l - 3), l + 3);
        return json_tokener_parse(buf);
    }
}

START_TEST(nonmember_cannot_even_connect)
{
    static const char *const reqs[][2] = {{"status", ""}};
    char out[4096], line[600];

    as_nobody(NULL, 0, reqs, 1, out, sizeof out);
    ck_assert_ptr_null(reply_of(out, 0, line, sizeof line));
    ck_assert_msg(strstr(line, "Permission denied") != NULL &&
                      strstr(line, "docs/control.md") != NULL,
                  "%s", line);
    ck_assert_int_eq(seen_calls(), 0);
}
END_TEST

START_TEST(nonmember_is_refused_by_the_peer_check_and_audited)
{
    /* the third carries a terminal escape that must not reach an auditor's screen */
    static const char *const reqs[][2] = {{"status", ""}, {"pause", "1"}, {"resume", "1\033[2J"}};
    char out[4096], line[600], want[200];
    json_object *r;
    struct rows rs;
    pid_t pid;

    /* Open the file wide, as a careless admin might: the peer check must still say no. */
    ck_assert_int_eq(chmod(sock, 0666), 0);
    pid = as_nobody(NULL, 0, reqs, 3, out, sizeof out);
    r = reply_of(out, 0, line, sizeof line);
    ck_assert_msg(r != NULL, "%s", line);
    ck_assert(!json_ok(r));
    ck_assert_str_eq(json_str(r, "error"), "permission denied: status needs group " OP_GROUP
                                           " or " SEC_GROUP "; you are uid 65534 (nobody)");
    ck_assert_str_eq(json_str(r, "reason"), "permission-denied");
    json_object_put(r);
    r = reply_of(out, 1, line, sizeof line);
    ck_assert_str_eq(json_str(r, "error"), "permission denied: pause needs group " OP_GROUP
                                           "; you are uid 65534 (nobody)");
    json_object_put(r);
    /* the daemon's handler never saw either request */
    ck_assert_int_eq(seen_calls(), 0);
    /* every refusal is in the audit log, with who asked */
    audit_rows(&rs);
    ck_assert_int_eq(rs.n, 3);
    ck_assert_str_eq(rs.actor[0], "uid=65534(nobody)");
    ck_assert_str_eq(rs.kind[0], "control");
    ck_assert_str_eq(rs.reason[0], "permission-denied");
    snprintf(want, sizeof want, "; pid=%d", (int)pid);
    ck_assert_msg(strstr(rs.detail[0], "refused \"status\": permission denied") == rs.detail[0] &&
                      strstr(rs.detail[0], want) != NULL,
                  "%s", rs.detail[0]);
    ck_assert_msg(strstr(rs.detail[1], "refused \"pause 1\"") != NULL, "%s", rs.detail[1]);
    ck_assert_msg(strstr(rs.detail[2], "refused \"resume 1?[2J\"") != NULL, "%s", rs.detail[2]);
}
END_TEST

START_TEST(operator_may_pause_but_not_revoke)
{
    static const char *const reqs[][2] = {{"status", ""}, {"pause", "1"}, {"revoke", "0A1B"}};
    const gid_t groups[] = {getgrnam(OP_GROUP)->gr_gid};
    char out[4096], line[600];
    json_object *r;
    struct rows rs;

    as_nobody(groups, 1, reqs, 3, out, sizeof out);
    r = reply_of(out, 0, line, sizeof line);
    ck_assert_msg(json_ok(r), "%s", out);
    json_object_put(r);
    r = reply_of(out, 1, line, sizeof line);
    ck_assert_msg(json_ok(r), "%s", out);
    ck_assert_str_eq(json_str(r, "state"), "paused");
    json_object_put(r);
    r = reply_of(out, 2, line, sizeof line);
    ck_assert_str_eq(json_str(r, "error"), "permission denied: revoke needs group " SEC_GROUP
                                           "; you are uid 65534 (nobody)");
    json_object_put(r);
    /* the handler got status and pause, with nobody's identity to audit the pause by */
    ck_assert_int_eq(seen_calls(), 2);
    ck_assert_str_eq(seen.cmd, "pause");
    ck_assert_str_eq(seen.peer.actor, "uid=65534(nobody)");
    ck_assert_uint_eq(seen.peer.uid, NOBODY);
    audit_rows(&rs);
    ck_assert_int_eq(rs.n, 1);
    ck_assert_msg(strstr(rs.detail[0], "refused \"revoke 0A1B\"") != NULL, "%s", rs.detail[0]);
}
END_TEST

START_TEST(security_member_may_revoke_but_not_pause)
{
    static const char *const reqs[][2] = {{"status", ""}, {"revoke", "0A1B"}, {"resume", "1"}};
    const gid_t groups[] = {getgrnam(SEC_GROUP)->gr_gid};
    char out[4096], line[600];
    json_object *r;

    as_nobody(groups, 1, reqs, 3, out, sizeof out);
    r = reply_of(out, 0, line, sizeof line);
    ck_assert_msg(json_ok(r), "%s", out);
    json_object_put(r);
    /* revoke reached the handler (the test handler does not know it: that is its answer) */
    r = reply_of(out, 1, line, sizeof line);
    ck_assert_str_eq(json_str(r, "error"), "unknown command");
    json_object_put(r);
    r = reply_of(out, 2, line, sizeof line);
    ck_assert_str_eq(json_str(r, "error"), "permission denied: resume needs group " OP_GROUP
                                           "; you are uid 65534 (nobody)");
    json_object_put(r);
    ck_assert_int_eq(seen_calls(), 2);
    ck_assert_str_eq(seen.cmd, "revoke");
    ck_assert_str_eq(seen.arg, "0A1B");
    pthread_mutex_lock(&seen.mu);
    ck_assert_int_eq(denials, 1);
    pthread_mutex_unlock(&seen.mu);
}
END_TEST

/* ---- linecert status | pause | resume ---- */

static char ini[700];

static void put(const char *name, const char *text, mode_t mode)
{
    char path[700];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}

/* A configuration that config_load() accepts, its control socket in the temp dir. */
static void setup_cli(void)
{
    char text[2048];

    setup_server();
    put("pin", "1234\n", 0600);
    put("chain.pem", "-----BEGIN CERTIFICATE-----\n", 0644);
    put("module.so", "", 0644);
    /* the stand-in module is not a real one: the allow file lets config_load() accept it */
    snprintf(text, sizeof text, "%s/module.so\n", dir);
    put("pkcs11.allow", text, 0644);
    snprintf(text, sizeof text, "%s/pkcs11.allow", dir);
    setenv("LINECERT_PKCS11_ALLOW_FILE", text, 1);
    snprintf(text, sizeof text,
             "[station]\naudit_db = audit.db\npkcs11_module = %s/module.so\npin_file = pin\n"
             "control_socket = ctl.sock\n\n"
             "[line.1]\nname = Line 1\nca_key = pkcs11:token=lines;object=line-1;type=private\n"
             "chain = chain.pem\n\n"
             "[line.2]\nname = Line 2\nca_key = pkcs11:token=lines;object=line-2;type=private\n"
             "chain = chain.pem\n",
             dir);
    put("station.ini", text, 0644);
    snprintf(ini, sizeof ini, "%s/station.ini", dir);
}

/* Runs `linecert ARGS --config INI`; returns the exit status. */
static int run_cli(const char *args, char **out, char **err)
{
    char *prog = tu_build_path("linecert"), cmd[2048];
    int rc;

    snprintf(cmd, sizeof cmd, "'%s' %s --config '%s'", prog, args, ini);
    free(prog);
    rc = tu_run(cmd, NULL, 0, out, err);
    return rc;
}

START_TEST(cli_status_shows_table)
{
    char *out = NULL, *err = NULL;
    int rc = run_cli("status", &out, &err);

    ck_assert_msg(rc == 0, "exit %d: %s", rc, err);
    ck_assert_msg(strstr(out, "linecertd up 2h03m  signer: running (pid 4242), HSM ok, 1,234 "
                              "signatures  audit: ok, 1.2 MB, 48.0 GB free, 1,240 rows\n") != NULL,
                  "%s", out);
    ck_assert_msg(strstr(out, "LINE  NAME         STATE    PLC                 ISSUED REFUSED "
                              "FAULTS  /MIN(1m) /MIN(1h)  LAST\n") != NULL,
                  "%s", out);
    ck_assert_msg(strstr(out, "1     Line 1       ISSUING  127.0.0.1:1502 up      412       1      "
                              "0        11      9.5  SN1-000412 issued 2s ago\n") != NULL,
                  "%s", out);
    ck_assert_msg(strstr(out,
                         "2     Line 2       FAULT    127.0.0.1:1502 down    233       0      "
                         "3         0      4.1  SN2-000233 fault 41s ago\n"
                         "      -> PLC 127.0.0.1:1502 not answering: Connection refused\n") != NULL,
                  "%s", out);
    /* said once, although both reason_text and the plc object carry it */
    ck_assert_ptr_null(strstr(strstr(out, "-> PLC") + 1, "-> PLC"));
    free(out);
    free(err);
}
END_TEST

START_TEST(cli_status_tolerates_missing_fields)
{
    char *out = NULL, *err = NULL;
    int rc;

    seen.status = "{\"ok\": true, \"lines\": [{\"id\": \"3\", \"state\": \"paused\"}]}";
    rc = run_cli("status", &out, &err);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, err);
    ck_assert_msg(strstr(out, "3 ") != NULL && strstr(out, "PAUSED") != NULL, "%s", out);
    free(out);
    free(err);
}
END_TEST

START_TEST(cli_status_json_is_the_daemons_object)
{
    char *out = NULL, *err = NULL;
    json_object *o, *lines;
    int rc = run_cli("status --json", &out, &err);

    ck_assert_msg(rc == 0, "exit %d: %s", rc, err);
    o = json_tokener_parse(out);
    ck_assert_msg(o != NULL, "not JSON: %s", out);
    ck_assert(json_object_object_get_ex(o, "lines", &lines));
    ck_assert_uint_eq(json_object_array_length(lines), 2);
    ck_assert_str_eq(json_str(o, "version"), "0.1.0");
    ck_assert_ptr_nonnull(strstr(out, "\"/x/audit.db\""));
    json_object_put(o);
    free(out);
    free(err);
}
END_TEST

START_TEST(cli_status_daemon_not_running_exits_6)
{
    char *out = NULL, *err = NULL;
    int rc;

    control_free(ctl);
    ctl = NULL;
    rc = run_cli("status", &out, &err);
    ck_assert_int_eq(rc, 6);
    ck_assert_msg(strstr(err, "linecert: linecertd is not running") != NULL, "%s", err);
    free(out);
    free(err);
}
END_TEST

START_TEST(cli_pause_reports_line_paused)
{
    char *out = NULL, *err = NULL;
    int rc = run_cli("pause --line 1", &out, &err);

    ck_assert_msg(rc == 0, "exit %d: %s", rc, err);
    ck_assert_str_eq(out, "line 1 paused\n");
    ck_assert_str_eq(seen.cmd, "pause");
    ck_assert_str_eq(seen.arg, "1");
    free(out);
    free(err);
}
END_TEST

START_TEST(cli_resume_reports_line_resumed)
{
    char *out = NULL, *err = NULL;
    int rc = run_cli("resume --line 1", &out, &err);

    ck_assert_msg(rc == 0, "exit %d: %s", rc, err);
    ck_assert_str_eq(out, "line 1 resumed\n");
    ck_assert_str_eq(seen.cmd, "resume");
    free(out);
    free(err);
}
END_TEST

START_TEST(cli_pause_refused_by_daemon_exits_2)
{
    char *out = NULL, *err = NULL;
    int rc = run_cli("pause --line 2", &out, &err);

    ck_assert_int_eq(rc, 2);
    ck_assert_str_eq(err, "linecert: line 2 is busy; try again\n");
    free(out);
    free(err);
}
END_TEST

START_TEST(cli_pause_unknown_line_exits_2_without_asking)
{
    char *out = NULL, *err = NULL;
    int rc = run_cli("pause --line 9", &out, &err);

    ck_assert_int_eq(rc, 2);
    ck_assert_msg(strstr(err, "no [line.9] section") != NULL, "%s", err);
    ck_assert_int_eq(seen_calls(), 0);
    free(out);
    free(err);
}
END_TEST

static Suite *control_suite(void)
{
    Suite *s = suite_create("control");
    TCase *srv = tcase_create("server");
    TCase *files = tcase_create("files");
    TCase *cli = tcase_create("cli");
    TCase *authz = tcase_create("authorize");
    TCase *roles = tcase_create("roles");

    tcase_add_checked_fixture(srv, setup_server, teardown);
    tcase_set_timeout(srv, 60);
    tcase_add_test(srv, status_round_trip);
    tcase_add_test(srv, pause_passes_its_argument);
    tcase_add_test(srv, request_split_into_command_and_trimmed_argument);
    tcase_add_test(srv, peer_credentials_are_the_callers);
    tcase_add_test(srv, several_requests_on_one_connection);
    tcase_add_test(srv, twenty_concurrent_clients);
    tcase_add_test(srv, request_longer_than_1024_bytes_is_rejected);
    tcase_add_test(srv, request_of_exactly_1024_bytes_is_accepted);
    tcase_add_test(srv, empty_request_gets_an_error_reply);
    tcase_add_test(srv, handler_without_reply_gives_an_error_reply);
    tcase_add_test(srv, last_request_without_newline_is_answered_at_eof);
    tcase_add_test(srv, socket_file_is_mode_0660);
    tcase_add_test(srv, second_open_on_live_path_fails);
    tcase_add_test(srv, request_with_line_break_is_refused_unsent);
    tcase_add_test(srv, slow_reply_times_out);
    tcase_add_test(srv, free_removes_socket_file);
    tcase_add_test(srv, silent_client_does_not_block_others);
    tcase_add_test(srv, client_that_never_reads_is_dropped);
    tcase_add_test(srv, full_table_refuses_then_evicts_idle_client);
    suite_add_tcase(s, srv);

    tcase_add_test(authz, authorize_root_and_daemon_user_may_do_everything);
    tcase_add_test(authz, authorize_status_needs_operator_or_security_group);
    tcase_add_test(authz, authorize_pause_needs_operator_group);
    tcase_add_test(authz, authorize_revoke_needs_security_group);
    tcase_add_test(authz, authorize_unknown_command_only_for_root_and_daemon_user);
    tcase_add_test(authz, authorize_missing_group_matches_nobody);
    tcase_add_test(authz, command_roles);
    tcase_add_test(authz, denial_messages_name_the_group_and_the_caller);
    tcase_add_test(authz, policy_init_looks_groups_up_and_says_which_are_missing);
    suite_add_tcase(s, authz);

    tcase_add_checked_fixture(roles, setup_roles, teardown_roles);
    tcase_set_timeout(roles, 60);
    tcase_add_test(roles, socket_acl_lets_the_role_groups_connect);
    tcase_add_test(roles, set_policy_replaces_groups_and_acl);
    /* Acting as another user needs root; as anyone else these four cannot run. */
    if (geteuid() == 0) {
        tcase_add_test(roles, nonmember_cannot_even_connect);
        tcase_add_test(roles, nonmember_is_refused_by_the_peer_check_and_audited);
        tcase_add_test(roles, operator_may_pause_but_not_revoke);
        tcase_add_test(roles, security_member_may_revoke_but_not_pause);
    } else {
        fprintf(stderr, "test_control: not root: the tests that act as uid 65534 are skipped\n");
    }
    suite_add_tcase(s, roles);

    tcase_add_checked_fixture(files, setup_dir, teardown);
    tcase_add_test(files, stale_socket_file_is_replaced);
    tcase_add_test(files, file_that_is_not_a_socket_is_not_replaced);
    tcase_add_test(files, request_to_missing_socket_says_not_running);
    suite_add_tcase(s, files);

    tcase_add_checked_fixture(cli, setup_cli, teardown);
    tcase_set_timeout(cli, 60);
    tcase_add_test(cli, cli_status_shows_table);
    tcase_add_test(cli, cli_status_tolerates_missing_fields);
    tcase_add_test(cli, cli_status_json_is_the_daemons_object);
    tcase_add_test(cli, cli_status_daemon_not_running_exits_6);
    tcase_add_test(cli, cli_pause_reports_line_paused);
    tcase_add_test(cli, cli_resume_reports_line_resumed);
    tcase_add_test(cli, cli_pause_refused_by_daemon_exits_2);
    tcase_add_test(cli, cli_pause_unknown_line_exits_2_without_asking);
    suite_add_tcase(s, cli);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(control_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
