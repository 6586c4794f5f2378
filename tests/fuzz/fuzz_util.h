/*
 * fuzz_util.h — what the libFuzzer targets share: a private scratch
 * directory under /tmp (the only place a target writes), whole-file writes,
 * and a check that aborts with a message, so a broken invariant is a crash
 * libFuzzer records with its input like any sanitizer report.
 */
#ifndef LINECERT_FUZZ_UTIL_H
#define LINECERT_FUZZ_UTIL_H

#include <stddef.h>
#include <sys/types.h>

/*
 * The process's scratch directory, $TMPDIR/linecert-fuzz-<tag>-XXXXXX when
 * TMPDIR is under /tmp, else /tmp/linecert-fuzz-<tag>-XXXXXX; made on the
 * first call and removed with its contents at exit (a crashing run leaves it
 * behind: run.sh's TMPDIR is removed after the run).  Aborts if it cannot be
 * made: the target cannot run without it.
 */
const char *fz_scratch(const char *tag);

/*
 * Writes len bytes to path (created or truncated, then chmod to mode so that
 * an existing file gets it too).  Aborts on failure: that is the harness
 * broken, not a finding.
 */
void fz_write_file(const char *path, const void *data, size_t len, mode_t mode);

/* Removes path if it exists (ENOENT is fine); aborts on any other error. */
void fz_unlink(const char *path);

/* Aborts with "fuzz check failed: <what>" unless cond holds. */
#define FZ_CHECK(cond, what)                                                                       \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fz_fail(__FILE__, __LINE__, (what));                                                   \
    } while (0)

void fz_fail(const char *file, int line, const char *what) __attribute__((noreturn));

/* 1 if s (NUL-terminated) holds only printable ASCII (0x20..0x7e). */
int fz_printable(const char *s);

#endif
