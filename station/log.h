/*
 * log.h — one line per event, to journald or stderr.
 *
 * Under systemd (JOURNAL_STREAM set) lines carry a <N> priority prefix that
 * journald understands and no timestamp (journald adds one); on a terminal
 * they carry a UTC timestamp.  Thread-safe: each line is one write(2).
 */
#ifndef LINECERT_LOG_H
#define LINECERT_LOG_H

enum log_level { LOG_LVL_ERR = 3, LOG_LVL_WARN = 4, LOG_LVL_INFO = 6, LOG_LVL_DEBUG = 7 };

/* Sets the program name shown in each line; detects journald. */
void log_init(const char *prog);

void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...)  log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)

#endif
