/*
 * testutil.c — helpers shared by the Check suites.
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

char *tu_mkdtemp(const char *tag)
{
    const char *tmp = getenv("TMPDIR");
    char *path = NULL;

    if (tmp == NULL || *tmp == '\0')
        tmp = "/tmp";
    if (asprintf(&path, "%s/linecert-%s-XXXXXX", tmp, tag) < 0)
        return NULL;
    if (mkdtemp(path) == NULL) {
        free(path);
        return NULL;
    }
    return path;
}

void tu_rmtree(const char *path)
{
    char *cmd = NULL;

    if (path == NULL || strncmp(path, "/tmp", 4) != 0)
        return;
    if (asprintf(&cmd, "rm -rf '%s'", path) >= 0) {
        if (system(cmd) != 0)
            fprintf(stderr, "warning: could not remove %s\n", path);
    }
    free(cmd);
}

struct sink {
    char *buf;
    size_t len;
    size_t cap;
};

static int sink_read(int fd, struct sink *s)
{
    char tmp[8192];
    ssize_t n = read(fd, tmp, sizeof tmp);

    if (n <= 0)
        return (int)n;
    if (s->len + (size_t)n + 1 > s->cap) {
        size_t cap = (s->cap ? s->cap * 2 : 16384) + (size_t)n;
        char *nb = realloc(s->buf, cap);
        if (nb == NULL)
            return -1;
        s->buf = nb;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, tmp, (size_t)n);
    s->len += (size_t)n;
    s->buf[s->len] = '\0';
    return 1;
}

int tu_run(const char *cmd, const char *in, size_t in_len, char **out, char **err)
{
    int pin[2], pout[2], perr[2], status = 0;
    struct sink so = {0}, se = {0};
    size_t written = 0;
    pid_t pid;

    if (pipe2(pin, O_CLOEXEC) < 0 || pipe2(pout, O_CLOEXEC) < 0 || pipe2(perr, O_CLOEXEC) < 0)
        return -1;
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(pin[0], 0);
        dup2(pout[1], 1);
        dup2(perr[1], 2);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(pin[0]);
    close(pout[1]);
    close(perr[1]);
    if (in == NULL || in_len == 0) {
        close(pin[1]);
        pin[1] = -1;
    }
    for (int open_fds = 2; open_fds > 0;) {
        struct pollfd p[3] = {{pout[0], POLLIN, 0}, {perr[0], POLLIN, 0}, {pin[1], POLLOUT, 0}};
        int np = pin[1] >= 0 ? 3 : 2;
        if (poll(p, (nfds_t)np, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (np == 3 && (p[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t n = write(pin[1], in + written, in_len - written);
            if (n > 0)
                written += (size_t)n;
            if (n < 0 || written == in_len) {
                close(pin[1]);
                pin[1] = -1;
            }
        }
        for (int i = 0; i < 2; i++) {
            if (p[i].fd >= 0 && (p[i].revents & (POLLIN | POLLHUP | POLLERR))) {
                if (sink_read(p[i].fd, i == 0 ? &so : &se) <= 0) {
                    close(i == 0 ? pout[0] : perr[0]);
                    if (i == 0)
                        pout[0] = -1;
                    else
                        perr[0] = -1;
                    open_fds--;
                }
            }
        }
        if (pout[0] < 0 && perr[0] < 0)
            break;
        if (pout[0] < 0 || perr[0] < 0) {
            /* keep polling the remaining one: poll ignores negative fds */
        }
    }
    if (pin[1] >= 0)
        close(pin[1]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (out != NULL)
        *out = so.buf ? so.buf : strdup("");
    else
        free(so.buf);
    if (err != NULL)
        *err = se.buf ? se.buf : strdup("");
    else
        free(se.buf);
    if (!WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

int tu_runf(char **out, char **err, const char *fmt, ...)
{
    va_list ap;
    char *cmd = NULL;
    int rc;

    va_start(ap, fmt);
    if (vasprintf(&cmd, fmt, ap) < 0)
        cmd = NULL;
    va_end(ap);
    if (cmd == NULL)
        return -1;
    rc = tu_run(cmd, NULL, 0, out, err);
    free(cmd);
    return rc;
}

char *tu_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL, *bigger;
    size_t used = 0, cap = 0, n;

    if (f == NULL)
        return NULL;
    /* read to EOF rather than trusting the size: /proc files say 0 */
    do {
        if (cap - used < 4096) {
            cap = cap ? cap * 2 : 8192;
            if ((bigger = realloc(buf, cap + 1)) == NULL) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = bigger;
        }
        n = fread(buf + used, 1, cap - used, f);
        used += n;
    } while (n > 0);
    if (ferror(f)) {
        free(buf);
        buf = NULL;
    } else {
        buf[used] = '\0';
        if (len != NULL)
            *len = used;
    }
    fclose(f);
    return buf;
}

char *tu_build_path(const char *name)
{
    const char *dir = getenv("LINECERT_BUILD_DIR");
    char *path = NULL;

    if (dir == NULL)
        dir = ".";
    if (asprintf(&path, "%s/%s", dir, name) < 0)
        return NULL;
    return path;
}
