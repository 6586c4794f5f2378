/*
 * test_control.c — the control socket: requests and replies, peer
 * credentials, many and misbehaving clients, socket file handling, and the
 * `linecert status|pause|resume` commands against an in-process server.
 */
#include "config.h"
#include "control.h"
#include "lcerr.h"
#include "testutil.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
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
    control_peer_t peer;
    const char *status; /* the reply to "status" */
} seen = {PTHREAD_MUTEX_INITIALIZER, 0, "", "", {0, 0, 0}, NULL};

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

    ck_assert_int_eq(control_request(sock, "status", "", 3000, &r, NULL, 0), LC_OK);
    ck_assert_uint_eq(seen.peer.uid, getuid());
    ck_assert_uint_eq(seen.peer.gid, getgid());
    ck_assert_int_eq(seen.peer.pid, getpid());
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
