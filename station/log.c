/*
 * log.c — event lines to journald or stderr (see log.h).
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *g_prog = "linecert";
static int g_journal;

void log_init(const char *prog)
{
    g_prog = prog;
    g_journal = getenv("JOURNAL_STREAM") != NULL;
}

void log_msg(int level, const char *fmt, ...)
{
    char line[1024];
    size_t n = 0;
    va_list ap;

    if (g_journal) {
        n = (size_t)snprintf(line, sizeof line, "<%d>", level);
    } else {
        struct timeval tv;
        struct tm tm;
        gettimeofday(&tv, NULL);
        gmtime_r(&tv.tv_sec, &tm);
        n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
        n += (size_t)snprintf(line + n, sizeof line - n, ".%03dZ %s[%d]: %s",
                              (int)(tv.tv_usec / 1000), g_prog, (int)getpid(),
                              level <= LOG_LVL_ERR    ? "error: "
                              : level == LOG_LVL_WARN ? "warning: "
                                                      : "");
    }
    va_start(ap, fmt);
    if (n < sizeof line)
        n += (size_t)vsnprintf(line + n, sizeof line - n, fmt, ap);
    va_end(ap);
    if (n > sizeof line - 2)
        n = sizeof line - 2;
    for (size_t i = 0; i < n; i++) /* one event, one line: no newlines from peers' text */
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    line[n++] = '\n';
    if (write(2, line, n) < 0) {
        /* nowhere left to report it */
    }
}
