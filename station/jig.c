/*
 * jig.c — jig adapters (see jig.h).  Backends are a const table of function
 * pointers (as libmodbus's modbus_backend_t); today there is the exec one.
 */
#include "jig.h"

#include "lcerr.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_ARGS 16

struct jig_backend {
    const char *scheme;
    int (*get_csr)(jig_t *j, const char *serial, unsigned char **csr, size_t *len, char *err,
                   size_t errlen);
    int (*install)(jig_t *j, const char *serial, const char *chain, size_t len, char *err,
                   size_t errlen);
};

extern char **environ;

struct jig {
    const struct jig_backend *be;
    char *spec;               /* owned copy; argv points into it */
    char *argv[MAX_ARGS + 3]; /* program, args, verb, serial, NULL */
    int argc;
    char line[64];
    int timeout_ms;
    /*
     * The program's environment: the daemon's own, minus any LINECERT_LINE and
     * LINECERT_SERIAL, then those two (envp[envc], envp[envc + 1]) and NULL.
     * Built once, in jig_new, so a run allocates nothing between spawning and exec.
     */
    char **envp;
    size_t envc;
    char *env_line; /* "LINECERT_LINE=..." */
};

/* Copies the daemon's environment without the two variables a run sets itself. */
static int build_env(jig_t *j)
{
    size_t n = 0;

    while (environ != NULL && environ[n] != NULL)
        n++;
    j->envp = calloc(n + 3, sizeof *j->envp);
    if (j->envp == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (strncmp(environ[i], "LINECERT_LINE=", 14) == 0 ||
            strncmp(environ[i], "LINECERT_SERIAL=", 16) == 0)
            continue;
        if ((j->envp[j->envc] = strdup(environ[i])) == NULL)
            return -1;
        j->envc++;
    }
    if (asprintf(&j->env_line, "LINECERT_LINE=%s", j->line) < 0) {
        j->env_line = NULL;
        return -1;
    }
    return 0;
}

/*
 * Starts the program with posix_spawn, never fork: the daemon is
 * multithreaded, and a forked child of a multithreaded process may only make
 * async-signal-safe calls before exec (a setenv there can deadlock on a lock
 * another thread held at the fork, and the jig then "times out").  glibc's
 * posix_spawn also shares the address space until exec (CLONE_VFORK), so
 * starting the jig does not copy the daemon's page tables twice per device.
 */
static int spawn_jig(jig_t *j, const char *serial, int fd_in, int fd_out, int fd_err, pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, dfl;
    char *env_serial = NULL;
    int rc;

    if (asprintf(&env_serial, "LINECERT_SERIAL=%s", serial) < 0)
        return ENOMEM;
    j->envp[j->envc] = j->env_line;
    j->envp[j->envc + 1] = env_serial;
    j->envp[j->envc + 2] = NULL;
    sigemptyset(&none);
    sigfillset(&dfl); /* what the daemon ignores (SIGPIPE) the program gets at its default */
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    posix_spawn_file_actions_adddup2(&fa, fd_in, 0);
    posix_spawn_file_actions_adddup2(&fa, fd_out, 1);
    posix_spawn_file_actions_adddup2(&fa, fd_err, 2);
    /* Own process group, so a timeout kills everything the jig program started. */
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setsigmask(&at, &none); /* daemon threads block signals; the jig must not */
    posix_spawnattr_setsigdefault(&at, &dfl);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF);
    rc = posix_spawn(pid, j->argv[0], &fa, &at, j->argv, j->envp);
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    j->envp[j->envc + 1] = NULL;
    free(env_serial);
    return rc;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/*
 * Runs the program with verb and serial, feeding in (may be NULL) on stdin,
 * collecting at most JIG_MAX_OUTPUT bytes of stdout into *out.
 */
