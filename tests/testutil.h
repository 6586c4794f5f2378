/*
 * testutil.h — small helpers shared by the Check suites: temporary
 * directories and running a command with its output captured.
 */
#ifndef LINECERT_TESTUTIL_H
#define LINECERT_TESTUTIL_H

#include <stddef.h>

/* Creates a fresh directory under $TMPDIR (or /tmp); returns a malloc'd path. */
char *tu_mkdtemp(const char *tag);

/* rm -rf of a directory made by tu_mkdtemp; NULL is a no-op. */
void tu_rmtree(const char *path);

/*
 * Runs `sh -c cmd`, feeding `in` (may be NULL) on stdin; captures stdout and
 * stderr into malloc'd NUL-terminated strings (out/err may be NULL to discard).
 * Returns the exit status (0..255), or -1 if the command could not run or was
 * killed by a signal.
 */
int tu_run(const char *cmd, const char *in, size_t in_len, char **out, char **err);

/*
 * Like tu_run() for a printf-formatted command, with nothing on stdin.
 * Returns the exit status, or -1 if the command could not be formatted or run.
 */
int tu_runf(char **out, char **err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Reads a whole file; returns malloc'd bytes (NUL-terminated) or NULL. */
char *tu_slurp(const char *path, size_t *len);

/* Path of a built program (e.g. "linecert") in the build tree; malloc'd. */
char *tu_build_path(const char *name);

#endif
