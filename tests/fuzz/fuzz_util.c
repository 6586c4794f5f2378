/*
 * fuzz_util.c — scratch directory and checks for the fuzz targets (see
 * fuzz_util.h).
 */
#include "fuzz_util.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_scratch[128];

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

static void remove_scratch(void)
{
    if (g_scratch[0] != '\0')
        nftw(g_scratch, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

const char *fz_scratch(const char *tag)
{
    const char *parent = getenv("TMPDIR");

    if (g_scratch[0] != '\0')
        return g_scratch;
    /* run.sh points TMPDIR into its own work directory, which also takes what a crash leaves. */
    if (parent == NULL || strncmp(parent, "/tmp/", 5) != 0 || strlen(parent) > 80)
        parent = "/tmp";
    snprintf(g_scratch, sizeof g_scratch, "%s/linecert-fuzz-%s-XXXXXX", parent, tag);
    if (mkdtemp(g_scratch) == NULL) {
        fprintf(stderr, "fuzz: cannot make scratch directory %s: %s\n", g_scratch, strerror(errno));
        abort();
    }
    atexit(remove_scratch);
    return g_scratch;
}

void fz_write_file(const char *path, const void *data, size_t len, mode_t mode)
{
    const unsigned char *p = data;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

    if (fd < 0 || fchmod(fd, mode) != 0) {
        fprintf(stderr, "fuzz: cannot write %s: %s\n", path, strerror(errno));
        abort();
    }
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fprintf(stderr, "fuzz: cannot write %s: %s\n", path, strerror(errno));
            abort();
        }
        p += n;
        len -= (size_t)n;
    }
    if (close(fd) != 0) {
        fprintf(stderr, "fuzz: cannot write %s: %s\n", path, strerror(errno));
        abort();
    }
}

void fz_unlink(const char *path)
{
    if (unlink(path) != 0 && errno != ENOENT) {
        fprintf(stderr, "fuzz: cannot remove %s: %s\n", path, strerror(errno));
        abort();
    }
}

void fz_fail(const char *file, int line, const char *what)
{
    fprintf(stderr, "%s:%d: fuzz check failed: %s\n", file, line, what);
    abort();
}

int fz_printable(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            return 0;
    return 1;
}