static int run(jig_t *j, const char *verb, const char *serial, const char *in, size_t in_len,
               unsigned char **out, size_t *out_len, char *err, size_t errlen)
{
    int pin[2] = {-1, -1}, pout[2] = {-1, -1}, perr[2] = {-1, -1}, status = 0, ret;
    unsigned char *buf = NULL;
    size_t used = 0, written = 0, elen = 0;
    char ebuf[512];
    double deadline = now_ms() + j->timeout_ms;
    int timed_out = 0, too_big = 0;
    pid_t pid;

    if (out != NULL) {
        *out = NULL;
        *out_len = 0;
        buf = malloc(JIG_MAX_OUTPUT + 1);
        if (buf == NULL)
            return lc_seterr(LC_ERR_NOMEM, err, errlen, "out of memory");
    }
    if (pipe2(pin, O_CLOEXEC) != 0 || pipe2(pout, O_CLOEXEC) != 0 || pipe2(perr, O_CLOEXEC) != 0) {
        ret = lc_seterr(LC_ERR_IO, err, errlen, "pipe: %s", strerror(errno));
        goto out;
    }
    j->argv[j->argc] = (char *)(uintptr_t)verb;
    j->argv[j->argc + 1] = (char *)(uintptr_t)serial;
    j->argv[j->argc + 2] = NULL;
    if ((ret = spawn_jig(j, serial, pin[0], pout[1], perr[1], &pid)) != 0) {
        ret = lc_seterr(LC_ERR_IO, err, errlen, "cannot run %s: %s", j->argv[0], strerror(ret));
        goto out;
    }
    close(pin[0]);
    close(pout[1]);
    close(perr[1]);
    pin[0] = pout[1] = perr[1] = -1;
    fcntl(pin[1], F_SETFL, O_NONBLOCK);
    if (in == NULL) {
        close(pin[1]);
        pin[1] = -1;
    }
    while (pout[0] >= 0 || perr[0] >= 0) {
        struct pollfd pf[3];
        int n = 0, left = (int)(deadline - now_ms());
        if (left <= 0) {
            timed_out = 1;
            break;
        }
        pf[n++] = (struct pollfd){pout[0], POLLIN, 0};
        pf[n++] = (struct pollfd){perr[0], POLLIN, 0};
        if (pin[1] >= 0)
            pf[n++] = (struct pollfd){pin[1], POLLOUT, 0};
        if (poll(pf, (nfds_t)n, left) < 0 && errno != EINTR)
            break;
        if (pin[1] >= 0 && (pf[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t w = write(pin[1], in + written, in_len - written);
            if (w > 0)
                written += (size_t)w;
            if ((w < 0 && errno != EAGAIN) || written == in_len) {
                close(pin[1]);
                pin[1] = -1;
            }
        }
        if (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            unsigned char tmp[8192];
            ssize_t r = read(pout[0], tmp, sizeof tmp);
            if (r <= 0) {
                close(pout[0]);
                pout[0] = -1;
            } else if (buf != NULL && used + (size_t)r > JIG_MAX_OUTPUT) {
                too_big = 1;
                break;
            } else if (buf != NULL) {
                memcpy(buf + used, tmp, (size_t)r);
                used += (size_t)r;
            }
        }
        if (pf[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            char tmp[512];
            ssize_t r = read(perr[0], tmp, sizeof tmp);
            if (r <= 0) {
                close(perr[0]);
                perr[0] = -1;
            } else { /* keep the last line or so: that is where programs say what failed */
                for (ssize_t i = 0; i < r; i++) {
                    if (elen == sizeof ebuf - 1) {
                        memmove(ebuf, ebuf + 256, elen - 256);
                        elen -= 256;
                    }
                    ebuf[elen++] = tmp[i];
                }
            }
        }
    }
    if (timed_out || too_big)
        kill(-pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    ebuf[elen] = '\0';
    while (elen > 0 && (ebuf[elen - 1] == '\n' || ebuf[elen - 1] == '\r'))
        ebuf[--elen] = '\0';
    {
        char *nl = strrchr(ebuf, '\n');
        const char *last = nl ? nl + 1 : ebuf;
        if (timed_out)
            ret = lc_seterr(LC_ERR_TIMEOUT, err, errlen,
                            "jig program did not answer %s within %d ms", verb, j->timeout_ms);
        else if (too_big)
            ret = lc_seterr(LC_ERR_PROTOCOL, err, errlen, "jig %s output larger than %d bytes",
                            verb, JIG_MAX_OUTPUT);
        else if (!WIFEXITED(status))
            ret = lc_seterr(LC_ERR_IO, err, errlen, "jig program killed by signal %d during %s",
                            WIFSIGNALED(status) ? WTERMSIG(status) : 0, verb);
        else if (WEXITSTATUS(status) != 0)
            ret = lc_seterr(LC_ERR_IO, err, errlen, "jig %s exited %d%s%s", verb,
                            WEXITSTATUS(status), *last ? ": " : "", last);
        else if (buf != NULL && used == 0)
            ret = lc_seterr(LC_ERR_PROTOCOL, err, errlen, "jig %s printed nothing", verb);
        else
            ret = LC_OK;
    }
    if (ret == LC_OK && buf != NULL) {
        buf[used] = 0;
        *out = buf;
        *out_len = used;
        buf = NULL;
    }
out:
    for (int i = 0; i < 2; i++) {
        if (pin[i] >= 0)
            close(pin[i]);
        if (pout[i] >= 0)
            close(pout[i]);
        if (perr[i] >= 0)
            close(perr[i]);
    }
    free(buf);
    return ret;
}

static int exec_get_csr(jig_t *j, const char *serial, unsigned char **csr, size_t *len, char *err,
                        size_t errlen)
{
    return run(j, "csr", serial, NULL, 0, csr, len, err, errlen);
}

static int exec_install(jig_t *j, const char *serial, const char *chain, size_t len, char *err,
                        size_t errlen)
{
    return run(j, "install", serial, chain, len, NULL, NULL, err, errlen);
}

static const struct jig_backend BACKENDS[] = {
    {"exec:", exec_get_csr, exec_install},
};

int jig_new(const char *spec, const char *line_id, int timeout_ms, jig_t **out, char *err,
            size_t errlen)
{
    const struct jig_backend *be = NULL;
    jig_t *j;
    char *save = NULL, *tok;

    *out = NULL;
    for (size_t i = 0; i < sizeof BACKENDS / sizeof BACKENDS[0]; i++)
        if (strncmp(spec, BACKENDS[i].scheme, strlen(BACKENDS[i].scheme)) == 0)
            be = &BACKENDS[i];
    if (be == NULL)
        return lc_seterr(LC_ERR_CONFIG, err, errlen, "jig %s: unsupported (use exec:PROGRAM)",
                         spec);
    j = calloc(1, sizeof *j);
    if (j == NULL || (j->spec = strdup(spec + strlen(be->scheme))) == NULL) {
        free(j);
        return lc_seterr(LC_ERR_NOMEM, err, errlen, "out of memory");
    }
    j->be = be;
    j->timeout_ms = timeout_ms;
    snprintf(j->line, sizeof j->line, "%s", line_id);
    if (build_env(j) != 0) {
        jig_free(j);
        return lc_seterr(LC_ERR_NOMEM, err, errlen, "out of memory");
    }
    for (tok = strtok_r(j->spec, " \t", &save); tok != NULL; tok = strtok_r(NULL, " \t", &save)) {
        if (j->argc == MAX_ARGS) {
            jig_free(j);
            return lc_seterr(LC_ERR_CONFIG, err, errlen, "jig %s: more than %d arguments", spec,
                             MAX_ARGS);
        }
        j->argv[j->argc++] = tok;
    }
    if (j->argc == 0 || j->argv[0][0] != '/') {
        jig_free(j);
        return lc_seterr(LC_ERR_CONFIG, err, errlen, "jig %s: needs an absolute program path",
                         spec);
    }
    *out = j;
    return LC_OK;
}

void jig_free(jig_t *j)
{
    if (j == NULL)
        return;
    for (size_t i = 0; j->envp != NULL && i < j->envc; i++)
        free(j->envp[i]);
    free(j->envp);
    free(j->env_line);
    free(j->spec);
    free(j);
}

int jig_get_csr(jig_t *j, const char *serial, unsigned char **csr, size_t *len, double *ms,
                char *err, size_t errlen)
{
    double t0 = now_ms();
    int ret = j->be->get_csr(j, serial, csr, len, err, errlen);

    *ms = now_ms() - t0;
    return ret;
}

int jig_install(jig_t *j, const char *serial, const char *chain, size_t len, double *ms, char *err,
                size_t errlen)
{
    double t0 = now_ms();
    int ret = j->be->install(j, serial, chain, len, err, errlen);

    *ms = now_ms() - t0;
    return ret;
}
